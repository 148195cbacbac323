"""An algorithm with a `finish` step (the Bayesian spatial estimator) under differential privacy:
noise on its counts per cell, the step on the noisy counts, and an honest ci95."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cellcensus.errors import DisclosureError
from cellcensus.holder.algorithms.registry import get_algorithm
from cellcensus.holder.disclosure import DisclosurePolicy, measure
from cellcensus.holder.enclave import Enclave
from cellcensus.holder.enclave.compute import open_tables
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
    # Released values sit within their declared 95% error (plus rounding) of the exact
    # estimator in most areas: the error is neither hidden nor wildly overstated.
    gap = (shown - exact["device_count"].reindex(shown.index).fillna(0.0)).abs()
    within = gap <= table["ci95"].reindex(shown.index) + 5
    assert within.mean() >= 0.8
    # Each area of the tiny store is the sum of two cells, each with Laplace noise of scale
    # 1 / epsilon (sd = scale * sqrt 2): the bootstrap's ci95 must find about 1.96 * sd * sqrt 2.
    dp = release.provenance.policy["dp"]
    assert dp["mechanism"] == "laplace"
    expected = 1.96 * np.sqrt(2) * np.sqrt(2) / dp["epsilon"]
    assert table["ci95"].between(0.6 * expected, 1.5 * expected).all()


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
