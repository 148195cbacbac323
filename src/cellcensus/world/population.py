"""Persons: a home municipality, an age and a sex, a home point and an "other" place."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cellcensus.errors import CellcensusError
from cellcensus.reference import belgium
from cellcensus.world.categorical import cumulative_rows, draw_categories
from cellcensus.world.params import WorldParams
from cellcensus.world.streams import Stream, random_stream
from cellcensus.world.territory import Territory, sample_points

SEXES = np.array(["F", "M"])
"""Sex codes as census_age_sex writes them; a person's `sex` indexes this array."""


@dataclass(frozen=True)
class Residents:
    """The persons of the world, ordered by home area (person i is ``P{i+1:08d}``).

    Attributes:
        home_area: Index of the home area (census municipality) in the territory.
        age: Age in completed years.
        sex: Index into `SEXES`.
        home_xy: Home point in metres.
        other_area: Area of the person's regular "other" place (shops, family, sport).
        other_xy: That place's point in metres.
    """

    home_area: NDArray[np.intp]
    age: NDArray[np.int16]
    sex: NDArray[np.int8]
    home_xy: NDArray[np.float64]
    other_area: NDArray[np.intp]
    other_xy: NDArray[np.float64]

    @property
    def size(self) -> int:
        """Number of persons."""
        return int(self.home_area.size)


def persons_per_area(*, territory: Territory, scale: float) -> NDArray[np.int64]:
    """Persons of each area: ``round(population * scale)`` (round half to even, like Python)."""
    counts: NDArray[np.int64] = np.rint(territory.population * scale).astype(np.int64)
    return counts


def build_residents(*, territory: Territory, params: WorldParams) -> Residents:
    """Create the persons of every area with their age, sex, home and other place.

    Args:
        territory: The areas and their census population.
        params: The world's parameters (scale, seed, other-place model).

    Returns:
        The persons, ordered by home area.
    """
    rng = random_stream(seed=params.seed, stream=Stream.POPULATION)
    counts = persons_per_area(territory=territory, scale=params.scale)
    if counts.sum() == 0:
        raise CellcensusError(
            f"world parameter scale={params.scale} leaves no person in any municipality; "
            "use a scale of at least 0.0001"
        )
    home_area = np.repeat(np.arange(territory.size), counts)
    age, sex = _draw_age_sex(territory=territory, home_area=home_area, rng=rng)
    home_xy = sample_points(territory=territory, areas=home_area, rng=rng)
    other_area = _draw_other_area(territory=territory, home_area=home_area, params=params, rng=rng)
    other_xy = sample_points(territory=territory, areas=other_area, rng=rng)
    return Residents(
        home_area=home_area,
        age=age,
        sex=sex,
        home_xy=home_xy,
        other_area=other_area,
        other_xy=other_xy,
    )


def age_sex_table(
    territory: Territory,
) -> tuple[NDArray[np.float64], NDArray[np.int16], NDArray[np.int8]]:
    """Census 2011 population by area x (sex, 5-year band), in the territory's area order.

    Returns:
        The (areas, groups) population table, and each group's youngest age and sex index.
    """
    frame = belgium.census_age_sex()
    frame["youngest"] = _youngest_age(frame["age_5y"])
    frame["sex_index"] = np.searchsorted(SEXES, frame["sex"].to_numpy(dtype=str))
    table = frame.pivot_table(
        index="area_code",
        columns=["sex_index", "youngest"],
        values="population",
        aggfunc="sum",
        fill_value=0,
    ).reindex(territory.area_codes, fill_value=0)
    groups = table.columns.to_frame(index=False)
    return (
        np.array(table.to_numpy(dtype=np.float64)),
        groups["youngest"].to_numpy(dtype=np.int16),
        groups["sex_index"].to_numpy(dtype=np.int8),
    )


def _youngest_age(bands: pd.Series) -> NDArray[np.int16]:
    """Youngest age of a census band: ``Y10-14`` -> 10, ``Y_LT5`` -> 0, ``Y_GE100`` -> 100."""
    youngest = bands.str.extract(r"^Y(?:_GE)?(\d+)", expand=False).fillna("0")
    return youngest.astype("int64").to_numpy().astype(np.int16)


def _draw_age_sex(
    *, territory: Territory, home_area: NDArray[np.intp], rng: np.random.Generator
) -> tuple[NDArray[np.int16], NDArray[np.int8]]:
    table, youngest, sex = age_sex_table(territory)
    # Areas whose sample is empty may have an empty census row in a sparse table: give them a
    # harmless uniform row so that the cumulative table is defined.
    table[table.sum(axis=1) == 0] = 1.0
    group = draw_categories(cumulative=cumulative_rows(table), rows=home_area, rng=rng)
    # Within a 5-year band every age is equally likely.
    age = youngest[group] + rng.integers(0, 5, size=group.size, dtype=np.int16)
    return age.astype(np.int16), sex[group]


def _draw_other_area(
    *,
    territory: Territory,
    home_area: NDArray[np.intp],
    params: WorldParams,
    rng: np.random.Generator,
) -> NDArray[np.intp]:
    """The area of each person's other place: home area, or a nearby one by distance decay.

    A gravity model: area j attracts in proportion to its population times
    ``exp(-distance / other_distance_km)`` from the home area's centroid.
    """
    delta = territory.centroids[:, None, :] - territory.centroids[None, :, :]
    distance_km = np.hypot(delta[..., 0], delta[..., 1]) / 1000.0
    attraction = territory.population[None, :].astype(np.float64) * np.exp(
        -distance_km / params.other_distance_km
    )
    np.fill_diagonal(attraction, 0.0)
    nearby = draw_categories(cumulative=cumulative_rows(attraction), rows=home_area, rng=rng)
    stays_home = rng.random(home_area.size) < params.other_in_home_area
    return np.where(stays_home, home_area, nearby)
