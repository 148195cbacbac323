"""A small synthetic mobility world for the attacks: devices moving on a grid of areas, by hour.

Each device has a home and, unless it stays home all day, a workplace a few areas away. It
leaves home between 07:00 and 09:00, spends one hour in transit (the area half-way), works,
and comes back between 16:00 and 18:00 through the same transit area: the daily regularity
that Xu et al. (2017) exploit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

HOURS = 24


@dataclass(frozen=True)
class Grid:
    """A square of `side` x `side` areas, numbered row by row."""

    side: int

    @property
    def n_areas(self) -> int:
        """Number of areas."""
        return self.side * self.side

    def coordinates(self) -> FloatArray:
        """(x, y) of each area, one row per area."""
        index = np.arange(self.n_areas)
        return np.column_stack([index % self.side, index // self.side]).astype(np.float64)


def synthetic_trajectories(
    *,
    grid: Grid,
    n_devices: int,
    rng: np.random.Generator,
    commute_radius: int = 4,
    stay_home_share: float = 0.2,
) -> IntArray:
    """Each device's area at each hour of one day.

    Args:
        grid: The areas.
        n_devices: Number of devices.
        rng: Random generator (seeded by the caller).
        commute_radius: Most areas between home and workplace along each axis.
        stay_home_share: Share of devices that stay home all day.

    Returns:
        Array of shape (n_devices, 24): area index per device and hour.
    """
    trajectories = np.empty((n_devices, HOURS), dtype=np.int64)
    for device in range(n_devices):
        trajectories[device] = _day(
            grid=grid, rng=rng, radius=commute_radius, stays=bool(rng.random() < stay_home_share)
        )
    return trajectories


def hourly_counts(*, trajectories: IntArray, n_areas: int) -> FloatArray:
    """Devices per hour and area: shape (hours, n_areas)."""
    hours = trajectories.shape[1]
    counts = np.zeros((hours, n_areas))
    for hour in range(hours):
        counts[hour] = np.bincount(trajectories[:, hour], minlength=n_areas)
    return counts


def _day(*, grid: Grid, rng: np.random.Generator, radius: int, stays: bool) -> IntArray:
    home = rng.integers(grid.side, size=2)
    if stays:
        return np.full(HOURS, _area(grid, home), dtype=np.int64)
    work = _workplace(grid=grid, home=home, rng=rng, radius=radius)
    transit = np.round((home + work) / 2.0).astype(np.int64)
    leave, back = int(rng.integers(7, 10)), int(rng.integers(16, 19))
    day = np.full(HOURS, _area(grid, home), dtype=np.int64)
    day[leave : back + 1] = _area(grid, work)
    day[[leave, back + 1]] = _area(grid, transit)
    return day


def _workplace(*, grid: Grid, home: IntArray, rng: np.random.Generator, radius: int) -> IntArray:
    while True:
        work = home + rng.integers(-radius, radius + 1, size=2)
        if (work >= 0).all() and (work < grid.side).all() and (work != home).any():
            return work


def _area(grid: Grid, point: IntArray) -> int:
    return int(point[1]) * grid.side + int(point[0])
