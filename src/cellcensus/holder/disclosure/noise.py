"""Differentially private counts: OpenDP noise over every released cell, then post-processing.

Measurement: the measured cells form one vector; OpenDP's Laplace (L1) or Gaussian (L2)
measurement adds noise to all of them at once. By default only the finest level (the leaves,
the complete public key set) is measured: one device adds at most L (the algorithm's declared
contribution bound) to it, so its L1 and L2 sensitivities are L. When the bound is declared
per privacy unit (per local date and time slot for present population, per day for trips)
and the release spans U such units, one device adds at most L to each of them, in disjoint
cells: the release's L1 sensitivity is U*L and its L2 sensitivity sqrt(U)*L, and the noise is
calibrated to that, so that the policy's epsilon is the privacy loss of the whole release
(not of one slot). With ``measure_totals`` every coarser level's totals are measured too:
over k levels the L1 sensitivity is k*U*L and the L2 sensitivity sqrt(k*U)*L. The noise scale
is the smallest for which OpenDP's own privacy map certifies the policy's epsilon (and delta)
at that sensitivity.

Post-processing (costs no privacy): with measured totals, all levels are reconciled by
ordinary least squares (Hay et al., VLDB 2010) into leaf estimates whose sums are the best
linear unbiased estimates of every total. Then negative leaves are set to 0 and the totals
recomputed as sums of leaves, so the released levels add up and nothing is negative (the
clipping biases cells near zero upwards; those are suppressed by the threshold anyway).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
import opendp.prelude as dp

from cellcensus.errors import CellcensusError
from cellcensus.holder.disclosure.hierarchy import Layout
from cellcensus.holder.disclosure.policy import DifferentialPrivacy, Mechanism
from cellcensus.release import CI95_PER_SD

FloatArray = npt.NDArray[np.float64]

MAX_RECONCILED_LEAVES = 3000
"""Least-squares reconciliation is dense: hierarchies of at most this many leaves."""

_GRANULARITY = -40
"""OpenDP rounds inputs to multiples of 2**k; k=-40 costs ~1e-11 relative epsilon."""


@dataclass(frozen=True)
class NoisyCounts:
    """Noisy, reconciled, non-negative values of every cell of a layout.

    Attributes:
        values: Released estimate of each cell (leaves first), before suppression/rounding.
        ci95: Half-width of the 95 % interval of the noise in each cell's estimate.
        scale: Noise scale of each measured coordinate (Laplace b or Gaussian sigma).
        epsilon: Privacy loss certified by OpenDP for one device.
        delta: Delta certified by OpenDP (0 for Laplace).
    """

    values: FloatArray
    ci95: FloatArray
    scale: float
    epsilon: float
    delta: float


def noisy_counts(
    *,
    leaves: FloatArray,
    layout: Layout,
    dp_policy: DifferentialPrivacy,
    contribution_bound: float,
    units: int = 1,
    clip: bool = True,
) -> NoisyCounts:
    """Measure the cells with OpenDP noise and post-process (reconcile, clip, sum).

    Args:
        leaves: Exact counts of the leaf cells, in layout order.
        layout: The cells released (leaves and coarser totals).
        dp_policy: Epsilon, delta, mechanism, and whether coarser totals are measured.
        contribution_bound: Most one device adds to the leaves of one privacy unit (L1).
        units: Privacy units the leaves span (e.g. dates x slots); the bound holds in each,
            so one device adds at most ``units * contribution_bound`` to all leaves together.
        clip: Keep the leaves' estimates non-negative (without measured totals). A step that
            sums many noisy leaves itself wants them unclipped: clipping adds about half the
            noise's scale to each leaf that holds little.

    Returns:
        The estimates and their published error.
    """
    if not math.isfinite(contribution_bound) or contribution_bound <= 0:
        raise CellcensusError(f"contribution_bound must be > 0, got {contribution_bound}")
    if isinstance(units, bool) or not isinstance(units, int) or units < 1:
        raise CellcensusError(f"units must be a whole number >= 1, got {units!r}")
    n_measured = layout.n_levels if dp_policy.measure_totals else 1
    exact = layout.totals(leaves) if n_measured > 1 else leaves
    mechanism = _calibrated(
        size=len(exact),
        n_levels=n_measured,
        dp_policy=dp_policy,
        bound=contribution_bound,
        units=units,
    )
    noisy = np.asarray(mechanism.measurement(exact.tolist()), dtype=np.float64)
    scale = mechanism.scale
    sd = scale * (math.sqrt(2.0) if dp_policy.mechanism == "laplace" else 1.0)
    if n_measured > 1:
        estimate, sd_cells = _reconcile(noisy=noisy, layout=layout, sd=sd)
    else:
        estimate = layout.totals(np.clip(noisy, 0.0, None) if clip else noisy)
        sd_cells = sd * np.sqrt(layout.totals(np.ones(len(leaves))))
    return NoisyCounts(
        values=estimate,
        ci95=sd_cells * CI95_PER_SD[dp_policy.mechanism],
        scale=scale,
        epsilon=mechanism.epsilon,
        delta=mechanism.delta,
    )


def laplace_scale(*, epsilon: float, contribution_bound: float) -> float:
    """Laplace scale OpenDP calibrates for one count of sensitivity `contribution_bound`."""
    return _scale(size=1, d_in=contribution_bound, mechanism="laplace", epsilon=epsilon, delta=0.0)


@dataclass(frozen=True)
class _Calibrated:
    """An OpenDP measurement, its noise scale, and the privacy loss its map certifies."""

    measurement: Any
    scale: float
    epsilon: float
    delta: float


def release_sensitivity(
    *, contribution_bound: float, units: int, mechanism: Mechanism, n_levels: int = 1
) -> float:
    """Sensitivity of a release of `units` privacy units over `n_levels` measured levels.

    One device adds at most `contribution_bound` (L1, so also L2) to each unit of each level,
    in cells no other unit or level shares: L1 ``n_levels * units * L`` (Laplace), L2
    ``sqrt(n_levels * units) * L`` (Gaussian).
    """
    pieces = n_levels * units
    return contribution_bound * (pieces if mechanism == "laplace" else math.sqrt(pieces))


@lru_cache(maxsize=256)
def _calibrated(
    *, size: int, n_levels: int, dp_policy: DifferentialPrivacy, bound: float, units: int
) -> _Calibrated:
    d_in = release_sensitivity(
        contribution_bound=bound, units=units, mechanism=dp_policy.mechanism, n_levels=n_levels
    )
    scale = _scale(
        size=size,
        d_in=d_in,
        mechanism=dp_policy.mechanism,
        epsilon=dp_policy.epsilon,
        delta=dp_policy.delta,
    )
    measurement = _make(size=size, mechanism=dp_policy.mechanism, delta=dp_policy.delta)(scale)
    loss = measurement.map(d_in)
    if dp_policy.mechanism == "laplace":
        return _Calibrated(measurement, scale, float(loss), 0.0)
    return _Calibrated(measurement, scale, float(loss[0]), float(loss[1]))


@lru_cache(maxsize=256)
def _scale(*, size: int, d_in: float, mechanism: Mechanism, epsilon: float, delta: float) -> float:
    """Smallest noise scale whose OpenDP privacy map meets (epsilon, delta) at `d_in`."""
    d_out: Any = epsilon if mechanism == "laplace" else (epsilon, delta)
    return float(
        dp.binary_search_param(
            _make(size=size, mechanism=mechanism, delta=delta), d_in=d_in, d_out=d_out
        )
    )


def _make(*, size: int, mechanism: Mechanism, delta: float) -> Callable[[float], Any]:
    """Constructor of the measurement for a noise scale (OpenDP's vector measurements)."""
    dp.enable_features("contrib")
    domain = dp.vector_domain(dp.atom_domain(T=float, nan=False), size=size)
    if mechanism == "laplace":
        return lambda scale: dp.m.make_laplace(
            domain, dp.l1_distance(T=float), scale=scale, k=_GRANULARITY
        )

    def gaussian(scale: float) -> Any:
        zcdp = dp.m.make_gaussian(domain, dp.l2_distance(T=float), scale=scale, k=_GRANULARITY)
        return dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(zcdp), delta)

    return gaussian


def _reconcile(*, noisy: FloatArray, layout: Layout, sd: float) -> tuple[FloatArray, FloatArray]:
    """Consistent, non-negative estimates of every cell, and each one's noise sd."""
    if layout.n_leaves > MAX_RECONCILED_LEAVES:
        raise CellcensusError(
            f"hierarchy has {layout.n_leaves} leaves; reconciliation handles at most "
            f"{MAX_RECONCILED_LEAVES}: release a coarser level or no totals"
        )
    matrix = layout.aggregation_matrix()
    inverse = np.linalg.inv(matrix.T @ matrix)
    leaves = inverse @ (matrix.T @ noisy)
    variance = ((matrix @ inverse) * matrix).sum(axis=1)
    return layout.totals(np.clip(leaves, 0.0, None)), sd * np.sqrt(variance)
