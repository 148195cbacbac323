"""The synthetic country: everything about the world that does not change from day to day."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cellcensus.world.devices import DeviceKind, Devices, build_devices
from cellcensus.world.employment import NOT_WORKING, Employment, assign_work
from cellcensus.world.handsets import Catalogue, build_catalogue
from cellcensus.world.machines import Machines, build_machines
from cellcensus.world.migration import Migrations, draw_migrations
from cellcensus.world.network import RadioNetwork, build_network
from cellcensus.world.params import WorldParams
from cellcensus.world.places import (
    PLACE_COLUMNS,
    Column,
    Locations,
    PoiKind,
    PointsOfInterest,
    build_pois,
)
from cellcensus.world.population import Residents, build_residents
from cellcensus.world.radio import coverage
from cellcensus.world.roads import Roads, build_roads
from cellcensus.world.roaming import RoamerStays, draw_stays
from cellcensus.world.sampling import gravity_areas
from cellcensus.world.streams import Stream, random_stream
from cellcensus.world.subscription import Subscriptions, subscribe
from cellcensus.world.territory import (
    Settlements,
    Territory,
    belgium_territory,
    build_settlements,
    settled_points,
)

Progress = Callable[[str, float], None]
"""Reports a step's description and the completed fraction (0-1) of the whole generation."""

NEVER = np.iinfo(np.int32).max
"""Move day of a person who does not move."""
SCHOOL_RULES = ((12, 0.85, 5.0), (18, 0.55, 10.0), (200, 0.3, 30.0))
"""(below age, share schooled in the home municipality, distance decay km otherwise): primary
schools are local, colleges far (assumption)."""


@dataclass(frozen=True)
class Agents:
    """Everyone simulated hour by hour: tracked persons first, then visitors.

    Tracked persons are the holder's subscribers and the presence sample; the others are not
    simulated (they make no events and have no presence truth).

    Attributes:
        person: Tracked persons (sorted); agent row i < `persons` is person ``person[i]``.
        places: (agents, PLACE_COLUMNS) location of each place; the TRIP and STAY columns
            are rewritten each day.
        move_day: Per tracked person, ordinal of the day they move, or `NEVER`.
        worker: Per tracked person, whether they work.
        night_shift: Per tracked person, whether they work nights.
        start_hour: Per tracked person, the local hour their working day starts.
        pupil: Per tracked person, whether they go to school or college.
    """

    person: NDArray[np.intp]
    places: NDArray[np.int32]
    move_day: NDArray[np.int32]
    worker: NDArray[np.bool_]
    night_shift: NDArray[np.bool_]
    start_hour: NDArray[np.int8]
    pupil: NDArray[np.bool_]

    @property
    def persons(self) -> int:
        """Number of tracked persons."""
        return int(self.person.size)

    @property
    def size(self) -> int:
        """Number of agents (tracked persons and visitors)."""
        return int(self.places.shape[0])


@dataclass(frozen=True)
class SyntheticCountry:
    """The static world.

    Attributes:
        params: The parameters it was built with.
        territory: The areas.
        settlements: Their village and town centres.
        residents: The persons.
        employment: Their work areas and hours.
        subscriptions: Their operators.
        migrations: Who moves during the period.
        network: The holder's sites and cells.
        pois: Workplaces, schools and leisure places.
        roads: The road graph of vehicles.
        road_offset: Location index of road point 0.
        locations: Every location's area and serving sectors.
        agents: The tracked persons and the visitors.
        stays: The visitors' stays.
        machines: The M2M SIMs.
        catalogue: The device models.
        devices: The holder's devices.
        presence_sample: Sorted persons who get hourly presence truth.
    """

    params: WorldParams
    territory: Territory
    settlements: Settlements
    residents: Residents
    employment: Employment
    subscriptions: Subscriptions
    migrations: Migrations
    network: RadioNetwork
    pois: PointsOfInterest
    roads: Roads
    road_offset: int
    locations: Locations
    agents: Agents
    stays: RoamerStays
    machines: Machines
    catalogue: Catalogue
    devices: Devices
    presence_sample: NDArray[np.intp]


@dataclass(frozen=True)
class _People:
    territory: Territory
    settlements: Settlements
    residents: Residents
    employment: Employment
    subscriptions: Subscriptions
    migrations: Migrations
    presence_sample: NDArray[np.intp]
    tracked: NDArray[np.intp]
    pupil: NDArray[np.bool_]


def build_country(*, params: WorldParams, progress: Progress | None = None) -> SyntheticCountry:
    """Build the static part of the world from the census and the parameters.

    Args:
        params: The world's parameters.
        progress: Optional progress callback; this step covers the first 10% of the work.

    Returns:
        The country.
    """
    report = progress or (lambda _step, _fraction: None)
    report("placing residents", 0.0)
    people = _people(params)
    report("building the network", 0.03)
    network = build_network(
        territory=people.territory, settlements=people.settlements, params=params
    )
    report("placing homes and places", 0.04)
    rng = random_stream(seed=params.seed, stream=Stream.PLACES)
    home_xy, new_home_xy, pois, roads = _positions(people=people, params=params, rng=rng)
    stays = draw_stays(territory=people.territory, pois=pois, params=params)
    agents = _agents(people=people, pois=pois, stays=stays, params=params, rng=rng)
    road_offset = pois.offset + pois.size
    machines = _machines(
        people=people, agents=agents, pois=pois, params=params, road_offset=road_offset
    )
    report("finding serving cells", 0.06)
    locations = _locations(
        people=people,
        network=network,
        xy=np.concatenate([home_xy, new_home_xy, pois.xy, roads.point_xy]),
        areas=np.concatenate(
            [
                _home_areas(people),
                people.migrations.to_area[np.isin(people.migrations.person, people.tracked)],
                pois.area,
                roads.point_area,
            ]
        ),
        params=params,
    )
    catalogue = build_catalogue(random_stream(seed=params.seed, stream=Stream.SUBSCRIPTION))
    devices = build_devices(
        residents=people.residents,
        subscriptions=people.subscriptions,
        tracked=people.tracked,
        machines=machines.size,
        stays=stays,
        catalogue=catalogue,
        params=params,
        rng=random_stream(seed=params.seed, stream=Stream.SUBSCRIPTION, index=1),
    )
    return SyntheticCountry(
        params=params,
        territory=people.territory,
        settlements=people.settlements,
        residents=people.residents,
        employment=people.employment,
        subscriptions=people.subscriptions,
        migrations=people.migrations,
        network=network,
        pois=pois,
        roads=roads,
        road_offset=road_offset,
        locations=locations,
        agents=agents,
        stays=stays,
        machines=machines,
        catalogue=catalogue,
        devices=devices,
        presence_sample=people.presence_sample,
    )


def _people(params: WorldParams) -> _People:
    territory = belgium_territory()
    settlements = build_settlements(
        territory=territory, rng=random_stream(seed=params.seed, stream=Stream.SETTLEMENTS)
    )
    residents = build_residents(territory=territory, params=params)
    employment = assign_work(territory=territory, residents=residents, params=params)
    subscriptions = subscribe(territory=territory, residents=residents, params=params)
    migrations = draw_migrations(territory=territory, residents=residents, params=params)
    sample = _presence_sample(persons=residents.size, params=params)
    holder = np.union1d(subscriptions.holder_primary, subscriptions.holder_secondary)
    low, high = params.school_ages
    pupil = (residents.age >= low) & (residents.age <= high) & (employment.work_area == NOT_WORKING)
    return _People(
        territory=territory,
        settlements=settlements,
        residents=residents,
        employment=employment,
        subscriptions=subscriptions,
        migrations=migrations,
        presence_sample=sample,
        tracked=np.union1d(holder, sample).astype(np.intp),
        pupil=pupil,
    )


def _presence_sample(*, persons: int, params: WorldParams) -> NDArray[np.intp]:
    """A simple random sample of at most `presence_persons` persons, sorted."""
    rng = random_stream(seed=params.seed, stream=Stream.PRESENCE_SAMPLE)
    size = min(params.presence_persons, persons)
    return np.sort(rng.choice(persons, size=size, replace=False)).astype(np.intp)


def _home_areas(people: _People) -> NDArray[np.intp]:
    home: NDArray[np.intp] = people.residents.home_area[people.tracked]
    return home


def _positions(
    *, people: _People, params: WorldParams, rng: np.random.Generator
) -> tuple[NDArray[np.float64], NDArray[np.float64], PointsOfInterest, Roads]:
    """Homes of the tracked persons, new homes of the tracked movers, POIs and road points."""
    territory, settlements = people.territory, people.settlements
    home_xy = settled_points(
        territory=territory, settlements=settlements, areas=_home_areas(people), rng=rng
    )
    moving = np.isin(people.migrations.person, people.tracked)
    new_home_xy = settled_points(
        territory=territory,
        settlements=settlements,
        areas=people.migrations.to_area[moving],
        rng=rng,
    )
    residents, employment = people.residents, people.employment
    works = employment.work_area != NOT_WORKING
    users = {
        PoiKind.WORKPLACE: np.bincount(employment.work_area[works], minlength=territory.size),
        PoiKind.SCHOOL: np.bincount(residents.home_area[people.pupil], minlength=territory.size),
        PoiKind.LEISURE: np.bincount(residents.home_area, minlength=territory.size),
    }
    pois = build_pois(
        territory=territory,
        settlements=settlements,
        users={kind: count.astype(np.float64) for kind, count in users.items()},
        offset=home_xy.shape[0] + new_home_xy.shape[0],
        rng=rng,
    )
    return home_xy, new_home_xy, pois, build_roads(territory)


def _agents(
    *,
    people: _People,
    pois: PointsOfInterest,
    stays: RoamerStays,
    params: WorldParams,
    rng: np.random.Generator,
) -> Agents:
    """The place table of the tracked persons, then of the visitors."""
    tracked = people.tracked
    count = tracked.size
    places = np.empty((count, PLACE_COLUMNS), dtype=np.int32)
    home = np.arange(count, dtype=np.int32)
    for column in Column:
        places[:, column] = home
    migrations = people.migrations
    moving = np.isin(migrations.person, tracked)
    rows = np.searchsorted(tracked, migrations.person[moving])
    places[rows, Column.NEW_HOME] = count + np.arange(rows.size, dtype=np.int32)
    move_day = np.full(count, NEVER, dtype=np.int32)
    move_day[rows] = migrations.day[moving]
    _work_places(people=people, pois=pois, places=places, rng=rng)
    _other_places(people=people, pois=pois, places=places, params=params, rng=rng)
    employment = people.employment
    return Agents(
        person=tracked,
        places=np.concatenate([places, stays.places]),
        move_day=move_day,
        worker=employment.work_area[tracked] != NOT_WORKING,
        night_shift=employment.night_shift[tracked],
        start_hour=employment.start_hour[tracked],
        pupil=people.pupil[tracked],
    )


def _work_places(
    *, people: _People, pois: PointsOfInterest, places: NDArray[np.int32], rng: np.random.Generator
) -> None:
    """Workers get a workplace in their work area, pupils a school; others stay home."""
    tracked = people.tracked
    work_area = people.employment.work_area[tracked]
    workers = np.flatnonzero(work_area != NOT_WORKING)
    places[workers, Column.WORK] = pois.pick(
        kind=PoiKind.WORKPLACE, areas=work_area[workers], rng=rng
    )
    pupils = np.flatnonzero(people.pupil[tracked])
    age = people.residents.age[tracked[pupils]]
    home_area = people.residents.home_area[tracked[pupils]]
    school_area = home_area.copy()
    lower = 0
    for below, local_share, distance_km in SCHOOL_RULES:
        group = np.flatnonzero((age >= lower) & (age < below))
        lower = below
        away = group[rng.random(group.size) >= local_share]
        school_area[away] = gravity_areas(
            territory=people.territory, origin=home_area[away], distance_km=distance_km, rng=rng
        )
    places[pupils, Column.WORK] = pois.pick(kind=PoiKind.SCHOOL, areas=school_area, rng=rng)


def _other_places(
    *,
    people: _People,
    pois: PointsOfInterest,
    places: NDArray[np.int32],
    params: WorldParams,
    rng: np.random.Generator,
) -> None:
    """Each person's regular other places: in the home area or, by distance decay, nearby."""
    home_area = people.residents.home_area[people.tracked]
    columns = (Column.OTHER_1, Column.OTHER_2, Column.OTHER_3)
    for index, column in enumerate(columns):
        if index >= params.other_places:
            places[:, column] = places[:, Column.OTHER_1]
            continue
        area = home_area.copy()
        away = np.flatnonzero(rng.random(area.size) >= params.other_in_home_area)
        area[away] = gravity_areas(
            territory=people.territory,
            origin=home_area[away],
            distance_km=params.other_distance_km,
            rng=rng,
        )
        places[:, column] = pois.pick(kind=PoiKind.LEISURE, areas=area, rng=rng)


def _machines(
    *,
    people: _People,
    agents: Agents,
    pois: PointsOfInterest,
    params: WorldParams,
    road_offset: int,
) -> Machines:
    """The holder's M2M SIMs, in proportion to its resident subscribers."""
    rng = random_stream(seed=params.seed, stream=Stream.MACHINES)
    count = round(params.m2m_per_subscriber * people.subscriptions.holder_primary.size)
    workplaces = np.arange(
        pois.first[PoiKind.WORKPLACE, 0],
        pois.first[PoiKind.WORKPLACE, 0] + pois.count[PoiKind.WORKPLACE].sum(),
        dtype=np.int32,
    )
    del road_offset
    return build_machines(
        count=count,
        homes=agents.places[: agents.persons, Column.HOME],
        businesses=workplaces,
        depots=pois.area[workplaces - pois.offset],
        rng=rng,
    )


def _locations(
    *,
    people: _People,
    network: RadioNetwork,
    xy: NDArray[np.float64],
    areas: NDArray[np.intp],
    params: WorldParams,
) -> Locations:
    rng = random_stream(seed=params.seed, stream=Stream.RADIO)
    covered = coverage(network=network, xy=xy, params=params, rng=rng)
    del people
    return Locations(
        area=areas.astype(np.int16), sector=covered.sector, cumulative=covered.cumulative
    )


def holder_residents(country: SyntheticCountry) -> NDArray[np.intp]:
    """Persons with a primary device of the holder (its resident subscribers)."""
    devices = country.devices
    primary: NDArray[np.intp] = devices.person[devices.kind == DeviceKind.PRIMARY]
    return primary
