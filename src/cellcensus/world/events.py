"""From where devices are to the network's view: serving cells, time order, no exact copies."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cellcensus.world.evidence import TECHNOLOGY_REQUESTS
from cellcensus.world.network import SECTORS, RadioNetwork
from cellcensus.world.places import Locations
from cellcensus.world.radio import CANDIDATES, CUMULATIVE_SCALE

INDEX_BITS = 26
"""Bits of the event index in a packed sort key (up to 67 million events a day)."""
OFFSET_BITS = 63 - INDEX_BITS
"""Bits of the time offset in a packed sort key (1.4e11 us: more than a 25-hour day)."""


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


def serving_cells(
    *,
    location: NDArray[np.int32],
    event_type: NDArray[np.uint8],
    locations: Locations,
    network: RadioNetwork,
    sites_on: NDArray[np.bool_],
    rng: np.random.Generator,
) -> NDArray[np.int32]:
    """The cell serving each event: a candidate sector of its location, then a technology.

    The sector is drawn with the location's shares (ping-pong between candidates); if its
    site is off that day, the best candidate on a site that is on serves instead (one always
    is). The technology is the one the event type asks for, or the best older one the site
    carries.

    Args:
        location: Location of each event.
        event_type: Type of each event.
        locations: The locations' candidates.
        network: The sites and cells.
        sites_on: Which sites are on during the day.
        rng: The day's random generator.

    Returns:
        The cell of each event.
    """
    draw = rng.integers(0, CUMULATIVE_SCALE, size=location.size, dtype=np.uint16)
    row = location.astype(np.int64) * CANDIDATES
    cumulative = locations.cumulative.ravel()
    pick = row.copy()
    for column in range(CANDIDATES - 1):
        pick += draw >= cumulative[row + column]
    del draw, row
    sector = locations.sector.ravel()[pick]
    del pick
    off = np.flatnonzero(~sites_on[sector // SECTORS])
    if off.size:
        candidates = locations.sector[location[off]]
        usable = sites_on[candidates // SECTORS]
        sector[off] = candidates[np.arange(off.size), np.argmax(usable, axis=1)]
    thresholds = np.cumsum(np.asarray(TECHNOLOGY_REQUESTS), axis=1)
    chance = rng.random(location.size, dtype=np.float32)
    technology = (chance >= thresholds[:, 0].astype(np.float32)[event_type]).astype(np.int64)
    technology += chance >= thresholds[:, 1].astype(np.float32)[event_type]
    cell: NDArray[np.int32] = network.sector_cell.ravel()[sector.astype(np.int64) * 3 + technology]
    return cell


def chronological_order(timestamp: NDArray[np.int64]) -> NDArray[np.intp]:
    """The order that sorts events by time, ties kept in their original order.

    Equivalent to a stable argsort but several times faster: time offset and index are
    packed into one integer and sorted as values (a vectorised sort), not as indices.

    Args:
        timestamp: Event times.

    Returns:
        Indices that sort `timestamp`.
    """
    key = _packed_keys(timestamp)
    if key is None:
        return np.argsort(timestamp, kind="stable")
    key.sort()
    key &= 2**INDEX_BITS - 1
    return key.view(np.intp)


def _packed_keys(timestamp: NDArray[np.int64]) -> NDArray[np.int64] | None:
    """``offset << INDEX_BITS | index`` of each event, or None if they do not fit."""
    if timestamp.size == 0 or timestamp.size >= 2**INDEX_BITS:
        return None
    offset: NDArray[np.int64] = timestamp - timestamp.min()
    if int(offset.max()) >= 2**OFFSET_BITS:
        return None
    offset <<= INDEX_BITS
    offset |= np.arange(timestamp.size, dtype=np.int64)
    return offset


CELL_BITS = 20
TYPE_BITS = 3


def pack_events(
    *, device: NDArray[np.int32], cell: NDArray[np.int32], event_type: NDArray[np.uint8]
) -> NDArray[np.int64]:
    """Device, cell and type of each event in one integer (what sorting moves around)."""
    payload = device.astype(np.int64) << (CELL_BITS + TYPE_BITS)
    payload |= cell.astype(np.int64) << TYPE_BITS
    payload |= event_type
    return payload


def in_time_order(
    *, payloads: list[NDArray[np.int64]], times: list[NDArray[np.int64]]
) -> DayEvents:
    """The events of all parts sorted by time (ties in input order), exact copies dropped.

    An export holds no two identical rows unless it is faulty; ingestion counts copies as
    defects, so the clean world must not make any by chance. Device, cell and type travel
    packed in one integer (`pack_events`), so sorting moves one array instead of four
    (permuting is the costly part: every element is a cache miss). The parts are emptied
    as they are merged, to keep the peak memory low.

    Args:
        payloads: Packed device, cell and type of the events, in parts.
        times: Time of each event, in the same parts.

    Returns:
        The sorted events.
    """
    timestamp = np.concatenate(times)
    times.clear()
    key = _packed_keys(timestamp)
    if key is None:
        order = np.argsort(timestamp, kind="stable")
        timestamp = timestamp[order]
        payload = np.concatenate(payloads)[order]
        payloads.clear()
        del order
    else:
        start = int(timestamp.min())
        del timestamp
        key.sort()
        payload = np.concatenate(payloads)
        payloads.clear()
        payload = payload[key & (2**INDEX_BITS - 1)]
        key >>= INDEX_BITS
        key += start
        timestamp = key
    copy = np.flatnonzero((timestamp[1:] == timestamp[:-1]) & (payload[1:] == payload[:-1]))
    if copy.size:
        keep = np.ones(timestamp.size, dtype=bool)
        keep[copy + 1] = False
        timestamp, payload = timestamp[keep], payload[keep]
    return DayEvents(
        device=(payload >> (CELL_BITS + TYPE_BITS)).astype(np.int32),
        timestamp=timestamp,
        cell=((payload >> TYPE_BITS) & (2**CELL_BITS - 1)).astype(np.int32),
        event_type=(payload & (2**TYPE_BITS - 1)).astype(np.uint8),
    )
