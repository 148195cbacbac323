"""Defects of real exports, injected on request: copies, unknown cells, empty and bad values.

Each faulty row comes from a distinct clean row of the day (which it replaces, or copies for
a duplicate) and carries exactly one defect, named after the reason ingestion quarantines it
for, so that the injected counts (``truth/faults.json``) can be checked against an ingest
report. Faulty rows are appended at the end of their day's file, like late records.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from cellcensus.world.params import WorldParams
from cellcensus.world.writer import EVENTS_SCHEMA

REQUIRED = ("user_id", "timestamp", "cell_id", "event_type", "mcc", "mnc")
"""Fields a null_field fault can empty."""
UNKNOWN_EVENT_TYPES = ("call", "CALL_OUT", "mms", "voice_out")
FAR_FUTURE = datetime(2250, 1, 1, tzinfo=UTC)


def inject_faults(
    *, table: pa.Table, params: WorldParams, rng: np.random.Generator
) -> tuple[pa.Table, dict[str, int]]:
    """Give some rows of a day's events the defects of `params.faults`.

    Args:
        table: The day's clean events.
        params: The world's parameters (fault rates, period length).
        rng: The day's fault stream.

    Returns:
        The events with their faulty rows, and the number of rows of each fault kind.
    """
    rates = params.faults.rates()
    rows = table.num_rows
    counts = {kind: int(rng.binomial(rows, rate)) for kind, rate in rates.items()}
    total = min(sum(counts.values()), rows)
    chosen = rng.choice(rows, size=total, replace=False) if total else np.empty(0, np.int64)
    taken = 0
    faulty: list[dict[str, list[Any]]] = []
    replaced = np.zeros(rows, dtype=bool)
    for kind, count in counts.items():
        picked = np.sort(chosen[taken : taken + count])
        taken += count
        counts[kind] = int(picked.size)
        if kind != "duplicate":
            replaced[picked] = True
        columns = table.take(pa.array(picked)).cast(EVENTS_SCHEMA).to_pydict()
        _DEFECTS[kind](columns, params, rng)
        faulty.append(columns)
    clean = table.filter(pa.array(~replaced)).cast(EVENTS_SCHEMA)
    extra = [pa.table(columns, schema=EVENTS_SCHEMA) for columns in faulty]
    return pa.concat_tables([clean, *extra]), counts


def _duplicate(
    columns: dict[str, list[Any]], params: WorldParams, rng: np.random.Generator
) -> None:
    """A copy needs no change."""


def _unknown_cell(
    columns: dict[str, list[Any]], params: WorldParams, rng: np.random.Generator
) -> None:
    numbers = rng.integers(0, 10**6, size=len(columns["cell_id"]))
    columns["cell_id"] = [f"X{number:06d}" for number in numbers]


def _null_field(
    columns: dict[str, list[Any]], params: WorldParams, rng: np.random.Generator
) -> None:
    emptied = rng.integers(0, len(REQUIRED), size=len(columns["cell_id"]))
    for row, field in enumerate(emptied):
        columns[REQUIRED[field]][row] = None


def _outside_period(
    columns: dict[str, list[Any]], params: WorldParams, rng: np.random.Generator
) -> None:
    shift = timedelta(days=params.days + 30)
    later = rng.random(len(columns["timestamp"])) < 0.5
    columns["timestamp"] = [
        moment + shift if after else moment - shift
        for moment, after in zip(columns["timestamp"], later, strict=True)
    ]


def _malformed_value(
    columns: dict[str, list[Any]], params: WorldParams, rng: np.random.Generator
) -> None:
    which = rng.integers(0, 4, size=len(columns["tac"]))
    for row, defect in enumerate(which):
        if defect == 0:
            columns["tac"][row] = "35X1Y2Z3"
        elif defect == 1:
            columns["mcc"][row] = 2060
        elif defect == 2:
            columns["mnc"][row] = -1
        else:
            moment = columns["timestamp"][row]
            columns["timestamp"][row] = FAR_FUTURE.replace(
                hour=moment.hour, minute=moment.minute, second=moment.second
            )


def _unknown_event_type(
    columns: dict[str, list[Any]], params: WorldParams, rng: np.random.Generator
) -> None:
    names = rng.integers(0, len(UNKNOWN_EVENT_TYPES), size=len(columns["event_type"]))
    columns["event_type"] = [UNKNOWN_EVENT_TYPES[name] for name in names]


_DEFECTS = {
    "duplicate": _duplicate,
    "unknown_cell": _unknown_cell,
    "null_field": _null_field,
    "outside_period": _outside_period,
    "malformed_value": _malformed_value,
    "unknown_event_type": _unknown_event_type,
}
