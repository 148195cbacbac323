"""Tiny hand-made deliveries in the docs/schema.md contract, for the store tests.

Four cells in Belgium: A and B share a site in Brussels, C (Ghent) is valid only from
2011-03-23, D (Liège) only until 2011-03-22. The period is the week of 2011-03-21 to 2011-03-27,
which holds the spring DST change in Europe/Brussels (2011-03-27, 02:00 -> 03:00 local).
"""

from __future__ import annotations

import contextlib
import json
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

START = date(2011, 3, 21)
END = date(2011, 3, 27)
METADATA: dict[str, Any] = {
    "operator": "test",
    "mcc": 206,
    "mnc": 10,
    "period": {"start": START.isoformat(), "end": END.isoformat()},
    "timezone": "Europe/Brussels",
    "market_share": 0.4,
    "sampling_fraction": 1.0,
}
CELLS = pd.DataFrame(
    {
        "cell_id": ["A", "B", "C", "D"],
        "site_id": ["S1", "S1", "S2", "S3"],
        "latitude": [50.8466, 50.8466, 51.0543, 50.6326],
        "longitude": [4.3528, 4.3528, 3.7174, 5.5797],
        "azimuth_deg": [0.0, 120.0, None, None],
        "beam_width_deg": [65.0, 65.0, None, None],
        "range_m": [2000.0, 2000.0, 5000.0, 5000.0],
        "technology": ["4G", "4G", "3G", "2G"],
        "valid_from": [None, None, date(2011, 3, 23), None],
        "valid_to": [None, None, None, date(2011, 3, 22)],
    }
)
USERS = ("32470000001", "32470000002", "32470000003")
"""Raw subscriber ids (MSISDN-like): they must never reach a file of the store."""


def event(
    *,
    user: str | None = USERS[0],
    timestamp: str | None = "2011-03-22T08:00:00Z",
    cell: str | None = "A",
    kind: str | None = "data",
    mcc: object = 206,
    mnc: object = 10,
    tac: str | None = "35000001",
) -> dict[str, object]:
    """One event row (as text-friendly values)."""
    return {
        "user_id": user,
        "timestamp": timestamp,
        "cell_id": cell,
        "event_type": kind,
        "mcc": mcc,
        "mnc": mnc,
        "tac": tac,
    }


def good_events() -> list[dict[str, object]]:
    """Three valid events of three users on 2011-03-22."""
    return [
        event(user=USERS[0], timestamp="2011-03-22T08:00:00Z", cell="A"),
        event(user=USERS[1], timestamp="2011-03-22T09:30:00Z", cell="B", kind="call_out"),
        event(user=USERS[2], timestamp="2011-03-22T10:15:00Z", cell="D", kind="sms_in"),
    ]


def events_frame(rows: list[dict[str, object]], *, typed: bool) -> pd.DataFrame:
    """Rows as a DataFrame; `typed` gives real timestamp and integer columns where all parse."""
    frame = pd.DataFrame(rows, columns=list(event()))
    if not typed:
        return frame
    # With a malformed timestamp the column stays text, as a real export might send it.
    with contextlib.suppress(ValueError, TypeError):
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
    for column in ("mcc", "mnc"):
        numbers = pd.to_numeric(frame[column], errors="coerce")
        if numbers.notna().sum() == frame[column].notna().sum():
            frame[column] = numbers.astype("Int32")
        else:
            frame[column] = frame[column].astype("string")
    return frame


def write_delivery(
    folder: Path,
    *,
    rows: list[dict[str, object]],
    fmt: str = "parquet",
    cells: pd.DataFrame | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write a dataset folder (events/, cells.parquet, metadata.json) and return it."""
    events_dir = folder / "events"
    events_dir.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        events_frame(rows, typed=True).to_parquet(events_dir / "part-0.parquet", index=False)
    elif fmt == "csv":
        events_frame(rows, typed=False).to_csv(events_dir / "part-0.csv", index=False)
    elif fmt == "csv.gz":
        frame = events_frame(rows, typed=False)
        frame.to_csv(events_dir / "part-0.csv.gz", index=False, compression="gzip")
    else:
        raise ValueError(fmt)
    (cells if cells is not None else CELLS).to_parquet(folder / "cells.parquet", index=False)
    document = metadata if metadata is not None else METADATA
    (folder / "metadata.json").write_text(json.dumps(document), encoding="utf-8")
    return folder


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes (to prove a failed ingest changed nothing)."""
    if not folder.exists():
        return {}
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
