"""The synthetic country: persons, their places, the operator's network and its subscribers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cellcensus.world.activity import Place
from cellcensus.world.employment import NOT_WORKING, Employment, assign_work
from cellcensus.world.network import RadioNetwork, build_network
from cellcensus.world.params import WorldParams
from cellcensus.world.population import Residents, build_residents
from cellcensus.world.streams import Stream, random_stream
from cellcensus.world.subscription import Subscribers, subscribe
from cellcensus.world.territory import Territory, belgium_territory

Progress = Callable[[str, float], None]
"""Reports a step's description and the completed fraction (0-1) of the whole generation."""


@dataclass(frozen=True)
class SyntheticCountry:
    """Everything about the world that does not change from day to day.

    Attributes:
        territory: The areas.
        residents: The persons.
        employment: Their work places.
        network: The operator's sites and cells.
        subscribers: The operator's devices.
        place_areas: (persons, 3) area of each person's home, work and other place (the home
            area stands in for the work area of a person who does not work).
        place_cells: (persons, 3) cell serving each of those places.
        presence_sample: Sorted persons who get hourly presence ground truth.
        tracked: Sorted persons whose day is simulated: subscribers and the presence sample.
    """

    territory: Territory
    residents: Residents
    employment: Employment
    network: RadioNetwork
    subscribers: Subscribers
    place_areas: NDArray[np.intp]
    place_cells: NDArray[np.int32]
    presence_sample: NDArray[np.intp]
    tracked: NDArray[np.intp]


def build_country(*, params: WorldParams, progress: Progress | None = None) -> SyntheticCountry:
    """Build the static part of the world from the census and the parameters.

    Args:
        params: The world's parameters.
        progress: Optional progress callback; this step covers the first 10% of the work.

    Returns:
        The country.
    """
    report = progress or (lambda _step, _fraction: None)
    territory = belgium_territory()
    report("placing residents", 0.0)
    residents = build_residents(territory=territory, params=params)
    report("assigning work places", 0.04)
    employment = assign_work(territory=territory, residents=residents, params=params)
    report("building the network", 0.06)
    network = build_network(territory=territory, params=params)
    subscribers = subscribe(persons=residents.size, params=params)
    report("finding serving cells", 0.07)
    place_areas = np.column_stack(
        [
            residents.home_area,
            np.where(
                employment.work_area == NOT_WORKING, residents.home_area, employment.work_area
            ),
            residents.other_area,
        ]
    )
    place_cells = np.empty(place_areas.shape, dtype=np.int32)
    place_cells[:, Place.HOME] = network.serving_cells(residents.home_xy)
    place_cells[:, Place.WORK] = network.serving_cells(employment.work_xy)
    place_cells[:, Place.OTHER] = network.serving_cells(residents.other_xy)
    sample = _presence_sample(persons=residents.size, params=params)
    return SyntheticCountry(
        territory=territory,
        residents=residents,
        employment=employment,
        network=network,
        subscribers=subscribers,
        place_areas=place_areas,
        place_cells=place_cells,
        presence_sample=sample,
        tracked=np.union1d(subscribers.person, sample),
    )


def _presence_sample(*, persons: int, params: WorldParams) -> NDArray[np.intp]:
    """A simple random sample of at most `presence_persons` persons, sorted."""
    rng = random_stream(seed=params.seed, stream=Stream.PRESENCE_SAMPLE)
    size = min(params.presence_persons, persons)
    return np.sort(rng.choice(persons, size=size, replace=False)).astype(np.intp)
