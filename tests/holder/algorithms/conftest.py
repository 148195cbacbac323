"""Shared fixtures: one DuckDB runner, the conformance world, hand-made worlds, Spark."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import ibis
import pandas as pd
import pytest

from cellcensus.holder.algorithms import get_algorithm
from cellcensus.holder.algorithms.conformance import (
    HOME_MCC,
    PHONE_TAC,
    Runner,
    World,
    conformance_world,
    events_frame,
)

D = dt.date(2011, 3, 7)  # a Monday

# Three cells on two sites; cell B straddles areas 1 and 2.
ALLOCATION = pd.DataFrame(
    {
        "cell_id": ["A", "B", "B", "C", "D"],
        "area_code": ["1", "1", "2", "2", "3"],
        "weight": [1.0, 0.5, 0.5, 1.0, 1.0],
    }
)
CELLS = pd.DataFrame({"cell_id": ["A", "B", "C", "D"], "site_id": ["S1", "S1", "S2", "S3"]})


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """Local (Brussels winter) time on day `day` after Monday 7 March 2011."""
    return dt.datetime.combine(D + dt.timedelta(days=day), dt.time(hour, minute))


def ev(
    device: int,
    day: int,
    hour: int,
    cell: str,
    minute: int = 0,
    *,
    kind: str = "call_out",
    mcc: int = HOME_MCC,
    tac: str = PHONE_TAC,
) -> tuple[Any, ...]:
    """One event row for `events_frame`."""
    return (device, at(day, hour, minute), cell, kind, mcc, tac)


def hand_world(rows: Sequence[tuple[Any, ...]], allocation: pd.DataFrame = ALLOCATION) -> World:
    """A world from hand-written event rows, on the four cells above."""
    return World(events=events_frame(rows), cells=CELLS, allocation=allocation)


@pytest.fixture(scope="session")
def duckdb_runner() -> Runner:
    return Runner(ibis.duckdb.connect())


@pytest.fixture(scope="session")
def world() -> World:
    return conformance_world()


@pytest.fixture(scope="session")
def release(duckdb_runner: Runner) -> Callable[..., pd.DataFrame]:
    """release(name, world, **parameters): the algorithm's exact output, sorted by key."""

    def _release(name: str, world: World, **values: Any) -> pd.DataFrame:
        return duckdb_runner.run(get_algorithm(name), world, values)

    return _release


def as_dict(frame: pd.DataFrame, *keys: str) -> dict[Any, float]:
    """{key (or key tuple): device_count} of a release."""
    index = frame[list(keys)].itertuples(index=False, name=None)
    labels = [row[0] if len(keys) == 1 else row for row in index]
    return dict(zip(labels, frame["device_count"], strict=True))


SPARK_TEST_SETTINGS = {
    # Tiny data: one shuffle partition and no code generation make each query several times
    # faster in local mode; results do not depend on these.
    "spark.sql.shuffle.partitions": "1",
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
    "spark.sql.adaptive.enabled": "false",
}


@pytest.fixture(scope="session")
def spark_runner() -> Iterator[Runner]:
    from cellcensus.holder.engines import connect, spark_session

    con = connect("spark")
    session = spark_session()
    before = {name: session.conf.get(name, None) for name in SPARK_TEST_SETTINGS}
    for name, value in SPARK_TEST_SETTINGS.items():
        session.conf.set(name, value)
    yield Runner(con)
    for name, value in before.items():
        if value is None:
            session.conf.unset(name)
        else:
            session.conf.set(name, value)
