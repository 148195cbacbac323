"""Retention: `store purge --before` deletes old days whole, and records every purge."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from pathlib import Path

import pytest
from deliveries import METADATA, USERS, event, snapshot, write_delivery  # type: ignore[import-not-found]
from typer.testing import CliRunner

from cellcensus.cli import app
from cellcensus.errors import CellcensusError
from cellcensus.holder.store import Store, ingest_dataset
from cellcensus.holder.store.retention import purge

runner = CliRunner()

ROWS = [
    event(user=USERS[0], timestamp="2011-03-21T08:00:00Z"),
    event(user=USERS[1], timestamp="2011-03-22T08:00:00Z"),
    event(user=USERS[2], timestamp="2011-03-22T09:00:00Z"),
    event(user=USERS[0], timestamp="2011-03-24T08:00:00Z"),
    event(user=USERS[1], timestamp="2011-03-26T08:00:00Z"),
    event(user=USERS[0], timestamp="2011-03-22T10:00:00Z", kind="fax"),  # quarantined, 22nd
    event(user=USERS[0], timestamp="2011-03-26T10:00:00Z", kind="fax"),  # quarantined, 26th
    event(user=USERS[1], timestamp="not a time"),  # quarantined, no local day
]


def _store(tmp_path: Path) -> Store:
    dataset = write_delivery(tmp_path / "dataset", rows=ROWS)
    ingest_dataset(dataset=dataset, store=tmp_path / "store", key_file=tmp_path / "key")
    return Store(tmp_path / "store")


def test_purge_deletes_the_days_before_and_keeps_the_rest_untouched(tmp_path):
    store = _store(tmp_path)
    kept_before = {
        name: content
        for name, content in snapshot(store.events_dir).items()
        if name >= "date=2011-03-24"
    }
    record = purge(store=store.root, before=date(2011, 3, 24))

    assert store.days() == [date(2011, 3, 24), date(2011, 3, 26)]
    assert snapshot(store.events_dir) == kept_before
    assert record.days == ["2011-03-21", "2011-03-22"]
    assert record.event_rows_deleted == 3
    assert record.event_rows_deleted_by_day == {"2011-03-21": 1, "2011-03-22": 2}
    quarantine = store.read_quarantine()
    assert record.quarantine_rows_deleted == 1  # the fax of the 22nd
    assert sorted(quarantine["reason"]) == ["malformed_value", "unknown_event_type"]
    assert str(quarantine.loc[quarantine.reason == "unknown_event_type", "local_date"].iloc[0]) == (
        "2011-03-26"
    )
    assert store.purges() == [asdict(record)]
    assert not [path for path in store.root.iterdir() if path.name.startswith(".purge")]


def test_a_purge_past_a_delivery_removes_its_whole_quarantine(tmp_path):
    store = _store(tmp_path)
    record = purge(store=store.root, before=date(2011, 3, 28))
    assert store.days() == []
    assert record.quarantine_rows_deleted == 3
    assert record.quarantine_periods_removed == ["period=2011-03-21_2011-03-27"]
    assert not store.quarantine_files()
    assert len(store.read_events()) == 0


def test_quarantined_rows_dated_before_the_cutoff_go_even_from_a_later_delivery(tmp_path):
    metadata = {**METADATA, "period": {"start": "2011-03-24", "end": "2011-03-27"}}
    rows = [event(timestamp="2011-03-25T08:00:00Z"), event(timestamp="2011-03-20T08:00:00Z")]
    dataset = write_delivery(tmp_path / "later", rows=rows, metadata=metadata)
    ingest_dataset(dataset=dataset, store=tmp_path / "store", key_file=tmp_path / "key")
    store = Store(tmp_path / "store")
    assert list(store.read_quarantine()["reason"]) == ["outside_period"]

    record = purge(store=store.root, before=date(2011, 3, 22))
    assert record.days == [] and record.quarantine_rows_deleted == 1
    assert record.quarantine_periods_removed == ["period=2011-03-24_2011-03-27"]  # emptied
    assert store.days() == [date(2011, 3, 25)]
    assert len(store.read_quarantine()) == 0


def test_purges_are_appended_and_a_dry_run_changes_nothing(tmp_path):
    store = _store(tmp_path)
    files = snapshot(store.root)
    dry = purge(store=store.root, before=date(2011, 3, 23), dry_run=True)
    assert snapshot(store.root) == files
    assert dry.days == ["2011-03-21", "2011-03-22"]

    purge(store=store.root, before=date(2011, 3, 22))
    first_line = store.purges_path.read_text(encoding="utf-8")
    purge(store=store.root, before=date(2011, 3, 25))
    purge(store=store.root, before=date(2011, 3, 25))  # nothing left: still recorded
    assert store.purges_path.read_text(encoding="utf-8").startswith(first_line)
    purges = store.purges()
    assert [entry["days"] for entry in purges] == [["2011-03-21"], ["2011-03-22", "2011-03-24"], []]
    assert [entry["before"] for entry in purges] == ["2011-03-22", "2011-03-25", "2011-03-25"]
    assert all(entry["purged_at"].endswith("+00:00") for entry in purges)


def test_a_purge_that_cannot_be_recorded_leaves_the_store_as_it_was(tmp_path):
    store = _store(tmp_path)
    store.purges_path.mkdir()  # the record cannot be appended to a folder
    files = snapshot(store.root)
    with pytest.raises(IsADirectoryError):
        purge(store=store.root, before=date(2011, 3, 25))
    assert snapshot(store.root) == files
    assert store.days() == [date(2011, 3, d) for d in (21, 22, 24, 26)]
    assert not [path for path in store.root.iterdir() if path.name.startswith(".purge")]


def test_purge_refuses_what_is_not_a_store(tmp_path):
    with pytest.raises(CellcensusError, match="does not exist"):
        purge(store=tmp_path / "nothing", before=date(2011, 3, 25))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CellcensusError, match="is not a store"):
        purge(store=tmp_path / "empty", before=date(2011, 3, 25))


def test_the_cli_purges_and_reports_user_mistakes_in_one_line(tmp_path):
    store = _store(tmp_path)
    result = runner.invoke(
        app, ["store", "purge", "--before", "2011-03-24", "--store", str(store.root)]
    )
    assert result.exit_code == 0, result.output
    assert "days deleted" in result.output and "2 (2011-03-21 to 2011-03-22)" in result.output
    assert len(store.purges()) == 1

    for arguments, message in (
        (["--before", "2011-02-30", "--store", str(store.root)], "is not a date"),
        (["--before", "last year", "--store", str(store.root)], "is not a date"),
        (["--before", "2011-03-25", "--store", str(tmp_path / "gone")], "does not exist"),
    ):
        refused = runner.invoke(app, ["store", "purge", *arguments])
        assert refused.exit_code == 2, refused.output
        assert message in refused.output and "Traceback" not in refused.output
        assert len(refused.output.strip().splitlines()) == 1
    assert len(store.purges()) == 1
    assert store.days() == [date(2011, 3, 24), date(2011, 3, 26)]


def test_store_info_lists_days_rows_and_purges(tmp_path, monkeypatch):
    monkeypatch.setenv("CELLCENSUS_KEY_FILE", str(tmp_path / "key"))
    store = _store(tmp_path)
    purge(store=store.root, before=date(2011, 3, 22))
    result = runner.invoke(app, ["store", "info", "--store", str(store.root)])
    assert result.exit_code == 0, result.output
    assert "3 (2011-03-22 to 2011-03-26)" in result.output
    assert "(last: before 2011-03-22)" in result.output
    assert "first key" in result.output
