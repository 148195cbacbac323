from __future__ import annotations

import numpy as np
import pytest

from cellcensus.reference import belgium
from cellcensus.world.country import SyntheticCountry, build_country
from cellcensus.world.employment import NOT_WORKING, census_commuting
from cellcensus.world.params import WorldParams
from cellcensus.world.territory import belgium_territory

CommutingWorld = tuple[WorldParams, SyntheticCountry]


@pytest.fixture(scope="module")
def commuting_world() -> CommutingWorld:
    params = WorldParams(scale=0.01, seed=11)
    return params, build_country(params=params)


def test_working_probability_reproduces_the_national_working_share() -> None:
    commuting = census_commuting(territory=belgium_territory(), working_ages=(18, 64))
    assert commuting.workers.sum() == 4_304_172
    assert 0.55 < commuting.working_probability.mean() < 0.7
    assert commuting.working_probability.max() <= 1


def test_commuting_matrix_is_reproduced_within_sampling_error(
    commuting_world: CommutingWorld,
) -> None:
    params, country = commuting_world
    commuting = census_commuting(territory=country.territory, working_ages=params.working_ages)
    work_area = country.employment.work_area
    workers = work_area != NOT_WORKING
    home = commuting.area_arrondissement[country.residents.home_area[workers]]
    work = commuting.area_arrondissement[work_area[workers]]
    size = commuting.arrondissements.size
    realised = np.bincount(home * size + work, minlength=size * size).reshape(size, size)
    expected = commuting.workers * params.scale
    # Poisson-like sampling error, five standard deviations, on every one of the 43 x 43 flows.
    assert np.all(np.abs(realised - expected) <= 5 * np.sqrt(expected) + 3)
    # National working share about 0.39 of all persons, as in the census.
    census_share = commuting.workers.sum() / belgium.census_population()["population"].sum()
    assert abs(workers.mean() - census_share) < 0.01


def test_only_persons_of_working_age_work(commuting_world: CommutingWorld) -> None:
    params, country = commuting_world
    workers = country.employment.work_area != NOT_WORKING
    ages = country.residents.age[workers]
    assert ages.min() >= params.working_ages[0]
    assert ages.max() <= params.working_ages[1]


def test_work_area_is_drawn_in_proportion_to_population(commuting_world: CommutingWorld) -> None:
    _, country = commuting_world
    work_area = country.employment.work_area
    codes = country.territory.area_codes
    brussels_arrondissement = np.char.startswith(codes, "21")
    in_brussels = brussels_arrondissement[work_area[work_area != NOT_WORKING]]
    workers_in_brussels = work_area[work_area != NOT_WORKING][in_brussels]
    city = np.flatnonzero(codes == "21004")[0]  # Brussels city: 15% of the region's people
    share = np.mean(workers_in_brussels == city)
    population = country.territory.population
    expected = population[city] / population[brussels_arrondissement].sum()
    assert abs(share - expected) < 0.02
