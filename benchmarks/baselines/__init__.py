"""Independent implementations of certified rules, to time the catalogue against.

Each module implements the default rules of `usual_residence` and `present_population` in
another engine (Polars, pandas) from the store's Parquet files, without Ibis. They are
benchmarks' baselines, not certified code: `tests/benchmarks/test_baselines.py` checks that
they give the certified algorithms' pre-disclosure output. On a versioned network (sites
switched on or off within the period) usual residence uses the latest version of each cell's
weights (`latest_versions`) and present population the weights of each day
(`allocation_versions`), as the certified rules do (holder/algorithms/areas.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cellcensus.holder.store import Store
from cellcensus.holder.store.device_days import fresh

INTERACTIVE_EVENTS = ("call_out", "call_in", "sms_out", "sms_in")
CELL_RANKS = 2**24
LEVEL_DUST = 1e-9


@dataclass(frozen=True)
class StoreFiles:
    """The Parquet files a rule reads: day files of events, cells, allocation."""

    events: list[Path]
    cells: Path
    allocation: Path
    device_days: list[Path] = field(default_factory=list)
    """The store's device-day summaries, where every day has a fresh one (else none): the
    device filter then reads them, as the certified algorithms do."""

    @classmethod
    def of(cls, store: Store, *, level: str = "municipality") -> StoreFiles:
        """The files of `store` at area `level`."""
        events = sorted(store.events_dir.glob("**/*.parquet"))
        summaries = [store.device_day_path(day) for day in store.days()] if fresh(store) else []
        return cls(
            events=events,
            cells=store.cells_path,
            allocation=store.allocation_path(level),
            device_days=summaries,
        )


def latest_versions(path: Path) -> pa.Table:
    """cell_id, area_code, weight of the allocation file: the latest version of each cell."""
    if "valid_to" not in pq.read_schema(path).names:
        return pq.read_table(path, columns=["cell_id", "area_code", "weight"])
    table = pq.read_table(path, columns=["cell_id", "area_code", "weight", "valid_to"])
    return table.filter(pc.is_null(table.column("valid_to"))).drop_columns(["valid_to"])


def allocation_versions(path: Path) -> pa.Table:
    """cell_id, area_code, weight, first_day, last_day: every version of each cell's weights.

    Validity as days since 1970-01-01, both ends inclusive; null where open.
    """
    validity = {"first_day": "valid_from", "last_day": "valid_to"}
    present = [column for column in validity.values() if column in pq.read_schema(path).names]
    read = pq.read_table(path, columns=["cell_id", "area_code", "weight", *present])
    table = read.select(["cell_id", "area_code", "weight"])
    for end, column in validity.items():
        if column in present:
            days = pc.cast(pc.cast(read.column(column), pa.date32()), pa.int32())
        else:
            days = pa.nulls(len(table), pa.int32())
        table = table.append_column(end, pc.cast(days, pa.int64()))
    return table


def differences(
    expected: pd.DataFrame, actual: pd.DataFrame, *, keys: list[str], tolerance: float = 1e-6
) -> str | None:
    """Why `actual` is not `expected` (same keys, counts within `tolerance`), or None.

    Counts are sums of floating allocation weights, added in an engine-dependent order, so
    they are compared within a tolerance, not bit for bit.
    """
    left = expected[[*keys, "device_count"]].copy()
    right = actual[[*keys, "device_count"]].copy()
    for frame in (left, right):
        for key in keys:
            if key == "local_date":
                frame[key] = pd.to_datetime(frame[key]).dt.strftime("%Y-%m-%d")
            else:
                frame[key] = frame[key].astype(str)
    merged = left.merge(right, on=keys, how="outer", suffixes=("_expected", "_actual"))
    missing = merged["device_count_actual"].isna() | merged["device_count_expected"].isna()
    if missing.any():
        return (
            f"{int(missing.sum())} keys in only one of the results, e.g. {merged[missing].head(3)}"
        )
    gap = (merged["device_count_expected"] - merged["device_count_actual"]).abs()
    if len(gap) and float(gap.max()) > tolerance:
        worst = merged.iloc[int(gap.to_numpy().argmax())]
        return f"counts differ by up to {float(gap.max()):.3g}, e.g. {worst.to_dict()}"
    return None
