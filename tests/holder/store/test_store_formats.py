"""Parquet, CSV, gzip CSV and hive-partitioned folders give the same store; stored types."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deliveries import (  # type: ignore[import-not-found]
    CELLS,
    END,
    METADATA,
    START,
    USERS,
    event,
    events_frame,
    good_events,
    write_delivery,
)

from cellcensus.errors import InputDataError
from cellcensus.holder.store import EVENT_COLUMNS, Store, device_id, ingest, ingest_dataset

ROWS = [
    *good_events(),
    event(user=USERS[0], timestamp="2011-03-24T12:00:00+01:00", cell="C", kind="call_in"),
    event(user=USERS[1], timestamp="2011-03-25T23:30:00Z", cell="A", tac=None),
]


def _stored(tmp_path, fmt):
    dataset = write_delivery(tmp_path / f"dataset-{fmt}", rows=ROWS, fmt=fmt)
    store = tmp_path / f"store-{fmt}"
    ingest_dataset(dataset=dataset, store=store, key_file=tmp_path / "key")
    return Store(store).read_events()


def test_csv_and_gzip_csv_give_the_same_store_as_parquet(tmp_path):
    parquet = _stored(tmp_path, "parquet")
    assert len(parquet) == len(ROWS)
    pd.testing.assert_frame_equal(_stored(tmp_path, "csv"), parquet)
    pd.testing.assert_frame_equal(_stored(tmp_path, "csv.gz"), parquet)


def test_stored_columns_have_the_contract_types(tmp_path):
    _stored(tmp_path, "csv")
    store = Store(tmp_path / "store-csv")
    for path in store.event_files():
        schema = pq.read_schema(path)
        assert tuple(schema.names) == EVENT_COLUMNS
        types = {field.name: field.type for field in schema}
        assert types == {
            "device_id": pa.int64(),
            "timestamp": pa.timestamp("us", tz="UTC"),
            "local_date": pa.date32(),
            "local_hour": pa.int8(),
            "cell_id": pa.string(),
            "event_type": pa.string(),
            "mcc": pa.int32(),
            "mnc": pa.int32(),
            "tac": pa.string(),
        }
    cells = pq.read_schema(store.cells_path)
    assert cells.field("latitude").type == pa.float64()
    assert cells.field("valid_from").type == pa.date32()


def test_days_are_partitions_sorted_by_device_and_time(tmp_path):
    events = _stored(tmp_path, "parquet")
    store = Store(tmp_path / "store-parquet")
    assert store.days() == [date(2011, 3, 22), date(2011, 3, 24), date(2011, 3, 26)]
    for day, path in zip(store.days(), store.event_files(), strict=True):
        assert path.parent.name == f"date={day.isoformat()}"
        frame = pq.read_table(path).to_pandas()
        assert (frame["local_date"] == day).all()
        assert frame.equals(frame.sort_values(["device_id", "timestamp"], ignore_index=True))
    # 23:30 UTC on the 25th is 00:30 local on the 26th.
    late = events[events["timestamp"] == pd.Timestamp("2011-03-25T23:30:00Z")]
    assert late[["local_date", "local_hour"]].to_dict("records") == [
        {"local_date": date(2011, 3, 26), "local_hour": 0}
    ]
    assert late["tac"].isna().all()


def test_a_hive_partitioned_folder_of_files_is_read_as_one_table(tmp_path):
    folder = tmp_path / "events"
    frame = events_frame(ROWS, typed=True)
    for index, (day, part) in enumerate(frame.groupby(frame["timestamp"].dt.date)):
        target = folder / f"date={day.isoformat()}"
        target.mkdir(parents=True)
        if index % 2:
            part.to_parquet(target / "part-0.parquet", index=False)
        else:
            events_frame(ROWS, typed=False).iloc[part.index].to_csv(
                target / "part-0.csv", index=False
            )
    (folder / "_SUCCESS").touch()
    CELLS.to_csv(tmp_path / "cells.csv", index=False)
    report = ingest(
        events=folder,
        cells=tmp_path / "cells.csv",
        store=tmp_path / "store",
        key_file=tmp_path / "key",
        period=(START, END),
        metadata=METADATA,
    )
    assert report.rows_read == report.rows_stored == len(ROWS)
    assert Store(tmp_path / "store").metadata() == METADATA
    pd.testing.assert_frame_equal(
        Store(tmp_path / "store").read_events(), _stored(tmp_path, "parquet")
    )


def test_csv_with_semicolons_crlf_and_a_byte_order_mark(tmp_path):
    dataset = write_delivery(tmp_path / "dataset", rows=ROWS, fmt="csv")
    path = dataset / "events" / "part-0.csv"
    text = path.read_text(encoding="utf-8").replace(",", ";").replace("\n", "\r\n")
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    report = ingest_dataset(dataset=dataset, store=tmp_path / "store", key_file=tmp_path / "key")
    assert report.rows_stored == len(ROWS)


def test_csv_lines_ending_with_a_delimiter_are_read(tmp_path):
    # Spreadsheet exports end every line with a delimiter: an empty-named column, not read.
    dataset = write_delivery(tmp_path / "dataset", rows=ROWS, fmt="csv")
    path = dataset / "events" / "part-0.csv"
    path.write_text(path.read_text(encoding="utf-8").replace("\n", ",\n"), encoding="utf-8")
    report = ingest_dataset(dataset=dataset, store=tmp_path / "store", key_file=tmp_path / "key")
    assert report.rows_stored == len(ROWS)
    pd.testing.assert_frame_equal(
        Store(tmp_path / "store").read_events(), _stored(tmp_path, "parquet")
    )


def test_a_csv_field_holding_a_quoted_line_break_is_read(tmp_path):
    # Standard CSV: the value keeps its line break (here a cell that the cells table lacks).
    rows = [*good_events(), event(cell="A\nB")]
    dataset = write_delivery(tmp_path / "dataset", rows=rows, fmt="csv")
    report = ingest_dataset(dataset=dataset, store=tmp_path / "store", key_file=tmp_path / "key")
    assert report.rows_stored == 3
    assert report.rows_quarantined_by_reason["unknown_cell"] == 1
    assert list(Store(tmp_path / "store").read_quarantine()["cell_id"]) == ["A\nB"]


def test_a_csv_column_named_twice_is_refused_naming_it(tmp_path):
    dataset = write_delivery(tmp_path / "dataset", rows=ROWS, fmt="csv")
    path = dataset / "events" / "part-0.csv"
    header, *lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join([f"{header},mcc", *(f"{line},208" for line in lines)]) + "\n")
    with pytest.raises(InputDataError, match=r"part-0\.csv has column mcc twice"):
        ingest_dataset(dataset=dataset, store=tmp_path / "store", key_file=tmp_path / "key")
    assert not (tmp_path / "store").exists()


def test_timestamps_as_text_with_offsets_and_naive_timestamps_are_utc(tmp_path):
    rows = [
        event(timestamp="2011-03-22T09:00:00+01:00"),
        event(timestamp="2011-03-22 08:00:00", cell="B"),  # no offset: UTC
        event(timestamp="2011-03-22T08:00:00.000Z", cell="D"),
    ]
    dataset = write_delivery(tmp_path / "dataset", rows=rows, fmt="csv")
    ingest_dataset(dataset=dataset, store=tmp_path / "store", key_file=tmp_path / "key")
    events = Store(tmp_path / "store").read_events()
    assert set(events["timestamp"]) == {pd.Timestamp("2011-03-22T08:00:00Z")}
    assert set(events["local_hour"]) == {9}


def test_codes_as_text_with_spaces_or_a_float_exports_zero_fraction_are_read(tmp_path):
    rows = [event(mcc=" 206 ", mnc="10.0"), event(mcc="206.", mnc="010", cell="B")]
    dataset = write_delivery(tmp_path / "dataset", rows=rows, fmt="csv")
    report = ingest_dataset(dataset=dataset, store=tmp_path / "store", key_file=tmp_path / "key")
    assert report.rows_stored == 2
    events = Store(tmp_path / "store").read_events()
    assert set(events["mcc"]) == {206}
    assert set(events["mnc"]) == {10}


def test_a_cell_row_delivered_twice_is_kept_once(tmp_path):
    cells = pd.concat([CELLS, CELLS.iloc[[0]]], ignore_index=True)
    dataset = write_delivery(tmp_path / "dataset", rows=good_events(), cells=cells)
    ingest_dataset(dataset=dataset, store=tmp_path / "store", key_file=tmp_path / "key")
    assert sorted(Store(tmp_path / "store").read_cells()["cell_id"]) == ["A", "B", "C", "D"]


def test_parquet_with_naive_timestamps_and_integer_tac(tmp_path):
    frame = events_frame(good_events(), typed=True)
    frame["timestamp"] = frame["timestamp"].dt.tz_localize(None)
    frame["tac"] = frame["tac"].astype("int64")
    dataset = write_delivery(tmp_path / "dataset", rows=good_events())
    frame.to_parquet(dataset / "events" / "part-0.parquet", index=False)
    ingest_dataset(dataset=dataset, store=tmp_path / "store", key_file=tmp_path / "key")
    events = Store(tmp_path / "store").read_events()
    assert sorted(events["timestamp"]) == sorted(
        pd.to_datetime([row["timestamp"] for row in good_events()], utc=True)
    )
    assert set(events["tac"]) == {"35000001"}


def test_ingest_without_metadata_uses_brussels_time(tmp_path):
    dataset = write_delivery(tmp_path / "dataset", rows=good_events())
    report = ingest(
        events=dataset / "events",
        cells=dataset / "cells.parquet",
        store=tmp_path / "store",
        key_file=tmp_path / "key",
        period=(START, END),
    )
    assert report.rows_stored == 3
    assert Store(tmp_path / "store").metadata() == {
        "timezone": "Europe/Brussels",
        "period": {"start": "2011-03-21", "end": "2011-03-27"},
    }


@pytest.mark.parametrize("fmt", ["parquet", "csv", "csv.gz"])
def test_device_ids_are_the_keyed_pseudonyms_of_the_users(tmp_path, fmt):
    events = _stored(tmp_path, fmt)
    key = (tmp_path / "key").read_bytes()
    assert set(events["device_id"]) == {device_id(user_id=user, key=key) for user in USERS}
