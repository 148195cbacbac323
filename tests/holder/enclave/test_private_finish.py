"""An algorithm with a `finish` step (the Bayesian spatial estimator) under differential privacy:
noise on its counts per cell, the step on the noisy counts, and an honest ci95."""

from __future__ import annotations

import datetime as dt
import shutil

import numpy as np
import pandas as pd
import pytest
from tiny_store import AREAS, CELLS  # type: ignore[import-not-found]

from cellcensus.errors import DisclosureError
from cellcensus.holder.algorithms.registry import get_algorithm
from cellcensus.holder.disclosure import Charge, DisclosurePolicy, measure
from cellcensus.holder.disclosure.policy import (
    DELTA_CEILING,
    EPSILON_CEILING,
    DifferentialPrivacy,
)
from cellcensus.holder.enclave import Enclave
from cellcensus.holder.enclave.compute import open_tables
from cellcensus.holder.geo.tile_footprint import footprint_path
from cellcensus.holder.store import Store

BAYESIAN = {"spatial_estimator": "bayesian"}


def test_bayesian_release_is_noised_per_cell_and_declares_its_error(store, tmp_path):
    enclave = Enclave(store=store, state_url=f"sqlite:///{tmp_path / 'e.db'}")
    release = enclave.run(algorithm="usual_residence", parameters=BAYESIAN, analyst="a")
    algorithm = get_algorithm("usual_residence")
    exact = algorithm.run(open_tables(Store(store)), BAYESIAN).set_index("area_code")
    table = release.table.set_index("area_code")
    assert release.provenance.policy["dp"]["epsilon"] > 0
    assert (table["ci95"] > 0).all()  # the bootstrap saw the noise in every area
    shown = table["device_count"].dropna().astype(float)
    assert (shown % 5 == 0).all()
    assert (shown > 15).all()
    # Released values sit within their declared error (plus rounding) of the exact estimator:
    # the error is not hidden. (Within 5 x ci95: the bootstrap's ci95 is itself random, so
    # a sum of two Laplace draws exceeds 3 x ci95 about once in 7,000 runs and 5 x ci95 about
    # once in a million; 1.5 x ci95 failed about one run in fifty.)
    gap = (shown - exact["device_count"].reindex(shown.index).fillna(0.0)).abs()
    assert (gap <= 5 * table["ci95"].reindex(shown.index) + 5).all()
    # Each area of the tiny store is the sum of two cells, each with Laplace noise of scale
    # 1 / epsilon (sd = scale * sqrt 2): the bootstrap's ci95 must find about 1.96 * sd * sqrt 2.
    dp = release.provenance.policy["dp"]
    assert dp["mechanism"] == "laplace"
    expected = 1.96 * np.sqrt(2) * np.sqrt(2) / dp["epsilon"]
    # (20 bootstrap draws estimate it within about 16 % (chi with 19 degrees of freedom):
    # three areas all pass these bounds but for about one run in three million.)
    assert table["ci95"].between(0.3 * expected, 2.0 * expected).all()


def test_measure_refuses_a_policy_without_noise():
    raw = pd.DataFrame({"cell_id": ["a"], "device_count": [3.0]})
    with pytest.raises(DisclosureError, match="no"):
        measure(
            raw,
            keys=["a", "b"],
            policy=DisclosurePolicy(),
            key="cell_id",
            contribution_bound=1.0,
            charge=None,
        )


def test_measured_counts_are_unbiased_where_cells_hold_nothing():
    # A finish step sums many cells; clipped at 0, 2,000 empty cells would each add about half
    # the Laplace scale (0.5 here) to that sum.
    keys = [f"c{index:04d}" for index in range(2000)]
    raw = pd.DataFrame({"cell_id": keys[:1], "device_count": [0.0]})
    noisy, sd = measure(
        raw,
        keys=keys,
        policy=DisclosurePolicy(dp=DifferentialPrivacy(epsilon=1.0)),
        key="cell_id",
        contribution_bound=1.0,
        charge=Charge(
            job_id="j",
            analyst="a",
            project="p",
            epsilon=1.0,
            delta=0.0,
            charged_at=dt.datetime.now(dt.UTC),
        ),
    )
    assert (noisy["device_count"] < 0).any()
    # The mean of 2,000 Laplace(1) draws has a standard deviation of 0.03.
    assert abs(noisy["device_count"].mean()) < 0.15
    assert sd == pytest.approx(np.sqrt(2.0))


def _with_footprint(store, folder):
    """A copy of the tiny store with a tile footprint: one tile per cell, in the cell's area."""
    copy = shutil.copytree(store, folder)
    cells = pd.DataFrame({"cell_id": list(CELLS), "sector": np.arange(len(CELLS))})
    tables = {
        "cells": cells,
        "serving": pd.DataFrame({"sector": cells.sector, "tile": cells.sector, "probability": 1.0}),
        "tiles": pd.DataFrame(
            {"tile": cells.sector, "area_code": [AREAS[c] for c in CELLS], "log_prior": 0.0}
        ),
    }
    for name, table in tables.items():
        path = footprint_path(Store(copy), name)
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_parquet(path)
    return copy


def test_bayesian_present_population_is_noised_per_cell_and_slot(store, tmp_path):
    store = _with_footprint(store, tmp_path / "store")
    # Noise small against the cells' 40 devices: at the default epsilon, clipping noisy counts
    # at 0 narrowed the bootstrap's spread and the ratio below fell short of sqrt 2.
    dp = DifferentialPrivacy(mechanism="gaussian", delta=DELTA_CEILING, epsilon=EPSILON_CEILING)
    enclave = Enclave(
        store=store, state_url=f"sqlite:///{tmp_path / 'e.db'}", policy=DisclosurePolicy(dp=dp)
    )
    enclave.grant_budget(analyst="a", epsilon=2 * EPSILON_CEILING, delta=2 * DELTA_CEILING)
    daily = {"slot_minutes": 1440}
    bayesian = {**daily, "spatial_estimator": "bayesian"}
    release = enclave.run(algorithm="present_population", parameters=bayesian, analyst="a")
    allocated = enclave.run(algorithm="present_population", parameters=daily, analyst="a")
    keys = ["local_date", "slot", "area_code"]
    table = release.table.set_index(keys)
    assert table.index.equals(allocated.table.set_index(keys).index)  # every date x slot x area
    assert len(table) == 7 * 3
    # One tile per cell: the estimator places each cell's devices in its area, as the
    # allocation does, so both estimate the same counts. The noise went on the two cells of
    # each area rather than on the area: the bootstrap's ci95 must be about sqrt 2 larger.
    exact = get_algorithm("present_population").run(open_tables(Store(store)), bayesian)
    exact = exact.set_index(keys)["device_count"].reindex(table.index).fillna(0.0)
    ratio = (table["ci95"] / allocated.table["ci95"].to_numpy()).median()
    assert 1.1 < ratio < 1.8
    # Within 1.5 x ci95 (about 3 sd) plus rounding: a rare miss in 21 keys is not a failure.
    shown = table["device_count"].dropna().astype(float)
    gap = (shown - exact.reindex(shown.index)).abs()
    assert (gap <= 1.5 * table["ci95"].reindex(shown.index) + 5).mean() >= 0.9


def test_bayesian_inbound_tourism_is_noised_per_night_cell(store, tmp_path):
    store = _with_footprint(store, tmp_path / "store")
    enclave = Enclave(store=store, state_url=f"sqlite:///{tmp_path / 'e.db'}")
    # The tiny store's devices are all of network 206: as seen by a holder of network 208,
    # every one is a roamer, sleeping at its home cell each night.
    roamers = {"filters": {"home_mcc": 208}}
    bayesian = {**BAYESIAN, **roamers}
    release = enclave.run(algorithm="inbound_tourism", parameters=bayesian, analyst="a")
    allocated = enclave.run(algorithm="inbound_tourism", parameters=roamers, analyst="a")
    keys = ["area_code", "indicator"]
    table = release.table.set_index(keys)
    assert table.index.equals(allocated.table.set_index(keys).index)  # every area x indicator
    assert len(table) == 3 * 3
    # The noise went on the counts per night cell and the bootstrap carried it through the
    # estimator: every key declares an error, and the released values lie within it (5 x
    # ci95 plus rounding, as above) of the exact estimator's.
    assert (table["ci95"] > 0).all()
    exact = get_algorithm("inbound_tourism").run(open_tables(Store(store)), bayesian)
    exact = exact.set_index(keys)["device_count"].reindex(table.index).fillna(0.0)
    assert exact.xs("nights", level="indicator").sum() > 100
    shown = table["device_count"].dropna().astype(float)
    gap = (shown - exact.reindex(shown.index)).abs()
    assert (gap <= 5 * table["ci95"].reindex(shown.index) + 5).all()
