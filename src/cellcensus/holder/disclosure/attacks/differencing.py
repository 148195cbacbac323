"""Differencing: isolate one device by subtracting two overlapping releases.

An analyst asks for the same table twice, over two periods that differ by one day (or two
area definitions that differ by one border cell). Everything else being equal, the difference
in a target's area is 1 if the target device was there on the extra day and 0 otherwise; with
one target per area, each pair of releases attacks as many targets as there are areas.
A minimum-count rule does not stop this, since both counts are large: the difference of two
published counts can be as small as one device.

The attacker reads the difference in the target's area and says "present" when it exceeds
one half. Against exact or threshold-only releases this is always right; against rounding it
is right when the extra device crosses a rounding boundary; against noise the difference is
drowned in the noise of two releases (and every extra release is charged to the ledger).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cellcensus.holder.disclosure.attacks.mobility import FloatArray
from cellcensus.holder.disclosure.attacks.releases import Protection


@dataclass(frozen=True)
class DifferencingOutcome:
    """How well the differencing attacker did.

    Attributes:
        accuracy: Share of targets for which the attacker tells rightly whether the target
            device is in the second release (0.5 is guessing).
        mean_abs_error: Mean error, in devices, of the recovered contribution of a target
            (the difference of the releases; the truth is 0 or 1).
        trials: Number of targets attacked.
    """

    accuracy: float
    mean_abs_error: float
    trials: int


def differencing_attack(
    *, protection: Protection, pairs: int, seed: int, n_areas: int = 20
) -> DifferencingOutcome:
    """Run the attack on `pairs` pairs of releases, one target device per area.

    Each pair draws resident counts of 30 to 400 devices per area (all above any threshold)
    and, for each area, whether that area's target device is in the second release
    (probability 1/2): every area of every pair is one trial.

    Args:
        protection: How each release is protected.
        pairs: Number of pairs of releases.
        seed: Seed of the scenario (the noise itself comes from OpenDP).
        n_areas: Areas per release.
    """
    rng = np.random.default_rng(seed)
    right, errors = 0, []
    for _ in range(pairs):
        background = rng.integers(30, 401, size=(1, n_areas)).astype(np.float64)
        present = rng.random(n_areas) < 0.5
        second = background + present
        recovered = _read(protection(second)) - _read(protection(background))
        right += int(((recovered > 0.5) == present).sum())
        errors.extend(np.abs(recovered - present).tolist())
    trials = pairs * n_areas
    return DifferencingOutcome(
        accuracy=right / trials, mean_abs_error=float(np.mean(errors)), trials=trials
    )


def _read(released: FloatArray) -> FloatArray:
    """The attacker's reading of a release: withheld cells read as 0."""
    return np.asarray(np.nan_to_num(released[0], nan=0.0), dtype=np.float64)
