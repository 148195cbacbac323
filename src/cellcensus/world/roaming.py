"""Inbound roamers: foreign visitors whose phones use the holder's network for a few days.

Visitors arrive every day (roamer_arrivals_per_day for all of Belgium, times the world's
scale and the holder's share of roaming traffic, taken equal to its market share). They come
mostly from the neighbouring countries (tourism-belgium), stay a few nights or only the day,
in Brussels, Bruges, on the coast, in the Ardennes, the art cities or anywhere (business and
family visits). Each arrival day has its own random stream.

A visitor's accommodation and sights are places of its own, drawn like leisure places (gathered
in town centres): a municipality's leisure places number its simulated residents / 150, so at
small scales one or two of them would hold all its visitors' nights and evenings, and wherever
their cell straddles a border, every visitor of the municipality with it. Drawn afresh for each
visitor, they follow the same distribution at every scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
from numpy.typing import NDArray

from cellcensus.world.clock import MICROSECONDS_PER_HOUR, day_clock
from cellcensus.world.evidence import ROAMING_ORIGINS, TOURIST_DESTINATIONS
from cellcensus.world.params import WorldParams
from cellcensus.world.places import PLACE_COLUMNS, POI_CONCENTRATION, Column, PoiKind
from cellcensus.world.sampling import gravity_areas
from cellcensus.world.streams import Stream, random_stream
from cellcensus.world.territory import Settlements, Territory, settled_points

LONGEST_STAY = 14
"""Most nights a visitor stays."""
SIGHTSEEING_KM = 6.0
"""Distance decay of the sights a visitor sees outside the accommodation's municipality."""
SIGHTS = (Column.OTHER_1, Column.OTHER_2, Column.OTHER_3)
"""The place columns of a visitor's sights; the others hold its accommodation."""


@dataclass(frozen=True)
class RoamerStays:
    """The visits that overlap the period, by arrival.

    Attributes:
        origin: Index into `ROAMING_ORIGINS`.
        mnc: Network code of the visitor's home operator.
        user_id: The visitor's number (international format), unique.
        arrival_us: Start of the hour of arrival, microseconds since the epoch (UTC).
        departure_us: End of the hour of departure.
        nights: Nights spent.
        area: Area of the accommodation (or of the visit, for day visitors).
        places: (visitors, PLACE_COLUMNS) locations: accommodation, then sights.
        location_xy: (visitors x 4, 2) the visitors' locations in metres, numbered by `places`
            from the offset `draw_stays` was given: every accommodation, then each visitor's
            three sights.
        location_area: The area of each of `location_xy`.
    """

    origin: NDArray[np.int16]
    mnc: NDArray[np.int32]
    user_id: NDArray[np.str_]
    arrival_us: NDArray[np.int64]
    departure_us: NDArray[np.int64]
    nights: NDArray[np.int16]
    area: NDArray[np.intp]
    places: NDArray[np.int32]
    location_xy: NDArray[np.float64]
    location_area: NDArray[np.intp]

    @property
    def size(self) -> int:
        """Number of visits."""
        return int(self.origin.size)

    @property
    def accommodation_xy(self) -> NDArray[np.float64]:
        """(visitors, 2) where each one's accommodation is, in metres."""
        return self.location_xy[: self.size]

    @property
    def mcc(self) -> NDArray[np.int32]:
        """Mobile country code of each visitor."""
        codes = np.array([origin.mcc for origin in ROAMING_ORIGINS], dtype=np.int32)
        found: NDArray[np.int32] = codes[self.origin]
        return found


def destination_weights(territory: Territory) -> NDArray[np.float64]:
    """Share of visitor stays going to each area (TOURIST_DESTINATIONS, rest by population)."""
    population = territory.population.astype(np.float64)
    weight = (1 - sum(d.share for d in TOURIST_DESTINATIONS)) * population / population.sum()
    claimed = np.zeros(territory.size, dtype=bool)
    for destination in TOURIST_DESTINATIONS:
        inside = territory.codes_matching(destination.prefixes) & ~claimed
        claimed |= inside
        # The Ardennes are rural: stays follow land area there, population elsewhere.
        mass = territory.area_km2 if destination.name == "the Ardennes" else population
        within = np.where(inside, mass, 0.0)
        weight += destination.share * within / within.sum()
    shares: NDArray[np.float64] = weight / weight.sum()
    return shares


def draw_stays(
    *,
    territory: Territory,
    settlements: Settlements,
    params: WorldParams,
    offset: int,
) -> RoamerStays:
    """The visits overlapping the period (arrivals up to `LONGEST_STAY` days before it).

    Args:
        territory: The areas.
        settlements: The areas' centres (accommodations and sights gather there).
        params: The world's parameters.
        offset: Location index of the first visit's accommodation.

    Returns:
        The visits.
    """
    weights = destination_weights(territory)
    daily = params.roamer_arrivals_per_day * params.scale * params.market_share
    parts = [
        _arrivals(
            day=params.start + timedelta(days=offset),
            mean=daily,
            weights=weights,
            territory=territory,
            params=params,
        )
        for offset in range(-LONGEST_STAY, params.days)
    ]
    stays = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    end_us = day_clock(params.end).end
    start_us = day_clock(params.start).start
    keep = (stays["arrival_us"] < end_us) & (stays["departure_us"] > start_us)
    stays = {name: values[keep] for name, values in stays.items()}
    count = stays["area"].size
    areas = np.concatenate([stays["area"], stays["sight_area"].ravel()]).astype(np.intp)
    xy = settled_points(
        territory=territory,
        settlements=settlements,
        areas=areas,
        rng=random_stream(seed=params.seed, stream=Stream.ROAMING, part=1),
        concentration=POI_CONCENTRATION[PoiKind.LEISURE],
    )
    places = np.zeros((count, PLACE_COLUMNS), dtype=np.int32)
    at_accommodation = [column for column in Column if column not in SIGHTS]
    places[:, at_accommodation] = (offset + np.arange(count, dtype=np.int32))[:, None]
    sights = offset + count + np.arange(count * len(SIGHTS), dtype=np.int32)
    places[:, list(SIGHTS)] = sights.reshape(count, len(SIGHTS))
    return RoamerStays(
        origin=stays["origin"].astype(np.int16),
        mnc=stays["mnc"].astype(np.int32),
        user_id=_numbers(stays["origin"], params),
        arrival_us=stays["arrival_us"],
        departure_us=stays["departure_us"],
        nights=stays["nights"].astype(np.int16),
        area=stays["area"].astype(np.intp),
        places=places,
        location_xy=xy,
        location_area=areas,
    )


def _arrivals(
    *,
    day: date,
    mean: float,
    weights: NDArray[np.float64],
    territory: Territory,
    params: WorldParams,
) -> dict[str, NDArray[np.int64] | NDArray[np.float64]]:
    rng = random_stream(seed=params.seed, stream=Stream.ROAMING, index=day.toordinal())
    count = int(rng.poisson(mean))
    shares = np.array([origin.share for origin in ROAMING_ORIGINS])
    origin = rng.choice(len(ROAMING_ORIGINS), size=count, p=shares / shares.sum())
    operators = [ROAMING_ORIGINS[o].mncs for o in origin]
    mnc = np.array([choices[rng.integers(len(choices))] for choices in operators], np.int64)
    stays_over = rng.random(count) >= params.roamer_day_visit_share
    nights = np.where(
        stays_over, np.minimum(rng.geometric(1 / params.roamer_nights, size=count), LONGEST_STAY), 0
    )
    arrival_hour = rng.uniform(8, 20, size=count)
    departure_hour = np.where(
        stays_over, rng.uniform(8, 20, size=count), arrival_hour + rng.uniform(2, 8, size=count)
    )
    area = rng.choice(territory.size, size=count, p=weights)
    nearby = gravity_areas(territory=territory, origin=area, distance_km=SIGHTSEEING_KM, rng=rng)
    midnight = day_clock(day).start
    # Visitors are placed hour by hour: the stay covers the whole hours they are in, so that
    # an event in the arrival or departure hour lies inside it.
    arrival = np.floor(arrival_hour)
    departure = np.ceil(nights * 24 + departure_hour)
    return {
        "origin": origin,
        "mnc": mnc,
        "arrival_us": midnight + arrival.astype(np.int64) * MICROSECONDS_PER_HOUR,
        "departure_us": midnight + departure.astype(np.int64) * MICROSECONDS_PER_HOUR,
        "nights": nights,
        "area": area,
        "sight_area": np.stack([area, area, nearby], axis=1),  # two sights in the area
    }


def _numbers(origin: NDArray[np.int64], params: WorldParams) -> NDArray[np.str_]:
    """Distinct international numbers: visitor i gets ``(i * a + b) mod 10**digits``."""
    rng = random_stream(seed=params.seed, stream=Stream.ROAMING)
    numbers = np.empty(origin.size, dtype=object)
    index = np.arange(origin.size, dtype=np.int64)
    for code, country in enumerate(ROAMING_ORIGINS):
        modulus = 10**country.digits
        # A multiplier coprime with 10 makes i -> i * a + b a bijection modulo 10**digits.
        multiplier = int(rng.integers(10**5, 10**6)) * 10 + 7
        offset = int(rng.integers(0, modulus))
        mine = origin == code
        value = (index[mine] * multiplier + offset) % modulus
        numbers[mine] = [f"{country.calling_code}{v:0{country.digits}d}" for v in value]
    return numbers.astype(str) if origin.size else np.empty(0, dtype="<U16")
