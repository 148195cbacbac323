"""Travel: trips out for the day, stays away overnight and abroad, phones switched off."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import numpy as np
from numpy.typing import NDArray

from cellcensus.world.country import SyntheticCountry
from cellcensus.world.holidays import is_school_holiday
from cellcensus.world.places import Column, PoiKind
from cellcensus.world.roaming import destination_weights
from cellcensus.world.sampling import gravity_areas
from cellcensus.world.spells import SpellProcess
from cellcensus.world.streams import Stream

FAMILY_VISIT_SHARE = 0.5
"""Share of domestic overnight stays spent with family or friends (by distance) rather than
at a tourist destination (assumption)."""
FAMILY_DISTANCE_KM = 40.0
"""Distance decay of the family and friends one stays with."""
LONGEST_PHONE_OFF = 14
LONGEST_STAY = 7
LONGEST_ABROAD = 21
"""Longest spells, in days."""


def spell_processes(country: SyntheticCountry) -> dict[str, SpellProcess]:
    """How phones are switched off, and how persons stay away overnight and abroad."""
    params = country.params
    residents_devices = int(np.count_nonzero(country.devices.person >= 0))

    def travel(per_year: float) -> Callable[[int], float]:
        def probability(day: int) -> float:
            holiday = is_school_holiday(date.fromordinal(day))
            return per_year / 365.0 * (params.holiday_travel_factor if holiday else 1.0)

        return probability

    processes = {
        "phone_off": SpellProcess(
            stream=Stream.PHONE_OFF,
            seed=params.seed,
            members=residents_devices,
            probability=lambda _day: params.phone_off_per_year / 365.0,
            mean_days=params.phone_off_days,
            longest=LONGEST_PHONE_OFF,
            leave_hours=(0, 23),
            return_hours=(0, 23),
        ),
        "overnight": SpellProcess(
            stream=Stream.OVERNIGHT,
            seed=params.seed,
            members=country.agents.persons,
            probability=travel(params.overnight_trips_per_year),
            mean_days=params.overnight_nights,
            longest=LONGEST_STAY,
            leave_hours=(9, 18),
            return_hours=(10, 20),
            destinations=lambda rows, rng: _stay_destinations(country, rows, rng),
        ),
        "abroad": SpellProcess(
            stream=Stream.ABROAD,
            seed=params.seed,
            members=country.agents.persons,
            probability=travel(params.abroad_trips_per_year),
            mean_days=params.abroad_nights,
            longest=LONGEST_ABROAD,
            leave_hours=(5, 20),
            return_hours=(8, 23),
        ),
    }
    return processes


def _home_areas(country: SyntheticCountry, rows: NDArray[np.intp]) -> NDArray[np.intp]:
    home = country.agents.places[rows, Column.HOME]
    areas: NDArray[np.intp] = country.locations.area[home].astype(np.intp)
    return areas


def trip_destinations(
    country: SyntheticCountry, rows: NDArray[np.intp], rng: np.random.Generator
) -> NDArray[np.int32]:
    """A leisure place in a farther area for each tripper (distance decay).

    Args:
        country: The world.
        rows: Agent rows of the trippers.
        rng: The day's random generator.

    Returns:
        The location of each tripper's trip.
    """
    area = gravity_areas(
        territory=country.territory,
        origin=_home_areas(country, rows),
        distance_km=country.params.trip_distance_km,
        rng=rng,
    )
    return country.pois.pick(kind=PoiKind.LEISURE, areas=area, rng=rng)


def _stay_destinations(
    country: SyntheticCountry, rows: NDArray[np.intp], rng: np.random.Generator
) -> NDArray[np.int32]:
    """Half the stays go to family and friends (distance decay), half to tourist places."""
    family = gravity_areas(
        territory=country.territory,
        origin=_home_areas(country, rows),
        distance_km=FAMILY_DISTANCE_KM,
        rng=rng,
    )
    weights = destination_weights(country.territory)
    tourist = rng.choice(weights.size, size=rows.size, p=weights)
    area = np.where(rng.random(rows.size) < FAMILY_VISIT_SHARE, family, tourist)
    return country.pois.pick(kind=PoiKind.LEISURE, areas=area.astype(np.intp), rng=rng)
