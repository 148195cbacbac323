"""Shared fixtures: one DuckDB runner, the conformance world, hand-made worlds, Spark."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import ibis
import numpy as np
import pandas as pd
import pytest

from cellcensus.holder.algorithms import Algorithm, get_algorithm
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


# Hand footprint on the hand world's cells (conftest): cell B straddles areas 1 and 2, and
# its tiles near A (area 1) and near C (area 2) say which side a device of B sleeps on.
HAND_FOOTPRINT = {
    "cells": pd.DataFrame({"cell_id": ["A", "B", "C", "D"], "sector": [0, 1, 2, 3]}),
    "serving": pd.DataFrame(
        [
            (0, 0, 0.7),
            (0, 1, 0.3),
            (1, 1, 0.9),
            (1, 0, 0.1),
            (2, 1, 0.9),
            (2, 2, 0.1),
            (3, 2, 0.7),
            (3, 1, 0.3),
            (4, 3, 1.0),
        ],
        columns=["tile", "sector", "probability"],
    ),
    "tiles": pd.DataFrame(
        {"tile": [0, 1, 2, 3, 4], "area_code": ["1", "1", "2", "2", "3"], "log_prior": 0.0}
    ),
}


def hand_world(rows: Sequence[tuple[Any, ...]], allocation: pd.DataFrame = ALLOCATION) -> World:
    """A world from hand-written event rows, on the four cells above."""
    return World(events=events_frame(rows), cells=CELLS, allocation=allocation)


def conformance_footprint(world: World) -> dict[str, pd.DataFrame]:
    """A footprint for the conformance world: a tile per (cell, area) of its allocation.

    The tile's own cell serves it with probability 0.6, the other cells of its area share
    the rest. Cell C11 is left out, so one home cell keeps its allocation weights.
    """
    allocation = world.allocation.reset_index(drop=True)
    rows = []
    for tile, (cell, area) in enumerate(zip(allocation.cell_id, allocation.area_code, strict=True)):
        others = sorted(set(allocation.cell_id[allocation.area_code == area]) - {cell})
        rows.append((tile, cell, 0.6 if others else 1.0))
        rows += [(tile, other, 0.4 / len(others)) for other in others]
    serving = pd.DataFrame(rows, columns=["tile", "cell_id", "probability"])
    cells = pd.DataFrame({"cell_id": sorted(set(world.cells.cell_id) - {"C11"})})
    cells["sector"] = np.arange(len(cells), dtype="int64")
    serving = serving.merge(cells, on="cell_id")[["sector", "tile", "probability"]]
    tiles = pd.DataFrame(
        {
            "tile": np.arange(len(allocation), dtype="int64"),
            "area_code": allocation.area_code,
            "log_prior": np.log1p(np.arange(len(allocation)) % 3),
        }
    )
    return {"cells": cells, "serving": serving, "tiles": tiles}


@pytest.fixture(scope="session")
def footprint_world(world: World) -> World:
    """The conformance world with a tile footprint (`conformance_footprint`)."""
    return dataclasses.replace(world, footprint=conformance_footprint(world))


def with_examples(name: str, *examples: dict[str, Any]) -> Algorithm:
    """The registered algorithm with these parameter sets as its only examples."""
    algorithm = get_algorithm(name)
    manifest = dataclasses.replace(algorithm.manifest, examples=examples)
    return dataclasses.replace(algorithm, manifest=manifest)


@pytest.fixture(scope="session")
def duckdb_runner() -> Runner:
    return Runner(ibis.duckdb.connect())


@pytest.fixture(scope="session")
def period_runner() -> Runner:
    """DuckDB over the whole period at once, as the conformance suite runs its checks (much
    cheaper to compile; `check_day_by_day` shows the per-day plans give the same)."""
    return Runner(ibis.duckdb.connect(), by_day=False)


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


@pytest.fixture(scope="session")
def spark_runner(small_spark: Any) -> Runner:
    from cellcensus.holder.engines import connect

    return Runner(connect("spark"))
