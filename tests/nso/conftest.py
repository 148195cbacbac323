"""Simulated releases with known truth, and their estimation, shared by the NSO tests.

Each is computed once per test session: simulating Belgium takes under a second, running every
estimator on it about two.
"""

from __future__ import annotations

import pytest

from cellcensus.nso.production import EstimationResult, estimate_all
from cellcensus.nso.simulation import (
    REALISTIC_BIASES,
    SimulatedRelease,
    SimulationBiases,
    simulate_release,
)

SCALE = 0.1
"""The scale of the issue's bars (`--scale 0.1`)."""


@pytest.fixture(scope="session")
def unbiased() -> SimulatedRelease:
    """A release whose only errors are sampling, misplaced homes and disclosure noise."""
    return simulate_release(
        sampling_fraction=SCALE, biases=SimulationBiases(misallocation=0.02), seed=11
    )


@pytest.fixture(scope="session")
def realistic() -> SimulatedRelease:
    """A release with every bias of the realistic world switched on."""
    return simulate_release(sampling_fraction=SCALE, biases=REALISTIC_BIASES, seed=12)


@pytest.fixture(scope="session")
def unbiased_result(unbiased: SimulatedRelease) -> EstimationResult:
    return estimate_all(release=unbiased.release)


@pytest.fixture(scope="session")
def realistic_result(realistic: SimulatedRelease) -> EstimationResult:
    return estimate_all(release=realistic.release)
