"""The world's objects as Arrow tables in the docs/schema.md contract (and its ground truth)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from cellcensus.world.clock import DayClock
from cellcensus.world.country import SyntheticCountry
from cellcensus.world.devices import DEVICE_KIND_NAMES, NO_INDEX, DeviceKind
from cellcensus.world.employment import NOT_WORKING
from cellcensus.world.events import DayEvents
from cellcensus.world.evidence import MACHINE_PROFILES, ROAMING_ORIGINS
from cellcensus.world.handsets import DEVICE_TYPE_NAMES
from cellcensus.world.identifiers import cell_ids, person_ids, site_ids
from cellcensus.world.network import OPEN, TECHNOLOGY_RANGE
from cellcensus.world.params import EVENT_TYPES, TECHNOLOGIES
from cellcensus.world.places import AWAY
from cellcensus.world.population import SEXES
from cellcensus.world.writer import (
    CELLS_SCHEMA,
    DEVICES_SCHEMA,
    EVENTS_SCHEMA,
    MACHINES_SCHEMA,
    MIGRATIONS_SCHEMA,
    PERSONS_SCHEMA,
    PRESENCE_SCHEMA,
    ROAMER_STAYS_SCHEMA,
    TACS_SCHEMA,
)

EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def string_array(values: NDArray[np.str_]) -> pa.StringArray:
    """An Arrow string array in one piece.

    ``pa.array`` splits large numpy string arrays into chunks; a chunked dictionary would be
    concatenated again by every `pa.DictionaryArray.from_arrays` (seconds a day at national
    scale).
    """
    array = pa.array(values, type=pa.string())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array


def _person_ids(persons: NDArray[np.intp]) -> pa.StringArray:
    return pa.array(person_ids(persons), type=pa.string())


def _area_codes(country: SyntheticCountry) -> pa.StringArray:
    return pa.array(country.territory.area_codes, type=pa.string())


def _dates(ordinals: NDArray[np.int32], open_value: int) -> pa.Date32Array:
    is_open = np.abs(ordinals) == open_value
    days = np.where(is_open, 0, ordinals.astype(np.int64) - EPOCH_ORDINAL).astype(np.int32)
    return pa.array(days, type=pa.date32(), mask=is_open)


def cells_table(country: SyntheticCountry) -> pa.Table:
    """One row per cell: its site's position, its sector's direction, technology, validity."""
    network = country.network
    site, sector, technology = network.cell_layout()
    count = site.size
    ranges = network.site_range_m[site] * np.asarray(TECHNOLOGY_RANGE)[technology]
    return pa.table(
        [
            pa.array(cell_ids(count), type=pa.string()),
            pa.array(site_ids(network.size), type=pa.string()).take(pa.array(site)),
            pa.array(network.site_lonlat[site, 1]),
            pa.array(network.site_lonlat[site, 0]),
            pa.array(np.round(network.azimuth_deg[sector], 1)),
            pa.array(np.full(count, network.beam_width_deg)),
            pa.array(np.round(ranges, -1)),
            pa.array(np.asarray(TECHNOLOGIES)[technology], type=pa.string()),
            _dates(network.valid_from[site], OPEN),
            _dates(network.valid_to[site], OPEN),
        ],
        schema=CELLS_SCHEMA,
    )


def persons_table(country: SyntheticCountry) -> pa.Table:
    """Every person: home area (at the period's start), work area, age and sex."""
    codes = _area_codes(country)
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
    """Every device of the holder's network: owner (none for machines and visitors), kind."""
    devices = country.devices
    owned = devices.person != NO_INDEX
    owners = pa.array(person_ids(np.where(owned, devices.person, 0)), type=pa.string())
    return pa.table(
        [
            pa.array(devices.user_id, type=pa.string()),
            pc.if_else(pa.array(owned), owners, pa.scalar(None, pa.string())),
            pa.array(DEVICE_KIND_NAMES, type=pa.string()).take(pa.array(devices.kind)),
            pa.array(devices.mcc),
            pa.array(devices.mnc),
        ],
        schema=DEVICES_SCHEMA,
    )


@dataclass(frozen=True)
class DeviceCodes:
    """What an event's columns take from its device, as small codes into dictionaries.

    Attributes:
        user_ids: Identifier of each device.
        cell_ids: Identifier of each cell.
        mcc: Per device, its code in `mcc_values`.
        mcc_values: The distinct MCCs.
        mnc: Per device, its code in `mnc_values`.
        mnc_values: The distinct MNCs.
        tacs: The catalogue's TACs.
        model: Per device, its model (index into `tacs`).
    """

    user_ids: pa.StringArray
    cell_ids: pa.StringArray
    mcc: NDArray[np.int8]
    mcc_values: pa.Int32Array
    mnc: NDArray[np.int16]
    mnc_values: pa.Int32Array
    tacs: pa.StringArray
    model: NDArray[np.int16]

    @classmethod
    def of(cls, country: SyntheticCountry) -> DeviceCodes:
        """The codes of a country's devices."""
        devices = country.devices
        mcc_values, mcc = np.unique(devices.mcc, return_inverse=True)
        mnc_values, mnc = np.unique(devices.mnc, return_inverse=True)
        return cls(
            user_ids=string_array(devices.user_id),
            cell_ids=string_array(cell_ids(country.network.cells)),
            mcc=mcc.astype(np.int8),
            mcc_values=pa.array(mcc_values.astype(np.int32)),
            mnc=mnc.astype(np.int16),
            mnc_values=pa.array(mnc_values.astype(np.int32)),
            tacs=pa.array(country.catalogue.tac, type=pa.string()),
            model=devices.model.astype(np.int16),
        )


def events_table(*, events: DayEvents, codes: DeviceCodes) -> pa.Table:
    """One day's events in the contract's columns, all but time dictionary-encoded.

    Dictionary arrays spare the writer hashing millions of values and keep a day small in
    memory; `write_parquet` does not store the Arrow schema, so a reader sees exactly
    `EVENTS_SCHEMA` (strings and integers).

    Args:
        events: The day's events, as indices.
        codes: The devices' codes.

    Returns:
        The events table.
    """
    device = events.device
    columns = [
        pa.DictionaryArray.from_arrays(pa.array(device), codes.user_ids),
        pa.array(events.timestamp, type=pa.timestamp("us", tz="UTC")),
        pa.DictionaryArray.from_arrays(pa.array(events.cell), codes.cell_ids),
        pa.DictionaryArray.from_arrays(
            pa.array(events.event_type.astype(np.int8)), pa.array(EVENT_TYPES, type=pa.string())
        ),
        pa.DictionaryArray.from_arrays(pa.array(codes.mcc[device]), codes.mcc_values),
        pa.DictionaryArray.from_arrays(pa.array(codes.mnc[device]), codes.mnc_values),
        pa.DictionaryArray.from_arrays(pa.array(codes.model[device]), codes.tacs),
    ]
    return pa.table(columns, names=EVENTS_SCHEMA.names)


def presence_table(
    *,
    country: SyntheticCountry,
    clock: DayClock,
    schedule: NDArray[np.uint8],
    places: NDArray[np.int32],
) -> pa.Table:
    """Hourly truth of where the sampled persons were during one day (null: abroad).

    Args:
        country: The world.
        clock: The day's hour slots.
        schedule: (sampled persons, slots) where each sampled person is (a place column).
        places: (sampled persons, PLACE_COLUMNS) their locations that day.

    Returns:
        One row per sampled person and hour slot, ordered by person then hour.
    """
    sample = country.presence_sample
    slots = clock.slots
    row = np.repeat(np.arange(sample.size), slots)
    column = schedule.ravel()
    away = column == AWAY
    location = places[row, np.where(away, 0, column)]
    area = country.locations.area[location].astype(np.int64)
    return pa.table(
        [
            _person_ids(sample).take(pa.array(row)),
            pa.array(np.tile(clock.slot_start, sample.size), type=pa.timestamp("us", tz="UTC")),
            _area_codes(country).take(pa.array(area, mask=away)),
        ],
        schema=PRESENCE_SCHEMA,
    )


def migrations_table(country: SyntheticCountry) -> pa.Table:
    """Every move of the period: who, on which local day, from and to which area."""
    moves = country.migrations
    codes = _area_codes(country)
    return pa.table(
        [
            _person_ids(moves.person),
            _dates(moves.day, OPEN),
            codes.take(pa.array(moves.from_area)),
            codes.take(pa.array(moves.to_area)),
        ],
        schema=MIGRATIONS_SCHEMA,
    )


def roamer_stays_table(country: SyntheticCountry) -> pa.Table:
    """Every visit overlapping the period: the visitor's number, country, stay and area."""
    stays = country.stays
    countries = pa.array([origin.country for origin in ROAMING_ORIGINS], type=pa.string())
    timestamp = pa.timestamp("us", tz="UTC")
    return pa.table(
        [
            pa.array(stays.user_id, type=pa.string()),
            pa.array(stays.mcc),
            pa.array(stays.mnc),
            countries.take(pa.array(stays.origin)),
            pa.array(stays.arrival_us, type=timestamp),
            pa.array(stays.departure_us, type=timestamp),
            pa.array(stays.nights.astype(np.int32)),
            _area_codes(country).take(pa.array(stays.area)),
        ],
        schema=ROAMER_STAYS_SCHEMA,
    )


def machines_table(country: SyntheticCountry) -> pa.Table:
    """Every M2M SIM: its number, what machine it is, and whether it moves."""
    devices = country.devices
    machine = devices.machine[devices.kind == DeviceKind.M2M]
    profile = country.machines.profile[machine]
    return pa.table(
        [
            pa.array(devices.user_id[devices.kind == DeviceKind.M2M], type=pa.string()),
            pa.array([p.kind for p in MACHINE_PROFILES], type=pa.string()).take(pa.array(profile)),
            pa.array(country.machines.moving[machine]),
        ],
        schema=MACHINES_SCHEMA,
    )


def tacs_table(country: SyntheticCountry) -> pa.Table:
    """The device models: TAC and device type (``module`` = machine-to-machine)."""
    catalogue = country.catalogue
    return pa.table(
        [
            pa.array(catalogue.tac, type=pa.string()),
            pa.array(DEVICE_TYPE_NAMES, type=pa.string()).take(pa.array(catalogue.device_type)),
        ],
        schema=TACS_SCHEMA,
    )
