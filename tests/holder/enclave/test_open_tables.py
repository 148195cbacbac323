"""`open_tables` runs per-day steps one date at a time only on a store large enough to gain."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from cellcensus.holder.algorithms import get_algorithm
from cellcensus.holder.enclave.compute import open_tables
from cellcensus.holder.store import Store


def test_event_rows_counts_every_stored_event(store: Path) -> None:
    opened = Store(store)
    assert opened.event_rows() == sum(pq.read_table(path).num_rows for path in opened.event_files())
    assert opened.event_rows() > 0


def test_a_small_store_runs_the_period_at_once_and_a_large_one_day_by_day(store: Path) -> None:
    opened = Store(store)
    small = open_tables(opened)
    large = open_tables(opened, per_day_from=opened.event_rows())
    assert not small.per_day and large.per_day
    assert small.dates == large.dates == tuple(opened.days()) and len(large.dates) == 7
    for name in ("usual_residence", "present_population"):
        algorithm = get_algorithm(name)
        at_once, by_day = algorithm.run(small, {}), algorithm.run(large, {})
        keys = [column for column in at_once.columns if column != "device_count"]
        pd.testing.assert_frame_equal(
            at_once.sort_values(keys, ignore_index=True),
            by_day.sort_values(keys, ignore_index=True),
        )
