from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cellcensus.world import WorldParams, WorldSummary, synthesize
from cellcensus.world.params import FaultRates

RATE = 0.01


@pytest.fixture(scope="module")
def faulty_world(tmp_path_factory: pytest.TempPathFactory) -> WorldSummary:
    params = WorldParams(
        scale=0.0005, days=2, seed=3, presence_persons=10, faults=FaultRates.parse(str(RATE))
    )
    return synthesize(out=tmp_path_factory.mktemp("faulty") / "world", params=params)


def test_injected_counts_are_in_truth_and_near_their_rates(faulty_world: WorldSummary) -> None:
    truth = json.loads((faulty_world.out / "truth" / "faults.json").read_text())
    injected = truth["injected_rows"]
    assert injected == faulty_world.faults
    clean = faulty_world.events - sum(injected.values())
    for count in injected.values():
        assert abs(count - RATE * (clean + injected["duplicate"])) < 5 * (RATE * clean) ** 0.5 + 5
    world = json.loads((faulty_world.out / "world.json").read_text())
    assert world["totals"]["faults"] == injected


def test_each_defect_is_visible_in_the_files(faulty_world: WorldSummary) -> None:
    events = pq.read_table(faulty_world.out / "events").to_pandas()
    cells = set(pq.read_table(faulty_world.out / "cells.parquet").column("cell_id").to_pylist())
    injected = faulty_world.faults
    assert events.isna().any(axis=1).sum() == injected["null_field"]
    known = events["cell_id"].isin(cells) | events["cell_id"].isna()
    assert (~known).sum() == injected["unknown_cell"]
    valid_types = {"call_out", "call_in", "sms_out", "sms_in", "data", "location_update"}
    odd_type = ~events["event_type"].isin(valid_types) & events["event_type"].notna()
    assert odd_type.sum() == injected["unknown_event_type"]
    assert events.duplicated().sum() == injected["duplicate"]


def test_ingestion_quarantines_exactly_the_injected_rows(
    faulty_world: WorldSummary, tmp_path: Path
) -> None:
    store_module = pytest.importorskip("cellcensus.holder.store")
    report = store_module.ingest_dataset(
        dataset=faulty_world.out, store=tmp_path / "store", key_file=tmp_path / "key"
    )
    quarantined = report.rows_quarantined_by_reason
    for kind, count in faulty_world.faults.items():
        assert quarantined[kind] == count, kind
    assert quarantined["cell_not_valid"] == 0
    assert report.rows_read == faulty_world.events
