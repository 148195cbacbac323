"""Every input row is stored or quarantined with the right reason; the counts always add up."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest
from deliveries import USERS, event, good_events, write_delivery  # type: ignore[import-not-found]

from cellcensus.errors import InputDataError
from cellcensus.holder.store import QUARANTINE_REASONS, Store, device_id, ingest_dataset

FAULTS = {
    "null_field": [
        event(user=None),
        event(timestamp=None),
        event(cell=None),
        event(kind=None),
        event(mcc=None),
        event(mnc=None),
    ],
    "malformed_value": [
        event(timestamp="22/03/2011 08:00"),
        event(timestamp="2011-03-22T25:00:00Z"),
        event(mcc="two-o-six"),
        event(mnc="1x"),
        event(mcc=2060),
        event(mcc="206.5"),  # text that would round to a code
        event(mnc="1.6"),
        event(mcc="2e2"),
        event(mnc="0x10"),
        event(tac="3500001"),
        event(tac="35-00001"),
    ],
    "unknown_event_type": [event(kind="fax"), event(kind="DATA")],
    "outside_period": [
        event(timestamp="2011-03-20T22:59:59Z"),  # 23:59:59 local on the 20th
        event(timestamp="2011-03-27T22:00:00Z"),  # 00:00 local on the 28th (CEST)
        event(timestamp="2012-03-22T08:00:00Z"),
    ],
    "unknown_cell": [event(cell="Z"), event(cell="a")],
    "cell_not_valid": [
        event(cell="C", timestamp="2011-03-22T08:00:00Z"),  # C starts on the 23rd
        event(cell="D", timestamp="2011-03-23T08:00:00Z"),  # D ended on the 22nd
    ],
}


def _ingest(tmp_path: Path, rows: list[dict[str, object]], fmt: str = "parquet"):
    dataset = write_delivery(tmp_path / "dataset", rows=rows, fmt=fmt)
    store = tmp_path / "store"
    report = ingest_dataset(dataset=dataset, store=store, key_file=tmp_path / "key")
    return report, Store(store)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("reason", sorted(FAULTS))
def test_each_fault_is_quarantined_with_its_reason(tmp_path, reason, fmt):
    faulty = FAULTS[reason]
    report, store = _ingest(tmp_path, good_events() + faulty, fmt)

    assert report.rows_read == 3 + len(faulty)
    assert report.rows_stored == 3
    assert report.rows_quarantined_by_reason[reason] == len(faulty)
    assert report.rows_quarantined == len(faulty)
    assert report.rows_stored + report.rows_quarantined == report.rows_read
    quarantine = store.read_quarantine()
    assert list(quarantine["reason"]) == [reason] * len(faulty)
    assert len(store.read_events()) == 3


def test_exact_duplicates_keep_one_copy(tmp_path):
    rows = [*good_events(), good_events()[0], good_events()[0], good_events()[1]]
    # Same device and time but another cell is not a duplicate.
    rows.append(event(user=USERS[0], timestamp="2011-03-22T08:00:00Z", cell="B"))
    report, store = _ingest(tmp_path, rows)

    assert report.rows_read == 7
    assert report.rows_stored == 4
    assert report.rows_quarantined_by_reason["duplicate"] == 3
    assert report.rows_quarantined == 3
    events = store.read_events()
    assert len(events.drop_duplicates()) == len(events) == 4
    quarantine = store.read_quarantine()
    assert set(quarantine["reason"]) == {"duplicate"}
    assert sorted(quarantine["cell_id"]) == ["A", "A", "B"]


def test_duplicates_are_found_even_when_not_adjacent_in_the_input(tmp_path):
    same_time = "2011-03-22T08:00:00Z"
    rows = [
        event(user=USERS[0], timestamp=same_time, cell="A", kind="data"),
        event(user=USERS[0], timestamp=same_time, cell="B", kind="data"),
        event(user=USERS[0], timestamp=same_time, cell="A", kind="sms_in"),
        event(user=USERS[0], timestamp=same_time, cell="A", kind="data"),
        event(user=USERS[0], timestamp=same_time, cell="B", kind="data", tac=None),
        event(user=USERS[0], timestamp=same_time, cell="B", kind="data", tac=None),
    ]
    report, _ = _ingest(tmp_path, rows)
    assert report.rows_stored == 4
    assert report.rows_quarantined_by_reason["duplicate"] == 2


def test_malformed_csv_lines_are_quarantined_with_their_line_only(tmp_path):
    dataset = write_delivery(tmp_path / "dataset", rows=good_events(), fmt="csv")
    with (dataset / "events" / "part-0.csv").open("a", encoding="utf-8") as handle:
        handle.write(f'{USERS[0]},"2011-03-22T11:00:00Z"Z,A,data,206,10,35000001\n')
    report = ingest_dataset(dataset=dataset, store=tmp_path / "store", key_file=tmp_path / "k")

    assert report.rows_read == 4
    assert report.rows_stored == 3
    assert report.rows_quarantined_by_reason["malformed_row"] == 1
    quarantine = Store(tmp_path / "store").read_quarantine()
    (row,) = quarantine.to_dict("records")
    assert row["reason"] == "malformed_row"
    assert row["source"].endswith("part-0.csv:5")
    assert pd.isna(row["device_id"])


def good_csv_line() -> str:
    """The third good event as a CSV line of the delivery's columns."""
    return ",".join(str(value) for value in good_events()[2].values())


OPEN_QUOTE = f'"{USERS[0]},2011-03-22T11:00:00Z,A,data,206,10,35000001'
"""A line whose first field opens a quote it does not close."""


@pytest.mark.parametrize(
    ("after", "lost"),
    [
        ([good_csv_line()] * 3, 3),  # read into the field up to the file's end
        ([good_csv_line()] * 20_000, 20_000),  # more than DuckDB keeps of a rejected line
        (["x,y", f'{USERS[1]},"2011-03-22T11:00:00Z",A,data', good_csv_line()], 2),  # closed
    ],
    ids=["to the end", "a long file", "closed by a later quote"],
)
def test_a_quote_left_open_refuses_the_delivery_instead_of_losing_the_lines_after_it(
    tmp_path, after, lost
):
    # DuckDB reads from the open quote to the next quote as one field of one rejected
    # record: the lines between would be neither stored nor quarantined.
    dataset = write_delivery(tmp_path / "dataset", rows=good_events(), fmt="csv")
    with (dataset / "events" / "part-0.csv").open("a", encoding="utf-8") as handle:
        handle.write("\n".join([OPEN_QUOTE, *after]) + "\n")
    expected = rf"{lost:,} line\(s\) of \S+part-0\.csv went into no row .* open at line 5 "
    with pytest.raises(InputDataError, match=expected):
        ingest_dataset(dataset=dataset, store=tmp_path / "store", key_file=tmp_path / "k")
    assert not (tmp_path / "store").exists()


def test_lost_lines_are_found_past_quoted_blank_lines_in_compressed_and_other_files(tmp_path):
    # A quoted field's blank line is no line of the file's count, nor of the row's.
    dataset = write_delivery(tmp_path / "dataset", rows=good_events(), fmt="csv")
    events = dataset / "events"
    with (events / "part-0.csv").open("a", encoding="utf-8") as handle:
        handle.write(f'{USERS[1]},2011-03-22T12:00:00Z,"A\n\nB",data,206,10,35000001\n')
        handle.write(f"{USERS[2]},2011-03-22T12:00:00Z,A\n")  # rejected, harmless
    header = (events / "part-0.csv").read_text().splitlines()[0]
    lines = [header, OPEN_QUOTE, good_csv_line(), good_csv_line()]
    with gzip.open(events / "part-1.CSV.GZ", "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    with pytest.raises(InputDataError, match=r"2 line\(s\) of \S+part-1\.CSV\.GZ went into"):
        ingest_dataset(dataset=dataset, store=tmp_path / "store", key_file=tmp_path / "k")


@pytest.mark.parametrize(
    "lines",
    [
        [f'{USERS[2]},"2011-03-22T12:00\n:00Z",A'],  # in a line with too few fields
        [f'{USERS[1]},2011-03-22T12:00:00Z,"A\nB",data,206,10,35000001', f"{USERS[2]},A"],
    ],
    ids=["in the rejected line", "beside it"],
)
def test_a_quoted_line_break_by_a_rejected_line_loses_no_line(tmp_path, lines):
    # The break makes two lines of one record, which the count of lines allows for.
    dataset = write_delivery(tmp_path / "dataset", rows=good_events(), fmt="csv")
    with (dataset / "events" / "part-0.csv").open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    report = ingest_dataset(dataset=dataset, store=tmp_path / "store", key_file=tmp_path / "k")

    assert report.rows_read == 3 + len(lines)
    assert report.rows_quarantined_by_reason["wrong_field_count"] == 1


def test_a_quote_error_that_ends_on_its_line_quarantines_that_line_only(tmp_path):
    dataset = write_delivery(tmp_path / "dataset", rows=good_events(), fmt="csv")
    with (dataset / "events" / "part-0.csv").open("a", encoding="utf-8") as handle:
        handle.write(f'"{USERS[0]}"x,2011-03-22T11:00:00Z,A,data,206,10,35000001\n')
        handle.write(good_csv_line() + "\n")
    report = ingest_dataset(dataset=dataset, store=tmp_path / "store", key_file=tmp_path / "k")

    assert (report.rows_read, report.rows_stored) == (5, 3)  # the repeated line a duplicate
    assert report.rows_quarantined_by_reason["malformed_row"] == 1


WRONG_FIELD_COUNTS = {
    4: f"{USERS[0]},2011-03-22T11:00:00Z,A",  # too few: not a row of empty fields
    5: f"{USERS[1]},2011-03-22T11:00:00Z,A,data,206,10,35000001,surplus",  # one too many
    6: f'{USERS[2]},"2011-03-22T11:00:00Z,A",data,206,10,35000001',  # a quote misplaced
    7: "   ",
}
"""CSV lines (by line number) whose fields are not the header's (7), each quarantined as such."""


def test_a_csv_line_with_the_wrong_field_count_is_quarantined_as_such(tmp_path):
    dataset = write_delivery(tmp_path / "dataset", rows=good_events()[:2], fmt="csv")
    with (dataset / "events" / "part-0.csv").open("a", encoding="utf-8") as handle:
        handle.write("\n".join([*WRONG_FIELD_COUNTS.values(), "", good_csv_line()]) + "\n")
    report = ingest_dataset(dataset=dataset, store=tmp_path / "store", key_file=tmp_path / "k")

    assert report.rows_read == 3 + len(WRONG_FIELD_COUNTS)
    assert report.rows_stored == 3
    assert report.rows_quarantined_by_reason["wrong_field_count"] == len(WRONG_FIELD_COUNTS)
    assert report.rows_quarantined_by_reason["null_field"] == 0
    quarantine = Store(tmp_path / "store").read_quarantine()
    assert set(quarantine["reason"]) == {"wrong_field_count"}
    lines = sorted(int(source.rsplit(":", 1)[1]) for source in quarantine["source"])
    assert lines == sorted(WRONG_FIELD_COUNTS)
    assert quarantine["device_id"].isna().all()


def test_a_mixed_delivery_adds_up_and_every_reason_is_reported(tmp_path):
    faulty = [row for rows in FAULTS.values() for row in rows]
    rows = good_events() + faulty + [good_events()[2]]
    report, _ = _ingest(tmp_path, rows, fmt="csv")

    assert set(report.rows_quarantined_by_reason) == set(QUARANTINE_REASONS)
    expected = {reason: len(rows) for reason, rows in FAULTS.items()}
    expected |= {"duplicate": 1, "malformed_row": 0, "wrong_field_count": 0}
    assert report.rows_quarantined_by_reason == expected
    assert report.rows_stored + report.rows_quarantined == report.rows_read == len(rows)


def test_quarantined_rows_carry_the_pseudonym_and_the_bad_value(tmp_path):
    rows = [*good_events(), event(user=USERS[1], mcc="two-o-six"), event(cell="Z")]
    _, store = _ingest(tmp_path, rows, fmt="csv")
    key = (tmp_path / "key").read_bytes()
    quarantine = store.read_quarantine().set_index("reason")

    malformed = quarantine.loc["malformed_value"]
    assert malformed["device_id"] == device_id(user_id=USERS[1], key=key)
    assert malformed["mcc_text"] == "two-o-six"
    assert pd.isna(malformed["mcc"])
    assert quarantine.loc["unknown_cell", "cell_id"] == "Z"
    assert "user_id" not in quarantine.columns


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_quarantined_row_names_the_fields_to_fix(tmp_path, fmt):
    rows = {
        "timestamp": event(timestamp="22/03/2011 08:00"),
        "mcc": event(mcc="two-o-six"),
        "mnc": event(mnc="1x"),
        "tac": event(tac="3500001"),
        "mcc,mnc,tac": event(mcc=2060, mnc="0x10", tac="35-00001"),
        "cell_id": event(cell=None),
        "user_id,mnc": event(user=None, mnc=None),
    }
    _, store = _ingest(tmp_path, [*good_events(), *rows.values(), event(cell="Z")], fmt)
    quarantine = store.read_quarantine()

    found = sorted(zip(quarantine["reason"], quarantine["field"].fillna("-"), strict=True))
    assert found == sorted(
        [
            *(("null_field", name) for name in ("cell_id", "user_id,mnc")),
            *(("malformed_value", name) for name in ("timestamp", "mcc", "mnc", "tac")),
            ("malformed_value", "mcc,mnc,tac"),
            ("unknown_cell", "-"),  # the reason names the field
        ]
    )


def test_the_report_is_written_beside_the_store(tmp_path):
    report, store = _ingest(tmp_path, [*good_events(), event(kind="fax")])
    assert store.ingest_report() == report
    assert store.report_path.read_text() == report.to_json()
