"""`ingest --engine spark` writes the store a DuckDB ingest writes for the same delivery.

Every file of the two stores is compared: the day files row for row in their order, with
their Arrow schema (the Parquet encodings differ: Spark writes them on its executors) and the
types the algorithms read; the quarantine (sorted: its order among equal reasons, days and times
is not defined), the device-day summaries, the cells, the metadata and the report's counts.
"""

from __future__ import annotations

import gzip
import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import ibis
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deliveries import (  # type: ignore[import-not-found]
    METADATA,
    USERS,
    event,
    events_frame,
    good_events,
    snapshot,
    write_delivery,
)
from test_store_quarantine import FAULTS  # type: ignore[import-not-found]

from cellcensus.errors import InputDataError
from cellcensus.holder.disclosure.policy import DisclosurePolicy
from cellcensus.holder.enclave import Enclave
from cellcensus.holder.store import Store, ingest_dataset
from cellcensus.holder.store.key_record import RECORD_NAME

sys.path.insert(0, str(Path(__file__).parents[1] / "api"))
import tiny_store  # type: ignore[import-not-found]

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module", autouse=True)
def _small_spark(small_spark: Any) -> None:
    """Spark set for tiny data, as for the algorithms' Spark tests."""


def _both(dataset: Path, tmp_path: Path) -> tuple[Store, Store]:
    """The delivery ingested on each engine, with the same key."""
    key = tmp_path / "key"
    stores = []
    for engine in ("duckdb", "spark"):
        store = tmp_path / f"store-{engine}"
        ingest_dataset(dataset=dataset, store=store, key_file=key, engine=engine)
        stores.append(Store(store))
    return stores[0], stores[1]


def _files(store: Store) -> list[str]:
    return sorted(
        str(path.relative_to(store.root)) for path in store.root.rglob("*") if path.is_file()
    )


def _report(store: Store) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(store.report_path.read_text(encoding="utf-8"))
    document.pop("seconds")
    return document


def assert_same_store(duckdb: Store, spark: Store) -> None:
    assert _files(duckdb) == _files(spark)
    for name in _files(duckdb):
        if not name.endswith(".parquet"):
            continue
        expected, got = pq.read_table(duckdb.root / name), pq.read_table(spark.root / name)
        if name.startswith("events/"):
            expected, got = _nullable(expected), _nullable(got)
        assert got.schema.equals(expected.schema, check_metadata=False), name
        if name.startswith("quarantine/"):
            columns = expected.column_names
            expected, got = expected.sort_by(_keys(columns)), got.sort_by(_keys(columns))
        assert got.equals(expected), name
    assert _events_schema(spark) == _events_schema(duckdb)
    for name in ("metadata.json", RECORD_NAME):
        if (duckdb.root / name).exists():
            assert (spark.root / name).read_bytes() == (duckdb.root / name).read_bytes()
    assert _report(spark) == _report(duckdb)


def _nullable(table: pa.Table) -> pa.Table:
    """The table with every column nullable.

    DuckDB marks a column of its day file required when the day has no NULL in it (a day
    without a missing TAC); Spark writes one schema for every day, where a TAC may be NULL.
    """
    return table.cast(pa.schema([field.with_nullable(True) for field in table.schema]))


def _events_schema(store: Store) -> ibis.Schema:
    """The stored events' columns and types as the algorithms read them (Ibis on DuckDB)."""
    return ibis.duckdb.connect().read_parquet(str(store.events_dir / "**" / "*.parquet")).schema()


def _keys(columns: list[str]) -> list[tuple[str, str]]:
    return [(column, "ascending") for column in columns]


TIMESTAMP_TEXTS = (
    # Read alike by both engines: stored, or malformed on both.
    "2011-03-22 08:00:00",
    "2011-03-22T09:00:00+01",
    "2011-03-22T09:00:00+0100",
    "2011-03-23",
    " 2011-03-22 08:00:01 ",
    "2011-03-22T08:00:00.123456789Z",
    "2011-03-22 08:00:02 UTC",
    "2011-03-22T08:00:00 Europe/Brussels",
    "2011-3-22 8:00:03",
    "20110322T080000Z",
    "2011-03-22T08:00:60Z",
    # Spark's own reading differs from DuckDB's on these.
    "2011-03",
    "2011",
    "2011-03-22T08:01Z",
    "2011-03-22T08:00:00GMT",
    "+2011-03-22T08:00:00Z",
    "2011-03-22 08:00:00 +01:00",
    "2011-03-22T08",
)


def mixed_rows() -> list[dict[str, object]]:
    """Every quarantine reason, duplicates, a user_id in another field, several days."""
    return [
        *good_events(),
        *(row for rows in FAULTS.values() for row in rows),
        good_events()[2],
        good_events()[0],
        event(user=USERS[1], cell=USERS[2]),  # an identifier where a cell should be
        event(user=USERS[2], timestamp="2011-03-25T23:30:00Z", cell="C", kind="sms_out"),
        event(user=USERS[0], timestamp="2011-03-27T01:30:00Z", cell="B", tac=None),  # DST
        event(user=USERS[1], timestamp="2011-03-24T10:00:00+01:00", cell="A", mnc=" 10 "),
        *(
            event(user=USERS[index % 3], timestamp=text)
            for index, text in enumerate(TIMESTAMP_TEXTS)
        ),
    ]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Store]:
    tmp_path = tmp_path_factory.mktemp("mixed")
    return _both(write_delivery(tmp_path / "dataset", rows=mixed_rows()), tmp_path)


def test_a_delivery_with_bad_rows_gives_the_same_store_on_both_engines(
    mixed: tuple[Store, Store],
) -> None:
    duckdb, spark = mixed
    report = duckdb.ingest_report()
    assert report.rows_quarantined_by_reason["duplicate"] == 3
    assert report.rows_quarantined_by_reason["unknown_cell"] == 3
    assert len(duckdb.days()) == 5
    assert_same_store(duckdb, spark)


def test_typed_hive_partitioned_parquet_gives_the_same_store_on_both_engines(
    tmp_path: Path,
) -> None:
    rows = [
        *good_events(),
        good_events()[1],
        event(user=USERS[2], timestamp="2011-03-23T07:00:00Z", cell="C", mcc=208),
        event(user=USERS[0], timestamp="2011-03-21T22:59:59Z", cell="B", kind="call_in"),
        event(user=USERS[1], timestamp="2011-03-29T10:00:00Z"),  # outside the period
        event(user=USERS[1], cell="Z", kind="location_update"),
    ]
    dataset = write_delivery(tmp_path / "dataset", rows=rows)
    frame = events_frame(rows, typed=True)
    frame["timestamp"] = frame["timestamp"].dt.tz_localize(None)  # naive: UTC
    frame["tac"] = frame["tac"].astype("int64")
    (dataset / "events" / "part-0.parquet").unlink()
    for day, part in frame.groupby(frame["timestamp"].dt.date):  # hive-partitioned by UTC day
        folder = dataset / "events" / f"date={day}"
        folder.mkdir()
        part.to_parquet(folder / "part-0.parquet", index=False)
    duckdb, spark = _both(dataset, tmp_path)
    assert duckdb.ingest_report().rows_stored == 5
    assert_same_store(duckdb, spark)


def test_a_delivery_overlapping_stored_days_replaces_them_as_on_duckdb(tmp_path: Path) -> None:
    """A second delivery whose period overlaps the first's: its days replace the stored ones."""
    first = write_delivery(
        tmp_path / "first",
        rows=[*good_events(), event(user=USERS[1], timestamp="2011-03-25T08:00:00Z")],
    )
    later = METADATA | {"period": {"start": "2011-03-25", "end": "2011-03-31"}}
    rows = [
        event(user=USERS[0], timestamp="2011-03-25T09:00:00Z", cell="C"),
        event(user=USERS[0], timestamp="2011-03-25T09:00:00Z", cell="C"),
        event(user=USERS[2], timestamp="2011-03-30T12:00:00Z", kind="call_in"),
    ]
    second = write_delivery(tmp_path / "second", rows=rows, metadata=later)
    stores = []
    for engine in ("duckdb", "spark"):
        store = tmp_path / f"store-{engine}"
        ingest_dataset(dataset=first, store=store, key_file=tmp_path / "key")
        ingest_dataset(dataset=second, store=store, key_file=tmp_path / "key", engine=engine)
        stores.append(Store(store))
    duckdb, spark = stores
    report = spark.ingest_report()
    assert report.days_replaced == ["2011-03-25"]
    assert report.rows_quarantined_by_reason["duplicate"] == 1
    assert [day.isoformat() for day in spark.days()] == ["2011-03-22", "2011-03-25", "2011-03-30"]
    assert_same_store(duckdb, spark)


MALFORMED_LINES = {
    f"{USERS[0]},2011-03-22T11:00:00Z,A,data,206,10,35000001,surplus": "wrong_field_count",
    f'{USERS[1]},"2011-03-22T11:00:00Z"Z,A,data,206,10,35000001': "malformed_row",  # after "
    f"{USERS[2]},2011-03-22T11:00:00Z,A,data,206,10,350\xff0001": "malformed_row",  # not UTF-8
    f"{USERS[0]},2011-03-22T12:00:00Z,A": "wrong_field_count",  # too few fields
    "   ": "wrong_field_count",  # spaces only: one field
    f'{USERS[1]},"2011-03-22T11:00:00Z"Z,A': "malformed_row",  # too few, and text after "
    f"{USERS[2]},2011-03-22T11:00:00Z,\xff": "malformed_row",  # too few, and not UTF-8
}
"""Lines DuckDB's reader rejects, with their reason: each goes to the quarantine as file:line."""

ODD_LINES = (
    "",  # blank: no row, but a line
    f"{USERS[1]},2011-03-22T12:00:00Z,B,data,206,10,35000001,,",  # empty surplus fields
    f' {USERS[2]} , "2011-03-22T12:00:00Z" ,"A","da""ta",206,10,""',  # quotes and spaces
    f'{USERS[0]},2011-03-22T12:30:00Z,"A,B",data,206,10,35000001',  # a quoted delimiter
    f'{USERS[1]},2011-03-22T12:45:00Z,"A"  "B",data,206,10,35000001',  # quoted parts: "A  B"
)
"""Lines DuckDB's reader reads, some oddly."""


def _csv_lines(rows: list[dict[str, object]], *, delimiter: str = ",") -> list[str]:
    frame = events_frame(rows, typed=False)
    text: str = frame.to_csv(index=False, sep=delimiter, lineterminator="\n")
    return text.splitlines()


def test_a_csv_delivery_with_malformed_lines_gives_the_same_store_on_both_engines(
    tmp_path: Path, small_spark: Any
) -> None:
    """Hive-partitioned CSV files (LF; CRLF without a last line end; gzip with ";"), each read
    in several splits, with every quarantine reason and lines DuckDB's reader rejects."""
    rows = mixed_rows()
    dataset = write_delivery(tmp_path / "dataset", rows=[])
    events = dataset / "events"
    (events / "part-0.parquet").unlink()
    first, second = _csv_lines(rows[:30]), _csv_lines(rows[30:])
    faulty = list(MALFORMED_LINES)
    lf = [*first[:3], *faulty, *ODD_LINES, *first[3:], faulty[0], ""]
    crlf = [*second[:4], faulty[1], *second[4:]]
    for name, lines, end in (("2011-03-22", lf, "\n"), ("2011-03-23", crlf, "\r\n")):
        (events / f"date={name}").mkdir()
        text = end.join(lines) + ("\n" if end == "\n" else "")
        (events / f"date={name}" / "part-0.csv").write_bytes(
            text.encode().replace(b"\xc3\xbf", b"\xff")  # the raw byte, not its UTF-8
        )
    (events / "date=2011-03-24").mkdir()
    with gzip.open(events / "date=2011-03-24" / "part-0.csv.gz", "wt", newline="") as handle:
        handle.write("\n".join(_csv_lines(good_events(), delimiter=";")) + "\n")
    small_spark.catalog.clearCache()
    small_spark.conf.set("spark.sql.files.maxPartitionBytes", "512")
    try:
        duckdb, spark = _both(dataset, tmp_path)
    finally:
        small_spark.conf.unset("spark.sql.files.maxPartitionBytes")
    assert cache_is_empty(small_spark)  # the parsed lines, kept for the ingest's jobs, freed
    expected = sorted(
        (f"{events / f'date={name}' / 'part-0.csv'}:{number}", MALFORMED_LINES[line])
        for name, lines in (("2011-03-22", lf), ("2011-03-23", crlf))
        for number, line in enumerate(lines, start=1)
        if line in MALFORMED_LINES
    )
    rejected = duckdb.read_quarantine().dropna(subset="source")
    assert sorted(zip(rejected["source"], rejected["reason"], strict=True)) == expected
    counts = duckdb.ingest_report().rows_quarantined_by_reason
    assert (counts["malformed_row"], counts["wrong_field_count"]) == (5, 4)
    assert_same_store(duckdb, spark)


UNNUMBERABLE = {
    "a quoted line break": (
        f'{USERS[0]},"2011-03-22\n08:00:00Z",A,data,206,10,35000001\n',
        r"line 5 of \S+part-0\.csv has a quoted field",
    ),
    "a carriage return inside a line": (
        f"{USERS[0]},2011-03-22T08:00:00Z,A\rB,data,206,10,35000001\n",
        r"line 5 of \S+part-0\.csv holds a carriage return",
    ),
    "mixed line ends": (
        f"{USERS[0]},2011-03-22T08:00:00Z,A,data,206,10,35000001\r\n",
        r"part-0\.csv ends some lines with \\r\\n and others with \\n",
    ),
}
"""Lines appended to an LF file that Spark cannot number as DuckDB would read them."""


@pytest.mark.parametrize("name", sorted(UNNUMBERABLE))
def test_a_csv_line_spark_cannot_number_refuses_the_delivery(
    tmp_path: Path, name: str, small_spark: Any
) -> None:
    """DuckDB's ingest fails on each too but a quoted line break (standard CSV), which it
    reads; Spark's names the file (and line)."""
    line, message = UNNUMBERABLE[name]
    dataset = write_delivery(tmp_path / "dataset", rows=good_events(), fmt="csv")
    with (dataset / "events" / "part-0.csv").open("a", encoding="utf-8", newline="") as handle:
        handle.write(line)
    store = tmp_path / "store"
    ingest_dataset(
        dataset=write_delivery(tmp_path / "first", rows=good_events()),
        store=store,
        key_file=tmp_path / "key",
    )
    before = snapshot(store)
    if name == "a quoted line break":
        read = ingest_dataset(dataset=dataset, store=tmp_path / "read", key_file=tmp_path / "key")
        assert read.rows_read == 4
    else:
        with pytest.raises(InputDataError):
            ingest_dataset(dataset=dataset, store=store, key_file=tmp_path / "key")
    small_spark.catalog.clearCache()
    with pytest.raises(InputDataError, match=message):
        ingest_dataset(dataset=dataset, store=store, key_file=tmp_path / "key", engine="spark")
    assert snapshot(store) == before
    assert cache_is_empty(small_spark)


def cache_is_empty(session: Any) -> bool:
    """Whether the session caches no data frame."""
    return bool(session._jsparkSession.sharedState().cacheManager().isEmpty())


def test_a_release_from_either_ingest_is_the_same(tmp_path: Path) -> None:
    """The tiny service store's events as a raw delivery: a release needs counts to publish."""
    dataset = tmp_path / "dataset"
    (dataset / "events").mkdir(parents=True)
    events = pd.concat([tiny_store._day_events(day) for day in range(tiny_store.DAYS)])
    events["user_id"] = "3247" + events["device_id"].astype(str)
    # Instants before 1970 or from 2200 are malformed: the quarantine keeps their text.
    outside = events.head(2).assign(
        timestamp=pd.to_datetime(["1969-12-31 23:59:59.5", "2201-01-01 00:00:00.12"], utc=True)
    )
    events = pd.concat([events, outside])
    events[list(event())].to_parquet(dataset / "events" / "part-0.parquet", index=False)
    tiny_store._cells().to_parquet(dataset / "cells.parquet", index=False)
    last = tiny_store.START + timedelta(days=tiny_store.DAYS - 1)
    period = {"start": tiny_store.START.isoformat(), "end": last.isoformat()}
    (dataset / "metadata.json").write_text(json.dumps(METADATA | {"period": period}))
    allocation = pd.DataFrame(
        {
            "cell_id": list(tiny_store.AREAS),
            "area_code": list(tiny_store.AREAS.values()),
            "weight": 1.0,
            "overlap_km2": 4.0,
        }
    )
    stores = _both(dataset, tmp_path)
    assert stores[0].ingest_report().rows_quarantined_by_reason["malformed_value"] == 2
    assert_same_store(*stores)
    releases = []
    for store in stores:
        store.allocation_path().parent.mkdir()
        allocation.to_parquet(store.allocation_path(), index=False)
        # Threshold and rounding without noise: a release that depends on the store only.
        enclave = Enclave(
            store=store.root,
            policy=DisclosurePolicy(),
            state_url=f"sqlite:///{store.root / 'state.db'}",
        )
        release = enclave.run(algorithm="usual_residence", parameters={}, analyst="holder")
        releases.append(release.table)
    assert releases[0]["device_count"].sum() > 0
    pd.testing.assert_frame_equal(releases[0], releases[1])
