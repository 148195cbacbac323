"""Everyone simulated hour by hour, and the places each of them goes to."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cellcensus.world.employment import NOT_WORKING
from cellcensus.world.params import WorldParams
from cellcensus.world.people import People
from cellcensus.world.places import PLACE_COLUMNS, Column, PoiKind, PointsOfInterest
from cellcensus.world.roaming import RoamerStays
from cellcensus.world.sampling import gravity_areas

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


def build_agents(
    *,
    people: People,
    pois: PointsOfInterest,
    stays: RoamerStays,
    params: WorldParams,
    rng: np.random.Generator,
) -> Agents:
    """The place table of the tracked persons, then of the visitors.

    Args:
        people: The persons.
        pois: The points of interest.
        stays: The visitors.
        params: The world's parameters.
        rng: The random generator.

    Returns:
        The agents.
    """
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
    *, people: People, pois: PointsOfInterest, places: NDArray[np.int32], rng: np.random.Generator
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
    people: People,
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
