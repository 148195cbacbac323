"""A tiny hand-made store in the holder's layout, for the service tests.

Three municipalities (11001, 11002, 21004), six cells, 240 devices over 7 days of March 2011:
each device has a home cell where it is seen at night and a work cell by day. Counts per area
are well above the disclosure threshold, so releases have numbers to compare.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cellcensus.holder.api import ServiceSettings
from cellcensus.holder.api.users import Role, Users
from cellcensus.holder.enclave.service import EnclaveService
from cellcensus.holder.enclave.state import open_state

START = dt.date(2011, 3, 7)
DAYS = 7
DEVICES = 240
CELLS = ("C1", "C2", "C3", "C4", "C5", "C6")
AREAS = {"C1": "11001", "C2": "11001", "C3": "11002", "C4": "11002", "C5": "21004", "C6": "21004"}
EVENT_TYPES = ("call_out", "sms_in", "data", "call_in")

EVENTS_SCHEMA = pa.schema(
    [
        ("device_id", pa.int64()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("local_date", pa.date32()),
        ("local_hour", pa.int8()),
        ("cell_id", pa.string()),
        ("event_type", pa.string()),
        ("mcc", pa.int32()),
        ("mnc", pa.int32()),
        ("tac", pa.string()),
    ]
)


def _day_events(day: int) -> pd.DataFrame:
    date = START + dt.timedelta(days=day)
    rows = []
    for device in range(DEVICES):
        home = CELLS[(device * 7) % len(CELLS)]
        work = CELLS[(device * 3 + 1) % len(CELLS)]
        for hour, cell, kind in ((2, home, 0), (10, work, 1), (15, work, 2), (22, home, 3)):
            local = dt.datetime.combine(date, dt.time(hour, (device * 13) % 60))
            rows.append(
                {
                    "device_id": 1_000_000 + device * 7919,
                    "timestamp": pd.Timestamp(local - dt.timedelta(hours=1), tz="UTC"),
                    "local_date": date,
                    "local_hour": hour,
                    "cell_id": cell,
                    "event_type": EVENT_TYPES[(device + kind) % len(EVENT_TYPES)],
                    "mcc": 206,
                    "mnc": 1,
                    "tac": "35123456",
                }
            )
    return pd.DataFrame(rows)


def _cells() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "cell_id": list(CELLS),
            "site_id": [f"S{i // 2}" for i in range(len(CELLS))],
            "latitude": [50.80 + 0.01 * i for i in range(len(CELLS))],
            "longitude": [4.30 + 0.02 * i for i in range(len(CELLS))],
            "azimuth_deg": [0.0, 180.0] * 3,
            "beam_width_deg": [120.0] * len(CELLS),
            "range_m": [2000.0] * len(CELLS),
            "technology": ["4G"] * len(CELLS),
            "valid_from": [START] * len(CELLS),
            "valid_to": [None] * len(CELLS),
        }
    )


def build_store(root: Path) -> Path:
    """Write the tiny store under `root` and return it."""
    for day in range(DAYS):
        date = START + dt.timedelta(days=day)
        folder = root / "events" / f"date={date.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pandas(_day_events(day), schema=EVENTS_SCHEMA, preserve_index=False)
        pq.write_table(table, folder / "part-0.parquet")
    _cells().to_parquet(root / "cells.parquet", index=False)
    (root / "allocation").mkdir(exist_ok=True)
    allocation = pd.DataFrame(
        {
            "cell_id": list(AREAS),
            "area_code": list(AREAS.values()),
            "weight": 1.0,
            "overlap_km2": 4.0,
        }
    )
    allocation.to_parquet(root / "allocation" / "municipality.parquet", index=False)
    province = allocation.assign(area_code=allocation["area_code"].str[0] + "0000")
    province.to_parquet(root / "allocation" / "province.parquet", index=False)
    metadata = {
        "period": {"start": START.isoformat(), "end": (START + dt.timedelta(DAYS - 1)).isoformat()},
        "timezone": "Europe/Brussels",
        "market_share": 0.4,
        "sampling_fraction": 1.0,
    }
    (root / "metadata.json").write_text(json.dumps(metadata))
    return root


PASSWORD = "correct horse battery staple"
SCOPE = "usual_residence:municipality:2011-03-07..2011-03-13"


def settings_for(store: Path, state_dir: Path, **changes: object) -> ServiceSettings:
    """Settings with the database and key in `state_dir` (one per test)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    key_file = state_dir / "jwt.key"
    values: dict[str, object] = {
        "database_url": f"sqlite:///{state_dir / 'state.db'}",
        "jwt_key_file": key_file,
        "workers": 1,
        "warm_worker": False,
        "job_timeout_s": 120.0,
    }
    values.update(changes)
    return ServiceSettings(store=store, **values)  # type: ignore[arg-type]


def add_users(settings: ServiceSettings) -> None:
    """A steward, two analysts (alice with a scope and budget, bob without) and an auditor."""
    state = open_state(settings.resolved_database_url)
    users = Users(state)
    users.add(username="steward", role=Role.STEWARD, password=PASSWORD, actor="test")
    users.add(username="auditor", role=Role.AUDITOR, password=PASSWORD, actor="test")
    for name in ("alice", "bob"):
        users.add(username=name, role=Role.ANALYST, password=PASSWORD, actor="test")
    users.set_scopes("alice", [SCOPE], actor="test")
    users.set_scopes("bob", ["usual_residence:*:*"], actor="test")
    service = EnclaveService(store=settings.store, state=state)
    service.set_budget(analyst="alice", project="default", epsilon=2.0, delta=0.0, steward="test")
    service.set_budget(analyst="bob", project="default", epsilon=2.0, delta=0.0, steward="test")
    state.engine.dispose()
