from __future__ import annotations

import numpy as np
import pytest

from cellcensus.reference import belgium
from cellcensus.world.employment import NOT_WORKING, Employment, assign_work, census_commuting
from cellcensus.world.params import WorldParams
from cellcensus.world.population import Residents, build_residents
from cellcensus.world.territory import Territory, belgium_territory

CommutingWorld = tuple[WorldParams, Territory, Residents, Employment]


@pytest.fixture(scope="module")
def commuting_world() -> CommutingWorld:
    params = WorldParams(scale=0.01, seed=11)
    territory = belgium_territory()
    residents = build_residents(territory=territory, params=params)
    return (
        params,
        territory,
        residents,
        assign_work(territory=territory, residents=residents, params=params),
    )


def test_working_probability_reproduces_the_national_working_share() -> None:
    commuting = census_commuting(territory=belgium_territory(), working_ages=(18, 64))
    assert commuting.workers.sum() == 4_304_172
    assert 0.55 < commuting.working_probability.mean() < 0.7
    assert commuting.working_probability.max() <= 1


def test_commuting_matrix_is_reproduced_within_sampling_error(
    commuting_world: CommutingWorld,
) -> None:
    params, territory, residents, employment = commuting_world
    commuting = census_commuting(territory=territory, working_ages=params.working_ages)
    work_area = employment.work_area
    workers = work_area != NOT_WORKING
    home = commuting.area_arrondissement[residents.home_area[workers]]
    work = commuting.area_arrondissement[work_area[workers]]
    size = commuting.arrondissements.size
    realised = np.bincount(home * size + work, minlength=size * size).reshape(size, size)
    expected = commuting.workers * params.scale
    # Poisson-like sampling error, five standard deviations, on every one of the 43 x 43 flows.
    assert np.all(np.abs(realised - expected) <= 5 * np.sqrt(expected) + 3)
    census_share = commuting.workers.sum() / belgium.census_population()["population"].sum()
    assert abs(workers.mean() - census_share) < 0.01


def test_only_persons_of_working_age_work_some_at_night(commuting_world: CommutingWorld) -> None:
    params, _, residents, employment = commuting_world
    workers = employment.work_area != NOT_WORKING
    ages = residents.age[workers]
    assert ages.min() >= params.working_ages[0]
    assert ages.max() <= params.working_ages[1]
    assert abs(employment.night_shift[workers].mean() - params.night_shift_share) < 0.01
    assert not employment.night_shift[~workers].any()
    first, last = params.work_start_hours
    assert set(np.unique(employment.start_hour)) == set(range(first, last + 1))


def test_work_area_is_drawn_in_proportion_to_population(commuting_world: CommutingWorld) -> None:
    _, territory, _, employment = commuting_world
    work_area = employment.work_area[employment.work_area != NOT_WORKING]
    codes = territory.area_codes
    brussels_arrondissement = np.char.startswith(codes, "21")
    in_brussels = work_area[brussels_arrondissement[work_area]]
    city = np.flatnonzero(codes == "21004")[0]  # Brussels city: 15% of the region's people
    share = np.mean(in_brussels == city)
    population = territory.population
    expected = population[city] / population[brussels_arrondissement].sum()
    assert abs(share - expected) < 0.02
