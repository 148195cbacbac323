"""Spells of several days: phones switched off, stays away from home, trips abroad.

A spell starts on a day with a small probability for each member (a device or a person),
and lasts a geometric number of days. The starts of a day come from that day's own random
stream, so the spells covering a day are found by looking back over the days a spell could
have started on, whatever the period: a day never depends on where the period begins, nor on
which days were simulated before it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np
from numpy.typing import NDArray

from cellcensus.world.sampling import rare_events
from cellcensus.world.streams import Stream, random_stream

NO_DESTINATION = -1


@dataclass(frozen=True)
class Spells:
    """Spells, one per element.

    Attributes:
        member: The device or person.
        first_day: Ordinal of the day the spell starts.
        last_day: Ordinal of the day it ends (at least `first_day`).
        leave_hour: Local hour it starts on its first day.
        return_hour: Local hour it ends on its last day (exclusive).
        destination: Where the spell is spent (a location), or `NO_DESTINATION`.
    """

    member: NDArray[np.intp]
    first_day: NDArray[np.int32]
    last_day: NDArray[np.int32]
    leave_hour: NDArray[np.int8]
    return_hour: NDArray[np.int8]
    destination: NDArray[np.int32]

    @property
    def size(self) -> int:
        """Number of spells."""
        return int(self.member.size)

    def select(self, keep: NDArray[np.bool_] | NDArray[np.intp]) -> Spells:
        """The spells at `keep` (a mask or indices)."""
        return Spells(
            member=self.member[keep],
            first_day=self.first_day[keep],
            last_day=self.last_day[keep],
            leave_hour=self.leave_hour[keep],
            return_hour=self.return_hour[keep],
            destination=self.destination[keep],
        )

    @staticmethod
    def concatenate(parts: list[Spells]) -> Spells:
        """All the spells of `parts`, in order."""
        return Spells(
            member=np.concatenate([p.member for p in parts]),
            first_day=np.concatenate([p.first_day for p in parts]),
            last_day=np.concatenate([p.last_day for p in parts]),
            leave_hour=np.concatenate([p.leave_hour for p in parts]),
            return_hour=np.concatenate([p.return_hour for p in parts]),
            destination=np.concatenate([p.destination for p in parts]),
        )

    def within(self, start: int, stop: int) -> Spells:
        """The spells of members ``start <= member < stop``, renumbered from `start`."""
        inside = (self.member >= start) & (self.member < stop)
        chosen = self.select(inside)
        return Spells(
            member=chosen.member - start,
            first_day=chosen.first_day,
            last_day=chosen.last_day,
            leave_hour=chosen.leave_hour,
            return_hour=chosen.return_hour,
            destination=chosen.destination,
        )

    def hours_of(self, day: int, slots_hour: NDArray[np.int64]) -> NDArray[np.bool_]:
        """(spells, slots) whether each spell covers each hour slot of `day`.

        Args:
            day: Ordinal of the day.
            slots_hour: Local hour of each of the day's slots.

        Returns:
            The coverage matrix.
        """
        hour = slots_hour[None, :]
        after_leave = (self.first_day[:, None] < day) | (hour >= self.leave_hour[:, None])
        before_return = (self.last_day[:, None] > day) | (hour < self.return_hour[:, None])
        covered: NDArray[np.bool_] = after_leave & before_return
        return covered


Destinations = Callable[[NDArray[np.intp], np.random.Generator], NDArray[np.int32]]
"""Picks the destination location of spells starting on one day, for their members."""


@dataclass(frozen=True)
class SpellProcess:
    """How spells of one kind start and last.

    Attributes:
        stream: The random stream of the starts (indexed by the start day's ordinal).
        seed: The world's seed.
        members: Number of devices or persons that can start one.
        probability: Probability of a start on a given day (ordinal) for each member.
        mean_days: Mean length in days (days between the first and the last day, at least 1).
        longest: Longest length in days.
        leave_hours: Earliest and latest local hour a spell starts.
        return_hours: Earliest and latest local hour a spell ends.
        destinations: Picks destinations, or None.
    """

    stream: Stream
    seed: int
    members: int
    probability: Callable[[int], float]
    mean_days: float
    longest: int
    leave_hours: tuple[int, int]
    return_hours: tuple[int, int]
    destinations: Destinations | None = None

    def started_on(self, day: int) -> Spells:
        """The spells that start on day `day` (ordinal), in member order."""
        rng = random_stream(seed=self.seed, stream=self.stream, index=day)
        member = rare_events(count=self.members, probability=self.probability(day), rng=rng)
        length = np.minimum(rng.geometric(1.0 / self.mean_days, size=member.size), self.longest)
        leave = rng.integers(self.leave_hours[0], self.leave_hours[1] + 1, size=member.size)
        back = rng.integers(self.return_hours[0], self.return_hours[1] + 1, size=member.size)
        destination = (
            self.destinations(member, rng)
            if self.destinations is not None
            else np.full(member.size, NO_DESTINATION, dtype=np.int32)
        )
        return Spells(
            member=member,
            first_day=np.full(member.size, day, dtype=np.int32),
            last_day=(day + length).astype(np.int32),
            leave_hour=leave.astype(np.int8),
            return_hour=back.astype(np.int8),
            destination=destination.astype(np.int32),
        )


def spells_on(process: SpellProcess, day: date) -> Spells:
    """The spells of a process covering any part of `day`, one per member.

    Looks back over every day a spell covering `day` could have started on; where spells of
    one member overlap, the latest start wins.

    Args:
        process: How the spells start and last.
        day: The local day.

    Returns:
        The spells, in member order.
    """
    ordinal = day.toordinal()
    parts = []
    for start in range(ordinal - process.longest, ordinal + 1):
        started = process.started_on(start)
        parts.append(started.select(started.last_day >= ordinal))
    spells = Spells.concatenate(parts)
    order = np.lexsort((-spells.first_day, spells.member))
    spells = spells.select(order)
    latest = np.ones(spells.size, dtype=bool)
    latest[1:] = spells.member[1:] != spells.member[:-1]
    return spells.select(latest)
