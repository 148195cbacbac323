"""DuckDB staging: each stage its own query, into tables freed by `release`."""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir
import pandas as pd
import pytest

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


DATES = [dt.date(2011, 3, 7), dt.date(2011, 3, 8), dt.date(2011, 3, 10)]


def _events() -> ir.Table:
    return ibis.memtable(
        {
            "local_date": [*DATES, DATES[0], DATES[2], dt.date(2011, 3, 9)],
            "n": [1, 2, 3, 4, 5, 6],
        }
    )


def test_each_date_builds_the_step_once_and_stages_every_date() -> None:
    con = ibis.duckdb.connect()
    staging = DuckDBStaging(con)
    events = _events()
    built = []

    def step(day: ir.DateValue) -> ir.Table:
        built.append(day)
        on_day = events.filter(events.local_date == day)
        return on_day.group_by("local_date").agg(total=on_day.n.sum(), days=day.epoch_days())

    staged = staging.each_date(step, DATES)

    assert len(built) == 1  # one expression, compiled once, for a parameter
    assert staged.schema() == step(ibis.literal(DATES[0])).schema()  # a sum stays int64
    assert isinstance(staged.op(), ops.DatabaseTable) and _temp_tables(con) == 1
    assert staging(staged) is staged
    result = staged.to_pandas().sort_values("local_date").reset_index(drop=True)
    assert result["local_date"].dt.date.tolist() == DATES  # 2011-03-09 is not asked for
    assert result["total"].tolist() == [5, 2, 8]
    epoch = dt.date(1970, 1, 1)
    assert result["days"].tolist() == [(day - epoch).days for day in DATES]  # the date itself


@pytest.mark.parametrize("dates", [DATES, DATES[:1]])
def test_each_date_gives_what_each_gives(dates: list[dt.date]) -> None:
    con = ibis.duckdb.connect()
    staging = DuckDBStaging(con)
    events = _events()

    def step(day: ir.DateValue) -> ir.Table:
        return events.filter(events.local_date == day).select("local_date", "n")

    by_date = staging.each_date(step, dates).to_pandas()
    by_part = staging.each([step(ibis.literal(day)) for day in dates]).to_pandas()

    pd.testing.assert_frame_equal(
        by_date.sort_values("n").reset_index(drop=True),
        by_part.sort_values("n").reset_index(drop=True),
    )


def test_release_drops_every_staged_table() -> None:
    con = ibis.duckdb.connect()
    staging = DuckDBStaging(con)
    table = ibis.memtable({"x": [1, 2, 3]})
    staging(table.filter(table.x > 1))
    staging.each([table, table])
    events = _events()
    staging.each_date(lambda day: events.filter(events.local_date == day), DATES)
    assert _temp_tables(con) == 3

    staging.release()

    assert _temp_tables(con) == 0
