"""The synthetic country: everything about the world that does not change from day to day."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cellcensus.world.agents import Agents, build_agents
from cellcensus.world.devices import DeviceKind, Devices, build_devices
from cellcensus.world.employment import NOT_WORKING, Employment
from cellcensus.world.handsets import Catalogue, build_catalogue
from cellcensus.world.machines import Machines, build_machines
from cellcensus.world.migration import Migrations
from cellcensus.world.network import RadioNetwork, build_network
from cellcensus.world.params import WorldParams
from cellcensus.world.people import People, build_people
from cellcensus.world.places import Column, Locations, PoiKind, PointsOfInterest, build_pois
from cellcensus.world.population import Residents
from cellcensus.world.radio import coverage
from cellcensus.world.roads import Roads, build_roads
from cellcensus.world.roaming import RoamerStays, draw_stays
from cellcensus.world.streams import Stream, random_stream
from cellcensus.world.subscription import Subscriptions
from cellcensus.world.territory import Settlements, Territory, settled_points

Progress = Callable[[str, float], None]
"""Reports a step's description and the completed fraction (0-1) of the whole generation."""


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
    people = build_people(params)
    report("building the network", 0.03)
    network = build_network(
        territory=people.territory, settlements=people.settlements, params=params
    )
    report("placing homes and places", 0.04)
    rng = random_stream(seed=params.seed, stream=Stream.PLACES)
    home_xy, new_home_xy, pois, roads = _positions(people=people, params=params, rng=rng)
    road_offset = pois.offset + pois.size
    stays = draw_stays(
        territory=people.territory,
        settlements=people.settlements,
        params=params,
        offset=road_offset + roads.point_xy.shape[0],
    )
    agents = build_agents(people=people, pois=pois, stays=stays, params=params, rng=rng)
    machines = _machines(people=people, agents=agents, pois=pois, params=params)
    report("finding serving cells", 0.06)
    locations = _locations(
        network=network,
        xy=np.concatenate([home_xy, new_home_xy, pois.xy, roads.point_xy, stays.location_xy]),
        areas=np.concatenate(
            [
                _home_areas(people),
                people.migrations.to_area[np.isin(people.migrations.person, people.tracked)],
                pois.area,
                roads.point_area,
                stays.location_area,
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


def tracked_homes(params: WorldParams) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """The tracked persons (resident indices) and where their homes are (`PROJECTED_CRS`).

    The same homes as `build_country` places (the same random streams), without the rest of
    the country: for measuring an estimator against where devices truly sleep.
    """
    people = build_people(params)
    rng = random_stream(seed=params.seed, stream=Stream.PLACES)
    home_xy, *_ = _positions(people=people, params=params, rng=rng)
    return people.tracked, home_xy


def _home_areas(people: People) -> NDArray[np.intp]:
    home: NDArray[np.intp] = people.residents.home_area[people.tracked]
    return home


def _positions(
    *, people: People, params: WorldParams, rng: np.random.Generator
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


def _machines(
    *,
    people: People,
    agents: Agents,
    pois: PointsOfInterest,
    params: WorldParams,
) -> Machines:
    """The holder's M2M SIMs, in proportion to its resident subscribers."""
    rng = random_stream(seed=params.seed, stream=Stream.MACHINES)
    count = round(params.m2m_per_subscriber * people.subscriptions.holder_primary.size)
    workplaces = np.arange(
        pois.first[PoiKind.WORKPLACE, 0],
        pois.first[PoiKind.WORKPLACE, 0] + pois.count[PoiKind.WORKPLACE].sum(),
        dtype=np.int32,
    )
    return build_machines(
        count=count,
        homes=agents.places[: agents.persons, Column.HOME],
        businesses=workplaces,
        depots=pois.area[workplaces - pois.offset],
        rng=rng,
    )


def _locations(
    *,
    network: RadioNetwork,
    xy: NDArray[np.float64],
    areas: NDArray[np.intp],
    params: WorldParams,
) -> Locations:
    rng = random_stream(seed=params.seed, stream=Stream.RADIO)
    covered = coverage(network=network, xy=xy, params=params, rng=rng)
    return Locations(
        area=areas.astype(np.int16), sector=covered.sector, cumulative=covered.cumulative
    )


def holder_residents(country: SyntheticCountry) -> NDArray[np.intp]:
    """Persons with a primary device of the holder (its resident subscribers)."""
    devices = country.devices
    primary: NDArray[np.intp] = devices.person[devices.kind == DeviceKind.PRIMARY]
    return primary
