"""The world's objects as Arrow tables in the SCHEMA.md contract."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from cellcensus.world.activity import DayClock
from cellcensus.world.country import SyntheticCountry
from cellcensus.world.employment import NOT_WORKING
from cellcensus.world.events import DayEvents
from cellcensus.world.identifiers import cell_ids, person_ids, site_ids
from cellcensus.world.network import TECHNOLOGY
from cellcensus.world.params import EVENT_TYPES
from cellcensus.world.population import SEXES
from cellcensus.world.subscription import MCC, MNC
from cellcensus.world.writer import (
    CELLS_SCHEMA,
    DEVICES_SCHEMA,
    EVENTS_SCHEMA,
    PERSONS_SCHEMA,
    PRESENCE_SCHEMA,
)


def _person_ids(persons: NDArray[np.intp]) -> pa.StringArray:
    return pa.array(person_ids(persons), type=pa.string())


def cells_table(country: SyntheticCountry) -> pa.Table:
    """One omnidirectional 4G cell per site, valid for the whole period."""
    network = country.network
    count = network.size
    no_value = pa.nulls(count, type=pa.float64())
    no_date = pa.nulls(count, type=pa.date32())
    return pa.table(
        [
            pa.array(cell_ids(count), type=pa.string()),
            pa.array(site_ids(count), type=pa.string()),
            pa.array(network.site_lonlat[:, 1]),
            pa.array(network.site_lonlat[:, 0]),
            no_value,
            no_value,
            no_value,
            pa.array([TECHNOLOGY] * count, type=pa.string()),
            no_date,
            no_date,
        ],
        schema=CELLS_SCHEMA,
    )


def persons_table(country: SyntheticCountry) -> pa.Table:
    """Ground truth of every person: home and work area, age and sex."""
    codes = pa.array(country.territory.area_codes, type=pa.string())
    residents = country.residents
    work_area = country.employment.work_area
    works = work_area != NOT_WORKING
    work_codes = codes.take(pa.array(np.where(works, work_area, 0), mask=~works))
    return pa.table(
        [
            _person_ids(np.arange(residents.size)),
            codes.take(pa.array(residents.home_area)),
            work_codes,
            pa.array(residents.age.astype(np.int32)),
            pa.array(SEXES, type=pa.string()).take(pa.array(residents.sex)),
        ],
        schema=PERSONS_SCHEMA,
    )


def devices_table(country: SyntheticCountry) -> pa.Table:
    """Ground truth of every device: its owner; all are primary devices of residents."""
    subscribers = country.subscribers
    count = subscribers.size
    return pa.table(
        [
            pa.array(subscribers.user_id, type=pa.string()),
            _person_ids(subscribers.person),
            pa.array(["primary"] * count, type=pa.string()),
            _constant(MCC, count),
            _constant(MNC, count),
        ],
        schema=DEVICES_SCHEMA,
    )


def events_table(
    *, events: DayEvents, user_ids: pa.StringArray, tacs: pa.StringArray, cell_ids: pa.StringArray
) -> pa.Table:
    """One day's events in the contract's columns, string columns dictionary-encoded.

    Dictionary arrays spare the writer hashing millions of strings; `write_parquet` stores
    them as plain Parquet strings, so a reader sees exactly `EVENTS_SCHEMA`.

    Args:
        events: The day's events, as indices.
        user_ids: Identifier of each device.
        tacs: Handset TAC of each device.
        cell_ids: Identifier of each cell.

    Returns:
        The events table.
    """
    device = pa.array(events.device)
    columns = [
        pa.DictionaryArray.from_arrays(device, user_ids),
        pa.array(events.timestamp, type=pa.timestamp("us", tz="UTC")),
        pa.DictionaryArray.from_arrays(pa.array(events.cell), cell_ids),
        pa.DictionaryArray.from_arrays(
            pa.array(events.event_type.astype(np.int8)), pa.array(EVENT_TYPES, type=pa.string())
        ),
        _constant(MCC, events.size),
        _constant(MNC, events.size),
        tacs.take(device),
    ]
    return pa.table(columns, names=EVENTS_SCHEMA.names)


def presence_table(
    *, country: SyntheticCountry, clock: DayClock, places: NDArray[np.uint8]
) -> pa.Table:
    """Hourly ground truth of where the sampled persons were during one day.

    Args:
        country: The world.
        clock: The day's hour slots.
        places: (sampled persons, slots) `Place` of each sampled person.

    Returns:
        One row per sampled person and hour slot, ordered by person then hour.
    """
    sample = country.presence_sample
    slots = clock.slots
    row = np.repeat(np.arange(sample.size), slots)
    area = country.place_areas[sample[row], places.ravel()]
    codes = pa.array(country.territory.area_codes, type=pa.string())
    return pa.table(
        [
            _person_ids(sample).take(pa.array(row)),
            pa.array(np.tile(clock.slot_start, sample.size), type=pa.timestamp("us", tz="UTC")),
            codes.take(pa.array(area)),
        ],
        schema=PRESENCE_SCHEMA,
    )


def _constant(value: int, count: int) -> pa.Int32Array:
    return pa.array(np.full(count, value, dtype=np.int32))
