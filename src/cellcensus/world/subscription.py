"""Who subscribes to the operator, and the device each subscriber carries."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cellcensus.world.identifiers import numbered
from cellcensus.world.params import WorldParams
from cellcensus.world.streams import Stream, random_stream

MCC = 206
"""Mobile country code of Belgium."""
MNC = 1
"""Mobile network code of the synthetic operator."""
MSISDN_PREFIX = "3247"
"""Country code 32 and a mobile range 47x; eight random digits follow (100 million numbers)."""
HANDSET_MODELS = 60
"""Size of the handset catalogue; its popularity follows a Zipf law, like a real market."""


@dataclass(frozen=True)
class Subscribers:
    """The operator's devices, one primary device per subscribing person, in person order.

    Attributes:
        person: Index of the device's owner.
        user_id: MSISDN-like subscriber identifier, unique.
        tac: Type allocation code of the handset (8 digits).
        daily_events: Mean events per day of the device (before the weekend multiplier).
    """

    person: NDArray[np.intp]
    user_id: NDArray[np.str_]
    tac: NDArray[np.str_]
    daily_events: NDArray[np.float64]

    @property
    def size(self) -> int:
        """Number of devices."""
        return int(self.person.size)


def subscribe(*, persons: int, params: WorldParams) -> Subscribers:
    """Draw the subscribers (Bernoulli with the market share) and give each a device.

    Args:
        persons: Number of persons in the world.
        params: The world's parameters.

    Returns:
        The devices.
    """
    rng = random_stream(seed=params.seed, stream=Stream.SUBSCRIPTION)
    person = np.flatnonzero(rng.random(persons) < params.market_share)
    numbers = _unique_numbers(count=person.size, digits=8, rng=rng)
    user_id = numbered(MSISDN_PREFIX, numbers, 8)
    return Subscribers(
        person=person,
        user_id=user_id,
        tac=_handsets(count=person.size, rng=rng),
        daily_events=daily_event_rates(count=person.size, params=params, rng=rng),
    )


def daily_event_rates(
    *, count: int, params: WorldParams, rng: np.random.Generator
) -> NDArray[np.float64]:
    """Per-device mean events per day: a floor plus a lognormal, heavy-tailed part.

    The lognormal's median is ``event_rate_median - event_rate_floor`` so that the median
    device makes `event_rate_median` events a day.
    """
    spread = rng.lognormal(
        mean=np.log(params.event_rate_median - params.event_rate_floor),
        sigma=params.event_rate_sigma,
        size=count,
    )
    return params.event_rate_floor + spread


def _unique_numbers(*, count: int, digits: int, rng: np.random.Generator) -> NDArray[np.int64]:
    """`count` distinct random numbers below 10**digits, in random order.

    Duplicates are redrawn, which avoids a permutation of the whole range (gigabytes).
    """
    chosen = np.empty(0, dtype=np.int64)
    while chosen.size < count:
        draws = rng.integers(0, 10**digits, size=count - chosen.size + 16, dtype=np.int64)
        pool = np.concatenate([chosen, draws])
        _, first = np.unique(pool, return_index=True)
        chosen = pool[np.sort(first)]
    return chosen[:count]


def _handsets(*, count: int, rng: np.random.Generator) -> NDArray[np.str_]:
    # Reporting body 35 (BABT) issues most handset TACs; six digits identify the model.
    models = rng.integers(0, 1_000_000, size=HANDSET_MODELS)
    catalogue = numbered("35", models, 6)
    popularity = 1.0 / np.arange(1, HANDSET_MODELS + 1)
    return catalogue[rng.choice(HANDSET_MODELS, size=count, p=popularity / popularity.sum())]
