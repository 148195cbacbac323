"""Re-ingesting replaces the days of the period: idempotent, no double counting."""

from __future__ import annotations

import json
from datetime import date

import pytest
from deliveries import (  # type: ignore[import-not-found]
    CELLS,
    METADATA,
    USERS,
    event,
    good_events,
    snapshot,
    write_delivery,
)

from cellcensus.errors import InputDataError
from cellcensus.holder.store import Store, ingest_dataset

ROWS = [*good_events(), event(user=USERS[0], timestamp="2011-03-24T08:00:00Z", kind="fax")]


def _ingest(tmp_path, dataset, **options):
    return ingest_dataset(
        dataset=dataset, store=tmp_path / "store", key_file=tmp_path / "key", **options
    )


def test_ingesting_the_same_delivery_twice_changes_nothing(tmp_path):
    dataset = write_delivery(tmp_path / "dataset", rows=ROWS)
    first = _ingest(tmp_path, dataset)
    files = snapshot(tmp_path / "store")
    second = _ingest(tmp_path, dataset)

    assert {**files, "ingest_report.json": b""} == {
        **snapshot(tmp_path / "store"),
        "ingest_report.json": b"",
    }
    replaced = {"seconds": 0, "days_replaced": ["2011-03-22"]}
    assert {**first.to_dict(), **replaced} == {**second.to_dict(), "seconds": 0}
    store = Store(tmp_path / "store")
    assert len(store.read_events()) == 3
    assert len(store.read_quarantine()) == 1
    assert not [path for path in store.root.iterdir() if path.name.startswith(".staging")]


def test_a_corrected_delivery_replaces_the_days_of_its_period(tmp_path):
    _ingest(tmp_path, write_delivery(tmp_path / "first", rows=ROWS))
    corrected = [good_events()[0], event(user=USERS[1], timestamp="2011-03-25T08:00:00Z")]
    report = _ingest(tmp_path, write_delivery(tmp_path / "second", rows=corrected))

    store = Store(tmp_path / "store")
    assert report.rows_stored == 2
    assert store.days() == [date(2011, 3, 22), date(2011, 3, 25)]
    assert len(store.read_events()) == 2
    assert len(store.read_quarantine()) == 0  # the period's quarantine was replaced too


def test_another_period_adds_its_days_beside_the_others(tmp_path):
    _ingest(tmp_path, write_delivery(tmp_path / "march", rows=ROWS))
    april = METADATA | {"period": {"start": "2011-04-01", "end": "2011-04-03"}}
    rows = [event(timestamp="2011-04-02T08:00:00Z"), event(timestamp="2011-04-02T08:00:00Z")]
    report = _ingest(tmp_path, write_delivery(tmp_path / "april", rows=rows, metadata=april))

    store = Store(tmp_path / "store")
    assert report.rows_quarantined_by_reason["duplicate"] == 1
    assert store.days() == [date(2011, 3, 22), date(2011, 4, 2)]
    assert len(store.read_events()) == 4
    assert sorted(path.parent.name for path in store.quarantine_dir.rglob("*.parquet")) == [
        "period=2011-03-21_2011-03-27",
        "period=2011-04-01_2011-04-03",
    ]
    assert store.metadata()["period"] == april["period"]
    assert json.loads(store.report_path.read_text())["period_start"] == "2011-04-01"


def test_the_report_names_the_days_a_delivery_replaced_and_those_it_emptied(tmp_path):
    first = _ingest(tmp_path, write_delivery(tmp_path / "first", rows=ROWS))
    assert first.days_replaced == []
    later = [event(user=USERS[1], timestamp="2011-03-25T08:00:00Z")]
    report = _ingest(tmp_path, write_delivery(tmp_path / "second", rows=later), empty_days=True)

    assert report.days_replaced == ["2011-03-22"]
    assert report.days_emptied == ["2011-03-22"]
    assert Store(tmp_path / "store").days() == [date(2011, 3, 25)]


def test_a_period_wider_than_the_events_does_not_empty_the_days_kept(tmp_path):
    # An operator's typo in the period: the delivery holds the 25th only, the store four days
    # of the period it declares, which it would delete.
    kept = ["2011-03-22", "2011-03-23", "2011-03-24", "2011-03-26"]
    rows = [event(timestamp=f"{day}T08:00:00Z") for day in kept]
    _ingest(tmp_path, write_delivery(tmp_path / "first", rows=rows))
    files = snapshot(tmp_path / "store")
    later = write_delivery(
        tmp_path / "second", rows=[event(user=USERS[1], timestamp="2011-03-25T08:00:00Z")]
    )
    with pytest.raises(InputDataError) as refused:
        _ingest(tmp_path, later)

    message = str(refused.value)
    assert "4 day(s)" in message
    assert "2011-03-22 to 2011-03-24, 2011-03-26" in message
    assert "--empty-days" in message
    assert "empty_days=True" in message
    assert snapshot(tmp_path / "store") == files
    store = Store(tmp_path / "store")
    assert [day.isoformat() for day in store.days()] == kept
    assert len(store.read_events()) == 4

    report = _ingest(tmp_path, later, empty_days=True)  # meant: the days are emptied
    assert report.days_replaced == kept
    assert report.days_emptied == kept
    assert store.days() == [date(2011, 3, 25)]


def test_a_delivery_that_refills_every_day_kept_needs_no_option(tmp_path):
    _ingest(tmp_path, write_delivery(tmp_path / "first", rows=ROWS))
    rows = [event(user=USERS[1]), event(user=USERS[1], timestamp="2011-03-26T08:00:00Z")]
    report = _ingest(tmp_path, write_delivery(tmp_path / "second", rows=rows))
    assert report.days_replaced == ["2011-03-22"]
    assert report.days_emptied == []


def test_a_cells_table_without_the_cells_of_the_days_kept_is_refused(tmp_path):
    # An export of the network as it stands now leaves out retired cells: the days kept from
    # earlier deliveries use them, and their events would drop out of every release.
    _ingest(tmp_path, write_delivery(tmp_path / "march", rows=ROWS))
    files = snapshot(tmp_path / "store")
    april = METADATA | {"period": {"start": "2011-04-01", "end": "2011-04-03"}}
    rows = [event(timestamp="2011-04-02T08:00:00Z")]
    current = CELLS[CELLS.cell_id != "D"]  # D, retired after 2011-03-22, the day kept
    delivery = write_delivery(tmp_path / "april", rows=rows, cells=current, metadata=april)
    with pytest.raises(InputDataError, match=r"lacks 1 cell\(s\) .*: 'D'.* valid_to"):
        _ingest(tmp_path, delivery)
    assert snapshot(tmp_path / "store") == files

    unused = CELLS[CELLS.cell_id != "C"]  # C, valid from 2011-03-23: no day kept had it
    report = _ingest(
        tmp_path, write_delivery(tmp_path / "later", rows=rows, cells=unused, metadata=april)
    )
    assert report.rows_stored == 1


def test_a_delivery_of_no_valid_row_does_not_empty_the_days_kept(tmp_path):
    # A wrong timestamp format quarantines every row: the days kept stay as they were.
    _ingest(tmp_path, write_delivery(tmp_path / "first", rows=ROWS))
    files = snapshot(tmp_path / "store")
    broken = [event(user=user, timestamp="22/03/2011 08:00") for user in USERS[:2]]
    with pytest.raises(InputDataError, match=r"none of the delivery's 2 rows .*2 malformed_value"):
        _ingest(tmp_path, write_delivery(tmp_path / "broken", rows=broken))
    assert snapshot(tmp_path / "store") == files

    # Where the store keeps no day of the period, the rows are quarantined as ever.
    april = METADATA | {"period": {"start": "2011-04-01", "end": "2011-04-03"}}
    report = _ingest(tmp_path, write_delivery(tmp_path / "april", rows=broken, metadata=april))
    assert report.rows_stored == 0
    assert report.rows_quarantined_by_reason["malformed_value"] == 2
