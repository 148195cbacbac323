"""Device-day summaries: what the device filter needs of each stored day, kept beside it.

Every algorithm counts only the devices that pass the device filter, and the filter looks at
all of a device's events over the period (calls and SMS, cells, TACs, days seen). Read from
the events, that is a pass over every event at every job. The store therefore keeps, per
local day, one row per device and home network (`SUMMARY_SQL`; read by
`device_filter.device_day_counts`). A holder who runs `present_population` often may have them
list, too, the cell of the device's last event in each hour it was seen
(``cellcensus store summarise --positions``; read for hourly and daily slots instead
of the events): the ingest then pays once what every such job saves.

```
STORE/device_days/date=YYYY-MM-DD/part-0.parquet
```

The ingest writes them for the days it stores (`summarise`; ``cellcensus store summarise``
for a store that has none). The ingest moves a replaced day's summary aside with its events
and summarises the new day after; a summary records the rows and bytes of the day file it was
made from, and `open_tables` uses the summaries only when every stored day, and no other, has
one matching its day file (`fresh`), and otherwise reads the events. A day file replaced by
hand with one of the same rows and bytes is the case no fingerprint short of reading the file
catches: ``cellcensus store summarise --rebuild`` redoes them all. Retention purges a day's
summary with its events.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import date
from itertools import pairwise
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cellcensus.holder.algorithms.base import cell_keys
from cellcensus.holder.algorithms.device_filter import INTERACTIVE_EVENTS, MAX_M2M_CELLS
from cellcensus.holder.engines import spill_folder
from cellcensus.holder.store.layout import Store, row_count
from cellcensus.holder.store.sources import sql_string

SOURCE_ROWS = b"cellcensus.source_rows"
SOURCE_BYTES = b"cellcensus.source_bytes"
"""Keys of a summary's Parquet metadata naming the day file it was made from."""
CELLS_KEPT = b"cellcensus.cells_kept"
"""Key of the number of a silent day's cells a summary lists: summaries made for another
`MAX_M2M_CELLS` are not fresh."""
POSITIONS = b"cellcensus.hourly_positions"
"""Key marking summaries that list `positions` (`POSITIONS_SUMMARY_SQL`), with the format of
their list (`LISTING`)."""
LISTING = b"2"
"""Positions whose cells are `cell_key`s (format 1, cell ids, is summarised again)."""
ROW_GROUP_ROWS = 16_384
"""Rows per row group of a summary: DuckDB scans a file's row groups in parallel, and a job
run day by day reads one day's summary per query (one group of 350 k rows took twice as long
as 22 at 0.1 x 30)."""
BUCKET_EVENTS = 10_000_000
"""Events of a day summarised with positions in one query at most; a larger day's devices
are split into buckets (`_summary`)."""
ONE_NETWORK = b"cellcensus.one_network_per_device"
"""Key saying whether a summary lists each device under one home network (`one_network`)."""

_INTERACTIVE = ", ".join(f"'{event}'" for event in INTERACTIVE_EVENTS)
_COUNTS = f"""
    SELECT device_id, local_date, mcc,
           sum(n_events)::BIGINT AS n_events,
           sum(n_interactive)::BIGINT AS n_interactive,
           list_sort(list_distinct(array_agg(tac))) AS tacs,
           CASE WHEN sum(n_interactive) = 0
                THEN list_sort(list_distinct(array_agg(cell_id)))[1:{MAX_M2M_CELLS + 1}]
           END AS cells
    FROM per_cell
    GROUP BY ALL"""
_PER_CELL = f"""
WITH per_cell AS (
    SELECT device_id, local_date, mcc, cell_id, tac, count(*) AS n_events,
           count(*) FILTER (WHERE event_type IN ({_INTERACTIVE})) AS n_interactive
    FROM {{events}}
    GROUP BY ALL
)"""
SUMMARY_SQL = f"{_PER_CELL}\n{_COUNTS}\nORDER BY device_id, mcc\n"
"""Per device, local date and home network (mcc): events, calls and SMS, the distinct TACs
(sorted, nulls left out) and, on a day without calls or SMS, the first `MAX_M2M_CELLS` + 1
distinct cells in order (enough to tell whether a device uses more cells than a behavioural
M2M SIM may). Grouping by cell and TAC first, then listing, costs a third of distinct
aggregates."""
POSITIONS_SUMMARY_SQL = f"""{_PER_CELL}, per_hour AS (
    SELECT device_id, local_date, mcc, local_hour,
           arg_max(cell_id, (floor(epoch(timestamp))::BIGINT, cell_id)) AS cell_id
    FROM {{events}}
    GROUP BY ALL
), positions AS (
    SELECT device_id, local_date, mcc,
           list_sort(list({{{{'hour': local_hour, 'cell': cell}}}})) AS positions
    FROM per_hour LEFT JOIN {{keys}} USING (cell_id)
    GROUP BY ALL
), counts AS ({_COUNTS}
)
SELECT counts.*, positions.positions
FROM counts JOIN positions ON counts.device_id = positions.device_id
    AND counts.local_date = positions.local_date AND counts.mcc IS NOT DISTINCT FROM positions.mcc
ORDER BY device_id, mcc
"""
"""`SUMMARY_SQL` with each row's `positions`: each local hour the device was seen in, in
order, with the cell of its last event in that hour (`present_population`'s rule: by whole
seconds, ties to the largest cell id) as its `cell_key` (from the table `keys`: `cell_keys`).
A list of structs sorted once costs less than two lists ordered apart."""


def _summary(
    con: duckdb.DuckDBPyConnection, events: str, *, positions: bool, buckets: int = 1
) -> pa.Table:
    """The summary of `events` (a relation `con` reads), in `buckets` queries.

    Each query takes the devices of one bucket (`device_ranges`), so a day's summary needs a
    bucket's memory: DuckDB holds each device's positions in the grouping, and a national
    day's (45 M events) did not fit in 4 GB. Devices never span buckets, so the rows are
    those of one query, and in its order.
    """
    sql, keys = SUMMARY_SQL, "summarised_cells"
    if positions:
        sql = POSITIONS_SUMMARY_SQL
        ids = con.sql(f"SELECT DISTINCT cell_id FROM {events} WHERE cell_id IS NOT NULL")
        con.register(keys, cell_keys(ids.to_arrow_table()["cell_id"].to_pylist()))
    parts = [events]
    if buckets > 1:
        parts = [
            f"(SELECT * FROM {events} WHERE {where})"
            for where in device_ranges(con, events, buckets)
        ]
    tables = [con.sql(sql.format(events=part, keys=keys)).to_arrow_table() for part in parts]
    return pa.concat_tables(tables)


def device_ranges(con: duckdb.DuckDBPyConnection, events: str, buckets: int) -> list[str]:
    """Conditions splitting the devices of `events` into `buckets` ranges of ids, in order.

    Ranges between quantiles of the device ids, not a hash: a day file is sorted by device
    (`ingestion`), so each bucket's query reads only the row groups its range covers (their
    statistics), not the whole file again. Every row is in one range (nulls in the last).
    """
    shares = [bucket / buckets for bucket in range(1, buckets)]
    (found,) = con.execute(f"SELECT quantile_disc(device_id, {shares}) FROM {events}").fetchall()
    cuts = sorted(set(found[0] or []))
    if not cuts:
        return ["TRUE"]
    ranges = [f"device_id < {cuts[0]}"]
    ranges += [f"device_id >= {low} AND device_id < {high}" for low, high in pairwise(cuts)]
    return [*ranges, f"(device_id >= {cuts[-1]} OR device_id IS NULL)"]


def summary_of(events: pa.Table, *, positions: bool = True, buckets: int = 1) -> pa.Table:
    """The device-day summary of events in the store's schema (for tests and hand worlds)."""
    with duckdb.connect() as con:
        con.register("summarised_events", events)
        return _summary(con, "summarised_events", positions=positions, buckets=buckets)


def _source(store: Store, day: date) -> dict[bytes, bytes]:
    path = store.day_path(day)
    return {
        SOURCE_ROWS: str(row_count(path)).encode(),
        SOURCE_BYTES: str(path.stat().st_size).encode(),
        CELLS_KEPT: str(MAX_M2M_CELLS + 1).encode(),
    }


def lists_positions(path: Path) -> bool:
    """Whether the summary at `path` lists hourly positions."""
    return _recorded(path).get(POSITIONS) == LISTING


def _recorded(path: Path) -> dict[bytes, bytes]:
    """What the summary at `path` records of itself (its Parquet footer's metadata)."""
    return pq.read_schema(path).metadata or {}


def keeps_positions(store: Store) -> bool:
    """Whether the holder chose summaries that list hourly positions (`summarise`)."""
    return positions_choice(store).is_file()


def positions_choice(store: Store) -> Path:
    """The file whose presence records the holder's choice of hourly positions."""
    # In the summaries' folder, where a reader of its day files never looks (DuckDB reads
    # *.parquet, Spark skips names starting with "_").
    return store.device_days_dir / "_hourly_positions"


def one_network(summary: pa.Table) -> bool:
    """Whether no device of `summary` has rows under two home networks on one date.

    Only then are a row's `positions` the device's whole day: `present_population` reads
    the positions of a store whose summaries all say so, and the events otherwise.
    """
    if summary.num_rows == 0:
        return True
    rows = summary.group_by(["device_id", "local_date"]).aggregate([([], "count_all")])
    return bool(pc.max(rows["count_all"]).as_py() == 1)


def positions_of_one_network(store: Store) -> bool:
    """Whether every stored day's summary lists positions, each device under one network."""
    for day in store.days():
        recorded = _recorded(store.device_day_path(day))
        if recorded.get(POSITIONS) != LISTING or recorded.get(ONE_NETWORK) != b"true":
            return False
    return True


def is_fresh(store: Store, day: date) -> bool:
    """Whether `day` has a summary made from the day file now in the store."""
    path = store.device_day_path(day)
    return path.is_file() and _made_from(store, day, _recorded(path))


def _made_from(store: Store, day: date, recorded: dict[bytes, bytes]) -> bool:
    """Whether a summary that records `recorded` was made from `day`'s file now stored."""
    return all(recorded.get(key) == value for key, value in _source(store, day).items())


def fresh(store: Store) -> bool:
    """Whether every stored day has a fresh summary and no other day has one.

    A summary of a day without events would add its devices to the filter (jobs read the
    summaries' folder whole); it is the trace of a lost day file (`Store.lost_days`), which
    jobs refuse.
    """
    days = store.days()
    if not days or store.device_day_days() != days:
        return False
    listing = LISTING if keeps_positions(store) else None  # one schema for the folder jobs read
    for day in days:  # each summary's footer read once
        recorded = _recorded(store.device_day_path(day))
        if not _made_from(store, day, recorded) or recorded.get(POSITIONS) != listing:
            return False
    return True


def summarise(
    store: Store,
    *,
    days: Iterable[date] | None = None,
    memory_limit: str = "4GB",
    rebuild: bool = False,
    progress: Callable[[date], None] | None = None,
    positions: bool | None = None,
) -> list[date]:
    """Write the summary of each stored day (of `days`) that has no fresh one.

    With `rebuild`, every one of `days` is summarised again, fresh or not. A store that lost
    a day file is refused (`Store.check_no_lost_days`). Each file is written beside its place
    and renamed into it, so a reader sees a whole summary or none. `positions` is the
    holder's choice of summaries that list hourly positions (`POSITIONS_SUMMARY_SQL`),
    recorded in the store: a summary that does otherwise is made again. None keeps the
    store's choice (`keeps_positions`), so that every ingest after it follows it.

    Returns:
        The days summarised now.
    """
    store.check_no_lost_days()  # its summary is the only trace of a lost day: keep it
    if positions is not None and positions != keeps_positions(store):
        choice = positions_choice(store)
        if positions:
            choice.parent.mkdir(parents=True, exist_ok=True)
            choice.touch()
        else:
            choice.unlink()
    listing = keeps_positions(store)
    stored = store.days()
    wanted = stored if days is None else sorted(set(days) & set(stored))
    stale = [
        day
        for day in wanted
        if rebuild
        or not is_fresh(store, day)
        or lists_positions(store.device_day_path(day)) != listing
    ]
    if not stale:
        return []
    config: dict[str, str | bool | int | float | list[str]] = {
        "memory_limit": memory_limit,
        "temp_directory": spill_folder(),
    }
    with duckdb.connect(config=config) as con:
        con.execute("SET enable_progress_bar = false")  # no bar on the ingest's stdout
        for day in stale:
            if progress is not None:
                progress(day)
            source = _source(store, day)
            events = f"read_parquet({sql_string(store.day_path(day))})"
            # Positions only: the summaries without them fit a national day in one query.
            buckets = max(1, math.ceil(int(source[SOURCE_ROWS]) / BUCKET_EVENTS)) if listing else 1
            table = _summary(con, events, positions=listing, buckets=buckets)
            path = store.device_day_path(day)
            path.parent.mkdir(parents=True, exist_ok=True)
            aside = path.with_name(f".{path.name}.tmp")
            if listing:
                source[POSITIONS] = LISTING
                source[ONE_NETWORK] = b"true" if one_network(table) else b"false"
            pq.write_table(
                table.replace_schema_metadata(source),
                aside,
                compression="zstd",
                row_group_size=ROW_GROUP_ROWS,
            )
            aside.replace(path)
    return stale
