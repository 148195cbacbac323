"""Trajectory recovery from hourly aggregates (Xu et al., WWW 2017).

The attacker sees, for each hour, how many devices are in each area, and rebuilds individual
trajectories by linking the devices of one hour to the locations of the next with the
Hungarian algorithm (`scipy.optimize.linear_sum_assignment`):

- at night, devices stay put: the cost of linking a trajectory to a location is the distance
  from its last location;
- by day, devices keep moving or stop: the cost is the distance from the nearer of its last
  location and the location its current velocity predicts (last + (last - previous)).

(Xu et al. then link days by the regularity of each device's daily pattern; one day is
recovered here.) Accuracy is theirs: recovered trajectories are matched one-to-one to the true
ones (Hungarian again, on the number of hours that agree), and the share of device-hours
recovered right is reported. The baseline is an attacker who knows only the population
distribution (how many devices are in each area each hour, exactly) and links at random.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from cellcensus.holder.disclosure.attacks.mobility import (
    HOURS,
    FloatArray,
    Grid,
    IntArray,
    hourly_counts,
    synthetic_trajectories,
)
from cellcensus.holder.disclosure.attacks.releases import Protection

NIGHT_HOURS = frozenset({*range(0, 7), *range(21, 24)})


@dataclass(frozen=True)
class TrajectoryOutcome:
    """How well trajectories were recovered, beside the population-distribution baseline.

    Attributes:
        accuracy: Share of device-hours recovered right (mean over worlds).
        baseline: Same share for random linking of the exact hourly distributions.
        n_devices: Devices per world.
        worlds: Number of synthetic worlds averaged.
    """

    accuracy: float
    baseline: float
    n_devices: int
    worlds: int


def trajectory_attack(
    *, protection: Protection, seed: int, worlds: int = 4, n_devices: int = 40, side: int = 16
) -> TrajectoryOutcome:
    """Generate worlds, release their hourly counts, recover trajectories, score them.

    Args:
        protection: How the hourly counts (24 hours x side**2 areas) are released.
        seed: Seed of the worlds and of the baseline's random linking.
        worlds: Number of independent worlds averaged.
        n_devices: Devices per world (the attacker is told this number).
        side: The grid has side x side areas.
    """
    rng = np.random.default_rng(seed)
    grid = Grid(side=side)
    accuracy, baseline = [], []
    for _ in range(worlds):
        truth = synthetic_trajectories(grid=grid, n_devices=n_devices, rng=rng)
        right, guessed = attack_trajectories(
            truth=truth, coordinates=grid.coordinates(), protection=protection, rng=rng
        )
        accuracy.append(right)
        baseline.append(guessed)
    return TrajectoryOutcome(
        accuracy=float(np.mean(accuracy)),
        baseline=float(np.mean(baseline)),
        n_devices=n_devices,
        worlds=worlds,
    )


def attack_trajectories(
    *,
    truth: IntArray,
    coordinates: FloatArray,
    protection: Protection,
    rng: np.random.Generator,
) -> tuple[float, float]:
    """Release the hourly counts of `truth`, recover trajectories, score them.

    Args:
        truth: Area index of each device at each hour, shape (devices, hours).
        coordinates: (x, y) of each area, one row per area.
        protection: How the hourly counts (hours x areas) are released.
        rng: Random generator of the baseline's random linking.

    Returns:
        The attack's recovery accuracy and the population baseline's.
    """
    counts = hourly_counts(trajectories=truth, n_areas=len(coordinates))
    recovered = recover_trajectories(
        released=protection(counts), coordinates=coordinates, n_devices=truth.shape[0]
    )
    return (
        recovery_accuracy(recovered=recovered, truth=truth),
        population_baseline(counts=counts, truth=truth, rng=rng),
    )


def recover_trajectories(
    *, released: FloatArray, coordinates: FloatArray, n_devices: int
) -> IntArray:
    """Link hourly locations into `n_devices` trajectories (Xu et al.'s night/day costs).

    Args:
        released: Released counts, shape (hours, areas); NaN where withheld. Hours run
            from local midnight, over one day or several (night is hour % 24).
        coordinates: (x, y) of each area.
        n_devices: Number of trajectories to build.

    Returns:
        Area index per recovered trajectory and hour, shape (n_devices, hours).
    """
    hours = released.shape[0]
    recovered = np.empty((n_devices, hours), dtype=np.int64)
    recovered[:, 0] = slot_locations(released[0], n_devices=n_devices)
    for hour in range(1, hours):
        candidates = slot_locations(released[hour], n_devices=n_devices)
        cost = _linking_cost(
            recovered[:, :hour],
            candidates=candidates,
            coordinates=coordinates,
            night=hour % HOURS in NIGHT_HOURS,
        )
        rows, columns = linear_sum_assignment(cost)
        recovered[rows, hour] = candidates[columns]
    return recovered


def slot_locations(released: FloatArray, *, n_devices: int) -> IntArray:
    """The attacker's reading of one hour: `n_devices` locations apportioned to the counts.

    Withheld and negative counts read as 0; an hour with nothing published reads as uniform.
    """
    weights = np.clip(np.nan_to_num(released, nan=0.0), 0.0, None)
    if weights.sum() <= 0:
        weights = np.ones_like(weights)
    quota = weights / weights.sum() * n_devices
    seats = np.floor(quota).astype(np.int64)
    remainder = np.argsort(-(quota - seats), kind="stable")[: n_devices - int(seats.sum())]
    seats[remainder] += 1
    return np.repeat(np.arange(len(weights)), seats).astype(np.int64)


def recovery_accuracy(*, recovered: IntArray, truth: IntArray) -> float:
    """Share of device-hours right after matching recovered to true trajectories 1-to-1."""
    agree = (recovered[:, None, :] == truth[None, :, :]).sum(axis=2)
    rows, columns = linear_sum_assignment(-agree)
    return float(agree[rows, columns].sum() / truth.size)


def population_baseline(
    *, counts: FloatArray, truth: IntArray, rng: np.random.Generator, draws: int = 5
) -> float:
    """Accuracy of random linking of the exact hourly distributions (mean of `draws`)."""
    n_devices = truth.shape[0]
    scores = []
    for _ in range(draws):
        linked = np.column_stack(
            [rng.permutation(slot_locations(row, n_devices=n_devices)) for row in counts]
        )
        scores.append(recovery_accuracy(recovered=linked, truth=truth))
    return float(np.mean(scores))


def _linking_cost(
    so_far: IntArray, *, candidates: IntArray, coordinates: FloatArray, night: bool
) -> FloatArray:
    last = coordinates[so_far[:, -1]]
    targets = coordinates[candidates][None, :, :]
    stay: FloatArray = np.linalg.norm(last[:, None, :] - targets, axis=2)
    if night or so_far.shape[1] < 2:
        return stay
    predicted = 2.0 * last - coordinates[so_far[:, -2]]
    moving: FloatArray = np.linalg.norm(predicted[:, None, :] - targets, axis=2)
    return np.minimum(stay, moving)
