"""The events of phones carried by people (residents and visitors) during one day.

A device opens sessions at a rate of its own (lognormal: heavy-tailed), at hours that follow
the day's rhythm; a session is a call, an SMS exchange or a data session of a geometric number
of events a few minutes apart (bursts: candia-2008). Smartphones and tablets add background
data at any hour; with signalling on, every device also updates its location periodically.
Events fall where the carrier is at that hour; none while abroad or switched off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cellcensus.world.categorical import AliasTable
from cellcensus.world.clock import MICROSECONDS_PER_HOUR, MICROSECONDS_PER_SECOND, DayClock
from cellcensus.world.params import EVENT_TYPES, WorldParams
from cellcensus.world.places import AWAY
from cellcensus.world.spells import Spells

CALL_OUT = EVENT_TYPES.index("call_out")
SMS_OUT = EVENT_TYPES.index("sms_out")
DATA = EVENT_TYPES.index("data")
LOCATION_UPDATE = EVENT_TYPES.index("location_update")
DATA_SESSION = 2
"""Index of the data session in `params.SESSION_KINDS`."""
MICROSECONDS_PER_MINUTE = 60 * MICROSECONDS_PER_SECOND


@dataclass(frozen=True)
class CarriedDevices:
    """The devices carried by agents, with what their day's events need.

    Attributes:
        device: Index of each device in `Devices`.
        agent: Its carrier's agent row.
        rate: Mean interactive events per day.
        session_size: Mean events per session of the device (data sessions only if
            data-only).
        data_only: Whether it only makes data sessions.
        background: Whether it makes background data.
        signalling_phase_us: Offset of its periodic location updates.
    """

    device: NDArray[np.intp]
    agent: NDArray[np.int32]
    rate: NDArray[np.float64]
    session_size: NDArray[np.float64]
    data_only: NDArray[np.bool_]
    background: NDArray[np.bool_]
    signalling_phase_us: NDArray[np.int64]

    @property
    def size(self) -> int:
        """Number of devices."""
        return int(self.device.size)

    def part(self, start: int, stop: int) -> CarriedDevices:
        """The devices ``start`` to ``stop`` (exclusive)."""
        return CarriedDevices(
            device=self.device[start:stop],
            agent=self.agent[start:stop],
            rate=self.rate[start:stop],
            session_size=self.session_size[start:stop],
            data_only=self.data_only[start:stop],
            background=self.background[start:stop],
            signalling_phase_us=self.signalling_phase_us[start:stop],
        )


@dataclass(frozen=True)
class DeviceEvents:
    """Events before cells are chosen.

    Attributes:
        device: Index of the device in `Devices`.
        timestamp: Microseconds since the epoch (UTC).
        location: Location the device is at.
        event_type: Index into `EVENT_TYPES`.
    """

    device: NDArray[np.int32]
    timestamp: NDArray[np.int64]
    location: NDArray[np.int32]
    event_type: NDArray[np.uint8]

    @property
    def size(self) -> int:
        """Number of events."""
        return int(self.timestamp.size)


def mean_session_size(params: WorldParams) -> float:
    """Mean events per interactive session, over the mix of session kinds."""
    return float(np.dot(params.session_shares, params.session_events))


def carried_events(
    *,
    carried: CarriedDevices,
    clock: DayClock,
    place_of: NDArray[np.uint8],
    places: NDArray[np.int32],
    phone_off: Spells,
    params: WorldParams,
    rng: np.random.Generator,
) -> DeviceEvents:
    """All events of the carried devices during one day.

    Args:
        carried: The devices.
        clock: The day.
        place_of: (agents, slots) the day's schedule.
        places: (agents, PLACE_COLUMNS) the agents' locations.
        phone_off: Spells of devices switched off (members index `carried`).
        params: The world's parameters.
        rng: The day's random generator.

    Returns:
        The events, unsorted.
    """
    parts = [
        _sessions(carried=carried, clock=clock, params=params, rng=rng),
        _background(carried=carried, clock=clock, params=params, rng=rng),
    ]
    if params.location_update_minutes:
        parts.append(_signalling(carried=carried, clock=clock, params=params))
    local = np.concatenate([part[0] for part in parts])
    timestamp = np.concatenate([part[1] for part in parts])
    event_type = np.concatenate([part[2] for part in parts])
    del parts
    slot = np.minimum((timestamp - clock.start) // MICROSECONDS_PER_HOUR, clock.slots - 1)
    agent = carried.agent[local].astype(np.int64)
    column = place_of.ravel()[agent * clock.slots + slot]
    keep = (timestamp < clock.end) & (column != AWAY)
    keep &= ~_switched_off(local=local, slot=slot, phone_off=phone_off, clock=clock)
    kept = np.flatnonzero(keep)
    del keep, slot
    location = places.ravel()[agent[kept] * places.shape[1] + column[kept]]
    return DeviceEvents(
        device=carried.device.astype(np.int32)[local[kept]],
        timestamp=timestamp[kept],
        location=location,
        event_type=event_type[kept],
    )


Part = tuple[NDArray[Any], NDArray[np.int64], NDArray[np.uint8]]
"""(device within `CarriedDevices`, timestamp, event type) of some events."""


def segment_ids(counts: NDArray[np.int64]) -> NDArray[np.int32]:
    """For items laid out segment after segment (`counts` per segment), each item's segment.

    Equivalent to ``np.repeat(np.arange(counts.size), counts)`` but several times faster:
    a cumulative sum over marks at the segment boundaries.
    """
    total = int(counts.sum())
    ends = np.cumsum(counts)[:-1]
    marks = np.bincount(ends, minlength=total + 1)[:total]
    ids: NDArray[np.int32] = np.cumsum(marks, dtype=np.int32)
    return ids


def _sessions(
    *, carried: CarriedDevices, clock: DayClock, params: WorldParams, rng: np.random.Generator
) -> Part:
    free = clock.is_free
    profile = np.asarray(
        params.hourly_activity_weekend if free else params.hourly_activity, dtype=np.float64
    )
    slot_weight = profile[clock.local_hour]
    day_share = slot_weight.sum() / profile.sum()
    factor = params.weekend_activity if free else 1.0
    sessions = rng.poisson(carried.rate * (factor * day_share) / carried.session_size)
    owner = segment_ids(sessions)
    slot = AliasTable(slot_weight).draw(owner.size, rng)
    kind = AliasTable(np.asarray(params.session_shares)).draw(owner.size, rng)
    kind[carried.data_only[owner]] = DATA_SESSION
    size = rng.geometric(1.0 / np.asarray(params.session_events)[kind])
    start = clock.slot_start[slot] + rng.integers(0, MICROSECONDS_PER_HOUR, size=owner.size)
    session = segment_ids(size)
    event_kind = kind[session]
    first = np.cumsum(size) - size
    mean_gap = np.asarray(params.session_gap_minutes) * MICROSECONDS_PER_MINUTE
    gap = rng.standard_exponential(session.size)
    gap *= mean_gap[event_kind]
    gap += MICROSECONDS_PER_SECOND
    gap[first] = 0.0
    elapsed = np.cumsum(gap.astype(np.int64))
    elapsed -= elapsed[first][session]
    incoming = (rng.random(session.size) < 0.5) & (event_kind != DATA_SESSION)
    first_type = np.array([CALL_OUT, SMS_OUT, DATA], dtype=np.uint8)
    event_type = first_type[event_kind] + incoming.astype(np.uint8)
    return owner[session], start[session] + elapsed, event_type


def _background(
    *, carried: CarriedDevices, clock: DayClock, params: WorldParams, rng: np.random.Generator
) -> Part:
    hours = clock.slots / 24
    count = rng.poisson(params.background_data_per_day * hours * carried.background)
    owner = np.repeat(np.arange(carried.size), count)
    timestamp = rng.integers(clock.start, clock.end, size=owner.size)
    return owner, timestamp, np.full(owner.size, DATA, dtype=np.uint8)


def _signalling(*, carried: CarriedDevices, clock: DayClock, params: WorldParams) -> Part:
    """Periodic location updates (3gpp-24008's timer T3212), on each device's own phase."""
    period = params.location_update_minutes * MICROSECONDS_PER_MINUTE
    first = clock.start + (carried.signalling_phase_us - clock.start) % period
    ticks = np.maximum((clock.end - first + period - 1) // period, 0)
    owner = np.repeat(np.arange(carried.size), ticks)
    tick = np.arange(owner.size) - np.repeat(np.cumsum(ticks) - ticks, ticks)
    timestamp = first[owner] + tick * period
    return owner, timestamp, np.full(owner.size, LOCATION_UPDATE, dtype=np.uint8)


def _switched_off(
    *, local: NDArray[np.intp], slot: NDArray[np.int64], phone_off: Spells, clock: DayClock
) -> NDArray[np.bool_]:
    """Whether each event's device is switched off during its hour slot."""
    off = np.zeros(local.size, dtype=bool)
    if phone_off.size == 0:
        return off
    covered = phone_off.hours_of(clock.day.toordinal(), clock.local_hour)
    row = np.full(int(local.max(initial=0)) + 1, -1, dtype=np.int64)
    members = phone_off.member[phone_off.member < row.size]
    row[members] = np.flatnonzero(phone_off.member < row.size)
    spell = row[local]
    affected = np.flatnonzero(spell >= 0)
    off[affected] = covered[spell[affected], slot[affected]]
    return off
