"""A multi-day delivery goes through the staged, day-by-day path: each day file is exactly its
valid rows, deduplicated and sorted; the quarantine keeps every rejected row's text; the report
adds up. The expectation is computed here, row by row, independently of DuckDB."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from deliveries import END, START, USERS, event, write_delivery  # type: ignore[import-not-found]

from cellcensus.holder.store import Store, device_id, ingest_dataset

BRUSSELS = ZoneInfo("Europe/Brussels")
KINDS = ("call_out", "call_in", "sms_out", "sms_in", "data")
ODD_TEXT = 'Z "quoted", back\\slash, é'
"""An unknown cell id that a text column must keep exactly, through staging and back."""


def _valid_rows() -> list[dict[str, object]]:
    """Events of three users on every day of the period, some at local midnight's edges."""
    rows = []
    moment = datetime(2011, 3, 20, 23, 30, tzinfo=UTC)  # 00:30 local on the 21st
    step = timedelta(hours=5, minutes=17)
    index = 0
    while moment.astimezone(BRUSSELS).date() <= END:
        rows.append(
            event(
                user=USERS[index % 3],
                timestamp=moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                cell="AB"[index % 2],
                kind=KINDS[index % len(KINDS)],
                tac=f"{35000000 + index % 4:08d}",
            )
        )
        moment += step
        index += 1
    return rows


def _expected_day_files(rows: list[dict[str, object]], key: bytes) -> dict[date, pd.DataFrame]:
    """The stored columns of valid rows, exact duplicates removed, sorted as a day file is."""
    records = []
    for row in rows:
        moment = datetime.fromisoformat(str(row["timestamp"]).replace("Z", "+00:00"))
        local = moment.astimezone(BRUSSELS)
        records.append(
            {
                "device_id": device_id(user_id=str(row["user_id"]), key=key),
                "timestamp": pd.Timestamp(moment),
                "local_date": local.date(),
                "local_hour": local.hour,
                "cell_id": row["cell_id"],
                "event_type": row["event_type"],
                "mcc": row["mcc"],
                "mnc": row["mnc"],
                "tac": row["tac"],
            }
        )
    frame = pd.DataFrame(records).drop_duplicates()
    order = ["device_id", "timestamp", "cell_id", "event_type", "mcc", "mnc", "tac"]
    return {
        cast(date, day): group.sort_values(order).reset_index(drop=True)
        for day, group in frame.groupby("local_date")
    }


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_every_day_file_is_its_valid_rows_deduplicated_and_sorted(tmp_path, fmt):
    valid = _valid_rows()
    duplicates = [valid[1], valid[len(valid) // 2], valid[-1], valid[-1]]  # on three days
    rejected = [
        event(cell=ODD_TEXT, timestamp="2011-03-24T12:00:00Z"),
        event(kind="fax", timestamp="2011-03-26T12:00:00Z"),
        event(cell="C", timestamp="2011-03-21T12:00:00Z"),  # C starts on the 23rd
        event(timestamp="2011-03-28T12:00:00Z"),
        event(mcc="two-o-six", timestamp="2011-03-25T12:00:00Z"),
    ]
    rows = duplicates[:2] + valid + rejected + duplicates[2:]
    dataset = write_delivery(tmp_path / "dataset", rows=rows, fmt=fmt)
    report = ingest_dataset(
        dataset=dataset, store=tmp_path / "store", key_file=tmp_path / "key", memory_limit="64MB"
    )
    store = Store(tmp_path / "store")
    expected = _expected_day_files(valid, (tmp_path / "key").read_bytes())

    assert store.days() == [START + timedelta(days=n) for n in range(7)] == sorted(expected)
    for day, rows_of_day in expected.items():
        stored = pd.read_parquet(store.day_path(day))
        stored["timestamp"] = stored["timestamp"].dt.tz_convert("UTC")
        rows_of_day["timestamp"] = rows_of_day["timestamp"].dt.tz_convert("UTC")
        assert list(stored["device_id"]) == list(rows_of_day["device_id"]), day
        assert stored.astype(str).to_dict("records") == rows_of_day.astype(str).to_dict(
            "records"
        ), day
        assert report.rows_stored_by_day[day.isoformat()] == len(rows_of_day)
    assert report.rows_stored == len(valid)
    assert report.distinct_devices == len(USERS)
    assert report.rows_quarantined_by_reason["duplicate"] == len(duplicates)
    assert report.rows_stored + report.rows_quarantined == report.rows_read == len(rows)

    quarantine = store.read_quarantine().set_index("reason")
    assert len(quarantine) == len(duplicates) + len(rejected)
    assert quarantine.loc["unknown_cell", "cell_id"] == ODD_TEXT
    assert quarantine.loc["unknown_cell", "local_date"] == date(2011, 3, 24)
    assert quarantine.loc["unknown_event_type", "event_type"] == "fax"
    assert quarantine.loc["cell_not_valid", "cell_id"] == "C"
    assert quarantine.loc["outside_period", "local_date"] == date(2011, 3, 28)
    assert quarantine.loc["malformed_value", "mcc_text"] == "two-o-six"
    assert (quarantine.loc["duplicate", "device_id"].notna()).all()


def test_a_delivery_without_rejected_rows_has_an_empty_quarantine(tmp_path):
    dataset = write_delivery(tmp_path / "dataset", rows=_valid_rows())
    report = ingest_dataset(dataset=dataset, store=tmp_path / "store", key_file=tmp_path / "k")

    assert report.rows_quarantined == 0
    assert report.rows_stored == report.rows_read == len(_valid_rows())
    assert Store(tmp_path / "store").read_quarantine().empty
    assert not list((tmp_path / "store").glob(".staging-*"))
