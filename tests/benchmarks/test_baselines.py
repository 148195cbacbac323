"""The benchmark baselines (Polars, pandas) compute what the certified algorithms compute.

A timing against another engine means something only if both compute the same rule: on the
conformance world, written as a store's Parquet files, each baseline must give the certified
algorithm's pre-disclosure output (same keys, counts within 1e-6).
"""

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import ibis
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from benchmarks.baselines import StoreFiles, differences, pandas_rules, polars_rules

from cellcensus.holder.algorithms import get_algorithm
from cellcensus.holder.algorithms.conformance import M2M_TAC, Runner, World, conformance_world
from cellcensus.holder.store.device_days import summary_of

KEYS = {"usual_residence": ["area_code"], "present_population": ["local_date", "slot", "area_code"]}
PARAMETERS: dict[str, list[dict[str, Any]]] = {
    "usual_residence": [
        {},
        {"min_nights": 1, "night_start_hour": 22},
        {"filters": {"m2m_tacs": [M2M_TAC], "m2m_max_cells": 3, "min_days": 2}},
    ],
    "present_population": [
        {},
        {"slot_minutes": 15, "max_carry_minutes": 60},
        {"slot_minutes": 1440, "max_carry_minutes": 0, "subscribers": "inbound"},
        {
            "start": "2011-03-09",
            "end": "2011-03-12",
            "max_carry_minutes": 1440,
            "max_backfill_minutes": 0,
        },
        {"max_carry_minutes": 180, "max_backfill_minutes": 1260},
    ],
}


@pytest.fixture(scope="module")
def world():
    return conformance_world()


@pytest.fixture(scope="module")
def files(world, tmp_path_factory):
    return store_files(world, tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="module")
def summarised(files, world, tmp_path_factory):
    """The same files with device-day summaries of the events, which the filter then reads."""
    path = tmp_path_factory.mktemp("device_days") / "part-0.parquet"
    pq.write_table(summary_of(world.arrow["events"]), path)
    return dataclasses.replace(files, device_days=[path])


def store_files(world: World, root: Path) -> StoreFiles:
    """`world` as a store's files: events by UTC day, cells, allocation."""
    tables = world.arrow
    events = tables["events"]
    days = pc.cast(pc.cast(events.column("timestamp"), "timestamp[us]"), "date32")
    paths = []
    for day in pc.unique(days).to_pylist():
        folder = root / "events" / f"date={day}"
        folder.mkdir(parents=True)
        pq.write_table(events.filter(pc.equal(days, day)), folder / "part-0.parquet")
        paths.append(folder / "part-0.parquet")
    pq.write_table(tables["cells"], root / "cells.parquet")
    pq.write_table(tables["allocation"], root / "allocation.parquet")
    return StoreFiles(
        events=paths, cells=root / "cells.parquet", allocation=root / "allocation.parquet"
    )


@pytest.fixture(scope="module")
def runner():
    return Runner(ibis.duckdb.connect())


CASES = [(name, values) for name, sets in PARAMETERS.items() for values in sets]


@pytest.mark.parametrize("module", [polars_rules, pandas_rules], ids=["polars", "pandas"])
@pytest.mark.parametrize(("name", "values"), CASES)
def test_baseline_gives_the_certified_result(module, name, values, world, files, runner):
    algorithm = get_algorithm(name)
    expected = runner.run(algorithm, world, values)
    assert len(expected) > 0
    actual = getattr(module, name)(files, algorithm.manifest.parse(values))
    if not hasattr(actual, "merge"):
        actual = actual.to_pandas()
    assert differences(expected, actual, keys=KEYS[name]) is None


@pytest.mark.parametrize(("name", "values"), CASES)
def test_polars_reads_device_day_summaries_to_the_certified_result(
    name, values, world, summarised, runner
):
    algorithm = get_algorithm(name)
    expected = runner.run(algorithm, world, values)
    actual = getattr(polars_rules, name)(summarised, algorithm.manifest.parse(values)).to_pandas()
    assert differences(expected, actual, keys=KEYS[name]) is None


def test_differences_notices_a_changed_count_and_a_missing_key(world, runner):
    expected = runner.run(get_algorithm("usual_residence"), world, {})
    changed = expected.copy()
    changed.loc[0, "device_count"] += 0.01
    assert "differ" in differences(expected, changed, keys=["area_code"])
    assert "only one" in differences(expected, expected.iloc[1:], keys=["area_code"])


def _versions(
    cell: str, change: dt.date, before: dict[str, float], after: dict[str, float]
) -> pd.DataFrame:
    """Two versions of `cell`'s weights: `before` until the day before `change`, then `after`."""
    until = change - dt.timedelta(days=1)
    rows: list[tuple[str, str, float, dt.date | None, dt.date | None]] = [
        (cell, area, weight, None, until) for area, weight in before.items()
    ]
    rows += [(cell, area, weight, change, None) for area, weight in after.items()]
    return pd.DataFrame(rows, columns=["cell_id", "area_code", "weight", "valid_from", "valid_to"])


@pytest.fixture(scope="module")
def versioned(world, tmp_path_factory):
    """The conformance world with two cells whose weights change within the period."""
    allocation = world.allocation[~world.allocation["cell_id"].isin(["C02", "C04"])]
    allocation = pd.concat(
        [
            allocation.assign(valid_from=None, valid_to=None),
            _versions("C02", dt.date(2011, 3, 12), {"A1": 0.5, "A2": 0.5}, {"A2": 1.0}),
            _versions("C04", dt.date(2011, 3, 16), {"A2": 0.75, "A3": 0.25}, {"A1": 1.0}),
        ],
        ignore_index=True,
    )
    changed = dataclasses.replace(world, allocation=allocation)
    return changed, store_files(changed, tmp_path_factory.mktemp("versioned"))


@pytest.mark.parametrize("module", [polars_rules, pandas_rules], ids=["polars", "pandas"])
@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("usual_residence", {}),
        ("present_population", {}),
        ("present_population", {"max_carry_minutes": 1440, "max_backfill_minutes": 0}),
    ],
)
def test_baseline_uses_the_weights_of_each_day_on_a_changing_network(
    module, name, values, versioned, runner
):
    world, files = versioned
    algorithm = get_algorithm(name)
    expected = runner.run(algorithm, world, values)
    # The change moves counts: the latest weights for every day would not do.
    latest = runner.run(algorithm, dataclasses.replace(world, allocation=_latest(world)), values)
    if name == "present_population":
        assert differences(expected, latest, keys=KEYS[name]) is not None
    actual = getattr(module, name)(files, algorithm.manifest.parse(values))
    if not hasattr(actual, "merge"):
        actual = actual.to_pandas()
    assert differences(expected, actual, keys=KEYS[name]) is None


def _latest(world: World) -> pd.DataFrame:
    allocation = world.allocation
    return allocation[allocation["valid_to"].isna()].drop(columns=["valid_from", "valid_to"])
