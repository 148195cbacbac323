"""Machine-to-machine SIMs: meters, alarms, payment terminals and vehicle trackers.

Machines report on a fixed period with a few seconds of jitter (the regular timing that tells
them apart from people). Meters and alarms stand in homes, payment terminals in businesses and
report during opening hours; vehicle trackers drive the road graph on working days and rest at
their depot otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cellcensus.world.clock import MICROSECONDS_PER_HOUR, MICROSECONDS_PER_SECOND, DayClock
from cellcensus.world.evidence import M2M_JITTER_SECONDS, MACHINE_PROFILES
from cellcensus.world.holidays import DayKind
from cellcensus.world.roads import Roads

OPENING_HOURS = (8, 20)
"""Local hours payment terminals report in (not on Sundays and holidays)."""
DUTY_HOURS = 10
"""Hours a vehicle drives on a working day or Saturday, from a start between 6 and 8."""
RESTING_EVERY = 16
"""A resting vehicle reports only one period in this many (every 4 hours at 15 minutes)."""
LONGEST_ROUND = 6
"""Most road edges a vehicle drives out before turning back."""


@dataclass(frozen=True)
class Machines:
    """The holder's M2M SIMs.

    Attributes:
        profile: Index into `MACHINE_PROFILES`.
        location: Location of a static machine; depot node (an area) of a vehicle.
        phase_us: Offset of the reporting schedule within its period.
        duty_start: Local hour a vehicle starts driving.
    """

    profile: NDArray[np.int8]
    location: NDArray[np.int32]
    phase_us: NDArray[np.int64]
    duty_start: NDArray[np.int8]

    @property
    def size(self) -> int:
        """Number of machines."""
        return int(self.profile.size)

    @property
    def period_us(self) -> NDArray[np.int64]:
        """Reporting period of each machine."""
        minutes = np.array([p.period_minutes for p in MACHINE_PROFILES], dtype=np.int64)
        period: NDArray[np.int64] = minutes[self.profile] * 60 * MICROSECONDS_PER_SECOND
        return period

    @property
    def moving(self) -> NDArray[np.bool_]:
        """Whether each machine is a vehicle."""
        moving = np.array([p.moving for p in MACHINE_PROFILES])
        found: NDArray[np.bool_] = moving[self.profile]
        return found


def build_machines(
    *,
    count: int,
    homes: NDArray[np.int32],
    businesses: NDArray[np.int32],
    depots: NDArray[np.intp],
    rng: np.random.Generator,
) -> Machines:
    """Draw `count` machines: their kind, where they stand and their schedules.

    Args:
        count: Number of M2M SIMs.
        homes: Locations of homes a meter or alarm can stand in.
        businesses: Locations of workplaces a terminal can stand in.
        depots: Areas a vehicle can be based in (one entry per workplace).
        rng: The random generator.

    Returns:
        The machines.
    """
    shares = np.array([p.share for p in MACHINE_PROFILES])
    profile = rng.choice(shares.size, size=count, p=shares / shares.sum()).astype(np.int8)
    where = np.array([p.where for p in MACHINE_PROFILES])[profile]
    moving = np.array([p.moving for p in MACHINE_PROFILES])[profile]
    location = np.where(
        where == "home",
        homes[rng.integers(0, homes.size, size=count)],
        businesses[rng.integers(0, businesses.size, size=count)],
    )
    location = np.where(moving, depots[rng.integers(0, depots.size, size=count)], location)
    minutes = np.array([p.period_minutes for p in MACHINE_PROFILES], dtype=np.int64)[profile]
    phase = (rng.random(count) * minutes * 60 * MICROSECONDS_PER_SECOND).astype(np.int64)
    return Machines(
        profile=profile,
        location=location.astype(np.int32),
        phase_us=phase,
        duty_start=rng.integers(6, 9, size=count).astype(np.int8),
    )


@dataclass(frozen=True)
class MachineEvents:
    """One day's machine reports (unsorted).

    Attributes:
        machine: Index of the machine.
        timestamp: Microseconds since the epoch (UTC).
        location: Location the report is sent from.
        sms: Whether the report is an SMS (else a data event).
    """

    machine: NDArray[np.int32]
    timestamp: NDArray[np.int64]
    location: NDArray[np.int32]
    sms: NDArray[np.bool_]


def machine_events(
    *,
    machines: Machines,
    clock: DayClock,
    roads: Roads,
    road_offset: int,
    rng: np.random.Generator,
) -> MachineEvents:
    """Every report of every machine during one day.

    Args:
        machines: The machines.
        clock: The day.
        roads: The road graph.
        road_offset: Location index of road point 0.
        rng: The day's random generator.

    Returns:
        The reports.
    """
    period = machines.period_us
    first = clock.start + (machines.phase_us - clock.start) % period
    ticks = np.maximum((clock.end - first + period - 1) // period, 0)
    machine = np.repeat(np.arange(machines.size, dtype=np.int32), ticks)
    tick = np.arange(machine.size) - np.repeat(np.cumsum(ticks) - ticks, ticks)
    scheduled = first[machine] + tick * period[machine]
    jitter = rng.normal(scale=M2M_JITTER_SECONDS * MICROSECONDS_PER_SECOND, size=machine.size)
    timestamp = scheduled + jitter.astype(np.int64)
    # A report jittered across midnight is reflected back into its day.
    timestamp = np.where(timestamp < clock.start, 2 * clock.start - timestamp, timestamp)
    timestamp = np.where(timestamp >= clock.end, 2 * (clock.end - 1) - timestamp, timestamp)
    slot = (timestamp - clock.start) // MICROSECONDS_PER_HOUR
    hour = clock.local_hour[np.minimum(slot, clock.slots - 1)]
    location = machines.location[machine].copy()
    keep = _open(machines=machines, machine=machine, hour=hour, clock=clock)
    moving = machines.moving[machine]
    on_duty = _on_duty(machines=machines, machine=machine, hour=hour, clock=clock) & moving
    keep &= ~moving | on_duty | (tick % RESTING_EVERY == 0)
    location[moving] = road_offset + machines.location[machine[moving]]
    driving = np.flatnonzero(on_duty)
    location[driving] = road_offset + _route_points(
        machines=machines,
        machine=machine[driving],
        hour=hour[driving],
        timestamp=timestamp[driving],
        clock=clock,
        roads=roads,
        rng=rng,
    )
    sms_share = np.array([p.sms_share for p in MACHINE_PROFILES])[machines.profile[machine]]
    sms = rng.random(machine.size) < sms_share
    return MachineEvents(
        machine=machine[keep], timestamp=timestamp[keep], location=location[keep], sms=sms[keep]
    )


def _open(
    *, machines: Machines, machine: NDArray[np.int32], hour: NDArray[np.int64], clock: DayClock
) -> NDArray[np.bool_]:
    """Payment terminals report only during opening hours, and not on Sundays or holidays."""
    terminal = np.array([p.kind == "payment terminal" for p in MACHINE_PROFILES])
    is_terminal = terminal[machines.profile[machine]]
    closed_day = clock.kind == DayKind.SUNDAY_OR_HOLIDAY
    within = (hour >= OPENING_HOURS[0]) & (hour < OPENING_HOURS[1]) & (not closed_day)
    opened: NDArray[np.bool_] = ~is_terminal | within
    return opened


def _on_duty(
    *, machines: Machines, machine: NDArray[np.int32], hour: NDArray[np.int64], clock: DayClock
) -> NDArray[np.bool_]:
    """Vehicles drive from their start hour for `DUTY_HOURS`, except Sundays and holidays."""
    start = machines.duty_start[machine].astype(np.int64)
    duty: NDArray[np.bool_] = (hour >= start) & (hour < start + DUTY_HOURS)
    return duty & (clock.kind != DayKind.SUNDAY_OR_HOLIDAY)


def _route_points(
    *,
    machines: Machines,
    machine: NDArray[np.int32],
    hour: NDArray[np.int64],
    timestamp: NDArray[np.int64],
    clock: DayClock,
    roads: Roads,
    rng: np.random.Generator,
) -> NDArray[np.intp]:
    """Road point of each report of a driving vehicle: out along a random walk and back."""
    vehicles, row = np.unique(machine, return_inverse=True)
    nodes = _random_walks(depot=machines.location[vehicles].astype(np.intp), roads=roads, rng=rng)
    # The round goes out along the walk and back the same way.
    there_and_back = np.concatenate([nodes, nodes[:, -2::-1]], axis=1)
    first, second = there_and_back[:, :-1], there_and_back[:, 1:]
    moving = first != second
    length = np.zeros(first.shape, dtype=np.float64)
    edge = roads.edge_of(first[moving], second[moving])
    length[moving] = roads.edge_length_m[edge]
    total = length.sum(axis=1)
    reached = np.cumsum(length, axis=1)
    duty_start = (
        clock.start + (machines.duty_start[vehicles].astype(np.int64)) * MICROSECONDS_PER_HOUR
    )
    elapsed = (timestamp - duty_start[row]) / (DUTY_HOURS * MICROSECONDS_PER_HOUR)
    target = np.clip(elapsed, 0, 1) * total[row]
    step = np.minimum((reached[row] < target[:, None]).sum(axis=1), first.shape[1] - 1)
    before = np.where(step > 0, reached[row, step - 1], 0.0)
    span = np.maximum(length[row, step], 1.0)
    fraction = np.clip((target - before) / span, 0, 1)
    return roads.point_along(first=first[row, step], second=second[row, step], fraction=fraction)


def _random_walks(
    *, depot: NDArray[np.intp], roads: Roads, rng: np.random.Generator
) -> NDArray[np.intp]:
    """(vehicles, LONGEST_ROUND + 1) nodes of a walk from each depot; it may stop early."""
    hops = rng.integers(2, LONGEST_ROUND + 1, size=depot.size)
    nodes = np.empty((depot.size, LONGEST_ROUND + 1), dtype=np.intp)
    nodes[:, 0] = depot
    for step in range(1, LONGEST_ROUND + 1):
        here = nodes[:, step - 1]
        degree = roads.neighbour_start[here + 1] - roads.neighbour_start[here]
        pick = roads.neighbour_start[here] + np.floor(rng.random(depot.size) * degree).astype(
            np.intp
        )
        moving = (step <= hops) & (degree > 0)
        nodes[:, step] = np.where(
            moving, roads.neighbours[np.minimum(pick, roads.neighbours.size - 1)], here
        )
    return nodes
