"""Who works, and where: the census 2011 commuting matrix between arrondissements."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cellcensus.reference import belgium
from cellcensus.world.categorical import cumulative_rows, draw_categories
from cellcensus.world.params import WorldParams
from cellcensus.world.population import Residents, age_sex_table
from cellcensus.world.streams import Stream, random_stream
from cellcensus.world.territory import Territory

NOT_WORKING = -1
"""`work_area` of a person who does not work."""


@dataclass(frozen=True)
class Commuting:
    """The census commuting matrix in the world's terms.

    Attributes:
        arrondissements: The 43 arrondissement codes of 2019, in matrix order.
        workers: (home, work) census workers between arrondissements.
        working_probability: Per home arrondissement, the probability that a person of working
            age works, so that the expected workers match the matrix's row total.
        area_arrondissement: Each area's arrondissement, as an index into `arrondissements`.
    """

    arrondissements: NDArray[np.str_]
    workers: NDArray[np.float64]
    working_probability: NDArray[np.float64]
    area_arrondissement: NDArray[np.intp]


@dataclass(frozen=True)
class Employment:
    """Each person's work place and working hours.

    Attributes:
        work_area: Index of the work area, or `NOT_WORKING`.
        start_hour: Local hour the person's working day starts (day shift).
        night_shift: Whether the person works nights instead.
    """

    work_area: NDArray[np.intp]
    start_hour: NDArray[np.int8]
    night_shift: NDArray[np.bool_]

    @property
    def workers(self) -> int:
        """Number of persons who work."""
        return int(np.count_nonzero(self.work_area != NOT_WORKING))


def census_commuting(*, territory: Territory, working_ages: tuple[int, int]) -> Commuting:
    """The commuting matrix and the working probability per home arrondissement.

    Workers are drawn among persons of working age only, so the probability is the matrix's
    row total over the census population of working age of the arrondissement (about 0.63
    nationally for ages 18-64), capped at 1. Expected workers per arrondissement then equal
    ``scale`` times the census workers, as if every person worked with probability
    workers / population (about 0.39), but children and pensioners do not commute.

    Args:
        territory: The areas.
        working_ages: Youngest and oldest working age (inclusive).

    Returns:
        The matrix, working probabilities and each area's arrondissement.
    """
    matrix = belgium.commuting_matrix().pivot_table(
        index="home_arrondissement", columns="work_arrondissement", values="workers", aggfunc="sum"
    )
    arrondissements = np.array(sorted(matrix.index), dtype=str)
    workers = matrix.reindex(index=arrondissements, columns=arrondissements, fill_value=0)
    area_arrondissement = np.searchsorted(arrondissements, territory.arrondissements_2019)
    working_age = _working_age_population(territory=territory, working_ages=working_ages)
    by_arrondissement = np.bincount(
        area_arrondissement, weights=working_age, minlength=arrondissements.size
    )
    row_totals = workers.to_numpy(dtype=np.float64).sum(axis=1)
    probability = np.divide(
        row_totals, by_arrondissement, out=np.zeros_like(row_totals), where=by_arrondissement > 0
    )
    return Commuting(
        arrondissements=arrondissements,
        workers=workers.to_numpy(dtype=np.float64),
        working_probability=np.minimum(probability, 1.0),
        area_arrondissement=area_arrondissement.astype(np.intp),
    )


def _working_age_population(
    *, territory: Territory, working_ages: tuple[int, int]
) -> NDArray[np.float64]:
    """Census population of working age per area; a band counts for the share of its ages."""
    table, youngest, _ = age_sex_table(territory)
    low, high = working_ages
    band_ages = youngest[:, None].astype(np.int64) + np.arange(5)[None, :]
    share = ((band_ages >= low) & (band_ages <= high)).mean(axis=1)
    population: NDArray[np.float64] = table @ share
    return population


def assign_work(*, territory: Territory, residents: Residents, params: WorldParams) -> Employment:
    """Decide who works, where (the area) and when.

    A person of working age works with the probability of the home arrondissement; the work
    arrondissement is drawn from the home arrondissement's row of the commuting matrix, and
    the work area inside it in proportion to census population. Each worker's day starts at
    a personal hour; a share of workers work nights.

    Args:
        territory: The areas.
        residents: The persons.
        params: The world's parameters.

    Returns:
        Each person's work area and point.
    """
    rng = random_stream(seed=params.seed, stream=Stream.EMPLOYMENT)
    commuting = census_commuting(territory=territory, working_ages=params.working_ages)
    home_arrondissement = commuting.area_arrondissement[residents.home_area]
    low, high = params.working_ages
    of_age = (residents.age >= low) & (residents.age <= high)
    works = of_age & (
        rng.random(residents.size) < commuting.working_probability[home_arrondissement]
    )
    workers = np.flatnonzero(works)
    work_arrondissement = draw_categories(
        cumulative=cumulative_rows(_rows_with_weight(commuting.workers)),
        rows=home_arrondissement[workers],
        rng=rng,
    )
    # Which areas lie in each arrondissement, weighted by census population.
    inside = (
        commuting.area_arrondissement[None, :] == np.arange(commuting.arrondissements.size)[:, None]
    )
    area_weight = np.where(inside, territory.population[None, :].astype(np.float64), 0.0)
    chosen_area = draw_categories(
        cumulative=cumulative_rows(area_weight), rows=work_arrondissement, rng=rng
    )
    work_area = np.full(residents.size, NOT_WORKING, dtype=np.intp)
    work_area[workers] = chosen_area
    first, last = params.work_start_hours
    start_hour = rng.integers(first, last + 1, size=residents.size).astype(np.int8)
    night_shift = works & (rng.random(residents.size) < params.night_shift_share)
    return Employment(work_area=work_area, start_hour=start_hour, night_shift=night_shift)


def _rows_with_weight(table: NDArray[np.float64]) -> NDArray[np.float64]:
    """Give a row without any weight a self-loop so that every row is a distribution."""
    fixed = table.copy()
    empty = fixed.sum(axis=1) <= 0
    fixed[empty, empty] = 1.0
    return fixed
