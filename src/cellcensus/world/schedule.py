"""Where every agent is, hour by hour, on one local day: a `Column` of its places, or `AWAY`.

Persons sleep at home (the new one once they have moved), work or study on working days,
go out in the evening and at weekends (to one of their regular places, or on a trip farther
away), spend some nights away, and some days abroad. Visitors are at their accommodation at
night and sightseeing by day, between their arrival and their departure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from numpy.typing import NDArray

from cellcensus.world.agents import Agents
from cellcensus.world.clock import MICROSECONDS_PER_HOUR, DayClock, in_hours
from cellcensus.world.holidays import DayKind, day_kind
from cellcensus.world.params import WorldParams
from cellcensus.world.places import AWAY, Column
from cellcensus.world.roaming import RoamerStays
from cellcensus.world.spells import Spells

HOLIDAY_LEAVE = 0.8
"""Work attendance during school holidays relative to other weeks (parents take leave)."""
NIGHT_SHIFT = (22, 6)
"""Local hours of a night shift."""
VISITOR_NIGHT = (22, 8)
"""Local hours a visitor spends at the accommodation."""
OTHER_WEIGHTS = (0.5, 0.3, 0.2)
"""How often each of a person's regular other places is the outing's destination."""

TripPlanner = Callable[[NDArray[np.intp]], NDArray[np.int32]]
"""Gives tracked persons (agent rows) a trip destination location for the day."""


@dataclass(frozen=True)
class Window:
    """When an outing can start: local hours ``[first, last)``."""

    first: int
    last: int


def person_places(
    *,
    agents: Agents,
    places: NDArray[np.int32],
    clock: DayClock,
    params: WorldParams,
    stays: Spells,
    abroad: Spells,
    plan_trips: TripPlanner,
    rng: np.random.Generator,
) -> NDArray[np.uint8]:
    """(tracked persons, slots) where each tracked person is in each hour slot of the day.

    Writes the day's TRIP and STAY destinations into `places`.

    Args:
        agents: The agents.
        places: The day's copy of ``agents.places``.
        clock: The day.
        params: The world's parameters.
        stays: Stays away from home covering the day.
        abroad: Stays abroad covering the day.
        plan_trips: Picks trip destinations.
        rng: The day's random generator.

    Returns:
        The schedule.
    """
    day = clock.day.toordinal()
    home = np.where(agents.move_day <= day, Column.NEW_HOME, Column.HOME).astype(np.uint8)
    place = np.repeat(home[:, None], clock.slots, axis=1)
    if not clock.is_free:
        _work(place=place, agents=agents, clock=clock, params=params, rng=rng)
        if clock.is_school_day:
            _study(place=place, agents=agents, clock=clock, params=params)
    _night_shift_mornings(place=place, agents=agents, clock=clock)
    tripping = _outings(place=place, home=home, agents=agents, clock=clock, params=params, rng=rng)
    places[tripping, Column.TRIP] = plan_trips(tripping)
    _apply_spells(place=place, spells=stays, clock=clock, value=Column.STAY)
    places[stays.member, Column.STAY] = stays.destination
    _apply_spells(place=place, spells=abroad, clock=clock, value=AWAY)
    return place


def _work(
    *,
    place: NDArray[np.uint8],
    agents: Agents,
    clock: DayClock,
    params: WorldParams,
    rng: np.random.Generator,
) -> None:
    attendance = params.work_attendance * (HOLIDAY_LEAVE if clock.is_school_holiday else 1.0)
    attends = agents.worker & (rng.random(agents.persons) < attendance)
    days = np.flatnonzero(attends & ~agents.night_shift)
    # Most days start at the usual hour, some an hour earlier or later.
    shift = rng.integers(-1, 2, size=days.size) * (rng.random(days.size) < 0.3)
    start = agents.start_hour[days].astype(np.int64) + shift
    hour = clock.local_hour[None, :]
    working = (hour >= start[:, None]) & (hour < start[:, None] + params.work_duration_hours)
    _assign(place=place, rows=days, mask=working, value=Column.WORK)
    nights = np.flatnonzero(attends & agents.night_shift)
    evening = clock.local_hour >= NIGHT_SHIFT[0]
    _assign(
        place=place,
        rows=nights,
        mask=np.broadcast_to(evening, (nights.size, clock.slots)),
        value=Column.WORK,
    )


def _night_shift_mornings(*, place: NDArray[np.uint8], agents: Agents, clock: DayClock) -> None:
    """Night workers are at work until 06:00 after a working day (attendance not redrawn)."""
    yesterday = clock.day - timedelta(days=1)
    if day_kind(yesterday) != DayKind.WORKING:
        return
    rows = np.flatnonzero(agents.night_shift)
    morning = clock.local_hour < NIGHT_SHIFT[1]
    _assign(
        place=place,
        rows=rows,
        mask=np.broadcast_to(morning, (rows.size, clock.slots)),
        value=Column.WORK,
    )


def _study(
    *, place: NDArray[np.uint8], agents: Agents, clock: DayClock, params: WorldParams
) -> None:
    rows = np.flatnonzero(agents.pupil)
    hours = in_hours(clock.local_hour, params.school_hours)
    _assign(
        place=place,
        rows=rows,
        mask=np.broadcast_to(hours, (rows.size, clock.slots)),
        value=Column.WORK,
    )


def _outings(
    *,
    place: NDArray[np.uint8],
    home: NDArray[np.uint8],
    agents: Agents,
    clock: DayClock,
    params: WorldParams,
    rng: np.random.Generator,
) -> NDArray[np.intp]:
    """Evening outings every day; daytime ones on free days and for those without work.

    Returns:
        The persons who make a trip (their TRIP place needs a destination).
    """
    persons = agents.persons
    trip_share = params.trip_probability[1 if clock.is_free else 0]
    outings: list[tuple[NDArray[np.intp], Window]] = []
    evening = Window(19, 23) if clock.is_free else Window(18, 22)
    outings.append((_who(persons, params.evening_outing_probability, rng), evening))
    if clock.is_free:
        outings.append((_who(persons, params.weekend_outing_probability, rng), Window(10, 18)))
    else:
        free = ~agents.worker & (~agents.pupil | (not clock.is_school_day))
        chosen = _who(persons, params.daytime_outing_probability, rng)
        outings.append((chosen[free[chosen]], Window(9, 17)))
    trippers: list[NDArray[np.intp]] = []
    for rows, window in outings:
        destination = _destination(count=rows.size, trip_share=trip_share, rng=rng)
        trippers.append(rows[destination == Column.TRIP])
        _go_out(
            place=place,
            home=home,
            rows=rows,
            destination=destination,
            window=window,
            clock=clock,
            params=params,
            rng=rng,
        )
    tripping: NDArray[np.intp] = np.unique(np.concatenate(trippers))
    return tripping


def _who(count: int, probability: float, rng: np.random.Generator) -> NDArray[np.intp]:
    return np.flatnonzero(rng.random(count) < probability)


def _destination(*, count: int, trip_share: float, rng: np.random.Generator) -> NDArray[np.uint8]:
    weights = np.array(OTHER_WEIGHTS) / sum(OTHER_WEIGHTS)
    regular = Column.OTHER_1 + rng.choice(len(OTHER_WEIGHTS), size=count, p=weights)
    trip = rng.random(count) < trip_share
    chosen: NDArray[np.uint8] = np.where(trip, Column.TRIP, regular).astype(np.uint8)
    return chosen


def _go_out(
    *,
    place: NDArray[np.uint8],
    home: NDArray[np.uint8],
    rows: NDArray[np.intp],
    destination: NDArray[np.uint8],
    window: Window,
    clock: DayClock,
    params: WorldParams,
    rng: np.random.Generator,
) -> None:
    """Replace hours at home by the destination, from a start in the window (not at work)."""
    shortest, longest = params.outing_hours
    start = rng.integers(window.first, window.last, size=rows.size)
    end = start + rng.integers(shortest, longest + 1, size=rows.size)
    hour = clock.local_hour[None, :]
    current = place[rows]
    out = (hour >= start[:, None]) & (hour < end[:, None]) & (current == home[rows, None])
    place[rows] = np.where(out, destination[:, None], current)


def _apply_spells(*, place: NDArray[np.uint8], spells: Spells, clock: DayClock, value: int) -> None:
    covered = spells.hours_of(clock.day.toordinal(), clock.local_hour)
    _assign(place=place, rows=spells.member, mask=covered, value=value)


def _assign(
    *, place: NDArray[np.uint8], rows: NDArray[np.intp], mask: NDArray[np.bool_], value: int
) -> None:
    if rows.size:
        place[rows] = np.where(mask, np.uint8(value), place[rows])


def visitor_places(*, stays: RoamerStays, clock: DayClock) -> NDArray[np.uint8]:
    """(visitors, slots) where each visitor is: accommodation at night, sights by day.

    Day visitors (no night) are only at sights; a visitor is `AWAY` before arriving and
    after leaving.
    """
    slot_start = clock.slot_start[None, :]
    present = (stays.arrival_us[:, None] < slot_start + MICROSECONDS_PER_HOUR) & (
        stays.departure_us[:, None] > slot_start
    )
    night = in_hours(clock.local_hour, VISITOR_NIGHT)[None, :] & (stays.nights[:, None] > 0)
    # Sights change every three hours, each visitor in its own order.
    turn = (clock.local_hour[None, :] // 3 + np.arange(stays.size)[:, None]) % 3
    place = np.where(night, Column.HOME, Column.OTHER_1 + turn).astype(np.uint8)
    place[~present] = AWAY
    return place
