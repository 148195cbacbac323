"""Persons: a home municipality, an age and a sex, from the census 2011."""

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
from cellcensus.world.territory import Territory

SEXES = np.array(["F", "M"])
"""Sex codes as census_age_sex writes them; a person's `sex` indexes this array."""


@dataclass(frozen=True)
class Residents:
    """The persons of the world, ordered by home area (person i is ``P{i+1:08d}``).

    Attributes:
        home_area: Index of the home area (census municipality) in the territory.
        age: Age in completed years.
        sex: Index into `SEXES`.
    """

    home_area: NDArray[np.intp]
    age: NDArray[np.int16]
    sex: NDArray[np.int8]

    @property
    def size(self) -> int:
        """Number of persons."""
        return int(self.home_area.size)


def persons_per_area(*, territory: Territory, scale: float) -> NDArray[np.int64]:
    """Persons of each area: ``round(population * scale)`` (round half to even, like Python)."""
    counts: NDArray[np.int64] = np.rint(territory.population * scale).astype(np.int64)
    return counts


def build_residents(*, territory: Territory, params: WorldParams) -> Residents:
    """Create the persons of every area with their age and sex.

    Args:
        territory: The areas and their census population.
        params: The world's parameters (scale, seed).

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
    return Residents(home_area=home_area, age=age, sex=sex)


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
