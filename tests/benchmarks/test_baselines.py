"""The benchmark baselines (Polars, pandas) compute what the certified algorithms compute.

A timing against another engine means something only if both compute the same rule: on the
conformance world, written as a store's Parquet files, each baseline must give the certified
algorithm's pre-disclosure output (same keys, counts within 1e-6).
"""

import sys
from pathlib import Path
from typing import Any

import ibis
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from cellcensus.holder.algorithms import get_algorithm
from cellcensus.holder.algorithms.conformance import Runner, conformance_world

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.baselines import StoreFiles, differences, pandas_rules, polars_rules  # noqa: E402

KEYS = {"usual_residence": ["area_code"], "present_population": ["local_date", "slot", "area_code"]}
PARAMETERS: dict[str, list[dict[str, Any]]] = {
    "usual_residence": [{}, {"min_nights": 1, "night_start_hour": 22}],
    "present_population": [
        {},
        {"slot_minutes": 15, "max_carry_minutes": 60},
        {"slot_minutes": 1440, "max_carry_minutes": 0, "subscribers": "inbound"},
        {"start": "2011-03-09", "end": "2011-03-12", "max_carry_minutes": 1440},
    ],
}


@pytest.fixture(scope="module")
def world():
    return conformance_world()


@pytest.fixture(scope="module")
def files(world, tmp_path_factory):
    """The conformance world as a store's files: events by UTC day, cells, allocation."""
    root = tmp_path_factory.mktemp("store")
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


def test_differences_notices_a_changed_count_and_a_missing_key(world, runner):
    expected = runner.run(get_algorithm("usual_residence"), world, {})
    changed = expected.copy()
    changed.loc[0, "device_count"] += 0.01
    assert "differ" in differences(expected, changed, keys=["area_code"])
    assert "only one" in differences(expected, expected.iloc[1:], keys=["area_code"])
