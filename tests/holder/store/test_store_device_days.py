"""Device-day summaries: written at ingest, used only while fresh, purged with their day."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deliveries import METADATA, USERS, event, write_delivery  # type: ignore[import-not-found]
from typer.testing import CliRunner

from cellcensus.cli import app
from cellcensus.errors import CellcensusError
from cellcensus.holder.algorithms import get_algorithm
from cellcensus.holder.algorithms.base import (
    ALLOCATION_SCHEMA,
    EVENTS_SCHEMA,
    PeriodParameters,
    StoreTables,
    cell_key,
)
from cellcensus.holder.algorithms.conformance import conformance_world
from cellcensus.holder.algorithms.device_filter import (
    DeviceFilterParameters,
    Scope,
    Subscribers,
)
from cellcensus.holder.enclave.compute import check_job, open_tables
from cellcensus.holder.store import Store, ingest_dataset
from cellcensus.holder.store.device_days import (
    POSITIONS,
    device_ranges,
    fresh,
    is_fresh,
    keeps_positions,
    summarise,
    summary_of,
)
from cellcensus.holder.store.retention import purge

runner = CliRunner()

ROWS = [
    event(user=USERS[0], timestamp="2011-03-21T08:00:00Z", cell="A", tac="35000001"),
    event(user=USERS[0], timestamp="2011-03-21T09:00:00Z", cell="B", tac="35999999"),
    event(user=USERS[0], timestamp="2011-03-21T10:00:00Z", cell="B", kind="call_out"),
    event(user=USERS[1], timestamp="2011-03-21T08:00:00Z", cell="A", tac=None),
    event(user=USERS[1], timestamp="2011-03-21T09:00:00Z", cell="D", tac=None),
    event(user=USERS[1], timestamp="2011-03-22T08:00:00Z", cell="A", tac=None),
    event(user=USERS[2], timestamp="2011-03-24T08:00:00Z", cell="C", kind="sms_in"),
]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    dataset = write_delivery(tmp_path / "dataset", rows=ROWS)
    ingest_dataset(dataset=dataset, store=tmp_path / "store", key_file=tmp_path / "key")
    return allocated(Store(tmp_path / "store"))


def allocated(store: Store) -> Store:
    """`store` with every cell in one municipality."""
    allocation = pd.DataFrame(
        {"cell_id": list("ABCD"), "area_code": ["21004"] * 4, "weight": 1.0, "overlap_km2": 1.0}
    )
    allocation = allocation.assign(valid_from=None, valid_to=None)
    store.allocation_dir.mkdir()
    table = pa.Table.from_pandas(allocation, schema=ALLOCATION_SCHEMA.to_pyarrow())
    pq.write_table(table, store.allocation_path("municipality"))
    return store


def test_the_ingest_summarises_each_stored_day_from_its_events(store):
    assert store.device_day_days() == store.days() == [date(2011, 3, d) for d in (21, 22, 24)]
    assert fresh(store)
    first = pd.read_parquet(store.device_day_path(date(2011, 3, 21)))
    first = first.sort_values("n_events", ascending=False).reset_index(drop=True)
    # USERS[0]: three events, one call, two TACs; USERS[1]: two data events, no TAC.
    assert first["n_events"].tolist() == [3, 2]
    assert first["n_interactive"].tolist() == [1, 0]
    assert list(first.loc[0, "tacs"]) == ["35000001", "35999999"]
    assert list(first.loc[1, "tacs"]) == []
    assert first.loc[0, "cells"] is None  # a day with a call keeps no cells
    assert list(first.loc[1, "cells"]) == ["A", "D"]
    stored = store.read_events(days=[date(2011, 3, 21)])
    assert set(first["device_id"]) == set(stored["device_id"])


def test_hourly_positions_are_listed_once_the_holder_asks_and_kept_by_later_ingests(
    store, tmp_path
):
    assert not keeps_positions(store) and not open_tables(store).positions
    result = runner.invoke(app, ["store", "summarise", "--store", str(store.root), "--positions"])
    assert result.exit_code == 0, result.output
    assert "Summarised 3 day(s) (with hourly positions); 0 already were" in result.output
    # 08:00-10:00 UTC are 09:00-11:00 in Brussels; USERS[0] last at A, B, B in those hours.
    first = pd.read_parquet(store.device_day_path(date(2011, 3, 21)))
    first = first.sort_values("n_events", ascending=False).reset_index(drop=True)
    positions = [[(at["hour"], at["cell"]) for at in day] for day in first["positions"]]
    a, b, d = (cell_key(cell) for cell in "ABD")
    assert positions == [[(9, a), (10, b), (11, b)], [(9, a), (10, d)]]
    assert fresh(store) and open_tables(store).positions
    info = runner.invoke(app, ["store", "info", "--store", str(store.root)])
    assert "fresh, with hourly positions" in info.output, info.output
    assert "unread" not in info.output

    # A later delivery's days are summarised the same way, so the folder keeps one schema.
    rows = [*ROWS, event(user=USERS[2], timestamp="2011-03-25T08:00:00Z", cell="C")]
    ingest_dataset(
        dataset=write_delivery(tmp_path / "later", rows=rows),
        store=store.root,
        key_file=tmp_path / "key",
    )
    assert date(2011, 3, 25) in store.days() and fresh(store)
    assert open_tables(store).positions

    assert summarise(store, positions=False) == store.days()
    assert fresh(store) and not keeps_positions(store) and not open_tables(store).positions
    assert "positions" not in pq.read_schema(store.device_day_path(date(2011, 3, 25))).names


def test_positions_of_cell_ids_are_listed_again_by_cell_keys(store):
    # Summaries of an earlier format listed each position's cell id: they are not read as
    # positions, and the next `summarise` makes them again.
    summarise(store, positions=True)
    path = store.device_day_path(date(2011, 3, 22))
    table = pq.read_table(path)
    metadata = {**(table.schema.metadata or {}), POSITIONS: b"1"}
    pq.write_table(table.replace_schema_metadata(metadata), path)
    assert not fresh(store) and not open_tables(store).positions
    info = runner.invoke(app, ["store", "info", "--store", str(store.root)])
    assert "no: cellcensus store summarise, with" in info.output, info.output
    assert summarise(store) == [date(2011, 3, 22)]
    assert fresh(store) and open_tables(store).positions


def test_summaries_half_with_positions_are_not_read_until_summarised_again(store):
    # As a `summarise --positions` stopped after its first day leaves them: the next
    # `summarise` goes on the way the first day's summary went.
    summarise(store, days=[date(2011, 3, 21)], positions=True)
    assert not fresh(store) and open_tables(store).device_days is None
    assert summarise(store) == [date(2011, 3, 22), date(2011, 3, 24)]
    assert fresh(store) and keeps_positions(store) and open_tables(store).positions


def test_summaries_without_positions_are_those_with_them_less_the_list():
    # The conformance suite checks every algorithm on summaries with positions; this is why
    # that covers the default ones (the filter reads the other columns only).
    events = conformance_world().arrow["events"]
    listed = summary_of(events).drop_columns(["positions"])
    plain = summary_of(events, positions=False)
    keys = [("device_id", "ascending"), ("local_date", "ascending"), ("mcc", "ascending")]
    assert plain.num_rows > 300
    assert plain.sort_by(keys).equals(listed.select(plain.column_names).sort_by(keys))


@pytest.mark.parametrize("positions", [True, False])
def test_a_day_summarised_in_buckets_of_devices_is_the_day_summarised_at_once(positions):
    # A large day is summarised a bucket of devices at a time, so that it fits in memory.
    events = conformance_world().arrow["events"]
    whole = summary_of(events, positions=positions)
    parts = summary_of(events, positions=positions, buckets=5)
    keys = [("device_id", "ascending"), ("local_date", "ascending"), ("mcc", "ascending")]
    assert whole.num_rows > 300
    assert parts.sort_by(keys).equals(whole.sort_by(keys))
    devices = parts["device_id"].to_pylist()
    assert devices == sorted(devices)  # ranges of device ids, in order: in device order


@pytest.mark.parametrize("buckets", [2, 3, 7])
def test_the_device_ranges_put_every_row_in_one_bucket(buckets):
    # Nulls and repeated ids included: each row meets exactly one range's condition.
    ids = [None, 5, 5, 5, 5, -3, 2**62, 7, None, -(2**63), 1, 1, 2]
    with duckdb.connect() as con:
        con.register("rows", pa.table({"device_id": pa.array(ids, pa.int64())}))
        ranges = device_ranges(con, "rows", buckets)
        assert 1 < len(ranges) <= buckets
        tests = ", ".join(f"({where})::INT" for where in ranges)
        met = con.sql(f"SELECT list_sum([{tests}]) FROM rows").fetchall()
    assert [row[0] for row in met] == [1] * len(ids)


def test_a_store_day_of_more_events_than_a_bucket_is_summarised_in_buckets(store, monkeypatch):
    summarise(store, positions=True)
    day = date(2011, 3, 21)
    whole = pq.read_table(store.device_day_path(day))
    monkeypatch.setattr("cellcensus.holder.store.device_days.BUCKET_EVENTS", 2)  # 3 buckets
    assert summarise(store, days=[day], rebuild=True) == [day]
    assert (
        pq.read_table(store.device_day_path(day))
        .sort_by("device_id")
        .equals(whole.sort_by("device_id"))
    )
    assert fresh(store) and open_tables(store).positions


def test_a_device_under_two_home_networks_in_a_day_keeps_jobs_on_its_events(tmp_path):
    # The contract gives a subscriber one home network; a delivery that does not is read
    # from the events by `present_population`, whose summaries list a row per network.
    rows = [*ROWS, event(user=USERS[2], timestamp="2011-03-24T09:00:00Z", cell="A", mcc=208)]
    dataset = write_delivery(tmp_path / "dataset", rows=rows)
    ingest_dataset(dataset=dataset, store=tmp_path / "store", key_file=tmp_path / "key")
    store = allocated(Store(tmp_path / "store"))
    summarise(store, positions=True)
    tables = open_tables(store)
    assert fresh(store) and tables.device_days is not None and not tables.positions
    info = runner.invoke(app, ["store", "info", "--store", str(store.root)])
    assert "hourly positions unread" in info.output, info.output
    assert "two home networks on a day" in info.output


def test_open_tables_reads_summaries_only_while_every_day_has_a_fresh_one(store, tmp_path):
    assert open_tables(store).device_days is not None
    # A day file replaced by hand (here: another day's file) no longer matches its summary.
    other = store.day_path(date(2011, 3, 22)).read_bytes()
    store.day_path(date(2011, 3, 21)).write_bytes(other)
    assert not is_fresh(store, date(2011, 3, 21)) and is_fresh(store, date(2011, 3, 22))
    assert open_tables(store).device_days is None

    result = runner.invoke(app, ["store", "summarise", "--store", str(store.root)])
    assert result.exit_code == 0, result.output
    assert "Summarised 1 day(s); 2 already were" in result.output
    assert fresh(store) and open_tables(store).device_days is not None


def test_a_corrected_delivery_gets_the_summaries_of_its_new_days(store, tmp_path):
    # The same rows but a call instead of a data event on the 22nd: the day's new summary
    # must say so (the ingest rebuilds the summaries of every day it writes).
    rows = [dict(row) for row in ROWS]
    rows[5]["event_type"] = "call_in"
    dataset = write_delivery(tmp_path / "corrected", rows=rows)
    ingest_dataset(dataset=dataset, store=store.root, key_file=tmp_path / "key")
    day = pd.read_parquet(store.device_day_path(date(2011, 3, 22)))
    assert day["n_interactive"].tolist() == [1]
    assert day["cells"].isna().all()
    assert fresh(store)


def test_a_purge_removes_the_summaries_of_the_purged_days(store):
    purge(store=store.root, before=date(2011, 3, 22))
    assert store.device_day_days() == store.days() == [date(2011, 3, 22), date(2011, 3, 24)]
    assert fresh(store)


def test_a_lost_day_file_refuses_jobs_and_summarising_until_it_is_back(
    store, tmp_path, monkeypatch
):
    # A day file removed by hand: its summary is the only trace (every writer moves both).
    lost = date(2011, 3, 24)
    shutil.move(store.day_path(lost).parent, tmp_path / "aside")
    assert store.lost_days() == [lost]
    # Jobs read the summaries' folder whole: one of a day without events would add devices.
    assert not fresh(store) and open_tables(store).device_days is None
    refusal = r"lost the events of 1 day\(s\): events/date=2011-03-24/part-0.parquet is missing"
    with pytest.raises(CellcensusError, match=refusal):
        summarise(store)
    assert store.device_day_days() == [date(2011, 3, 21), date(2011, 3, 22), lost]  # kept
    with pytest.raises(CellcensusError, match=refusal):
        check_job(store, get_algorithm("usual_residence"), parameters={}, level="municipality")
    monkeypatch.setenv("CELLCENSUS_KEY_FILE", str(tmp_path / "key"))
    info = runner.invoke(app, ["store", "info", "--store", str(store.root)])
    assert "days whose events file is missing" in info.output and "2011-03-24" in info.output

    shutil.move(tmp_path / "aside", store.day_path(lost).parent)
    assert store.lost_days() == [] and fresh(store)
    check_job(store, get_algorithm("usual_residence"), parameters={}, level="municipality")


def test_an_analyst_is_told_to_ask_the_holder_for_a_lost_day(store, tmp_path):
    # The holder's refusal names the store's commands and backups; an analyst has neither.
    shutil.move(store.day_path(date(2011, 3, 24)).parent, tmp_path / "aside")
    with pytest.raises(CellcensusError) as refused:
        check_job(
            store,
            get_algorithm("usual_residence"),
            parameters={},
            level="municipality",
            reader="analyst",
        )
    told = str(refused.value)
    assert "2011-03-24" in told and "ask the data holder" in told
    assert "cellcensus" not in told and "backup" not in told and str(store.root) not in told


def test_a_re_ingest_never_shows_a_job_a_lost_day(store, tmp_path, monkeypatch):
    # Jobs take no lock: one checked between two of the commit's moves must not be refused.
    seen: list[list[date]] = []
    rename = Path.rename

    def watched(source: Path, target: Path) -> Path:
        moved: Path = rename(source, target)
        seen.append(store.lost_days())
        return moved

    monkeypatch.setattr(Path, "rename", watched)
    again = write_delivery(tmp_path / "again", rows=ROWS)
    ingest_dataset(dataset=again, store=store.root, key_file=tmp_path / "key")
    assert len(seen) > 6 and not any(seen)


def test_an_ingest_is_refused_while_a_day_is_lost_unless_it_brings_the_day_again(store, tmp_path):
    shutil.rmtree(store.day_path(date(2011, 3, 22)).parent)
    april = {**METADATA, "period": {"start": "2011-04-04", "end": "2011-04-05"}}
    rows = [event(user=USERS[0], timestamp="2011-04-04T08:00:00Z", cell="A")]
    later = write_delivery(tmp_path / "april", rows=rows, metadata=april)
    with pytest.raises(CellcensusError, match="lost the events of 1 day"):
        ingest_dataset(dataset=later, store=store.root, key_file=tmp_path / "key")
    assert store.days() == [date(2011, 3, 21), date(2011, 3, 24)]  # nothing written
    # The delivery that holds the day, ingested again, restores it.
    again = write_delivery(tmp_path / "again", rows=ROWS)
    ingest_dataset(dataset=again, store=store.root, key_file=tmp_path / "key")
    assert store.days() == [date(2011, 3, d) for d in (21, 22, 24)]
    assert store.lost_days() == [] and fresh(store)


def test_a_purge_removes_summaries_before_the_cutoff_even_without_their_day(store):
    shutil.rmtree(store.day_path(date(2011, 3, 21)).parent)
    purge(store=store.root, before=date(2011, 3, 23))
    assert store.device_day_days() == [date(2011, 3, 24)]


def test_summaries_made_for_another_cell_limit_are_not_fresh(store, monkeypatch):
    from cellcensus.holder.store import device_days

    monkeypatch.setattr(device_days, "MAX_M2M_CELLS", 12)
    assert not fresh(store)
    result = runner.invoke(app, ["store", "summarise", "--store", str(store.root), "--rebuild"])
    assert result.exit_code == 0, result.output
    assert "Summarised 3 day(s); 0 already were" in result.output
    assert fresh(store)


def test_store_info_says_whether_the_summaries_are_fresh(store, monkeypatch, tmp_path):
    monkeypatch.setenv("CELLCENSUS_KEY_FILE", str(tmp_path / "key"))
    result = runner.invoke(app, ["store", "info", "--store", str(store.root)])
    assert result.exit_code == 0, result.output
    assert "device-day summaries" in result.output and "fresh" in result.output


# --- the filter from summaries equals the filter from events ---------------------------------

M2M_TAC = "35000001"
DAY = dt.date(2011, 3, 7)


def _events() -> pd.DataFrame:
    """Devices at the edges of the filter's rules (two days, data unless said)."""
    rows: list[tuple[object, ...]] = []

    def add(
        device: int,
        day: int,
        cell: str,
        *,
        kind: str = "data",
        tac: str | None = "35123456",
        mcc: int = 206,
    ) -> None:
        at = dt.datetime.combine(DAY + dt.timedelta(days=day), dt.time(10), dt.UTC)
        at += dt.timedelta(minutes=len(rows))
        date_ = DAY + dt.timedelta(days=day)
        rows.append((device, at, date_, 11, cell, kind, mcc, 1, tac))

    for number in range(12):  # 1: silent, 12 cells on one day (more than the summary lists)
        add(1, 0, f"C{number:02d}")
    for day, cells in ((0, ("C00", "C01")), (1, ("C01", "C02"))):  # 2: silent, 3 cells in all
        for cell in cells:
            add(2, day, cell)
    add(3, 0, "C00")  # 3: a listed TAC beside its usual one, on one day
    add(3, 0, "C01", tac=M2M_TAC)
    add(3, 1, "C00", kind="call_out")
    add(4, 0, "C00", tac=None)  # 4: no TAC known, a call, one day
    add(4, 0, "C00", kind="call_in", tac=None)
    add(5, 0, "C03", mcc=208)  # 5: a French roamer, silent at one cell
    add(5, 1, "C03", mcc=208)
    columns = list(EVENTS_SCHEMA.names)
    return pd.DataFrame(rows, columns=columns)


FILTERS = {
    "defaults": ({}, {1: "kept", 2: "kept", 3: "kept", 4: "kept", 5: "m2m_behaviour"}),
    "ten cells": (
        {"m2m_max_cells": 10},
        {1: "kept", 2: "m2m_behaviour", 3: "kept", 4: "kept", 5: "m2m_behaviour"},
    ),
    "three cells, TAC list": (
        {"m2m_max_cells": 3, "m2m_tacs": [M2M_TAC]},
        {1: "kept", 2: "m2m_behaviour", 3: "m2m_tac", 4: "kept", 5: "m2m_behaviour"},
    ),
    "two days, two events": (
        {"m2m_behaviour": False, "min_days": 2, "min_events": 2},
        {1: "seen_too_little", 2: "kept", 3: "kept", 4: "seen_too_little", 5: "kept"},
    ),
}


@pytest.mark.parametrize("name", FILTERS)
def test_the_filter_gives_the_same_reasons_from_summaries_as_from_events(name):
    import ibis

    values, expected = FILTERS[name]
    events = pa.Table.from_pandas(
        _events(), schema=EVENTS_SCHEMA.to_pyarrow(), preserve_index=False
    )
    cells = ibis.memtable(pd.DataFrame({"cell_id": [f"C{n:02d}" for n in range(12)]}))
    allocation = ibis.memtable(
        pd.DataFrame({"cell_id": ["C00"], "area_code": ["1"], "weight": [1.0]})
    )
    from_events = StoreTables(ibis.memtable(events), cells, allocation)
    from_summaries = dataclasses.replace(from_events, device_days=ibis.memtable(summary_of(events)))
    con = ibis.duckdb.connect()
    filters = DeviceFilterParameters(**values)
    reasons = {}
    for how, tables in (("events", from_events), ("summaries", from_summaries)):
        scope = Scope(tables, PeriodParameters(), Subscribers.ALL, filters)
        frame = con.to_pandas(scope.reasons)
        reasons[how] = dict(zip(frame["device_id"], frame["reason"], strict=True))
    assert reasons["events"] == expected
    assert reasons["summaries"] == expected


def test_summarise_refuses_a_folder_without_events_in_one_line(tmp_path):
    result = runner.invoke(app, ["store", "summarise", "--store", str(tmp_path)])
    assert result.exit_code != 0
    assert "holds no events" in result.output and "cellcensus ingest" in result.output
    assert "Traceback" not in result.output


def test_an_ingest_whose_summaries_fail_keeps_the_delivery_and_says_what_to_run(
    tmp_path, monkeypatch
):
    from cellcensus.holder.store import ingestion

    def full_disk(*args: object, **kwargs: object) -> list[date]:
        raise OSError("No space left on device")

    monkeypatch.setattr(ingestion, "summarise", full_disk)
    dataset = write_delivery(tmp_path / "dataset", rows=ROWS)
    with pytest.raises(CellcensusError, match="store summarise --store"):
        ingest_dataset(dataset=dataset, store=tmp_path / "store", key_file=tmp_path / "key")
    store = Store(tmp_path / "store")
    assert store.days() == [date(2011, 3, d) for d in (21, 22, 24)]
    assert not fresh(store)
