"""Ingestion's per-row pass on Spark: normalise, pseudonymise and classify every event row.

`SparkRun` is the DuckDB ingest (`ingestion._Run`) with its passes over the delivery's rows
moved to Spark: the event files are read (CSV lines split and numbered by `spark_csv`),
typed, dated in local time, joined to their pseudonyms and cells and given their quarantine
reason by Spark's executors, which write the staged partitions (one per local day, one of
rejected rows) in the layout the DuckDB pass writes; then, in one more job, sort,
deduplicate and write every day's file (`_write_days`), whose rows, order, columns and types
are those of the DuckDB ingest's. Only the duplicates
come back to the driver, for the quarantine. The rest is shared: the checks on file headers
and footers, the cells (a small table, read on the driver), the keyed HMAC (on the driver:
only the distinct user_ids come back, and their pseudonyms go out as a broadcast join; the
key never leaves the driver), the quarantine, the report and the commit.

Executors run Spark SQL only (no Python UDFs), so they need no cellcensus.
"""

from __future__ import annotations

import shutil
from datetime import date
from functools import reduce
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from cellcensus.errors import SCHEMA_DOC, InputDataError
from cellcensus.holder.engines import spark_session
from cellcensus.holder.store.ingestion import (
    DAY_ORDER,
    EVENT_TYPES,
    PSEUDONYM_BATCH,
    REJECTED,
    _Counts,
    _pseudonyms,
    _Run,
    _staged_days,
)
from cellcensus.holder.store.key_rotation import PeriodKey
from cellcensus.holder.store.layout import EVENT_COLUMNS
from cellcensus.holder.store.local_time import MICROS_PER_DAY, MICROS_PER_HOUR, local_micros_sql
from cellcensus.holder.store.normalise import (
    any_field,
    empty_fields,
    fields_at_fault,
    malformed_fields,
    normalised_columns,
)
from cellcensus.holder.store.sources import TableFiles, sql_string
from cellcensus.holder.store.spark_csv import CsvLines

_INTEGER = ("tinyint", "smallint", "int", "bigint")
_FRACTIONAL = ("float", "double")
_TIMESTAMP_TEXT_RANGE = (
    "(ts_parsed >= TIMESTAMP '1970-01-01 00:00:00' AND ts_parsed < TIMESTAMP '2200-01-01 00:00:00')"
)
"""Timestamps outside [1970, 2200) are not network events (as `normalise.event_select`)."""

_TIMESTAMP_TEXT = (
    r"^\s*\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?"
    r"(Z|[+-]\d{2}(:?\d{2}(:\d{2})?)?| [A-Za-z][A-Za-z_/+-]*)?\s*\z"
)
"""The timestamp texts DuckDB reads; Spark alone would also take "2011", "2011-03",
"2011-03-22T08", "+2011-...", "...08:00:00GMT" and "08:00:00 +01:00"."""

_WITHOUT_SECONDS = r"^(\s*\d{4}-\d{1,2}-\d{1,2}[ T]\d{1,2}:\d{2})(?![:\d])"
"""A time without seconds ("08:00Z"), which DuckDB reads and Spark does not."""

_CODE_TEXT = r"^\s*([0-9]+)(\.0*)?\s*$"
"""Digits only (a float export's ".0" allowed), as `normalise._integer`."""

_TAC = r"^[0-9]{8}\z"
"""A TAC is eight digits (``\\z``: Java's ``$`` would also take a trailing line break)."""


class SparkRun(_Run):
    """An ingest whose per-row pass runs on Spark (see the module's docstring)."""

    events: Any
    mapping: Any
    cells: Any
    csv_lines: list[CsvLines]

    def classify(
        self, cells: TableFiles, events: TableFiles, *, keys: list[PeriodKey], memory_limit: str
    ) -> _Counts:
        """`_Run.classify`, freeing the CSV lines its Spark jobs kept even if it fails."""
        self.csv_lines = []
        try:
            return super().classify(cells, events, keys=keys, memory_limit=memory_limit)
        finally:
            self._release_csv_lines()

    def _release_csv_lines(self) -> None:
        """Free the kept CSV lines (`CsvLines`), whose storage memory the day sort can use."""
        for lines in self.csv_lines:
            lines.release()
        self.csv_lines.clear()

    def load_events(self, table: TableFiles) -> None:
        """The event files as one normalised Spark DataFrame (`normalise.event_select`'s).

        CSV lines are numbered first (one Spark job per group of files), which may refuse
        the delivery; the faulty ones become table ``malformed_rows`` (with their reason), as
        on DuckDB.
        """
        self.say("reading the events", 0.05)
        session = spark_session()
        # The staged files carry instants as Parquet's UTC microsecond timestamps, which
        # DuckDB reads back as TIMESTAMPTZ (Spark's default, INT96, it would read as naive).
        session.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        # The pseudonyms cross between the driver's Python and Spark as Arrow, not row by row.
        session.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
        scans = [
            _guarded(table, lambda g=group: session.read.parquet(*map(_file_uri, g)))
            for group in table.parquet
        ]
        malformed: list[tuple[str, str]] = []
        for group in table.csv:
            lines = CsvLines(session, group, uri=_file_uri)
            self.csv_lines.append(lines)
            deltas, found = _guarded(table, lines.number)
            malformed += found
            scans.append(lines.rows(deltas))
        frames = []
        for scan in scans:
            types = {field.name: field.dataType.simpleString() for field in scan.schema.fields}
            typed, normalised = event_columns(types, source=str(table.location))
            frames.append(scan.selectExpr(*typed).selectExpr(*normalised))
        events = frames[0]
        for frame in frames[1:]:
            events = events.unionByName(frame)
        epoch = "unix_micros(ts)"
        local_us = local_micros_sql(epoch_us=epoch, changes=self.changes)
        self.events = events.selectExpr(
            "*",
            f"date_add(DATE '1970-01-01', CAST({local_us} div {MICROS_PER_DAY} AS INT)) "
            "AS local_date",
            f"CAST(({local_us} % {MICROS_PER_DAY}) div {MICROS_PER_HOUR} AS TINYINT) AS local_hour",
        )
        lines = pa.table(
            {"source": [line for line, _ in malformed], "reason": [why for _, why in malformed]},
            schema=pa.schema([("source", pa.string()), ("reason", pa.string())]),
        )
        self.con.register("malformed_arrow", lines)
        self._run("CREATE TEMP TABLE malformed_rows AS SELECT source, reason FROM malformed_arrow")
        self.con.unregister("malformed_arrow")

    def pseudonymise(self, keys: list[PeriodKey], *, table: TableFiles) -> None:
        """Pseudonyms of the distinct (user_id, key) pairs, made here on the driver.

        Spark collects the distinct pairs; the HMAC runs in Python with the key, which stays
        in this process; the pseudonyms become DuckDB's ``pseudonyms`` (the quarantine's
        scrub) and the Spark DataFrame that `_stage_classified` broadcasts.
        """
        self.say("pseudonymising subscribers", 0.15)
        self.keys = keys
        pairs = self.events.where("user_id IS NOT NULL").selectExpr(
            "user_id", f"CAST({self._key_index_sql('local_date')} AS INT) AS key_index"
        )
        found = _guarded(table, lambda: pairs.distinct().toPandas())
        ids = pa.array(found["user_id"], type=pa.string())
        indexes = pa.array(found["key_index"], type=pa.int32())
        devices = [
            pa.array(
                _pseudonyms(
                    ids.slice(offset, PSEUDONYM_BATCH).to_pylist(),
                    indexes.slice(offset, PSEUDONYM_BATCH).to_numpy(zero_copy_only=False),
                    keys=keys,
                ),
                type=pa.int64(),
            )
            for offset in range(0, len(ids), PSEUDONYM_BATCH)
        ]
        mapping = pa.table(
            {
                "user_id": ids,
                "key_index": indexes,
                "device_id": pa.chunked_array(devices, type=pa.int64()),
            }
        )
        self.con.register("pseudonyms_arrow", mapping)
        self._run("CREATE TEMP TABLE pseudonyms AS SELECT * FROM pseudonyms_arrow")
        self.con.unregister("pseudonyms_arrow")
        self.mapping = _spark_frame(mapping, schema=_MAPPING_SCHEMA)
        del found, mapping

    def _stage_classified(self, *, table: TableFiles, folder: Path) -> int:
        """Classify every row on Spark and stage it as the DuckDB pass does.

        The staged columns are those `_Run._stage_classified` writes (cells and event types
        as their codes, the rejected rows' details as one JSON text), partitioned the same
        way, so `_load_rejected` reads the rejected rows unchanged.

        Returns:
            The number of rows read.
        """
        from pyspark.sql import functions as F  # noqa: N812 (PySpark's convention)

        self.cells = cells = spark_session().createDataFrame(
            self.con.execute(
                "SELECT cell_id, CAST(enum_code(cell) AS INTEGER) AS code, always_valid, "
                "valid_days FROM cell_status"
            ).fetchall(),
            schema="cell_id string, code int, always_valid boolean, valid_days array<date>",
        )
        event_code = (
            "CASE event_type "
            + " ".join(f"WHEN '{name}' THEN {code}" for code, name in enumerate(EVENT_TYPES))
            + " END"
        )
        malformed = malformed_fields(tac_ok=_tac_ok("d."), row="d.")
        reason = (
            F.when(F.expr(any_field(empty_fields("d."))), "null_field")
            .when(F.expr(any_field(malformed)), "malformed_value")
            .when(F.expr("d.event IS NULL"), "unknown_event_type")
            .when(
                F.expr(f"d.local_date NOT BETWEEN DATE '{self.start}' AND DATE '{self.end}'"),
                "outside_period",
            )
            .when(F.expr("c.code IS NULL"), "unknown_cell")
            .when(F.expr("c.always_valid"), F.lit(None))
            .when(
                F.expr("NOT coalesce(array_contains(c.valid_days, d.local_date), false)"),
                "cell_not_valid",
            )
        )
        dated = self.events.selectExpr("*", f"CAST({event_code} AS TINYINT) AS event").alias("d")
        key_index = self._key_index_sql("d.local_date")
        reasoned = (
            dated.join(
                F.broadcast(self.mapping.alias("p")),
                F.expr(f"p.user_id = d.user_id AND p.key_index = {key_index}"),
                "left",
            )
            .join(F.broadcast(cells.alias("c")), F.expr("c.cell_id = d.cell_id"), "left")
            .select("d.*", "p.device_id", F.col("c.code").alias("cell"), reason.alias("reason"))
        )
        staged = reasoned.selectExpr(
            "device_id",
            "ts",
            "local_hour",
            "cell",
            "event",
            "mcc",
            "mnc",
            "tac",
            "CASE WHEN reason IS NOT NULL THEN to_json(named_struct('reason', reason, "
            f"'field', {fields_at_fault(tac_ok=_tac_ok())}, "
            "'local_date', local_date, 'cell_id', cell_id, 'event_type', event_type, "
            "'ts_text', ts_text, 'mcc_text', mcc_text, 'mnc_text', mnc_text)) END AS rejected",
            f"CASE WHEN reason IS NULL THEN CAST(local_date AS STRING) ELSE '{REJECTED}' END "
            "AS part",
        )
        _guarded(
            table,
            lambda: (
                staged.write.partitionBy("part")
                .option("compression", "zstd")
                .parquet(_file_uri(folder))
            ),
        )
        self._release_csv_lines()  # every pass over the rows is done
        if not any(folder.glob("*/*.parquet")):
            return 0  # an empty delivery: Spark writes no file
        return self._scalar(
            f"SELECT count(*) FROM read_parquet({sql_string(folder / '*' / '*.parquet')}, "
            "hive_partitioning=false)"
        )

    def _write_days(self, classified: Path) -> dict[date, tuple[int, int]]:
        """Sort, deduplicate and write every day's file on the executors, in one Spark job.

        Each day's staged rows go to one task (a range partitioning by day never splits a
        day). There they are sorted as `_Run._write_day` sorts a day (cells and event types
        by their codes, as DuckDB's ENUMs sort), and a row equal to its predecessor in its
        device's day is a duplicate. Both kinds are written partitioned by day and kind, so
        each day's one file of stored rows is in the DuckDB ingest's order. The driver
        renames those files to their store names and reads back the duplicates only.

        Returns:
            Per day, in order: the rows stored and the duplicates, which are in table
            ``duplicates``.
        """
        from pyspark.sql import Window
        from pyspark.sql import functions as F  # noqa: N812 (PySpark's convention)

        days = _staged_days(classified)
        if not days:
            return {}
        self.say(f"sorting and writing {len(days)} days", 0.35)
        session = spark_session()
        staged = session.read.option("basePath", _file_uri(classified)).parquet(
            *(_file_uri(classified / f"part={day}") for day in days)
        )
        event_type = (
            "CASE event "
            + " ".join(f"WHEN {code} THEN '{name}'" for code, name in enumerate(EVENT_TYPES))
            + " END"
        )
        rows = staged.selectExpr(
            *DAY_ORDER, "local_hour", "CAST(CAST(part AS DATE) AS STRING) AS day"
        ).join(F.broadcast(self.cells.selectExpr("code AS cell", "cell_id")), "cell")
        device_day = Window.partitionBy("day", "device_id").orderBy(*DAY_ORDER[1:])
        # ts is never NULL here, so a device's first row in a day is never a duplicate.
        same = reduce(
            lambda both, column: both & column,
            (F.col(name).eqNullSafe(F.lag(name).over(device_day)) for name in DAY_ORDER[1:]),
        )
        # The first sort gives the window its groups without a shuffle; the second puts each
        # day's stored rows before its duplicates, in the same order, which the writer needs.
        flagged = (
            rows.repartitionByRange(len(days), "day")
            .sortWithinPartitions("day", *DAY_ORDER)
            .withColumn("duplicate", same)
            .sortWithinPartitions("day", "duplicate", *DAY_ORDER)
        )
        stored_as = {
            "timestamp": "ts AS timestamp",
            "local_date": "CAST(day AS DATE) AS local_date",
            "event_type": f"{event_type} AS event_type",
        }
        written = self.staging / "days"
        flagged.selectExpr(
            *(stored_as.get(column, column) for column in EVENT_COLUMNS), "day", "duplicate"
        ).write.partitionBy("day", "duplicate").option("compression", "zstd").parquet(
            _file_uri(written)
        )
        for day in days:
            shutil.rmtree(classified / f"part={day}")
        return self._collect_days(written, days=days)

    def _collect_days(self, written: Path, *, days: list[date]) -> dict[date, tuple[int, int]]:
        """Move each day's file to its store name; the duplicates into table ``duplicates``."""
        duplicates = sorted(written.glob("day=*/duplicate=true/*.parquet"))
        if duplicates:
            files = ", ".join(sql_string(path) for path in duplicates)
            self._run(
                "INSERT INTO duplicates SELECT device_id, timestamp, local_date, local_hour, "
                "CAST(cell_id AS cell_key), CAST(event_type AS event_key), mcc, mnc, tac "
                f"FROM read_parquet([{files}], hive_partitioning=false)"
            )
        duplicated = dict(
            self._run("SELECT local_date, count(*) FROM duplicates GROUP BY local_date").fetchall()
        )
        counts = {}
        for day in days:
            parts = sorted((written / f"day={day}" / "duplicate=false").glob("*.parquet"))
            if len(parts) != 1:
                raise AssertionError(f"Spark wrote {len(parts)} files for {day}, not one")
            folder = self.staging / "events" / f"date={day.isoformat()}"
            folder.mkdir(parents=True)
            target = parts[0].rename(folder / "part-0.parquet")
            counts[day] = (pq.ParquetFile(target).metadata.num_rows, duplicated.get(day, 0))
        shutil.rmtree(written)
        return counts


_MAPPING_SCHEMA = "user_id string, key_index int, device_id bigint"


def event_columns(types: dict[str, str], *, source: str) -> tuple[list[str], list[str]]:
    """Spark SQL of the normalised event columns of one scan (as `normalise.event_select`).

    Returns:
        Two projections, applied in turn: the typed and the raw input columns, then the
        normalised ones.

    Args:
        types: Column name -> Spark type (``simpleString``) of the scan.
        source: The input's name for messages.

    Raises:
        InputDataError: If a column has a type that cannot hold its contract value.
    """
    inner = [
        f"{_text(types, 'user_id', source)} AS user_id",
        f"{_timestamp(types, 'timestamp', source)} AS ts_parsed",
        f"{_raw(types, 'timestamp')} AS ts_raw",
        f"{_text(types, 'cell_id', source)} AS cell_id",
        f"{_text(types, 'event_type', source)} AS event_type",
        f"{_integer(types, 'mcc', source)} AS mcc_parsed",
        f"{_raw(types, 'mcc')} AS mcc_raw",
        f"{_integer(types, 'mnc', source)} AS mnc_parsed",
        f"{_raw(types, 'mnc')} AS mnc_raw",
        f"{_text(types, 'tac', source, pad=8)} AS tac",
    ]
    return inner, normalised_columns(ts_ok=_TIMESTAMP_TEXT_RANGE)


def _tac_ok(row: str = "") -> str:
    """Spark SQL true where the row's tac is 8 digits (NULL where it has none)."""
    return f"{row}tac RLIKE {_sql_text(_TAC)}"


def _spark_frame(table: pa.Table, *, schema: str) -> Any:
    """A Spark DataFrame of an Arrow table, sent as Arrow (not row by row).

    PySpark 4 takes the table itself; 3.5 takes pandas, whose columns must then be NumPy
    backed (pandas 3's Arrow-backed strings make PySpark 3.5 fall back to rows).
    """
    import pyspark

    session = spark_session()
    if int(pyspark.__version__.split(".")[0]) >= 4:
        return session.createDataFrame(table, schema=schema)
    frame = table.to_pandas()
    return session.createDataFrame(frame.astype({"user_id": object}), schema=schema)


def _file_uri(path: Path) -> str:
    """The path as Hadoop reads it, not percent-encoded as by `Path.as_uri`.

    ``as_uri`` writes the ``=`` of a hive-partitioned delivery's ``date=...`` folders as
    ``%3D``, which Spark then looks for literally.
    """
    return f"file://{path.absolute()}"


def _sql_text(text: str) -> str:
    """A Spark SQL string literal (whose parser reads backslash escapes)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _column(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _all_null(found: str | None) -> bool:
    return found is None or found == "void"


def _type_error(*, source: str, column: str, found: str, expected: str) -> InputDataError:
    return InputDataError(
        f"{source}: column {column} has type {found}; expected {expected} (see {SCHEMA_DOC}); "
        "re-export it with that type"
    )


def _is_integer(found: str) -> bool:
    return found in _INTEGER


def _is_decimal(found: str) -> bool:
    return found in _FRACTIONAL or found.startswith("decimal(")


def _is_fractional(found: str) -> bool:
    return found in _FRACTIONAL or (found.startswith("decimal(") and not found.endswith(",0)"))


def _text(types: dict[str, str], column: str, source: str, *, pad: int = 0) -> str:
    found = types.get(column)
    if _all_null(found):
        return "CAST(NULL AS STRING)"
    assert found is not None
    name = _column(column)
    if found == "string":
        return f"NULLIF({name}, '')"
    if found.startswith(("struct", "array", "map")) or _is_fractional(found):
        raise _type_error(source=source, column=column, found=found, expected="a string")
    text = f"CAST({name} AS STRING)"
    if pad and _is_integer(found):
        return f"lpad({text}, {pad}, '0')"
    return f"NULLIF({text}, '')"


def _timestamp(types: dict[str, str], column: str, source: str) -> str:
    found = types[column]
    name = _column(column)
    if _all_null(found):
        return "CAST(NULL AS TIMESTAMP)"
    if found == "timestamp":
        return name
    if found == "timestamp_ntz":
        return f"CAST({name} AS TIMESTAMP)"  # the session's time zone, UTC
    if found == "string":
        text = f"regexp_replace({name}, {_sql_text(_WITHOUT_SECONDS)}, '$1:00')"
        return (
            f"CASE WHEN {name} RLIKE {_sql_text(_TIMESTAMP_TEXT)} "
            f"THEN try_cast({text} AS TIMESTAMP) END"
        )
    raise _type_error(
        source=source, column=column, found=found, expected="a timestamp or ISO-8601 text"
    )


def _integer(types: dict[str, str], column: str, source: str) -> str:
    found = types[column]
    name = _column(column)
    if _all_null(found):
        return "CAST(NULL AS INT)"
    if _is_integer(found):
        return f"try_cast({name} AS INT)"
    if _is_decimal(found):
        return f"CASE WHEN {name} = floor({name}) THEN try_cast({name} AS INT) END"
    if found == "string":
        digits = f"regexp_extract({name}, {_sql_text(_CODE_TEXT)}, 1)"
        return f"try_cast(NULLIF({digits}, '') AS INT)"
    raise _type_error(source=source, column=column, found=found, expected="an integer")


def _raw(types: dict[str, str], column: str) -> str:
    found = types[column]
    name = _column(column)
    if _all_null(found):
        return "CAST(NULL AS STRING)"
    if found == "timestamp":  # an instant, whose text DuckDB ends with its UTC offset
        return f"concat(CAST({name} AS STRING), '+00')"
    return f"NULLIF({name}, '')" if found == "string" else name


def _guarded(table: TableFiles, action: Any) -> Any:
    """Run a Spark action; a failure while reading `table` is the input's fault."""
    from py4j.protocol import Py4JJavaError  # type: ignore[import-untyped]
    from pyspark.errors import PySparkException

    from cellcensus.holder.store.ingestion import _unreadable

    try:
        return action()
    except (PySparkException, Py4JJavaError) as error:
        raise _unreadable(table, error) from None
