"""DuckDB staging: each stage its own query, into tables freed by `release`."""

from __future__ import annotations

import ibis
import ibis.expr.operations as ops
import pandas as pd

from cellcensus.holder.algorithms.staging import DuckDBStaging


def _temp_tables(con: ibis.BaseBackend) -> int:
    query = "SELECT count(*) FROM duckdb_tables() WHERE temporary"
    return int(con.raw_sql(query).fetchall()[0][0])  # type: ignore[attr-defined]


def test_each_part_lands_in_one_table_holding_their_union() -> None:
    con = ibis.duckdb.connect()
    staging = DuckDBStaging(con)
    days = ibis.memtable({"day": [1, 1, 2, 3, 3, 3], "n": [1, 2, 3, 4, 5, 6]})
    parts = [
        days.filter(days.day == day).group_by("day").agg(total=days.n.sum()) for day in (1, 2, 3)
    ]

    staged = staging.each(parts)

    assert isinstance(staged.op(), ops.DatabaseTable)  # one table, not a union to copy
    assert _temp_tables(con) == 1
    result = staged.to_pandas().sort_values("day").reset_index(drop=True)
    pd.testing.assert_frame_equal(result, pd.DataFrame({"day": [1, 2, 3], "total": [3, 3, 15]}))
    assert staging(staged) is staged  # staged already: no copy
    assert _temp_tables(con) == 1


def test_release_drops_every_staged_table() -> None:
    con = ibis.duckdb.connect()
    staging = DuckDBStaging(con)
    table = ibis.memtable({"x": [1, 2, 3]})
    staging(table.filter(table.x > 1))
    staging.each([table, table])
    assert _temp_tables(con) == 2

    staging.release()

    assert _temp_tables(con) == 0
