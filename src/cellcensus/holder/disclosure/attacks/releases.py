"""What the attacker sees: the same hourly counts released four ways.

A protection maps exact counts (shape slots x areas) to released ones (NaN where withheld):

- `exact_release`: the unprotected aggregates;
- `threshold_release`: FlowKit's rule, counts above 15 released exactly;
- `cellcensus_release`: `protect` with a cellcensus policy (threshold, DP, rounding);
- `noise_only_release`: OpenDP noise alone, to show that DP does not lean on the threshold.

Every cell of the complete key set (all areas x all slots) is released, whatever its count.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import numpy as np
import pandas as pd

from cellcensus.holder.disclosure.attacks.mobility import FloatArray
from cellcensus.holder.disclosure.hierarchy import layout
from cellcensus.holder.disclosure.ledger import Charge
from cellcensus.holder.disclosure.noise import noisy_counts
from cellcensus.holder.disclosure.policy import DifferentialPrivacy, DisclosurePolicy
from cellcensus.holder.disclosure.protection import protect

Protection = Callable[[FloatArray], FloatArray]


def exact_release() -> Protection:
    """No protection: the exact aggregates."""
    return lambda counts: counts.astype(np.float64)


def threshold_release(*, min_count: float = 15.0) -> Protection:
    """Counts above `min_count` released exactly, the rest withheld (FlowKit's rule)."""
    return lambda counts: np.where(counts > min_count, counts, np.nan)


def cellcensus_release(
    *,
    policy: DisclosurePolicy,
    contribution_bound: float,
    rounding_key: bytes,
    units: int = 1,
) -> Protection:
    """Release through `protect`, as the enclave does (one ledger charge per release).

    Args:
        policy: The disclosure policy.
        contribution_bound: Most one device adds to the cells of one privacy unit (with
            ``units=1``, to all cells of a release: one area per slot, the number of slots).
        rounding_key: The holder's secret for consistent rounding.
        units: Privacy units the release spans (`enclave.compute.privacy_units`: dates x
            slots for present population); the noise is calibrated to all of them.
    """

    def release(counts: FloatArray) -> FloatArray:
        keys = _keys(counts.shape)
        raw = pd.DataFrame({"area_code": keys, "device_count": counts.ravel()})
        table = protect(
            raw,
            keys=keys,
            policy=policy,
            contribution_bound=contribution_bound,
            units=units,
            charge=_simulated_charge(policy) if policy.dp else None,
            rounding_key=rounding_key,
        )
        if table["area_code"].tolist() != keys:  # protect sorts keys: ours are sorted already
            raise AssertionError("release keys out of order")
        released = table["device_count"].to_numpy(dtype=np.float64, na_value=np.nan)
        return released.reshape(counts.shape)

    return release


def noise_only_release(
    *,
    epsilon: float,
    contribution_bound: float,
    units: int = 1,
    dp_policy: DifferentialPrivacy | None = None,
) -> Protection:
    """OpenDP noise on every cell, clipped at 0: no threshold, no rounding.

    Laplace at `epsilon` unless `dp_policy` is given (e.g. the Gaussian of present
    population), calibrated to `units` privacy units of `contribution_bound` each.
    """
    dp_policy = dp_policy or DifferentialPrivacy(epsilon=epsilon)

    def release(counts: FloatArray) -> FloatArray:
        cells = layout(leaves=_keys(counts.shape), leaf_level="area_code")
        noisy = noisy_counts(
            leaves=counts.ravel().astype(np.float64),
            layout=cells,
            dp_policy=dp_policy,
            contribution_bound=contribution_bound,
            units=units,
        )
        return noisy.values.reshape(counts.shape)

    return release


def _keys(shape: tuple[int, ...]) -> list[str]:
    slots, areas = shape
    return [f"{slot:03d}|{area:05d}" for slot in range(slots) for area in range(areas)]


def _simulated_charge(policy: DisclosurePolicy) -> Charge:
    """A receipt for the attack harness's own releases (the ledger is tested on its own)."""
    return Charge(
        job_id=f"attack-{uuid.uuid4().hex}",
        analyst="attack-harness",
        project="attacks",
        epsilon=policy.epsilon,
        delta=policy.delta,
        charged_at=dt.datetime.now(dt.UTC),
    )
