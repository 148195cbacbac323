"""Membership inference on aggregate location time series (Pyrgelis et al., NDSS 2018).

A distinguishing game. The adversary knows the target's locations and those of the
population the aggregated group is drawn from (Pyrgelis et al.'s strongest prior). The
challenger draws a group of devices, with the target or without (each with probability 1/2),
and releases the group's counts per region of interest and time slot. The adversary:

1. draws groups with and without the target from its prior, releases them the same way
   (the protection is public, so it can simulate it), and trains a classifier (logistic
   regression) on the released counts;
2. scores each challenge release with the classifier.

The area under the ROC curve over many challenges measures the attack: 0.5 is guessing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from cellcensus.holder.disclosure.attacks.mobility import (
    FloatArray,
    Grid,
    IntArray,
    synthetic_trajectories,
)
from cellcensus.holder.disclosure.attacks.releases import Protection

SLOT_HOURS = 2
"""Time slots of two hours: 12 slots a day (a device is counted once per slot)."""


@dataclass(frozen=True)
class MembershipOutcome:
    """How well the adversary told releases with the target from releases without.

    Attributes:
        auc: Area under the ROC curve of the adversary's scores on the challenges.
        n_train: Releases the adversary trained on.
        n_test: Challenge releases scored.
    """

    auc: float
    n_train: int
    n_test: int


@dataclass(frozen=True)
class MembershipGame:
    """The population, the target and the groups the challenger releases.

    Attributes:
        regions: Region of each device of the population in each slot, shape
            (devices, slots); -1 where the device is in no released region.
        target: Row of the target device in `regions`.
        group_size: Devices per released group.
        n_regions: Regions of interest released per slot.
    """

    regions: IntArray
    target: int
    group_size: int
    n_regions: int


def membership_attack(
    *,
    protection: Protection,
    seed: int,
    n_train: int = 200,
    n_test: int = 600,
    population: int = 100,
    group_size: int = 25,
) -> MembershipOutcome:
    """Play the game: train on `n_train` simulated releases, score `n_test` challenges.

    Args:
        protection: How each group's counts (12 slots x 16 regions) are released.
        seed: Seed of the world, the target and the groups (the noise comes from OpenDP).
        n_train: Releases the adversary trains on (half with the target).
        n_test: Challenge releases (half with the target).
        population: Devices the groups are drawn from.
        group_size: Devices per group.
    """
    rng = np.random.default_rng(seed)
    game = _world(rng=rng, population=population, group_size=group_size)
    return play_membership_game(
        game, protection=protection, rng=rng, n_train=n_train, n_test=n_test
    )


def play_membership_game(
    game: MembershipGame,
    *,
    protection: Protection,
    rng: np.random.Generator,
    n_train: int,
    n_test: int,
) -> MembershipOutcome:
    """Train on `n_train` simulated releases of `game`, score `n_test` challenges.

    Args:
        game: The population, target and group size.
        protection: How each group's counts (slots x regions) are released.
        rng: Random generator of the groups (the noise comes from OpenDP).
        n_train: Releases the adversary trains on (half with the target).
        n_test: Challenge releases (half with the target).
    """
    train, train_labels = _releases(game, protection=protection, n=n_train, rng=rng)
    test, test_labels = _releases(game, protection=protection, n=n_test, rng=rng)
    weights = _fit_logistic(train, train_labels)
    return MembershipOutcome(
        auc=roc_auc(scores=_standardised(test, train) @ weights[1:], labels=test_labels),
        n_train=n_train,
        n_test=n_test,
    )


def roc_auc(*, scores: FloatArray, labels: IntArray) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties counted one half)."""
    positive, negative = scores[labels == 1], scores[labels == 0]
    greater = (positive[:, None] > negative[None, :]).sum()
    ties = (positive[:, None] == negative[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(positive) * len(negative)))


def _world(*, rng: np.random.Generator, population: int, group_size: int) -> MembershipGame:
    grid, region_side = Grid(side=16), 4
    hourly = synthetic_trajectories(grid=grid, n_devices=population, rng=rng)
    slots = hourly[:, ::SLOT_HOURS]
    x, y = slots % grid.side // region_side, slots // grid.side // region_side
    n_per_row = grid.side // region_side
    movers = np.flatnonzero((hourly != hourly[:, :1]).any(axis=1))
    return MembershipGame(
        regions=(y * n_per_row + x).astype(np.int64),
        target=int(rng.choice(movers)),
        group_size=group_size,
        n_regions=n_per_row * n_per_row,
    )


def _releases(
    game: MembershipGame, *, protection: Protection, n: int, rng: np.random.Generator
) -> tuple[FloatArray, IntArray]:
    labels = np.arange(n, dtype=np.int64) % 2
    rows = [
        protection(_aggregate(game, with_target=bool(label), rng=rng)).ravel() for label in labels
    ]
    return np.nan_to_num(np.array(rows), nan=0.0), labels


def _aggregate(game: MembershipGame, *, with_target: bool, rng: np.random.Generator) -> FloatArray:
    others = np.delete(np.arange(game.regions.shape[0]), game.target)
    group = rng.choice(others, size=game.group_size - int(with_target), replace=False)
    if with_target:
        group = np.append(group, game.target)
    slots = game.regions.shape[1]
    counts = np.zeros((slots, game.n_regions))
    for slot in range(slots):
        where = game.regions[group, slot]
        counts[slot] = np.bincount(where[where >= 0], minlength=game.n_regions)
    return counts


def _standardised(features: FloatArray, reference: FloatArray) -> FloatArray:
    spread = reference.std(axis=0)
    scaled: FloatArray = (features - reference.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    return scaled


def _fit_logistic(features: FloatArray, labels: IntArray, *, penalty: float = 1.0) -> FloatArray:
    """L2-penalised logistic regression; returns (intercept, weights)."""
    design = np.column_stack([np.ones(len(features)), _standardised(features, features)])

    def loss(weights: FloatArray) -> tuple[float, FloatArray]:
        margin = design @ weights
        probability = 1.0 / (1.0 + np.exp(-margin))
        value = np.logaddexp(0.0, margin).sum() - labels @ margin
        value += 0.5 * penalty * weights[1:] @ weights[1:]
        gradient = design.T @ (probability - labels)
        gradient[1:] += penalty * weights[1:]
        return float(value), gradient

    result = minimize(loss, np.zeros(design.shape[1]), jac=True, method="L-BFGS-B")
    return np.asarray(result.x, dtype=np.float64)


def worst_case_auc(*, scale: float, rounding_base: int, contribution: float = 1.0) -> float:
    """AUC of the strongest membership adversary against one noisy, rounded cell.

    The adversary knows every other device's contribution exactly; the target adds
    `contribution` to a single cell released as ``round(count + Laplace(scale))``. The AUC
    of ranking by the released value is computed exactly (no sampling) for every position of
    the rounding grid, and the worst position is returned.

    Args:
        scale: Laplace scale b of the noise (OpenDP's calibration of the policy).
        rounding_base: Base of the consistent rounding (1: whole devices).
        contribution: What the target adds to the cell.
    """
    steps = np.arange(-int(60 * scale / rounding_base) - 3, int(60 * scale / rounding_base) + 4)
    worst = 0.0
    for offset in (np.arange(200) + 0.5) / 200 * rounding_base:
        without = _rounded_laplace_pmf(0.0, offset, steps=steps, scale=scale, base=rounding_base)
        with_target = _rounded_laplace_pmf(
            contribution, offset, steps=steps, scale=scale, base=rounding_base
        )
        below = np.cumsum(without) - without
        worst = max(worst, float((with_target * (below + 0.5 * without)).sum()))
    return worst


def _rounded_laplace_pmf(
    count: float, offset: float, *, steps: IntArray, scale: float, base: int
) -> FloatArray:
    """P(released == base * step) for ``base * floor((count + noise + offset) / base)``."""
    edges = (np.arange(steps[0], steps[-1] + 2) * base - offset - count).astype(np.float64)
    return np.diff(_laplace_cdf(edges, scale=scale))


def _laplace_cdf(x: FloatArray, *, scale: float) -> FloatArray:
    return np.asarray(
        np.where(
            x < 0,
            0.5 * np.exp(np.minimum(x, 0.0) / scale),
            1.0 - 0.5 * np.exp(-np.maximum(x, 0.0) / scale),
        ),
        dtype=np.float64,
    )
