"""The store's folder layout and readers."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from cellcensus.errors import CellcensusError
from cellcensus.holder.store import Store


def test_paths_follow_the_documented_layout(tmp_path):
    store = Store(tmp_path)
    assert store == Store(str(tmp_path))
    assert store.events_dir == tmp_path / "events"
    assert store.cells_path == tmp_path / "cells.parquet"
    assert store.metadata_path == tmp_path / "metadata.json"
    assert store.quarantine_dir == tmp_path / "quarantine"
    assert store.allocation_path() == tmp_path / "allocation" / "municipality.parquet"
    assert store.allocation_path("grid_1km") == tmp_path / "allocation" / "grid_1km.parquet"
    assert store.day_path(date(2011, 3, 27)) == (
        tmp_path / "events" / "date=2011-03-27" / "part-0.parquet"
    )


@pytest.mark.parametrize("level", ["../escape", "Municipality", "", "a/b"])
def test_an_area_level_must_be_a_lowercase_identifier(tmp_path, level):
    with pytest.raises(CellcensusError, match="not a level name"):
        Store(tmp_path).allocation_path(level)


def test_an_empty_store_says_to_ingest_first(tmp_path):
    store = Store(tmp_path / "nothing")
    assert store.days() == []
    assert store.read_events().empty
    for read in (store.metadata, store.read_cells, store.read_allocation, store.ingest_report):
        with pytest.raises(CellcensusError, match="run `cellcensus ingest"):
            read()


def test_days_ignore_foreign_folders(tmp_path: Path):
    store = Store(tmp_path)
    (store.events_dir / "date=2011-03-22").mkdir(parents=True)
    store.day_path(date(2011, 3, 22)).write_bytes(b"")
    (store.events_dir / "date=2011-03-23").mkdir()  # no file: not a day
    (store.events_dir / "notes").mkdir()
    assert store.days() == [date(2011, 3, 22)]
