"""`synthesize`: build a synthetic Belgium and write it, day by day, as a dataset folder."""

from __future__ import annotations

import dataclasses
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from cellcensus import __version__
from cellcensus.errors import CellcensusError
from cellcensus.world.clock import TIMEZONE
from cellcensus.world.country import Progress, SyntheticCountry, build_country, holder_residents
from cellcensus.world.daily import DayMaker, period_days
from cellcensus.world.devices import DEVICE_KIND_NAMES
from cellcensus.world.employment import NOT_WORKING
from cellcensus.world.evidence import BELGIUM_MCC, HOLDER
from cellcensus.world.params import EVENT_TYPES, WorldParams
from cellcensus.world.tables import (
    cells_table,
    devices_table,
    machines_table,
    migrations_table,
    persons_table,
    roamer_stays_table,
    tacs_table,
)
from cellcensus.world.writer import (
    WORLD_FILE,
    check_folder,
    day_partition,
    prepare_folder,
    write_json,
    write_parquet,
)

PLAIN_EVENT_COLUMNS = ("user_id", "mcc", "mnc")
"""Event columns written without a Parquet dictionary: too many distinct values (user ids), or
cheaper plain (integers that compress to nothing anyway)."""
BUILD_SHARE = 0.1
"""Share of the progress bar given to building the country; the days share the rest."""


@dataclass(frozen=True, kw_only=True)
class WorldSummary:
    """What a generation produced.

    Attributes:
        out: The dataset folder.
        persons: Persons in the world.
        workers: Persons with a work area.
        devices: Devices of the holder's network (all kinds).
        sites: Antenna sites.
        events: Network events over the whole period (faulty rows included).
        events_by_day: Events per local calendar day.
        presence_persons: Persons with hourly presence ground truth.
        cells: Cells (three sectors per site, one per technology).
        devices_by_kind: Devices of each kind (primary, secondary, m2m, roamer).
        migrations: Persons who move to another municipality during the period.
        roamer_stays: Visits of inbound roamers overlapping the period.
        faults: Faulty rows injected, by kind (all zero without faults).
    """

    out: Path
    persons: int
    workers: int
    devices: int
    sites: int
    events: int
    events_by_day: dict[date, int]
    presence_persons: int
    cells: int = 0
    devices_by_kind: dict[str, int] = dataclasses.field(default_factory=dict)
    migrations: int = 0
    roamer_stays: int = 0
    faults: dict[str, int] = dataclasses.field(default_factory=dict)


def synthesize(
    *,
    out: Path,
    params: WorldParams,
    progress: Progress | None = None,
    threads: int | None = None,
) -> WorldSummary:
    """Generate a synthetic Belgium and write it to `out` in the docs/schema.md contract.

    Days are simulated and written by `threads` threads, each day from its own random
    streams; memory stays bounded by the days in flight (one per thread). The files are
    byte-identical for a seed, whatever the number of threads.

    Args:
        out: Dataset folder: new, empty, or a previous world (which is replaced).
        params: The world's parameters.
        progress: Optional callback receiving a step description and the completed fraction.
        threads: Days simulated at the same time (default: two, or one on a single core).

    Returns:
        The realised totals.

    Raises:
        CellcensusError: If `out` is a file or a non-empty folder that is not a world.
    """
    report = progress or (lambda _step, _fraction: None)
    workers = threads if threads is not None else min(2, os.cpu_count() or 1)
    if workers < 1:
        raise CellcensusError(f"threads={workers} must be at least 1")
    # A previous world is only cleared once the new country is built: a refused parameter
    # leaves it as it was.
    check_folder(out)
    country = build_country(params=params, progress=report)
    prepare_folder(out)
    # Written first so that an interrupted run still leaves a folder recognised as a world.
    write_json({"generator": "cellcensus.world", "status": "incomplete"}, out / WORLD_FILE)
    _write_static(country=country, out=out)
    events_by_day, faults = _write_days(
        country=country, params=params, out=out, report=report, threads=workers
    )
    summary = _summary(country=country, out=out, events_by_day=events_by_day, faults=faults)
    write_json({"injected_rows": faults}, out / "truth" / "faults.json")
    # Last, with world.json: without it an interrupted world is no delivery that ingest takes.
    write_json(_metadata(country), out / "metadata.json")
    write_json(_world_document(summary=summary, params=params), out / WORLD_FILE)
    report("done", 1.0)
    return summary


def _write_static(*, country: SyntheticCountry, out: Path) -> None:
    write_parquet(cells_table(country), out / "cells.parquet")
    truth = out / "truth"
    write_parquet(persons_table(country), truth / "persons.parquet")
    write_parquet(devices_table(country), truth / "devices.parquet")
    write_parquet(migrations_table(country), truth / "migrations.parquet")
    write_parquet(roamer_stays_table(country), truth / "roamer_stays.parquet")
    write_parquet(machines_table(country), truth / "machines.parquet")
    write_parquet(tacs_table(country), truth / "tacs.parquet")


def _summary(
    *,
    country: SyntheticCountry,
    out: Path,
    events_by_day: dict[date, int],
    faults: dict[str, int],
) -> WorldSummary:
    kinds = np.bincount(country.devices.kind, minlength=len(DEVICE_KIND_NAMES))
    return WorldSummary(
        out=out,
        persons=country.residents.size,
        workers=int(np.count_nonzero(country.employment.work_area != NOT_WORKING)),
        devices=country.devices.size,
        sites=country.network.size,
        events=sum(events_by_day.values()),
        events_by_day=events_by_day,
        presence_persons=int(country.presence_sample.size),
        cells=country.network.cells,
        devices_by_kind={
            name: int(count) for name, count in zip(DEVICE_KIND_NAMES, kinds, strict=True)
        },
        migrations=country.migrations.size,
        roamer_stays=country.stays.size,
        faults=faults,
    )


def _write_days(
    *, country: SyntheticCountry, params: WorldParams, out: Path, report: Progress, threads: int
) -> tuple[dict[date, int], dict[str, int]]:
    """Simulate and write the days, `threads` at a time, and count their events."""
    maker = DayMaker(country)
    days = period_days(params)
    written: dict[date, tuple[int, dict[str, int]]] = {}
    # Heavy numpy and Parquet work releases the GIL, so threads overlap; at most `threads`
    # days are in flight, which bounds memory.
    with ThreadPoolExecutor(max_workers=threads) as pool:
        pending: deque[Future[tuple[date, int, dict[str, int]]]] = deque()
        for index, day in enumerate(days):
            if len(pending) == threads:
                _collect(pending.popleft(), written)
            fraction = BUILD_SHARE + (1 - BUILD_SHARE) * index / params.days
            report(f"events of day {index + 1} of {params.days}", fraction)
            pending.append(pool.submit(_simulate_and_write, maker, day, out))
        while pending:
            _collect(pending.popleft(), written)
    faults = dict.fromkeys(params.faults.rates(), 0)
    for _, day_faults in written.values():
        for kind, count in day_faults.items():
            faults[kind] += count
    return {day: written[day][0] for day in days}, faults


def _collect(
    future: Future[tuple[date, int, dict[str, int]]],
    written: dict[date, tuple[int, dict[str, int]]],
) -> None:
    day, events, faults = future.result()
    written[day] = (events, faults)


def _simulate_and_write(maker: DayMaker, day: date, out: Path) -> tuple[date, int, dict[str, int]]:
    simulated = maker.simulate(day)
    write_parquet(
        simulated.events,
        day_partition(out / "events", simulated.day),
        sorted_times="timestamp",
        plain=PLAIN_EVENT_COLUMNS,
    )
    write_parquet(simulated.presence, day_partition(out / "truth" / "presence", simulated.day))
    return simulated.day, simulated.events.num_rows, simulated.faults


def _metadata(country: SyntheticCountry) -> dict[str, Any]:
    """The holder's facts about the delivery (docs/schema.md "A dataset folder").

    ``market_share`` is the realised share of all residents (phone owners or not) with a
    primary device of the holder, which is what an expansion from devices to residents needs.
    """
    params = country.params
    subscribers = holder_residents(country)
    home_area = country.residents.home_area[subscribers]
    regions, counts = np.unique(country.territory.regions[home_area], return_counts=True)
    return {
        "operator": HOLDER.name,
        "mcc": BELGIUM_MCC,
        "mnc": HOLDER.mnc,
        "period": {"start": params.start.isoformat(), "end": params.end.isoformat()},
        "timezone": TIMEZONE,
        "market_share": subscribers.size / country.residents.size,
        "sampling_fraction": params.scale,
        # The world gives the holder this share of roaming visitors (`world.roaming`).
        "roaming_share": params.market_share,
        "synthetic": True,  # so that a report on it says the data is simulated
        "subscribers_by_region": {
            str(region): int(count) for region, count in zip(regions, counts, strict=True)
        },
    }


def _world_document(*, summary: WorldSummary, params: WorldParams) -> dict[str, Any]:
    """world.json: the parameters and realised totals (no timings, so that it is stable)."""
    parameters = {name: _plain(value) for name, value in dataclasses.asdict(params).items()}
    return {
        "generator": "cellcensus.world",
        "version": __version__,
        "status": "complete",
        "parameters": parameters,
        "event_types": list(EVENT_TYPES),
        "totals": {
            "persons": summary.persons,
            "workers": summary.workers,
            "devices": summary.devices,
            "devices_by_kind": summary.devices_by_kind,
            "sites": summary.sites,
            "cells": summary.cells,
            "events": summary.events,
            "presence_persons": summary.presence_persons,
            "migrations": summary.migrations,
            "roamer_stays": summary.roamer_stays,
            "faults": summary.faults,
        },
        "events_by_day": {day.isoformat(): count for day, count in summary.events_by_day.items()},
    }


def _plain(value: Any) -> Any:
    """A parameter value as JSON: dates as ISO text, tuples as lists."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {name: _plain(item) for name, item in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value
