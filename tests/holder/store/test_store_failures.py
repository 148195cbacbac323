"""A delivery that breaks the contract is refused with one clear line; the store is untouched."""

from __future__ import annotations

import fcntl
import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deliveries import (  # type: ignore[import-not-found]
    CELLS,
    METADATA,
    event,
    events_frame,
    good_events,
    snapshot,
    write_delivery,
)

from cellcensus.errors import InputDataError
from cellcensus.holder.store import ingest_dataset
from cellcensus.holder.store.writer_lock import LOCK_NAME, StoreBusyError


@pytest.fixture
def existing_store(tmp_path):
    """A store holding one earlier delivery."""
    dataset = write_delivery(tmp_path / "earlier", rows=good_events())
    store = tmp_path / "store"
    ingest_dataset(dataset=dataset, store=store, key_file=tmp_path / "key")
    return store


def _refused(tmp_path, store, dataset, *, match):
    before = snapshot(store)
    with pytest.raises(InputDataError, match=match) as raised:
        ingest_dataset(dataset=dataset, store=store, key_file=tmp_path / "key")
    assert snapshot(store) == before
    assert "\n" not in str(raised.value)
    return str(raised.value)


def test_a_missing_required_column_names_file_and_column(tmp_path, existing_store):
    dataset = write_delivery(tmp_path / "new", rows=[event(timestamp="2011-03-23T08:00:00Z")])
    path = dataset / "events" / "part-0.parquet"
    events_frame(good_events(), typed=True).drop(columns="mnc").to_parquet(path)
    message = _refused(tmp_path, existing_store, dataset, match="lacks required column mnc")
    assert str(path) in message


def test_a_csv_named_parquet_is_refused_naming_the_file(tmp_path, existing_store):
    dataset = write_delivery(tmp_path / "new", rows=good_events())
    path = dataset / "events" / "part-0.parquet"
    events_frame(good_events(), typed=False).to_csv(path, index=False)
    message = _refused(tmp_path, existing_store, dataset, match="not Parquet")
    assert str(path) in message


def test_a_failed_first_ingest_leaves_no_store_behind(tmp_path):
    dataset = write_delivery(tmp_path / "new", rows=good_events(), fmt="csv")
    path = dataset / "events" / "part-0.csv"
    events_frame(good_events(), typed=False).drop(columns="user_id").to_csv(path, index=False)
    store = tmp_path / "deep" / "store"
    _refused(tmp_path, store, dataset, match=r"part-0\.csv lacks required column user_id")
    assert not (tmp_path / "deep").exists()


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("part-1.csv", b"PAR1 not really", "Parquet file named .csv"),
        ("part-1.csv.gz", b"user_id,timestamp\n", "not gzip-compressed"),
        ("part-1.csv", b"", "empty or has no header"),
        ("part-1.parquet", b"PAR1truncated", "truncated"),
    ],
)
def test_files_that_are_not_what_their_name_says(tmp_path, existing_store, name, content, match):
    dataset = write_delivery(tmp_path / "new", rows=good_events())
    (dataset / "events" / name).write_bytes(content)
    message = _refused(tmp_path, existing_store, dataset, match=match)
    assert name in message


def test_a_file_of_another_format_among_the_events_is_refused_not_skipped(tmp_path, existing_store):
    dataset = write_delivery(tmp_path / "new", rows=good_events())
    (dataset / "events" / "part-1.csv.bz2").write_bytes(b"BZh9 rows of another day")
    (dataset / "events" / "_SUCCESS").write_bytes(b"")  # a job's marker, not data
    message = _refused(tmp_path, existing_store, dataset, match="neither .parquet nor .csv")
    assert "part-1.csv.bz2" in message
    (dataset / "events" / "part-1.csv.bz2").unlink()
    report = ingest_dataset(dataset=dataset, store=existing_store, key_file=tmp_path / "key")
    assert report.rows_stored == len(good_events())


def test_a_gzip_file_named_csv_is_refused(tmp_path, existing_store):
    dataset = write_delivery(tmp_path / "new", rows=good_events(), fmt="csv.gz")
    gz = dataset / "events" / "part-0.csv.gz"
    gz.rename(dataset / "events" / "part-0.csv")
    _refused(tmp_path, existing_store, dataset, match="rename it to .csv.gz")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"market_share": None}, "lacks market_share"),
        ({"sampling_fraction": 1.5}, "sampling_fraction"),
        ({"roaming_share": "35%"}, "'roaming_share' is '35%'; it must be a number in"),
        ({"timezone": "Mars/Olympus"}, "not an IANA time zone"),
        ({"period": {"start": "2011-03-27", "end": "2011-03-21"}}, "ends .* before it starts"),
        ({"period": "March"}, "'period' must be"),
    ],
)
def test_metadata_is_checked_before_anything(tmp_path, existing_store, change, match):
    metadata = {key: value for key, value in (METADATA | change).items() if value is not None}
    dataset = write_delivery(tmp_path / "new", rows=good_events(), metadata=metadata)
    message = _refused(tmp_path, existing_store, dataset, match=match)
    assert "metadata.json" in message


def test_a_dataset_without_metadata_or_events_is_refused(tmp_path, existing_store):
    dataset = write_delivery(tmp_path / "new", rows=good_events())
    (dataset / "metadata.json").unlink()
    _refused(tmp_path, existing_store, dataset, match="metadata.json does not exist")
    dataset = write_delivery(tmp_path / "new2", rows=good_events())
    for path in (dataset / "events").iterdir():
        path.unlink()
    _refused(tmp_path, existing_store, dataset, match="no .parquet, .csv or .csv.gz files")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"latitude": [None, 50.8, 51.0, 50.6]}, "have no latitude"),
        ({"latitude": ["north", "50.8", "51.0", "50.6"]}, "latitude 'north' of cell 'A'"),
        ({"longitude": [400.0, 4.3, 3.7, 5.5]}, "outside WGS84"),
        (
            {
                "valid_from": ["2011-03-30", None, None, None],
                "valid_to": ["2011-03-01", None, None, None],
            },
            "ends before it starts",
        ),
        ({"cell_id": ["A", "A", "C", "D"]}, "cell 'A' has 2 different rows valid from the start"),
    ],
)
def test_a_broken_cells_table_is_refused(tmp_path, existing_store, change, match):
    dataset = write_delivery(tmp_path / "new", rows=good_events())
    cells = CELLS.copy()
    for column, values in change.items():
        cells[column] = values
    cells.to_csv(dataset / "cells.csv", index=False)
    (dataset / "cells.parquet").unlink()
    message = _refused(tmp_path, existing_store, dataset, match=match)
    assert "cells.csv" in message


def test_a_column_of_the_wrong_type_is_refused(tmp_path, existing_store):
    dataset = write_delivery(tmp_path / "new", rows=good_events())
    frame = events_frame(good_events(), typed=True)
    frame["timestamp"] = frame["timestamp"].dt.date
    frame.to_parquet(dataset / "events" / "part-0.parquet")
    _refused(tmp_path, existing_store, dataset, match="column timestamp has type DATE")


@pytest.mark.parametrize("kind", [pa.float64(), pa.decimal128(22, 3)])
def test_identifiers_as_fractional_numbers_are_refused(tmp_path, existing_store, kind):
    # As text, 32470000001.0 is another subscriber than the 32470000001 of other deliveries.
    dataset = write_delivery(tmp_path / "new", rows=good_events())
    table = pa.Table.from_pandas(events_frame(good_events(), typed=True), preserve_index=False)
    users = pa.array([int(user) for user in table.column("user_id").to_pylist()]).cast(kind)
    table = table.set_column(table.schema.get_field_index("user_id"), "user_id", users)
    pq.write_table(table, dataset / "events" / "part-0.parquet")
    _refused(tmp_path, existing_store, dataset, match="column user_id has type (DOUBLE|DECIMAL)")


def test_the_report_file_of_the_earlier_ingest_survives(tmp_path, existing_store):
    report = json.loads((existing_store / "ingest_report.json").read_text())
    dataset = write_delivery(tmp_path / "new", rows=good_events())
    (dataset / "cells.parquet").write_bytes(b"nonsense")
    _refused(tmp_path, existing_store, dataset, match="cells")
    assert json.loads((existing_store / "ingest_report.json").read_text()) == report
    assert pd.read_parquet(existing_store / "events").shape[0] == 3


def _without_mnc(dataset):
    events_frame(good_events(), typed=True).drop(columns="mnc").to_parquet(
        dataset / "events" / "part-0.parquet"
    )


def _timestamp_as_date(dataset):
    frame = events_frame(good_events(), typed=True)
    frame["timestamp"] = frame["timestamp"].dt.date
    frame.to_parquet(dataset / "events" / "part-0.parquet")


def _without_market_share(dataset):
    metadata = {key: value for key, value in METADATA.items() if key != "market_share"}
    (dataset / "metadata.json").write_text(json.dumps(metadata), encoding="utf-8")


def _without_metadata(dataset):
    (dataset / "metadata.json").unlink()


@pytest.mark.parametrize(
    "breach",
    [_without_mnc, _timestamp_as_date, _without_market_share, _without_metadata],
    ids=["missing column", "wrong type", "missing metadata key", "no metadata.json"],
)
def test_a_breach_of_the_contract_points_to_its_document(tmp_path, existing_store, breach):
    dataset = write_delivery(tmp_path / "new", rows=good_events())
    breach(dataset)
    message = _refused(tmp_path, existing_store, dataset, match="docs/schema.md")
    assert "docs/schema.md in the cellcensus repository" in message


@pytest.mark.parametrize("what", ["missing", "file"])
def test_a_dataset_that_is_no_folder_is_refused_saying_which(tmp_path, existing_store, what):
    dataset = tmp_path / "delivery"
    if what == "file":
        dataset.write_text("not a delivery")
    expected = "does not exist" if what == "missing" else "is not a folder"
    _refused(tmp_path, existing_store, dataset, match=f"dataset {dataset} {expected}")


def test_an_ingest_removes_what_a_killed_one_left_and_two_never_write_at_once(
    tmp_path, existing_store
):
    left = existing_store / ".staging-0123" / "spill"  # a killed ingest's spill files
    left.mkdir(parents=True)
    (left / "duckdb_temp_block-0.block").write_text("32470000001")  # a raw id, as spilled
    with (existing_store / LOCK_NAME).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another writer at work
        dataset = write_delivery(tmp_path / "new", rows=good_events())
        before = snapshot(existing_store)
        with pytest.raises(StoreBusyError, match=f"store {existing_store} is locked by another"):
            ingest_dataset(dataset=dataset, store=existing_store, key_file=tmp_path / "key")
        assert snapshot(existing_store) == before
    ingest_dataset(dataset=dataset, store=existing_store, key_file=tmp_path / "key")
    assert not list(existing_store.glob(".staging-*"))
    assert not (existing_store / LOCK_NAME).exists()


def test_a_short_line_of_the_cells_table_is_refused_not_padded(tmp_path, existing_store):
    # Cell D retired on 2011-03-22, its line cut before valid_to: padded with an empty
    # field it would read as a cell still in service.
    dataset = write_delivery(tmp_path / "new", rows=good_events())
    lines = CELLS.to_csv(index=False).splitlines()
    assert lines[4].endswith(",2011-03-22")
    lines[4] = lines[4].rsplit(",", 1)[0]
    (dataset / "cells.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (dataset / "cells.parquet").unlink()
    message = _refused(tmp_path, existing_store, dataset, match="line 5 of cells.csv has 9 fields")
    assert "where its header has 10" in message


def test_a_delivery_is_refused_as_its_own_store(tmp_path):
    dataset = write_delivery(tmp_path / "delivery", rows=good_events())
    before = snapshot(dataset)
    with pytest.raises(InputDataError, match="holds the delivery's events") as raised:
        ingest_dataset(dataset=dataset, store=dataset, key_file=tmp_path / "key")
    assert "give a --store folder apart from the delivery" in str(raised.value)
    assert snapshot(dataset) == before  # its raw events kept, not replaced by pseudonyms
    assert not (tmp_path / "key").exists()
