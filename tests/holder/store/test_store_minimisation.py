"""Data minimisation: the store keeps only the columns the algorithms read, nothing else."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from deliveries import USERS, event, events_frame, good_events, write_delivery  # type: ignore[import-not-found]

from cellcensus.holder.algorithms.base import EVENTS_SCHEMA
from cellcensus.holder.store import EVENT_COLUMNS, Store, ingest_dataset

EXTRA = {
    "imei": "356938035643809",
    "imsi": "206011234567890",
    "subscriber_name": "Jan Janssens",
    "home_address": "Rue de la Loi 16, Bruxelles",
}
"""Columns an operator's export might carry that no algorithm needs: they must not be kept."""

QUARANTINE_COLUMNS = (
    "device_id",
    "timestamp",
    "timestamp_text",
    "local_date",
    "cell_id",
    "event_type",
    "mcc",
    "mcc_text",
    "mnc",
    "mnc_text",
    "tac",
    "reason",
    "field",
    "source",
)
"""What a quarantined row keeps: the contract's fields (pseudonymised), why it was refused and
which of them to fix."""


def test_extra_delivery_columns_never_reach_the_store(tmp_path: Path) -> None:
    dataset = write_delivery(tmp_path / "dataset", rows=good_events())
    rows = [*good_events(), event(user=USERS[0], kind="fax")]
    frame = events_frame(rows, typed=True).assign(**EXTRA)
    frame.to_parquet(dataset / "events" / "part-0.parquet", index=False)
    ingest_dataset(dataset=dataset, store=tmp_path / "store", key_file=tmp_path / "key")
    store = Store(tmp_path / "store")

    for path in store.event_files():
        assert tuple(pq.read_schema(path).names) == EVENT_COLUMNS
    assert tuple(pq.read_schema(store.quarantine_files()[0]).names) == QUARANTINE_COLUMNS
    assert len(store.read_quarantine()) == 1
    for path in store.root.rglob("*"):
        if not path.is_file():
            continue
        content = path.read_bytes()
        for name, value in EXTRA.items():
            assert name.encode() not in content, path
            assert value.encode() not in content, path
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            texts = {str(v) for column in table.columns for v in column.to_pylist()}
            assert texts.isdisjoint(EXTRA.values()), path


def test_the_stored_columns_are_exactly_those_the_algorithms_declare() -> None:
    assert tuple(EVENTS_SCHEMA.names) == EVENT_COLUMNS
    assert "user_id" not in EVENT_COLUMNS
