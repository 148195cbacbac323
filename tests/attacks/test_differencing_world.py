"""Differencing on the synthetic world: real `usual_residence` counts, released through `protect`.

`test_differencing.py` attacks counts drawn by its own small simulation; here the counts come
from the project's synthetic Belgium (`world.synthesize`, tiny scale), ingested into a store
and run through the certified `usual_residence` algorithm at province level, where every
count is far above the threshold. Targets are real devices of that world, one per province,
each counted once in its province. Each pair of releases is the world without the targets
and the world with some of them (each with probability 1/2): the attacker subtracts the two
releases in each target's province and says "present" when the difference exceeds 1/2.

Margins: against cellcensus releases (epsilon 0.4, rounding to 5) the attacker's expected
accuracy is 0.54 (see `test_differencing.py`); with 150 pairs of about 11 targets its standard
error is about 0.012, so the 0.6 bar sits about 5 standard errors above it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import ibis
import numpy as np
import pandas as pd
import pytest
import shapely

from cellcensus.holder.algorithms import get_algorithm
from cellcensus.holder.algorithms.conformance import Runner, World
from cellcensus.holder.disclosure import policy_for
from cellcensus.holder.disclosure.attacks.releases import (
    Protection,
    cellcensus_release,
    exact_release,
    threshold_release,
)
from cellcensus.holder.store import Store, ingest_dataset
from cellcensus.reference import municipalities
from cellcensus.world import WorldParams, synthesize

pytestmark = pytest.mark.slow  # synthesises, ingests and runs a small world

TINY = WorldParams(scale=0.001, days=3, seed=11, start=dt.date(2011, 3, 7))
PARAMETERS = {"spatial_estimator": "allocation"}
"""Counts per area are sums over devices (no joint spatial estimation), so one device's
contribution is what the algorithm gives on that device's events alone."""
SEED = 20170403
SECRET = b"holder-secret"
CANDIDATES = 400


def province_allocation(cells: pd.DataFrame) -> pd.DataFrame:
    """Each cell wholly in the province its site lies in (the nearest one at the borders)."""
    areas = municipalities()
    provinces = areas.groupby("province")["geometry"].agg(
        lambda shapes: shapely.union_all(shapes.to_numpy())
    )
    tree = shapely.STRtree(provinces.to_numpy())
    points = shapely.points(cells["longitude"].to_numpy(), cells["latitude"].to_numpy())
    nearest = tree.query_nearest(points, return_distance=False, all_matches=False)[1]
    return pd.DataFrame(
        {
            "cell_id": cells["cell_id"].to_numpy(),
            "area_code": provinces.index.to_numpy()[nearest].astype(str),
            "weight": 1.0,
        }
    )


@dataclass(frozen=True)
class Scenario:
    """The world's exact counts without the targets, and each target's unit contribution."""

    areas: list[str]
    background: np.ndarray
    targets: list[int]
    target_area: list[int]


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("differencing-world")
    synthesize(out=root / "dataset", params=TINY)
    ingest_dataset(dataset=root / "dataset", store=root / "store", key_file=root / "key")
    store = Store(root / "store")
    cells = store.read_cells()
    return World(
        events=store.read_events(),
        cells=cells,
        allocation=province_allocation(cells),
    )


@pytest.fixture(scope="session")
def scenario(world: World) -> Scenario:
    algorithm = get_algorithm("usual_residence")
    runner = Runner(ibis.duckdb.connect())
    areas = world.areas

    def counts(events: pd.DataFrame) -> np.ndarray:
        part = World(events=events, cells=world.cells, allocation=world.allocation)
        frame = runner.run(algorithm, part, PARAMETERS)
        by_area = frame.set_index("area_code")["device_count"]
        return by_area.reindex(areas, fill_value=0.0).to_numpy(dtype=np.float64)

    everyone = counts(world.events)
    rng = np.random.default_rng(SEED)
    devices = world.events["device_id"].unique()
    targets: list[int] = []
    target_area: list[int] = []
    for device in rng.permutation(devices)[:CANDIDATES]:
        alone = counts(world.events[world.events["device_id"] == device])
        placed = np.flatnonzero(alone)
        # a target counted exactly once, in a province that has no target yet
        if len(placed) == 1 and alone[placed[0]] == 1.0 and placed[0] not in target_area:
            targets.append(int(device))
            target_area.append(int(placed[0]))
        if len(targets) == len(areas):
            break
    background = counts(world.events[~world.events["device_id"].isin(targets)])
    # The contributions add up: the world is the background plus one device per target.
    expected = background.copy()
    np.add.at(expected, target_area, 1.0)
    np.testing.assert_allclose(everyone, expected)
    return Scenario(areas=areas, background=background, targets=targets, target_area=target_area)


@dataclass(frozen=True)
class Outcome:
    accuracy: float
    mean_abs_error: float
    trials: int


def differencing(scenario: Scenario, protection: Protection, *, pairs: int) -> Outcome:
    """Release the background and background + present targets; read each target's area."""
    rng = np.random.default_rng(SEED)
    where = np.array(scenario.target_area)
    right, errors = 0, []
    for _ in range(pairs):
        present = rng.random(len(where)) < 0.5
        second = scenario.background.copy()
        np.add.at(second, where[present], 1.0)
        first_release = read(protection(scenario.background[np.newaxis, :]))
        second_release = read(protection(second[np.newaxis, :]))
        recovered = (second_release - first_release)[where]
        right += int(((recovered > 0.5) == present).sum())
        errors.extend(np.abs(recovered - present).tolist())
    trials = pairs * len(where)
    return Outcome(right / trials, float(np.mean(errors)), trials)


def read(released: np.ndarray) -> np.ndarray:
    """The attacker's reading: withheld cells read as 0."""
    return np.asarray(np.nan_to_num(released[0], nan=0.0), dtype=np.float64)


def test_differencing_breaks_world_releases_without_disclosure_and_fails_with_it(
    scenario: Scenario,
):
    """One test (the world is built once per process, whatever xdist does with groups)."""
    assert len(scenario.areas) >= 10
    assert len(scenario.targets) >= 8, "too few devices counted once in a province of their own"
    # the threshold cannot be what stops the attack: every target's province is large
    assert (scenario.background[scenario.target_area] > 30).all()

    for unprotected in (exact_release(), threshold_release(min_count=15)):
        outcome = differencing(scenario, unprotected, pairs=10)
        assert outcome.accuracy == 1.0
        assert outcome.mean_abs_error == 0.0

    manifest = get_algorithm("usual_residence").manifest
    release = cellcensus_release(
        policy=policy_for(algorithm="usual_residence"),
        contribution_bound=manifest.bound(manifest.parse(PARAMETERS)),
        rounding_key=SECRET,
    )
    outcome = differencing(scenario, release, pairs=150)
    assert outcome.trials >= 1200
    assert outcome.accuracy < 0.6
    assert outcome.mean_abs_error > 2.0
