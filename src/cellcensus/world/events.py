"""Network events of one day: Poisson counts per device and hour, at the serving cell."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cellcensus.world.activity import MICROSECONDS_PER_HOUR, DayClock
from cellcensus.world.categorical import cumulative_rows, draw_categories
from cellcensus.world.params import WorldParams


@dataclass(frozen=True)
class DayEvents:
    """One day's events, sorted by timestamp, as indices into the world's tables.

    Attributes:
        device: Index of the device.
        timestamp: Microseconds since the epoch (UTC).
        cell: Index of the serving cell.
        event_type: Index into `params.EVENT_TYPES`.
    """

    device: NDArray[np.int32]
    timestamp: NDArray[np.int64]
    cell: NDArray[np.int32]
    event_type: NDArray[np.uint8]

    @property
    def size(self) -> int:
        """Number of events."""
        return int(self.timestamp.size)


def hourly_rates(*, clock: DayClock, params: WorldParams) -> NDArray[np.float64]:
    """Share of a device's daily events expected in each hour slot of the day.

    The shares sum to 1 on a 24-hour day (a bit less on the 23-hour day, a bit more on the
    25-hour one: the lost or repeated hour is lived or not) times the weekend multiplier.
    """
    profile = np.asarray(params.hourly_activity, dtype=np.float64)
    shares: NDArray[np.float64] = profile[clock.local_hour] / profile.sum()
    return shares * (params.weekend_activity if clock.is_weekend else 1.0)


def day_events(
    *,
    clock: DayClock,
    daily_events: NDArray[np.float64],
    places: NDArray[np.uint8],
    place_cells: NDArray[np.int32],
    params: WorldParams,
    rng: np.random.Generator,
) -> DayEvents:
    """Draw the events of every device for one day.

    Each device emits a Poisson number of events in each hour slot, with mean its daily rate
    times the hour's share; each event gets a uniform instant in its hour, the cell serving
    the place where the device's owner is during that hour, and a type from the mix.

    Args:
        clock: The day's hour slots.
        daily_events: Mean events per day of each device.
        places: (devices, slots) `Place` of each device's owner in each slot.
        place_cells: (devices, 3) serving cell of each device at home, work and other place.
        params: The world's parameters.
        rng: The day's random generator.

    Returns:
        The events, sorted by timestamp.
    """
    devices, slots = places.shape
    counts = rng.poisson(daily_events[:, None] * hourly_rates(clock=clock, params=params)[None, :])
    flat = np.repeat(np.arange(devices * slots, dtype=np.int64), counts.ravel())
    device = (flat // slots).astype(np.int32)
    slot = (flat % slots).astype(np.intp)
    timestamp = clock.slot_start[slot] + rng.integers(0, MICROSECONDS_PER_HOUR, size=flat.size)
    cell = place_cells[device, places[device, slot]]
    event_type = draw_categories(
        cumulative=cumulative_rows(np.asarray([params.event_type_shares], dtype=np.float64)),
        rows=np.zeros(flat.size, dtype=np.intp),
        rng=rng,
    ).astype(np.uint8)
    order = chronological_order(timestamp)
    return DayEvents(
        device=device[order],
        timestamp=timestamp[order],
        cell=cell[order],
        event_type=event_type[order],
    )


def chronological_order(timestamp: NDArray[np.int64]) -> NDArray[np.intp]:
    """The order that sorts events by time, ties kept in their original order.

    Equivalent to a stable argsort, but about four times faster: a quicksort, then the rare
    runs of equal timestamps (whose order a quicksort leaves to chance) are put back in their
    original order.

    Args:
        timestamp: Event times.

    Returns:
        Indices that sort `timestamp`.
    """
    order = np.argsort(timestamp)
    ordered = timestamp[order]
    tied = np.flatnonzero(ordered[1:] == ordered[:-1])
    if tied.size == 0:
        return order
    in_tie = np.zeros(order.size, dtype=bool)
    in_tie[tied] = True
    in_tie[tied + 1] = True
    positions = np.flatnonzero(in_tie)
    fixed = np.lexsort((order[positions], ordered[positions]))
    order[positions] = order[positions][fixed]
    return order
