from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pyproj
import pytest
import shapely

from cellcensus.reference import belgium
from cellcensus.world.country import SyntheticCountry
from cellcensus.world.params import WorldParams
from cellcensus.world.places import Column, PoiKind
from cellcensus.world.population import SEXES
from cellcensus.world.synthesis import WorldSummary
from cellcensus.world.territory import PROJECTED_CRS, settled_points


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


def test_settled_points_lie_in_their_area_and_cluster(small_country: SyntheticCountry) -> None:
    territory = small_country.territory
    rng = np.random.default_rng(3)
    rural = int(np.flatnonzero(territory.area_codes == "83031")[0])  # La Roche-en-Ardenne
    areas = np.full(4000, rural, dtype=np.intp)
    settled = settled_points(
        territory=territory, settlements=small_country.settlements, areas=areas, rng=rng
    )
    polygon = territory.polygons[rural]
    assert shapely.contains_xy(polygon, settled[:, 0], settled[:, 1]).all()
    # Clustered around villages: much closer to each other than uniform points are.
    uniform_spread = np.sqrt(territory.area_km2[rural]) * 1000
    nearest_centre = np.min(
        np.hypot(
            *(settled[:, None, :] - small_country.settlements.xy[None, :, :]).transpose(2, 0, 1)
        ),
        axis=1,
    )
    assert np.median(nearest_centre) < 0.25 * uniform_spread


def test_centres_are_the_real_towns_and_villages_weighted_by_population(
    small_country: SyntheticCountry,
) -> None:
    territory, settlements = small_country.territory, small_country.settlements
    places = belgium.places()
    to_metres = pyproj.Transformer.from_crs("EPSG:4326", PROJECTED_CRS, always_xy=True)
    towns = np.column_stack(to_metres.transform(places["longitude"], places["latitude"]))
    leuven = int(np.flatnonzero(territory.area_codes == "24062")[0])
    centres = slice(settlements.first[leuven], settlements.first[leuven + 1])
    xy, weight = settlements.xy[centres], settlements.weight[centres]
    # Each centre of Leuven is one of its places (Leuven, Heverlee, Kessel-Lo, ...), weighing
    # its population: the town itself, with 101,032 of the 194,585, is the heaviest.
    distance = np.hypot(*(xy[:, None] - towns[None]).transpose(2, 0, 1))
    own = places.iloc[np.argmin(distance, axis=1)]
    assert distance.min(axis=1).max() < 1
    assert set(own["name"]) == {"Leuven", "Heverlee", "Kessel-Lo", "Wilsele", "Blauwput"}
    population = own["population"].to_numpy(dtype=float)
    assert weight == pytest.approx(population / population.sum())
    assert own["name"].iloc[np.argmax(weight)] == "Leuven"
    # Every place is a centre; an area without one (Herstappe) still gets one, inside it.
    assert settlements.area.size == len(places) + 2  # and Sint-Pieters-Woluwe
    herstappe = int(np.flatnonzero(territory.area_codes == "73028")[0])
    alone = settlements.xy[settlements.area == herstappe]
    assert len(alone) == 1
    assert shapely.contains_xy(territory.polygons[herstappe], alone[:, 0], alone[:, 1]).all()


def test_places_of_tracked_persons(small_country: SyntheticCountry) -> None:
    agents = small_country.agents
    locations = small_country.locations
    rows = np.arange(agents.persons)
    home_area = small_country.residents.home_area[agents.person]
    assert np.array_equal(locations.area[agents.places[rows, Column.HOME]], home_area)
    other = locations.area[agents.places[rows, Column.OTHER_1]]
    assert 0.4 < np.mean(other == home_area) < 0.75
    workers = np.flatnonzero(agents.worker)
    work_area = small_country.employment.work_area[agents.person[workers]]
    assert np.array_equal(locations.area[agents.places[workers, Column.WORK]], work_area)
    pois = small_country.pois
    workplace = agents.places[workers, Column.WORK] - pois.offset
    assert np.all(workplace < pois.count[PoiKind.WORKPLACE].sum())
    assert not (agents.worker & agents.pupil).any()
