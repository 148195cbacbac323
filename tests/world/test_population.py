from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import shapely

from cellcensus.reference import belgium
from cellcensus.world.country import SyntheticCountry
from cellcensus.world.params import WorldParams
from cellcensus.world.population import SEXES
from cellcensus.world.synthesis import WorldSummary


def test_persons_per_municipality_are_rounded_census_population(
    small_world: WorldSummary, small_params: WorldParams
) -> None:
    persons = pq.read_table(small_world.out / "truth" / "persons.parquet").to_pandas()
    census = belgium.census_population().set_index("area_code")["population"]
    realised = persons["home_area"].value_counts().reindex(census.index, fill_value=0)
    expected = census.map(lambda population: round(population * small_params.scale))
    assert (realised == expected).all()
    assert len(persons) == small_world.persons == expected.sum()


def test_age_and_sex_follow_the_census(small_country: SyntheticCountry) -> None:
    residents = small_country.residents
    census = belgium.census_population()
    female_share = census["female"].sum() / census["population"].sum()
    drawn = np.mean(SEXES[residents.sex] == "F")
    tolerance = 4 * np.sqrt(female_share * (1 - female_share) / residents.size)
    assert abs(drawn - female_share) < tolerance
    assert residents.age.min() >= 0
    assert residents.age.max() <= 104
    children = census["age_0-14"].sum() / census["population"].sum()
    assert abs(np.mean(residents.age <= 14) - children) < 0.02


def test_home_points_lie_in_the_home_municipality(small_country: SyntheticCountry) -> None:
    residents = small_country.residents
    polygons = small_country.territory.polygons[residents.home_area]
    inside = shapely.contains_xy(polygons, residents.home_xy[:, 0], residents.home_xy[:, 1])
    assert inside.all()


def test_other_places_are_near_home(small_country: SyntheticCountry) -> None:
    residents = small_country.residents
    distance_km = np.hypot(*(residents.other_xy - residents.home_xy).T) / 1000
    assert np.median(distance_km) < 10
    assert 0.3 < np.mean(residents.other_area == residents.home_area) < 0.5
