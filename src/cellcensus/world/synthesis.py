"""`synthesize`: build a synthetic Belgium and write it, day by day, as a dataset folder."""

from __future__ import annotations

import dataclasses
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from cellcensus import __version__
from cellcensus.world.activity import TIMEZONE
from cellcensus.world.country import Progress, SyntheticCountry, build_country
from cellcensus.world.daily import DailyInputs, SimulatedDay, simulate_day
from cellcensus.world.params import EVENT_TYPES, WorldParams
from cellcensus.world.subscription import MCC, MNC
from cellcensus.world.tables import cells_table, devices_table, persons_table
from cellcensus.world.writer import (
    WORLD_FILE,
    day_partition,
    prepare_folder,
    write_json,
    write_parquet,
)

OPERATOR = "synthetic-operator"
BUILD_SHARE = 0.1
"""Share of the progress bar given to building the country; the days share the rest."""


@dataclass(frozen=True, kw_only=True)
class WorldSummary:
    """What a generation produced.

    Attributes:
        out: The dataset folder.
        persons: Persons in the world.
        workers: Persons with a work area.
        devices: Devices (subscribers) of the operator.
        sites: Antenna sites (one cell each).
        events: Network events over the whole period.
        events_by_day: Events per local calendar day.
        presence_persons: Persons with hourly presence ground truth.
    """

    out: Path
    persons: int
    workers: int
    devices: int
    sites: int
    events: int
    events_by_day: dict[date, int]
    presence_persons: int


def synthesize(*, out: Path, params: WorldParams, progress: Progress | None = None) -> WorldSummary:
    """Generate a synthetic Belgium and write it to `out` in the SCHEMA.md contract.

    Memory stays bounded by two days of events: days are generated one at a time, each from
    its own random stream, and a day is written in the background while the next one is
    generated. The files are byte-identical for a seed.

    Args:
        out: Dataset folder: new, empty, or a previous world (which is replaced).
        params: The world's parameters.
        progress: Optional callback receiving a step description and the completed fraction.

    Returns:
        The realised totals.

    Raises:
        CellcensusError: If `out` is a file or a non-empty folder that is not a world.
    """
    report = progress or (lambda _step, _fraction: None)
    prepare_folder(out)
    # Written first so that an interrupted run still leaves a folder recognised as a world.
    write_json({"generator": "cellcensus.world", "status": "incomplete"}, out / WORLD_FILE)
    country = build_country(params=params, progress=report)
    write_parquet(cells_table(country), out / "cells.parquet")
    write_parquet(persons_table(country), out / "truth" / "persons.parquet")
    write_parquet(devices_table(country), out / "truth" / "devices.parquet")
    write_json(_metadata(country=country, params=params), out / "metadata.json")
    events_by_day = _write_days(country=country, params=params, out=out, report=report)
    summary = WorldSummary(
        out=out,
        persons=country.residents.size,
        workers=country.employment.workers,
        devices=country.subscribers.size,
        sites=country.network.size,
        events=sum(events_by_day.values()),
        events_by_day=events_by_day,
        presence_persons=int(country.presence_sample.size),
    )
    write_json(_world_document(summary=summary, params=params), out / WORLD_FILE)
    report("done", 1.0)
    return summary


def _write_days(
    *, country: SyntheticCountry, params: WorldParams, out: Path, report: Progress
) -> dict[date, int]:
    """Simulate the days in order, writing each one while the next is simulated."""
    inputs = DailyInputs.of(country)
    events_by_day: dict[date, int] = {}
    # One writer thread and at most one pending write: Parquet encoding overlaps the next
    # day's draws (both release the GIL) while memory stays bounded at two days.
    with ThreadPoolExecutor(max_workers=1) as writer:
        pending: Future[None] | None = None
        for index in range(params.days):
            fraction = BUILD_SHARE + (1 - BUILD_SHARE) * index / params.days
            report(f"events of day {index + 1} of {params.days}", fraction)
            simulated = simulate_day(country=country, inputs=inputs, params=params, index=index)
            events_by_day[simulated.day] = simulated.events.num_rows
            if pending is not None:
                pending.result()
            pending = writer.submit(_write_day, simulated, out)
        if pending is not None:
            pending.result()
    return events_by_day


def _write_day(simulated: SimulatedDay, out: Path) -> None:
    write_parquet(
        simulated.events, day_partition(out / "events", simulated.day), sorted_times="timestamp"
    )
    write_parquet(simulated.presence, day_partition(out / "truth" / "presence", simulated.day))


def _metadata(*, country: SyntheticCountry, params: WorldParams) -> dict[str, Any]:
    """The holder's facts about the delivery (SCHEMA.md "A dataset folder")."""
    home_area = country.residents.home_area[country.subscribers.person]
    regions, counts = np.unique(country.territory.regions[home_area], return_counts=True)
    return {
        "operator": OPERATOR,
        "mcc": MCC,
        "mnc": MNC,
        "period": {"start": params.start.isoformat(), "end": params.end.isoformat()},
        "timezone": TIMEZONE,
        "market_share": params.market_share,
        "sampling_fraction": params.scale,
        "subscribers_by_region": {
            str(region): int(count) for region, count in zip(regions, counts, strict=True)
        },
    }


def _world_document(*, summary: WorldSummary, params: WorldParams) -> dict[str, Any]:
    """world.json: the parameters and realised totals (no timings, so that it is stable)."""
    parameters = {
        name: value.isoformat() if isinstance(value, date) else value
        for name, value in dataclasses.asdict(params).items()
    }
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
            "sites": summary.sites,
            "cells": summary.sites,
            "events": summary.events,
            "presence_persons": summary.presence_persons,
        },
        "events_by_day": {day.isoformat(): count for day, count in summary.events_by_day.items()},
    }
