"""`protect`: the one function every release goes through before it leaves the enclave.

Order of protections (see docs/disclosure.md):

1. complete the algorithm's exact counts over the public key set (absent keys count 0), and
   add the coarser levels' totals when a hierarchy is released;
2. differential privacy, when the policy asks for it: OpenDP noise on every cell, then
   reconciliation across levels and non-negativity (post-processing);
3. primary suppression of device counts at or below the threshold (before any scaling; with
   DP, on the noisy counts, so that the suppression pattern is itself private, and no lower
   than what noise alone reaches in about ``dp.noise_releases`` of the release's cells:
   `release_threshold`), then secondary suppression where a withheld cell could be
   recovered from a published total;
4. consistent rounding of what is published.

An algorithm whose last step is not a sum of per-device contributions (the Bayesian spatial
estimator redistributes everyone's counts, so one device can move an area by more than its
bound) is protected in two calls: `measure` adds the noise to its intermediate counts (per
cell), where the bound holds; the step runs on those noisy counts (post-processing, which
spends no privacy); then `protect` with ``measured_ci95`` suppresses and rounds its output,
adding no noise twice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from cellcensus.errors import CellcensusError, DisclosureError
from cellcensus.holder.disclosure.hierarchy import FloatArray, Hierarchy, Layout, layout
from cellcensus.holder.disclosure.ledger import Charge
from cellcensus.holder.disclosure.noise import noisy_counts
from cellcensus.holder.disclosure.policy import DisclosurePolicy
from cellcensus.holder.disclosure.rounding import consistent_round
from cellcensus.holder.disclosure.suppression import primary_suppression, secondary_suppression
from cellcensus.release import CI95_PER_SD, noise_threshold

_CHARGE_SLACK = 1e-12


def protect(
    raw: pd.DataFrame,
    *,
    keys: Sequence[str],
    policy: DisclosurePolicy,
    key: str = "area_code",
    contribution_bound: float | None = None,
    units: int = 1,
    hierarchy: Hierarchy | None = None,
    charge: Charge | None = None,
    rounding_key: bytes | None = None,
    measured_ci95: Sequence[float] | None = None,
) -> pd.DataFrame:
    """Protect an algorithm's exact counts for release.

    Args:
        raw: The algorithm's exact output: `key` and ``device_count`` (fractional counts
            allowed; absent keys count 0).
        keys: Every key that may appear (e.g. all municipalities, or all area x hour keys),
            released whether or not any device is there, so that a row's presence leaks
            nothing.
        policy: The disclosure policy to apply.
        key: Name of the key column.
        contribution_bound: Most one device adds to the counts of one privacy unit (the
            manifest's ``contribution_bound``); required when the policy adds noise.
        units: Privacy units the keys span (the product of the sizes of the manifest's
            ``unit_keys`` domains, e.g. dates x slots; 1 when the bound is for the whole
            release). The noise is calibrated to ``units * contribution_bound`` (L1), so that
            the policy's epsilon is the privacy loss of the whole release.
        hierarchy: Parents of each key; when given, every coarser level's totals are released
            too (rows tagged by a ``level`` column), consistent with the keys' counts.
        charge: The ledger's receipt for this release; required when the policy adds noise,
            and must cover the policy's epsilon and delta.
        rounding_key: Holder secret keying the rounding grid of each cell; None rounds half
            up (consistent, but on a public grid).
        measured_ci95: `raw` is already differentially private (post-processed from
            `measure`'s output): no noise is added; this is the noise's ci95 of each key, in
            the sorted order of `keys`. The charge is still required.

    Returns:
        One row per cell, sorted by level then key: (``level``,) `key`, ``device_count``
        (nullable integer, null where suppressed) and, with DP, ``ci95``: the half-width of
        the 95 % interval of the noise in that cell (rounding adds at most the base).

    Raises:
        CellcensusError: Malformed counts or keys outside the public key set.
        DisclosureError: A DP policy without a covering ledger charge or contribution bound.
    """
    public, counts = _complete(raw, keys=keys, key=key)
    cells = layout(leaves=public, leaf_level=key, hierarchy=hierarchy)
    ci95: FloatArray | None
    if measured_ci95 is not None:
        values, ci95 = _measured(
            counts, cells=cells, policy=policy, charge=charge, ci95=measured_ci95
        )
    else:
        values, ci95 = _estimate(
            counts,
            cells=cells,
            policy=policy,
            contribution_bound=contribution_bound,
            units=units,
            charge=charge,
        )
    threshold = release_threshold(policy, ci95=ci95, measured=measured_ci95 is not None)
    hidden = primary_suppression(values=values, min_count=threshold)
    if policy.secondary_suppression and hierarchy is not None:
        hidden = secondary_suppression(values=values, suppressed=hidden, children=cells.children)
    ids = [f"{level}:{code}" for level, code in zip(cells.level, cells.code, strict=True)]
    rounded = consistent_round(
        values=values, cells=ids, base=policy.rounding_base, secret=rounding_key
    )
    return _table(
        cells=cells,
        key=key,
        released=np.where(hidden, np.nan, rounded),
        ci95=ci95,
        with_level=hierarchy is not None,
    )


def release_threshold(
    policy: DisclosurePolicy, *, ci95: FloatArray | None, measured: bool = False
) -> FloatArray | float:
    """The count each cell must exceed to be published: `min_count`, or more under noise.

    `cellcensus.release.noise_threshold`, from the noise's ci95; counts measured before a
    post-processing step (`measured`) have roughly normal errors (their ci95 is 1.96
    bootstrap deviations).
    """
    dp = policy.dp
    if dp is None or ci95 is None:
        return policy.min_count
    mechanism = "gaussian" if measured else dp.mechanism
    return noise_threshold(
        min_count=policy.min_count,
        sd=ci95 / CI95_PER_SD[mechanism],
        noise_releases=dp.noise_releases,
        laplace=mechanism == "laplace",
    )


def _complete(raw: pd.DataFrame, *, keys: Sequence[str], key: str) -> tuple[list[str], FloatArray]:
    """The sorted public key set and each key's exact count (0 where absent), checked."""
    missing = [column for column in (key, "device_count") if column not in raw.columns]
    if missing:
        raise CellcensusError(
            f"algorithm output lacks column(s) {missing}; it has {list(raw.columns)}"
        )
    public = sorted({str(value) for value in keys})
    if not public:
        raise CellcensusError("the public key set is empty: there is nothing to release")
    position = {code: index for index, code in enumerate(public)}
    codes = [str(value) for value in raw[key].tolist()]
    # Refusals reach the analyst: they count the faulty rows but never name their keys, since
    # which keys the exact output holds (or could not count) is what completion hides.
    unknown = set(codes) - position.keys()
    if unknown:
        # A key outside the public set would reveal itself by its presence: refuse.
        raise CellcensusError(
            f"algorithm output has {len(unknown)} {key} value(s) outside the public key set"
        )
    if len(set(codes)) < len(codes):
        raise CellcensusError(
            f"algorithm output repeats {key} values ({len(codes) - len(set(codes))} rows)"
        )
    values = pd.to_numeric(raw["device_count"], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values) | (values < 0.0)
    if bad.any():
        raise CellcensusError(
            f"algorithm output has a missing, infinite or negative device_count for {key} "
            f"in {int(bad.sum())} row(s)"
        )
    counts = np.zeros(len(public))
    counts[[position[code] for code in codes]] = values
    return public, counts


def _estimate(
    leaves: FloatArray,
    *,
    cells: Layout,
    policy: DisclosurePolicy,
    contribution_bound: float | None,
    units: int,
    charge: Charge | None,
) -> tuple[FloatArray, FloatArray | None]:
    """Exact totals without DP; noisy, reconciled ones (and their ci95) with DP."""
    if policy.dp is None:
        return cells.totals(leaves), None
    _check_charge(charge, policy=policy)
    if contribution_bound is None:
        raise DisclosureError(
            "a differentially private release needs the algorithm's "
            "contribution_bound (its manifest declares it)"
        )
    noisy = noisy_counts(
        leaves=leaves,
        layout=cells,
        dp_policy=policy.dp,
        contribution_bound=contribution_bound,
        units=units,
    )
    return noisy.values, noisy.ci95


def measure(
    raw: pd.DataFrame,
    *,
    keys: Sequence[str],
    policy: DisclosurePolicy,
    key: str,
    contribution_bound: float,
    charge: Charge | None,
    units: int = 1,
) -> tuple[pd.DataFrame, FloatArray]:
    """Noisy counts of every key, nothing suppressed or rounded, for in-enclave post-processing.

    The output feeds a step that runs inside the enclave before `protect` (module docstring).
    `contribution_bound` and `units` are as in `protect`.

    Returns:
        `key`, ``device_count`` (noisy and unclipped, so unbiased: negative where the noise
        is) for every key, sorted; and the noise's standard deviation per key.

    Raises:
        DisclosureError: The policy adds no noise, or the charge does not cover it.
    """
    if policy.dp is None:
        raise DisclosureError("measure adds differential privacy noise; this policy has none")
    public, counts = _complete(raw, keys=keys, key=key)
    cells = layout(leaves=public, leaf_level=key, hierarchy=None)
    _check_charge(charge, policy=policy)
    noisy = noisy_counts(
        leaves=counts,
        layout=cells,
        dp_policy=policy.dp,
        contribution_bound=contribution_bound,
        units=units,
        clip=False,
    )
    sd = noisy.ci95 / CI95_PER_SD[policy.dp.mechanism]
    return pd.DataFrame({key: public, "device_count": noisy.values}), sd


def _measured(
    leaves: FloatArray,
    *,
    cells: Layout,
    policy: DisclosurePolicy,
    charge: Charge | None,
    ci95: Sequence[float],
) -> tuple[FloatArray, FloatArray]:
    """Values already made private by `measure` and post-processing, with their ci95."""
    if policy.dp is None:
        raise DisclosureError("measured counts need a policy with differential privacy")
    _check_charge(charge, policy=policy)
    if cells.n_levels > 1 or len(ci95) != len(leaves):
        raise CellcensusError("measured counts take one ci95 per key and no hierarchy")
    return leaves, np.asarray(ci95, dtype=np.float64)


def _check_charge(charge: Charge | None, *, policy: DisclosurePolicy) -> None:
    if charge is None:
        raise DisclosureError(
            f"this policy spends epsilon={policy.epsilon:g} per release: charge the job to the "
            "privacy-loss ledger first (PrivacyLedger.charge) and pass its receipt"
        )
    if charge.epsilon + _CHARGE_SLACK < policy.epsilon or charge.delta + _CHARGE_SLACK < (
        policy.delta
    ):
        raise DisclosureError(
            f"job {charge.job_id} was charged epsilon={charge.epsilon:g}, "
            f"delta={charge.delta:g}, less than the policy spends (epsilon={policy.epsilon:g}, "
            f"delta={policy.delta:g})"
        )


def _table(
    *, cells: Layout, key: str, released: FloatArray, ci95: FloatArray | None, with_level: bool
) -> pd.DataFrame:
    columns: dict[str, object] = {}
    if with_level:
        columns["level"] = list(cells.level)
    columns[key] = list(cells.code)
    columns["device_count"] = pd.array(
        [None if math.isnan(value) else round(value) for value in released], dtype="Int64"
    )
    if ci95 is not None:
        columns["ci95"] = np.round(ci95, 2)
    return pd.DataFrame(columns)
