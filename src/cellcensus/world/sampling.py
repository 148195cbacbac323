"""Random draws the world needs in many places: rare events and destinations."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from cellcensus.world.categorical import cumulative_rows, draw_categories
from cellcensus.world.territory import Territory


def rare_events(*, count: int, probability: float, rng: np.random.Generator) -> NDArray[np.intp]:
    """Indices ``i < count`` that each happen independently with `probability`, sorted.

    Draws the gaps between successes (geometric), so the cost follows the number of
    successes, not `count`: a daily event of a few persons in a million is cheap.

    Args:
        count: Number of trials.
        probability: Success probability of each, in [0, 1].
        rng: The random generator.

    Returns:
        The successful trials, in increasing order.
    """
    if count == 0 or probability <= 0:
        return np.empty(0, dtype=np.intp)
    if probability >= 1:
        return np.arange(count, dtype=np.intp)
    expected = count * probability
    found: list[NDArray[np.int64]] = []
    position = -1
    while position < count:
        batch = int(expected + 5 * np.sqrt(expected) + 16)
        steps = np.cumsum(rng.geometric(probability, size=batch)) + position
        found.append(steps[steps < count])
        position = int(steps[-1])
    return np.concatenate(found).astype(np.intp)


def gravity_areas(
    *,
    territory: Territory,
    origin: NDArray[np.intp],
    distance_km: float,
    rng: np.random.Generator,
    weight: NDArray[np.float64] | None = None,
) -> NDArray[np.intp]:
    """For each origin area, a destination area other than itself, by a gravity model.

    Area j attracts in proportion to its weight (default: census population) times
    ``exp(-distance / distance_km)`` from the origin's centroid.

    Args:
        territory: The areas.
        origin: Origin area of each draw.
        distance_km: Scale of the exponential distance decay.
        rng: The random generator.
        weight: Attraction of each area (default: its population).

    Returns:
        The destination area of each draw.
    """
    if weight is None:
        cumulative = _population_gravity(territory, distance_km)
    else:
        cumulative = _gravity(territory.distances_km, weight, distance_km)
    return draw_categories(cumulative=cumulative, rows=origin, rng=rng)


_CACHE: dict[tuple[int, float], NDArray[np.float64]] = {}


def _population_gravity(territory: Territory, distance_km: float) -> NDArray[np.float64]:
    """The population gravity table of a territory, computed once per distance."""
    key = (id(territory), distance_km)
    if key not in _CACHE:
        mass = territory.population.astype(np.float64)
        _CACHE[key] = _gravity(territory.distances_km, mass, distance_km)
    return _CACHE[key]


def _gravity(
    distances_km: NDArray[np.float64], mass: NDArray[np.float64], distance_km: float
) -> NDArray[np.float64]:
    attraction = mass[None, :] * np.exp(-distances_km / distance_km)
    np.fill_diagonal(attraction, 0.0)
    # A far-off area whose neighbours are all beyond reach still needs a destination.
    attraction[attraction.sum(axis=1) <= 0] = mass
    return cumulative_rows(attraction)
