"""Ingestion: a delivery's files -> a validated, pseudonymised, day-partitioned store.

The work happens in DuckDB (Parquet input is read twice, for the distinct user_ids and then for
the rows; CSV is parsed once into a table, which spills to disk past the memory limit), with
Python only for the keyed HMAC:

1. every check that can refuse the delivery runs on file headers and footers first;
2. distinct user_ids are pseudonymised in Python (keyed HMAC, `pseudonym.py`) with the key of
   each row's local day (`key_rotation.py`; usually one key for the whole period) and joined
   back;
3. in one streaming pass, each row gets its local date and hour and the first reason to
   quarantine it, if any, and is written to a staged Parquet partition: one per local day for
   valid rows, one for rejected rows (so nothing the size of the period is held in memory);
4. day by day, a day's valid rows are read back and sorted by device, time (then the other
   columns, which puts exact duplicates side by side), duplicates are flagged against their
   predecessor, and the rest is written as the day's Parquet file; peak memory follows the
   largest day, not the period, and stays under `memory_limit` (DuckDB spills beyond it);
5. rejected rows go to the delivery's quarantine partition, with the pseudonym, never the id.

Everything is written into a staging folder inside the store and moved into place at the end,
so a failed ingest leaves the store as it was, and a re-ingest replaces the days of its period.

With ``engine="spark"`` the passes over the event rows (reading them for step 2, steps 3 and 4)
run on Spark (`spark_ingestion.py`, CSV lines split and numbered by `spark_csv.py`); the rest
is this module's, so both engines write the same store.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from cellcensus.errors import CellcensusError, InputDataError, did_you_mean
from cellcensus.holder.engines import ENGINES, Engine
from cellcensus.holder.store.device_days import summarise
from cellcensus.holder.store.key_record import (
    RECORD_NAME,
    KeyPeriod,
    check_key_file,
    check_keys,
    write_key_record,
)
from cellcensus.holder.store.key_rotation import PeriodKey, key_index_sql, keys_for_period
from cellcensus.holder.store.layout import CELL_COLUMNS, EVENT_COLUMNS, Store, check_not_delivery
from cellcensus.holder.store.local_time import (
    MICROS_PER_DAY,
    MICROS_PER_HOUR,
    OffsetChange,
    local_micros_sql,
    offset_changes,
)
from cellcensus.holder.store.metadata import (
    DEFAULT_TIMEZONE,
    check_metadata,
    check_period,
    period_of,
    read_metadata,
)
from cellcensus.holder.store.normalise import (
    CELL_DATES,
    CELL_NUMBERS,
    any_field,
    cell_select,
    empty_fields,
    event_select,
    fields_at_fault,
    malformed_fields,
    quote,
)
from cellcensus.holder.store.pseudonym import pseudonymise
from cellcensus.holder.store.report import QUARANTINE_REASONS, IngestReport
from cellcensus.holder.store.sources import (
    CELL_REQUIRED,
    EVENT_REQUIRED,
    CsvGroup,
    TableFiles,
    csv_scan,
    data_lines,
    find_table,
    scan_sql,
    sql_string,
)
from cellcensus.holder.store.writer_lock import writing
from cellcensus.notation import date_runs

EVENT_TYPES: tuple[str, ...] = (
    "call_out",
    "call_in",
    "sms_out",
    "sms_in",
    "data",
    "location_update",
)
"""The event types of the contract; any other value is quarantined."""

ProgressCallback = Callable[[str, float], None]
"""Receives a step's description and the fraction of the ingest done (0 to 1)."""

PSEUDONYM_BATCH = 1_000_000
"""Distinct identifiers pseudonymised per batch (bounds the Python strings held at once)."""

PARQUET_OPTIONS = "FORMAT parquet, COMPRESSION zstd"
"""How the store's files are written."""

STAGED_OPTIONS = "FORMAT parquet, COMPRESSION lz4_raw"
"""How the classified rows are staged between the two passes (read once, then deleted)."""

REJECTED = "rejected"
"""The staged partition of rows that go to the quarantine (the others are named by day)."""

DAY_ORDER = ("device_id", "ts", "cell", "event", "mcc", "mnc", "tac")
"""The order of a day file's rows (cells and event types by their codes, NULLs first): it
puts exact duplicates side by side."""

MEMORY_LIMIT = "4GB"
"""DuckDB's memory limit during ingest (it spills to the staging folder beyond it)."""

_MEMORY_SIZE = re.compile(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.IGNORECASE)


def ingest_dataset(
    *,
    dataset: Path,
    store: Path,
    key_file: Path,
    progress: ProgressCallback | None = None,
    memory_limit: str = MEMORY_LIMIT,
    engine: Engine = "duckdb",
    empty_days: bool = False,
) -> IngestReport:
    """Ingest a dataset folder in the docs/schema.md layout (events/, cells, metadata.json).

    Args:
        dataset: The delivery folder.
        store: The store folder (created if missing).
        key_file: The holder's pseudonymisation key (created for a new store only).
        progress: Called with a step description and the fraction done.
        memory_limit: DuckDB's memory limit (e.g. ``"4GB"``); it spills to disk beyond it.
        engine: Where the per-row pass runs: ``"duckdb"`` or ``"spark"``
            (`spark_ingestion.py`); both write the same store.
        empty_days: Let the delivery empty the stored days of its period it has no rows
            for (`ingest`).

    Returns:
        The account of the ingest (also written to ``store/ingest_report.json``).

    Raises:
        InputDataError: If the delivery breaks the contract in a way that stops ingestion; the
            store is then left as it was.
    """
    dataset = Path(dataset)
    check_dataset_folder(dataset)
    metadata_path = dataset / "metadata.json"
    metadata = read_metadata(path=metadata_path)
    period = period_of(metadata=metadata, source=str(metadata_path))
    events = dataset / "events"
    if not events.exists():
        raise InputDataError(
            f"dataset {dataset} has no events/ folder; put the event files (Parquet or CSV) there"
        )
    return ingest(
        events=events,
        cells=_cells_location(dataset),
        store=store,
        key_file=key_file,
        period=period,
        metadata=metadata,
        progress=progress,
        memory_limit=memory_limit,
        engine=engine,
        empty_days=empty_days,
    )


def check_dataset_folder(dataset: Path) -> None:
    """Refuse a delivery folder that is missing or a file, before anything is written.

    Raises:
        InputDataError: Saying which, and what the folder must hold.
    """
    holding = "give the delivery folder holding events/, cells.parquet and metadata.json"
    if not dataset.exists():
        raise InputDataError(f"dataset {dataset} does not exist; {holding}")
    if not dataset.is_dir():
        raise InputDataError(f"dataset {dataset} is not a folder; {holding}")


def _cells_location(dataset: Path) -> Path:
    for name in ("cells.parquet", "cells.csv", "cells.csv.gz", "cells"):
        if (dataset / name).exists():
            return dataset / name
    raise InputDataError(
        f"dataset {dataset} has no cells.parquet (or cells.csv); add the cells table"
    )


def ingest(
    *,
    events: Path,
    cells: Path,
    store: Path,
    key_file: Path,
    period: tuple[date, date],
    metadata: dict[str, Any] | None = None,
    progress: ProgressCallback | None = None,
    memory_limit: str = MEMORY_LIMIT,
    engine: Engine = "duckdb",
    empty_days: bool = False,
) -> IngestReport:
    """Ingest event and cell files into a store: validate, pseudonymise, partition by day.

    Args:
        events: An events file (``.parquet``, ``.csv``, ``.csv.gz``) or a folder of them,
            possibly hive-partitioned.
        cells: The cells file or folder.
        store: The store folder (created if missing).
        key_file: The holder's first pseudonymisation key (created for a new store only);
            keys rotated from a later day sit beside it, and each local day uses the key valid
            on it, which must be the one the store holds for that day (`key_record.py`).
        period: First and last local day of the delivery (inclusive).
        metadata: Holder facts to keep beside the data (timezone, market_share,
            sampling_fraction, ...); without them local dates are in Europe/Brussels.
        progress: Called with a step description and the fraction done.
        memory_limit: DuckDB's memory limit (e.g. ``"4GB"``); it spills to disk beyond it.
        engine: Where the per-row pass runs: ``"duckdb"`` or ``"spark"``
            (`spark_ingestion.py`); both write the same store.
        empty_days: Let the delivery empty the days of its period that the store holds and
            it stores no row of (they are refused otherwise: a period set wider than the
            events would delete them).

    Returns:
        The account of the ingest (also written to ``store/ingest_report.json``).

    Raises:
        InputDataError: If the input breaks the contract in a way that stops ingestion (a
            missing file or column, a file that is not what its name says, a CSV line that
            Spark cannot read line by line, a cells table without a cell of the days the
            store keeps, rows none of which is valid where the store keeps days of the
            period, stored days of the period left without a row and `empty_days` not
            given); the store is then left as it was.
        CellcensusError: If the key file is missing for a store that holds pseudonyms, or is
            not the store's key, or the store lost a day file outside the delivery's period
            (`Store.lost_days`; nothing is written then); or if the delivery was stored but
            its device-day summaries could not be written (the store is consistent: jobs read
            the events until they are).
    """
    began = time.perf_counter()
    say = progress or _quiet
    check_memory_limit(memory_limit)
    if engine not in ENGINES:
        raise CellcensusError(
            f"unknown engine {engine!r}{did_you_mean(engine, ENGINES)}; choose one of "
            f"{', '.join(ENGINES)}"
        )
    start, end = period
    check_period(start=start, end=end, source="period")
    facts = _facts_to_keep(metadata, start=start, end=end)
    changes = offset_changes(timezone=str(facts["timezone"]), start=start, end=end)

    say("checking the input files", 0.0)
    event_files = find_table(location=Path(events), what="events", required=EVENT_REQUIRED)
    cell_files = find_table(location=Path(cells), what="cells", required=CELL_REQUIRED)
    run_on = _run_on(engine)
    target = Store(store)
    _check_delivery_apart(target, events=Path(events), cells=Path(cells))
    check_not_delivery(target.root)  # another delivery's raw days would be replaced too
    with _store_folder(target.root), writing(target, writer="ingest"):
        keys, key_periods = _period_keys(target, key_file=Path(key_file), start=start, end=end)
        if any(not start <= day <= end for day in target.lost_days()):
            target.check_no_lost_days()  # a delivery of the lost days' period restores them
        replaced = [day.isoformat() for day in target.days() if start <= day <= end]
        with _staging(target.root) as staging:
            run = run_on(
                staging=staging, store=target, start=start, end=end, changes=changes, say=say
            )
            counts = run.classify(cell_files, event_files, keys=keys, memory_limit=memory_limit)
            del keys
            if counts.rows_read and not counts.rows_stored and replaced:
                raise InputDataError(_nothing_stored(counts, replaced))
            emptied = [
                day for day in replaced if date.fromisoformat(day) not in counts.stored_by_day
            ]
            if emptied and not empty_days:
                raise InputDataError(_would_empty(emptied, period=period))
            seconds = round(time.perf_counter() - began, 3)
            report = counts.report(period=period, seconds=seconds, replaced=replaced)
            (staging / "ingest_report.json").write_text(report.to_json(), encoding="utf-8")
            (staging / "metadata.json").write_text(_json(facts), encoding="utf-8")
            write_key_record(key_periods, path=staging / RECORD_NAME)
            say("moving the new days into place", 0.97)
            _commit(staging=staging, store=target, start=start, end=end)
        say("summarising each day's devices for the device filter", 0.98)
        _summarise_stored(target, days=list(counts.stored_by_day), memory_limit=memory_limit)
    say("done", 1.0)
    return report


def _check_delivery_apart(store: Store, *, events: Path, cells: Path) -> None:
    """Refuse a store whose events or cells are the delivery's own files.

    A dataset folder and a store share a layout (events/, cells.parquet, metadata.json): the
    delivery as its own store would have its raw events replaced by their pseudonyms.

    Raises:
        InputDataError: Naming the store, the delivery's files and what to do.
    """
    written = (store.events_dir.resolve(), store.cells_path.resolve())
    for what, location in (("events", events), ("cells", cells)):
        place = location.resolve()
        if any(place == path or place.is_relative_to(path) for path in written):
            raise InputDataError(
                f"store {store.root} holds the delivery's {what} {location}: the ingest would "
                "replace them with the store's; give a --store folder apart from the delivery"
            )


def _facts_to_keep(metadata: dict[str, Any] | None, *, start: date, end: date) -> dict[str, Any]:
    """The holder facts to keep: `metadata` checked (or the default time zone), and the period."""
    facts: dict[str, Any] = (
        {"timezone": DEFAULT_TIMEZONE}
        if metadata is None
        else check_metadata(metadata=metadata, source="metadata", period_required=False)
    )
    facts["period"] = {"start": start.isoformat(), "end": end.isoformat()}
    return facts


def _period_keys(
    store: Store, *, key_file: Path, start: date, end: date
) -> tuple[list[PeriodKey], list[KeyPeriod]]:
    """The keys of the delivery's days, and the store's key record with them.

    Raises:
        CellcensusError: If the key file is missing for a store that holds pseudonyms, or a
            day's key is not the one the store holds for it (`key_record.py`).
    """
    check_key_file(key_file=key_file, store=store)
    keys = keys_for_period(key_file=key_file, start=start, end=end)
    return keys, check_keys(store=store, keys=keys, key_file=key_file, start=start, end=end)


def _nothing_stored(counts: _Counts, replaced: list[str]) -> str:
    """Why a delivery none of whose rows is valid may not empty the days the store keeps.

    Every row quarantined is a wrong format far more often than a wish to empty days (a
    delivery without rows does that).
    """
    reasons = ", ".join(f"{n:,} {reason}" for reason, n in counts.quarantined.items() if n)
    return (
        f"none of the delivery's {counts.rows_read:,} rows could be stored ({reasons}), and it "
        f"would empty the stored day(s) {', '.join(replaced)}: nothing was changed; see what "
        "each reason means in docs/store.md, correct the delivery and ingest it again"
    )


def _would_empty(emptied: list[str], *, period: tuple[date, date]) -> str:
    """Why a delivery may not empty stored days of its period unless told to.

    A period declared wider than the events (a typo in it) would delete the days it does not
    hold; a delivery meant to empty days says so.
    """
    start, end = period
    days = date_runs(date.fromisoformat(day) for day in emptied)
    return (
        f"the delivery's period {start} to {end} holds {len(emptied)} day(s) the store keeps "
        f"that the delivery has no rows to store for ({days}): ingesting it would delete their "
        "events, so nothing was changed. If the period is wrong, correct it (metadata.json, "
        "or --period) and ingest again; if those days are meant to be emptied, ingest with "
        "--empty-days (empty_days=True in Python)"
    )


def _run_on(engine: Engine) -> type[_Run]:
    """The ingest for `engine`; Spark's starts before anything is written."""
    if engine == "duckdb":
        return _Run
    from cellcensus.holder.engines import start
    from cellcensus.holder.store.spark_ingestion import SparkRun

    start("spark")
    return SparkRun


def _summarise_stored(store: Store, *, days: list[date], memory_limit: str) -> None:
    """Summarise the days just stored; a failure leaves the delivery stored and says so."""
    try:
        summarise(store, days=days, memory_limit=memory_limit)
    except (duckdb.Error, OSError) as error:
        raise CellcensusError(
            f"the delivery is stored, but its device-day summaries could not be written "
            f"({error}); jobs read the events until `cellcensus store summarise --store "
            f"{store.root}` writes them"
        ) from error


def _quiet(step: str, fraction: float) -> None:
    """Progress callback that reports nothing."""


def _json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


class _Counts:
    """What `_Run.classify_and_write` counted."""

    def __init__(self) -> None:
        self.rows_read = 0
        self.rows_stored = 0
        self.quarantined: dict[str, int] = dict.fromkeys(QUARANTINE_REASONS, 0)
        self.stored_by_day: dict[date, int] = {}
        self.distinct_devices = 0

    def report(
        self, *, period: tuple[date, date], seconds: float, replaced: list[str]
    ) -> IngestReport:
        """The account of an ingest of `period` that took `seconds` and replaced days `replaced`."""
        start, end = period
        return IngestReport(
            rows_read=self.rows_read,
            rows_stored=self.rows_stored,
            rows_quarantined_by_reason=self.quarantined,
            days=[day.isoformat() for day in self.stored_by_day],
            distinct_devices=self.distinct_devices,
            period_start=start.isoformat(),
            period_end=end.isoformat(),
            rows_stored_by_day={day.isoformat(): n for day, n in self.stored_by_day.items()},
            seconds=seconds,
            days_replaced=replaced,
        )


class _Run:
    """One ingest inside one DuckDB connection, spilling to staging past its memory limit."""

    con: duckdb.DuckDBPyConnection

    def __init__(
        self,
        *,
        staging: Path,
        store: Store,
        start: date,
        end: date,
        changes: list[OffsetChange],
        say: ProgressCallback,
    ) -> None:
        self.staging = staging
        self.store = store
        self.start = start
        self.end = end
        self.changes = changes
        self.say = say
        self.keys: list[PeriodKey] = []

    def classify(
        self, cells: TableFiles, events: TableFiles, *, keys: list[PeriodKey], memory_limit: str
    ) -> _Counts:
        """Load, pseudonymise and classify the delivery in a DuckDB connection of its own."""
        config: dict[str, str | bool | int | float | list[str]] = {
            "preserve_insertion_order": True,  # the day files rely on it (see `_write_day`)
            "temp_directory": str(self.staging / "spill"),
            "memory_limit": memory_limit,
        }
        self.memory_limit = memory_limit
        with duckdb.connect(":memory:", config=config) as self.con:
            self.con.execute("SET TimeZone = 'UTC'")  # text without an offset, naive types: UTC
            self.con.execute("SET enable_progress_bar = false")  # progress: `say`'s, not stdout's
            event_types = ", ".join(sql_string(name) for name in EVENT_TYPES)
            self._run(f"CREATE TYPE event_key AS ENUM ({event_types})")
            self.load_cells(cells)
            self.load_events(events)
            self.pseudonymise(keys, table=events)
            return self.classify_and_write(table=events)

    def _run(self, query: str, *, table: TableFiles | None = None) -> duckdb.DuckDBPyConnection:
        """Execute `query`; a DuckDB failure while reading `table` is the input's fault."""
        try:
            return self.con.execute(query)
        except duckdb.Error as error:
            if table is None:
                raise
            raise _unreadable(table, error, memory_limit=self.memory_limit) from None

    def _scalar(self, query: str) -> int:
        row = self.con.execute(query).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def load_cells(self, table: TableFiles) -> None:
        """Read, type and check the cells table; write ``cells.parquet``; build validity."""
        self.say("reading the cells", 0.02)
        selects = []
        for scan in scan_sql(table=table):
            types = self._types(scan, table=table)
            selects.append(cell_select(scan=scan, types=types, source=str(table.location)))
        self._run(f"CREATE TEMP TABLE cells_in AS {' UNION ALL '.join(selects)}", table=table)
        self._check_cells(table)
        self._check_cells_of_days_kept(table)
        columns = ", ".join(CELL_COLUMNS)
        self._run(
            f"COPY (SELECT DISTINCT {columns} FROM cells_in "
            f"ORDER BY cell_id, valid_from NULLS FIRST) "
            f"TO {sql_string(self.staging / 'cells.parquet')} ({PARQUET_OPTIONS})"
        )
        # Rows carry a cell as an ENUM (a small integer: cheap to sort, a string again on
        # output), got from the join on cell_id that also says whether the cell is valid.
        self._run(
            "CREATE TYPE cell_key AS ENUM (SELECT DISTINCT cell_id FROM cells_in ORDER BY cell_id)"
        )
        # Per cell: valid on every local day of the period (most cells), or the list of days
        # on which some version of it is valid; events then join on cell_id alone.
        self._run(
            f"""
            CREATE TEMP TABLE cell_status AS
            WITH cell_day AS (
                SELECT c.cell_id, CAST(d.day AS DATE) AS local_date,
                       bool_or(coalesce(c.valid_from <= CAST(d.day AS DATE), true)
                               AND coalesce(CAST(d.day AS DATE) <= c.valid_to, true)) AS valid
                FROM cells_in AS c
                CROSS JOIN generate_series(DATE '{self.start}', DATE '{self.end}',
                                           INTERVAL 1 DAY) AS d(day)
                GROUP BY ALL
            )
            SELECT cell_id, CAST(cell_id AS cell_key) AS cell, bool_and(valid) AS always_valid,
                   CASE WHEN NOT bool_and(valid)
                        THEN list(local_date) FILTER (WHERE valid) END AS valid_days
            FROM cell_day GROUP BY cell_id
            """
        )
        self._run(
            "CREATE TEMP TABLE cell_codes AS SELECT enum_code(cell) AS code, cell FROM cell_status"
        )

    def _types(self, scan: str, *, table: TableFiles) -> dict[str, str]:
        rows = self._run(f"DESCRIBE SELECT * FROM {scan}", table=table).fetchall()
        return {str(row[0]): str(row[1]) for row in rows}

    def _check_cells(self, table: TableFiles) -> None:
        where = table.location
        if not self._scalar("SELECT count(*) FROM cells_in"):
            raise InputDataError(f"cells: {where} holds no cells; deliver the cells table")
        for column in (*CELL_NUMBERS, *CELL_DATES):
            bad = self._run(
                f"SELECT cell_id, {column}__raw FROM cells_in "
                f"WHERE {column} IS NULL AND {column}__raw IS NOT NULL LIMIT 1"
            ).fetchall()
            if bad:
                kind = "a number" if column in CELL_NUMBERS else "a date (YYYY-MM-DD)"
                raise InputDataError(
                    f"cells: {column} {bad[0][1]!r} of cell {bad[0][0]!r} in {where} is not "
                    f"{kind}; fix the cells table"
                )
        for column in ("cell_id", "latitude", "longitude"):
            count = self._scalar(f"SELECT count(*) FROM cells_in WHERE {column} IS NULL")
            if count:
                raise InputDataError(
                    f"cells: {count} row(s) of {where} have no {column}; every cell needs "
                    "cell_id, latitude and longitude"
                )
        outside = self._run(
            "SELECT cell_id, latitude, longitude FROM cells_in "
            "WHERE NOT (latitude BETWEEN -90 AND 90 AND longitude BETWEEN -180 AND 180) LIMIT 1"
        ).fetchall()
        if outside:
            cell, latitude, longitude = outside[0]
            raise InputDataError(
                f"cells: cell {cell!r} in {where} has latitude {latitude}, longitude {longitude}, "
                "outside WGS84 degrees; give positions in WGS84"
            )
        self._check_versions(table)
        backwards = self._run(
            "SELECT cell_id, valid_from, valid_to FROM cells_in WHERE valid_from > valid_to LIMIT 1"
        ).fetchall()
        if backwards:
            cell, valid_from, valid_to = backwards[0]
            raise InputDataError(
                f"cells: cell {cell!r} in {where} is valid from {valid_from} to {valid_to}, "
                "which ends before it starts; fix valid_from/valid_to"
            )

    def _check_versions(self, table: TableFiles) -> None:
        """Refuse two different rows of one cell from one day: which holds would be a guess."""
        columns = ", ".join(CELL_COLUMNS)
        clash = self._run(
            f"SELECT cell_id, valid_from, count(*) FROM (SELECT DISTINCT {columns} FROM cells_in) "
            "GROUP BY ALL HAVING count(*) > 1 ORDER BY ALL LIMIT 1"
        ).fetchall()
        if clash:
            cell, valid_from, count = clash[0]
            since = valid_from or "the start"
            raise InputDataError(
                f"cells: cell {cell!r} has {count} different rows valid from {since} in "
                f"{table.location}; give one row per cell and validity period"
            )

    def _check_cells_of_days_kept(self, table: TableFiles) -> None:
        """Refuse cells that leave out a cell valid on a day the store keeps beside the delivery.

        The delivery's cells table replaces the store's: a cell left out (an export of the
        network as it stands, without its retired cells) would drop the events of the days
        kept from earlier deliveries out of every release.
        """
        kept = [day for day in self.store.days() if not self.start <= day <= self.end]
        if not kept or not self.store.cells_path.exists():
            return
        days = ", ".join(f"DATE '{day}'" for day in kept)
        missing = self._run(
            f"""
            SELECT DISTINCT o.cell_id
            FROM read_parquet({sql_string(self.store.cells_path)}) AS o,
                 (SELECT unnest([{days}]) AS day) AS d
            WHERE coalesce(o.valid_from <= d.day, true) AND coalesce(d.day <= o.valid_to, true)
                AND o.cell_id NOT IN (SELECT cell_id FROM cells_in)
            ORDER BY o.cell_id
            """
        ).fetchall()
        if missing:
            named = ", ".join(repr(row[0]) for row in missing[:5])
            named += ", ..." if len(missing) > 5 else ""
            raise InputDataError(
                f"cells: {table.location} lacks {len(missing)} cell(s) of the days the store "
                f"keeps from earlier deliveries ({kept[0]} to {kept[-1]}): {named}; their "
                "events would no longer be counted. Keep every cell of the network's history "
                "in the cells table, a retired one with its valid_to"
            )

    def load_events(self, table: TableFiles) -> None:
        """Expose the event files as one normalised relation ``events_in``.

        Parquet is scanned where it lies (twice: distinct ids, then rows); CSV is parsed once
        into memory, and its lines that cannot be split into the header's fields are kept for
        the quarantine as file:line only, in table ``malformed_rows`` with their reason.
        """
        self.say("reading the events", 0.05)
        selects = []
        plain = scan_sql(table=table)
        rejecting = scan_sql(table=table, rejects="csv_rejects")
        for scan, scan_with_rejects in zip(plain, rejecting, strict=True):
            types = self._types(scan, table=table)
            source = str(table.location)
            selects.append(event_select(scan=scan_with_rejects, types=types, source=source))
        kind = "TEMP TABLE" if table.csv else "TEMP VIEW"
        self._run(f"CREATE {kind} events_in AS {' UNION ALL '.join(selects)}", table=table)
        rejected = []
        for index in range(len(table.csv)):
            errors, scans = f"csv_rejects_errors_{index}", f"csv_rejects_scans_{index}"
            if self._exists(errors) and self._exists(scans):
                rejected.append(
                    f"SELECT s.file_path || ':' || e.line AS source, {_LINE_REASON} AS reason "
                    f"FROM {errors} AS e JOIN {scans} AS s USING (scan_id, file_id) "
                    "GROUP BY ALL"
                )
        union = " UNION ALL ".join(rejected) or (
            "SELECT CAST(NULL AS VARCHAR) AS source, CAST(NULL AS VARCHAR) AS reason LIMIT 0"
        )
        self._run(f"CREATE TEMP TABLE malformed_rows AS SELECT source, reason FROM ({union})")
        for index, group in enumerate(table.csv):
            self._refuse_lines_lost_to_an_open_quote(table, group, index)

    def _refuse_lines_lost_to_an_open_quote(
        self, table: TableFiles, group: CsvGroup, index: int
    ) -> None:
        """Refuse a CSV group some of whose lines are neither a row nor in a rejected record.

        DuckDB's reader takes everything from a quote left open to the next quote (or to the
        file's end) as one field of one rejected record, so the lines between would be
        neither stored nor quarantined, as the Spark engine's reader (which refuses a quote
        not closed on its line) never lets happen. Where a rejected record may hold a quote,
        each file's non-blank lines are counted against its rows with their quoted line
        breaks (read again) and its rejected records: one with a quote error as a line (its
        text, which DuckDB cuts at 10,000 characters or at its buffer, cannot say how many
        it took), one without as the lines of its text.
        """
        errors, scans = f"csv_rejects_errors_{index}", f"csv_rejects_scans_{index}"
        if not (self._exists(errors) and self._exists(scans)):
            return
        records = self._run(
            f"""
            SELECT s.file_path, e.line, bool_or(e.error_type = 'UNQUOTED VALUE') AS quote,
                   len({_NON_BLANK.format(text="any_value(e.csv_line)")}) AS lines,
                   max(length(e.csv_line)) < {REJECTED_TEXT_CHARS} AS whole,
                   bool_or(e.csv_line LIKE '%"%' OR e.csv_line = '') AS quoted
            FROM {errors} AS e JOIN {scans} AS s USING (scan_id, file_id)
            GROUP BY s.file_path, e.line ORDER BY 1, 2
            """
        ).fetchall()
        if not any(quoted for *_, quoted in records):
            return  # no quote, no field that could have taken other lines
        read = self._rows_and_breaks(table, group, index)
        for path in group.files:
            mine = [record for record in records if record[0] == str(path)]
            # A rejected record without a quote error is whole lines (a quoted break in it).
            kept = sum(lines if whole and not quote else 1 for _, _, quote, lines, whole, _ in mine)
            lost = data_lines(path) - read.get(str(path), 0) - kept
            if lost > 0 and mine:
                raise _open_quote(str(path), mine[0][1], lost=lost)

    def _rows_and_breaks(self, table: TableFiles, group: CsvGroup, index: int) -> dict[str, int]:
        """Per file of `group`: the non-blank lines its rows take.

        A row is a line, and a quoted field's line breaks start more: its last one a line
        that goes on with the closing quote, the others lines of their own, if not blank.
        """
        breaks = " + ".join(
            f"(CASE WHEN strpos({column}, chr(10)) > 0 THEN 1 + len(list_filter("
            f"string_split({column}, chr(10))[2:-2], lambda s: trim(s, chr(13)) <> '')) "
            "ELSE 0 END)"
            for column in map(quote, group.header)
        )
        rejects = (f"recount_errors_{index}", f"recount_scans_{index}")
        scan = csv_scan(group, rejects=rejects, filename=True)
        counted = self._run(
            f"SELECT filename, count(*) + coalesce(sum({breaks}), 0) FROM {scan} GROUP BY 1",
            table=table,
        ).fetchall()
        return {str(file): int(lines) for file, lines in counted}

    def _exists(self, name: str) -> bool:
        row = self.con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [name]
        ).fetchone()
        return bool(row and row[0])

    def _local_date_sql(self, ts: str) -> str:
        """SQL for the local calendar date of the timestamp expression `ts`."""
        local_us = local_micros_sql(epoch_us=f"epoch_us({ts})", changes=self.changes)
        return f"(DATE '1970-01-01' + CAST({local_us} // {MICROS_PER_DAY} AS INTEGER))"

    def _key_index_sql(self, local_date: str) -> str:
        return key_index_sql(local_date=local_date, keys=self.keys, start=self.start, end=self.end)

    def pseudonymise(self, keys: list[PeriodKey], *, table: TableFiles) -> None:
        """Table ``pseudonyms`` (user_id, key_index, device_id): one HMAC per id and key.

        Each distinct identifier is pseudonymised with the key of each period it has rows in
        (one key, and no date arithmetic, when no rotation falls in the delivery's period).
        """
        self.say("pseudonymising subscribers", 0.15)
        self.keys = keys
        key_index = self._key_index_sql(self._local_date_sql("ts"))
        schema = pa.schema(
            [("user_id", pa.string()), ("key_index", pa.int32()), ("device_id", pa.int64())]
        )
        query = (
            f"SELECT DISTINCT user_id, CAST({key_index} AS INTEGER) AS key_index "
            "FROM events_in WHERE user_id IS NOT NULL"
        )
        batches = []
        try:
            for batch in self.con.sql(query).to_arrow_reader(PSEUDONYM_BATCH):
                ids = batch.column(0).cast(pa.string())
                indexes = batch.column(1)
                devices = _pseudonyms(ids.to_pylist(), indexes.to_numpy(), keys=keys)
                batches.append(pa.record_batch([ids, indexes, pa.array(devices)], schema=schema))
        except duckdb.Error as error:
            raise _unreadable(table, error, memory_limit=self.memory_limit) from None
        mapping = pa.Table.from_batches(batches, schema=schema)
        self.con.register("pseudonyms_arrow", mapping)
        self._run("CREATE TEMP TABLE pseudonyms AS SELECT * FROM pseudonyms_arrow")
        self.con.unregister("pseudonyms_arrow")

    def classify_and_write(self, *, table: TableFiles) -> _Counts:
        """Give every row its reason (or none), write the day files and the quarantine."""
        self.say("validating rows", 0.3)
        counts = _Counts()
        classified = self.staging / "classified"
        read = self._stage_classified(table=table, folder=classified)
        counts.rows_read = read + self._scalar("SELECT count(*) FROM malformed_rows")
        self._load_rejected(classified / f"part={REJECTED}")
        for reason, count in self._run(
            "SELECT reason, count(*) FROM rejected GROUP BY reason "
            "UNION ALL SELECT reason, count(*) FROM malformed_rows GROUP BY reason"
        ).fetchall():
            counts.quarantined[str(reason)] = int(count)
        self._run(
            "CREATE TEMP TABLE duplicates (device_id BIGINT, ts TIMESTAMPTZ, local_date DATE, "
            "local_hour TINYINT, cell cell_key, event event_key, mcc INTEGER, mnc INTEGER, "
            "tac VARCHAR)"
        )
        written = self._write_days(classified)
        for day, (stored, duplicated) in written.items():
            counts.stored_by_day[day] = stored
            counts.rows_stored += stored
            counts.quarantined["duplicate"] += duplicated
        if written:
            day_files = sql_string(self.staging / "events" / "*" / "*.parquet")
            counts.distinct_devices = self._scalar(
                f"SELECT count(DISTINCT device_id) FROM read_parquet({day_files})"
            )

        self.say("writing the quarantine", 0.92)
        self._write_quarantine()
        accounted = counts.rows_stored + sum(counts.quarantined.values())
        if accounted != counts.rows_read:
            raise AssertionError(
                f"ingest lost rows: {counts.rows_read} read, {accounted} stored or quarantined"
            )
        return counts

    def _stage_classified(self, *, table: TableFiles, folder: Path) -> int:
        """Classify every row in one streaming pass, staged by local day (rejected apart).

        Returns:
            The number of rows read (rejected CSV lines apart).
        """
        local_us = local_micros_sql(epoch_us="epoch", changes=self.changes)
        event_codes = " ".join(
            f"WHEN {sql_string(name)} THEN CAST({sql_string(name)} AS event_key)"
            for name in EVENT_TYPES
        )
        # Staged rows carry cells and event types as their ENUM codes (small integers, cheap
        # to write and to sort); what only rejected rows need (their reason, local date and the
        # text they came with) is packed in one JSON text column, NULL for valid rows (cheaper
        # to write than as many mostly-NULL columns). Staged rows are sorted later, so their
        # order may go: the write then runs in parallel.
        self._run("SET preserve_insertion_order = false")
        written = self._run(
            f"""
            COPY (
            WITH located AS (
                SELECT *, {local_us} AS local_us
                FROM (SELECT *, epoch_us(ts) AS epoch FROM events_in)
            ), dated AS (
                SELECT *,
                    DATE '1970-01-01' + CAST(local_us // {MICROS_PER_DAY} AS INTEGER)
                        AS local_date,
                    CAST((local_us % {MICROS_PER_DAY}) // {MICROS_PER_HOUR} AS TINYINT)
                        AS local_hour,
                    CASE event_type {event_codes} END AS event
                FROM located
            ), reasoned AS (
                SELECT d.*, p.device_id, c.cell,
                    CASE
                        WHEN {any_field(empty_fields("d."))} THEN 'null_field'
                        WHEN {any_field(malformed_fields(tac_ok=_tac_ok("d."), row="d."))}
                            THEN 'malformed_value'
                        WHEN d.event IS NULL THEN 'unknown_event_type'
                        WHEN d.local_date NOT BETWEEN DATE '{self.start}' AND DATE '{self.end}'
                            THEN 'outside_period'
                        WHEN c.cell IS NULL THEN 'unknown_cell'
                        WHEN c.always_valid THEN NULL
                        WHEN NOT coalesce(list_contains(c.valid_days, d.local_date), false)
                            THEN 'cell_not_valid'
                    END AS reason
                FROM dated AS d
                LEFT JOIN pseudonyms AS p
                    ON p.user_id = d.user_id
                    AND p.key_index = {self._key_index_sql("d.local_date")}
                LEFT JOIN cell_status AS c ON c.cell_id = d.cell_id
            )
            SELECT
                device_id, ts, local_hour, enum_code(cell) AS cell, enum_code(event) AS event,
                mcc, mnc, tac,
                CASE WHEN reason IS NOT NULL THEN CAST(to_json(struct_pack(
                    reason, field := {fields_at_fault(tac_ok=_tac_ok())}, local_date,
                    cell_id, event_type, ts_text, mcc_text, mnc_text
                )) AS VARCHAR) END AS rejected,
                CASE WHEN reason IS NULL THEN CAST(local_date AS VARCHAR)
                     ELSE '{REJECTED}' END AS part
            FROM reasoned
            ) TO {sql_string(folder)} ({STAGED_OPTIONS}, PARTITION_BY (part))
            """,
            table=table,
        ).fetchone()
        self._run("SET preserve_insertion_order = true")
        return int(written[0]) if written else 0

    def _load_rejected(self, folder: Path) -> None:
        """Relation ``rejected``: the staged rows that go to the quarantine (maybe none)."""
        if not folder.is_dir():
            self._run(
                """
                CREATE TEMP TABLE rejected (
                    device_id BIGINT, ts TIMESTAMPTZ, local_date DATE, mcc INTEGER,
                    mnc INTEGER, reason VARCHAR, field VARCHAR, cell_text VARCHAR,
                    event_text VARCHAR, tac_text VARCHAR, ts_text VARCHAR, mcc_text VARCHAR,
                    mnc_text VARCHAR)
                """
            )
            return
        self._run(
            f"""
            CREATE TEMP VIEW rejected AS
            SELECT device_id, ts, CAST(rejected ->> 'local_date' AS DATE) AS local_date,
                   mcc, mnc, rejected ->> 'reason' AS reason, rejected ->> 'field' AS field,
                   rejected ->> 'cell_id' AS cell_text,
                   rejected ->> 'event_type' AS event_text, tac AS tac_text,
                   rejected ->> 'ts_text' AS ts_text, rejected ->> 'mcc_text' AS mcc_text,
                   rejected ->> 'mnc_text' AS mnc_text
            FROM read_parquet({sql_string(folder / "*.parquet")})
            """
        )

    def _write_days(self, classified: Path) -> dict[date, tuple[int, int]]:
        """Write the day files of the staged valid rows, one day at a time (`_write_day`).

        Returns:
            Per day, in order: the rows stored and the duplicates, which are in table
            ``duplicates``.
        """
        days = _staged_days(classified)
        written = {}
        for index, day in enumerate(days):
            self.say(f"writing {day}", 0.35 + 0.55 * index / len(days))
            written[day] = self._write_day(day, staged=classified / f"part={day}")
        return written

    def _write_day(self, day: date, *, staged: Path) -> tuple[int, int]:
        """Write one day's valid rows, sorted; exact duplicates go to table ``duplicates``.

        Sorting by every column puts identical rows side by side; a row equal to its
        predecessor is a duplicate. "Predecessor" is the table's order, which DuckDB keeps
        for an ordered CREATE TABLE AS, a window with an empty OVER () and a filtered COPY
        (its documented order preservation; `preserve_insertion_order` is on). The day's
        staged rows are deleted once written.
        """
        self._run(
            f"""
            CREATE OR REPLACE TEMP TABLE day_rows AS
            SELECT s.device_id, s.ts, c.cell, {_EVENT_OF_CODE} AS event, s.mcc, s.mnc, s.tac,
                   s.local_hour
            FROM read_parquet({sql_string(staged / "*.parquet")}) AS s
            JOIN cell_codes AS c ON c.code = s.cell
            ORDER BY {", ".join(DAY_ORDER)} NULLS FIRST
            """
        )
        shutil.rmtree(staged)
        # device_id is never NULL here, so the first row (no predecessor) is never a duplicate.
        same = " AND ".join(
            f"{column} IS NOT DISTINCT FROM lag({column}) OVER ()" for column in DAY_ORDER
        )
        flagged = (
            f"SELECT *, DATE '{day}' AS local_date, coalesce({same}, false) AS duplicate "
            "FROM day_rows"
        )
        columns = ", ".join(_STORED_AS.get(column, column) for column in EVENT_COLUMNS)
        folder = self.staging / "events" / f"date={day.isoformat()}"
        folder.mkdir(parents=True)
        written = self._run(
            f"COPY (SELECT {columns} FROM ({flagged}) WHERE NOT duplicate) "
            f"TO {sql_string(folder / 'part-0.parquet')} ({PARQUET_OPTIONS})"
        ).fetchone()
        stored = int(written[0]) if written else 0
        duplicated = self._scalar("SELECT count(*) FROM day_rows") - stored
        if duplicated:
            self._run(
                f"INSERT INTO duplicates BY NAME SELECT * EXCLUDE (duplicate) "
                f"FROM ({flagged}) WHERE duplicate"
            )
        self._run("DROP TABLE day_rows")
        return stored, duplicated

    def _write_quarantine(self) -> None:
        """Write rejected rows with their reason; raw user_ids are never among them."""
        self._run(
            """
            CREATE TEMP TABLE quarantined AS
            SELECT device_id, ts AS timestamp, ts_text AS timestamp_text, local_date,
                   cell_text AS cell_id, event_text AS event_type, mcc, mcc_text, mnc,
                   mnc_text, tac_text AS tac, reason, field, CAST(NULL AS VARCHAR) AS source
            FROM rejected
            UNION ALL
            SELECT device_id, ts, NULL, local_date, CAST(cell AS VARCHAR),
                   CAST(event AS VARCHAR), mcc, NULL, mnc, NULL, tac, 'duplicate', NULL, NULL
            FROM duplicates
            UNION ALL
            SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                   reason, NULL, source
            FROM malformed_rows
            """
        )
        if not self._scalar("SELECT count(*) FROM quarantined"):
            return
        # A shifted or garbled row can carry a subscriber identifier in another field: any
        # text equal to a known user_id is blanked, so the quarantine holds no raw identifier.
        texts = ("timestamp_text", "cell_id", "event_type", "mcc_text", "mnc_text", "tac")
        values = " UNION ".join(f"SELECT {text} AS value FROM quarantined" for text in texts)
        self._run(
            f"""
            CREATE TEMP TABLE leaked AS
            SELECT DISTINCT v.value FROM ({values}) AS v
            JOIN pseudonyms AS p ON p.user_id = v.value
            """
        )
        columns = self._run("SELECT * FROM quarantined LIMIT 0").description or []
        scrubbed = ", ".join(
            f"CASE WHEN {name} IN (SELECT value FROM leaked) THEN '[user_id removed]' "
            f"ELSE {name} END AS {name}"
            if name in texts
            else name
            for name in (str(column[0]) for column in columns)
        )
        partition = f"period={self.start.isoformat()}_{self.end.isoformat()}"
        target = self.staging / "quarantine" / partition / "part-0.parquet"
        target.parent.mkdir(parents=True)
        self._run(
            f"COPY (SELECT {scrubbed} FROM quarantined ORDER BY reason, local_date, timestamp) "
            f"TO {sql_string(target)} ({PARQUET_OPTIONS})"
        )


def check_memory_limit(memory_limit: str) -> None:
    """Refuse a memory limit DuckDB would not take, before anything is read or written."""
    if not _MEMORY_SIZE.fullmatch(memory_limit.strip()):
        raise CellcensusError(
            f"memory limit {memory_limit!r} is not a size; write it as a number and a unit, "
            f"e.g. 4GB or 512MB"
        )


def _tac_ok(row: str = "") -> str:
    """DuckDB SQL true where the row's tac is 8 digits (NULL where it has none)."""
    return f"regexp_full_match({row}tac, '[0-9]{{8}}')"


def _staged_days(classified: Path) -> list[date]:
    """The local days that have valid rows among the staged partitions, in order."""
    if not classified.is_dir():
        return []
    prefix = "part="
    names = (folder.name for folder in classified.iterdir() if folder.is_dir())
    return sorted(
        date.fromisoformat(name[len(prefix) :])
        for name in names
        if name.startswith(prefix) and name != f"{prefix}{REJECTED}"
    )


def _pseudonyms(
    user_ids: list[str], key_indexes: npt.NDArray[np.int32], *, keys: list[PeriodKey]
) -> npt.NDArray[np.int64]:
    """Pseudonym of each identifier under the key its row names (an index into `keys`)."""
    if len(keys) == 1:
        return pseudonymise(user_ids=user_ids, key=keys[0].key)
    devices = np.empty(len(user_ids), dtype=np.int64)
    for index, period_key in enumerate(keys):
        rows = np.flatnonzero(key_indexes == index)
        if rows.size:
            chosen = [user_ids[row] for row in rows]
            devices[rows] = pseudonymise(user_ids=chosen, key=period_key.key)
    return devices


_LINE_REASON = (
    "CASE WHEN bool_and(e.error_type IN ('MISSING COLUMNS', 'TOO MANY COLUMNS')) "
    "THEN 'wrong_field_count' ELSE 'malformed_row' END"
)
"""SQL for the reason of a CSV line DuckDB's reader rejected, from its errors ``e``: a line
that only has too few or too many fields is told apart from one that cannot be split."""

_EVENT_OF_CODE = (
    "CASE s.event "
    + " ".join(
        f"WHEN {code} THEN CAST({sql_string(name)} AS event_key)"
        for code, name in enumerate(EVENT_TYPES)
    )
    + " END"
)
"""SQL for the event type (ENUM) of a staged row's event code."""

_STORED_AS = {
    "timestamp": "ts AS timestamp",
    "cell_id": "cell AS cell_id",  # an ENUM: DuckDB writes it as a plain Parquet string
    "event_type": "event AS event_type",
}
"""Stored columns from the columns that valid rows carry through the sort."""


REJECTED_TEXT_CHARS = 10_000
"""DuckDB keeps at most this much of a rejected CSV record's text."""

_NON_BLANK = "list_filter(string_split({text}, chr(10)), lambda s: trim(s, chr(13)) <> '')"
"""SQL for the non-blank lines of a text (`{text}`), in order."""


def _open_quote(file: str, line: int, *, lost: int) -> InputDataError:
    return InputDataError(
        f"events: {lost:,} line(s) of {file} went into no row and no rejected line: a quote "
        f"left open at line {line} (or after it) took them into one field; nothing of the "
        "delivery is stored: close or remove the quote (a quote inside a quoted field is "
        "doubled) and ingest again"
    )


def _unreadable(
    table: TableFiles, error: BaseException, *, memory_limit: str | None = None
) -> CellcensusError:
    if memory_limit and isinstance(error, duckdb.OutOfMemoryException):  # not the files'
        return CellcensusError(
            f"{table.what}: reading {table.location} ran out of memory under the ingest's "
            f"memory limit of {memory_limit}; give a larger --memory-limit ({MEMORY_LIMIT} "
            "by default)"
        )
    text = str(error).strip()
    detail = _field_count_error(text) or (text.splitlines()[0] if text else type(error).__name__)
    return InputDataError(f"{table.what}: cannot read {table.location} ({detail}); check the files")


_CSV_LINE = re.compile(r"CSV Error on Line: (\d+)")
_CSV_COUNT = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")
_CSV_FILE = re.compile(r"^\s*file = (.+)$", re.MULTILINE)


def _field_count_error(text: str) -> str | None:
    """DuckDB's error for a CSV line with too few or too many fields, in a sentence."""
    line, count, file = _CSV_LINE.search(text), _CSV_COUNT.search(text), _CSV_FILE.search(text)
    if not (line and count):
        return None
    where = f" of {Path(file.group(1)).name}" if file else ""
    expected, found = count.groups()
    return f"line {line.group(1)}{where} has {found} fields where its header has {expected}"


STORE_FOLDER_MODE = 0o750
"""Mode of a store folder an ingest creates: the holder's staff (its group) may read it."""


@contextlib.contextmanager
def _store_folder(root: Path) -> Iterator[None]:
    """The store folder, created if missing and removed again if the ingest leaves it empty.

    A folder it creates is closed to others than its owner and group (mode 0750): beside the
    pseudonymised events, the quarantine keeps the raw text of rejected fields.
    """
    if root.exists() and not root.is_dir():
        raise InputDataError(f"store {root} is a file; give a folder for the store")
    created = [folder for folder in (root, *root.parents) if not folder.exists()]
    root.mkdir(parents=True, exist_ok=True)
    if root in created:
        root.chmod(STORE_FOLDER_MODE)  # whatever the umask
    try:
        yield
    finally:
        for folder in created:  # deepest first: only what this ingest created, if still empty
            with contextlib.suppress(OSError):
                folder.rmdir()


@contextlib.contextmanager
def _staging(root: Path) -> Iterator[Path]:
    """A fresh staging folder inside `root`, removed afterwards whatever happens."""
    staging = root / f".staging-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _commit(*, staging: Path, store: Store, start: date, end: date) -> None:
    """Move the staged files into the store, replacing the period's days; undo on failure."""
    replaced = staging / "replaced"
    moves: list[tuple[Path, Path]] = []

    def move(source: Path, destination: Path) -> None:
        destination.parent.mkdir(parents=True, exist_ok=True)
        source.rename(destination)
        moves.append((source, destination))

    try:
        day = start
        while day <= end:
            # The summary first: a summary without its day is what jobs refuse as a lost day.
            summary = store.device_day_path(day).parent  # made from the day replaced
            if summary.exists():
                move(summary, replaced / "device_days" / summary.name)
            old = store.events_dir / f"date={day.isoformat()}"
            if old.exists():
                move(old, replaced / "events" / old.name)
            day += timedelta(days=1)
        staged_events = staging / "events"
        if staged_events.is_dir():
            for folder in sorted(staged_events.iterdir()):
                move(folder, store.events_dir / folder.name)
        partition = store.quarantine_path(start=start, end=end).parent
        if partition.exists():
            move(partition, replaced / "quarantine" / partition.name)
        staged_partition = staging / "quarantine" / partition.name
        if staged_partition.exists():
            move(staged_partition, partition)
        for name in ("cells.parquet", "metadata.json", "ingest_report.json", RECORD_NAME):
            if (store.root / name).exists():
                move(store.root / name, replaced / name)
            move(staging / name, store.root / name)
    except BaseException:
        for source, destination in reversed(moves):
            destination.rename(source)
        raise
