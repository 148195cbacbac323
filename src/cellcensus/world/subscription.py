"""Who owns a phone, with which of the three operators, and who carries a second SIM.

Ownership follows age (children under about ten rarely, the oldest less). Each owner's
operator is drawn from the regional market shares: the holder's share differs by region and
is rescaled so that its national share of phone owners is `market_share`; the two competitors
share the rest. Some adults carry a second SIM (a work phone, a tablet, a dongle), of any
operator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cellcensus.world.params import WorldParams
from cellcensus.world.population import Residents
from cellcensus.world.streams import Stream, random_stream
from cellcensus.world.territory import Territory

NO_PHONE = -1
"""Operator of a person without a phone (or without a second SIM)."""
HOLDER = 0
"""Operator index of the data holder; 1 and 2 are its competitors."""
COMPETITOR_SPLIT = 0.56
"""Share of the non-holder market held by the larger competitor (sudinfo-2013: 4.32 M vs
3.4 M customers at end 2012)."""
ADULT_AGE = 18
"""Youngest age with a second SIM."""


@dataclass(frozen=True)
class Subscriptions:
    """The operator of every person's phone and second SIM.

    Attributes:
        operator: Operator of the person's phone (`HOLDER`, 1, 2) or `NO_PHONE`.
        second_operator: Operator of the person's second SIM, or `NO_PHONE`.
        holder_share: The holder's share of phone owners in each area.
    """

    operator: NDArray[np.int8]
    second_operator: NDArray[np.int8]
    holder_share: NDArray[np.float64]

    @property
    def holder_primary(self) -> NDArray[np.intp]:
        """Persons whose phone is the holder's, in person order."""
        return np.flatnonzero(self.operator == HOLDER)

    @property
    def holder_secondary(self) -> NDArray[np.intp]:
        """Persons whose second SIM is the holder's, in person order."""
        return np.flatnonzero(self.second_operator == HOLDER)


def step_values(
    steps: tuple[tuple[int, float], ...], age: NDArray[np.int16]
) -> NDArray[np.float64]:
    """The value of an age-step table, e.g. ((0, 0.0), (10, 0.7)), at each age."""
    youngest = np.array([first for first, _ in steps])
    values = np.array([value for _, value in steps], dtype=np.float64)
    found: NDArray[np.float64] = values[np.searchsorted(youngest, age, side="right") - 1]
    return found


def subscribe(*, territory: Territory, residents: Residents, params: WorldParams) -> Subscriptions:
    """Draw phone ownership, each owner's operator and the second SIMs.

    Args:
        territory: The areas (their regions).
        residents: The persons.
        params: The world's parameters.

    Returns:
        The subscriptions of every person.
    """
    rng = random_stream(seed=params.seed, stream=Stream.OWNERSHIP)
    owns = rng.random(residents.size) < step_values(params.phone_ownership, residents.age)
    holder_share = regional_holder_share(
        territory=territory, residents=residents, owns=owns, params=params
    )
    share = holder_share[residents.home_area]
    operator = np.where(owns, _operators(share, rng), NO_PHONE).astype(np.int8)
    adult = owns & (residents.age >= ADULT_AGE)
    has_second = adult & (rng.random(residents.size) < params.secondary_sim_share)
    second = np.where(has_second, _operators(share, rng), NO_PHONE).astype(np.int8)
    return Subscriptions(operator=operator, second_operator=second, holder_share=holder_share)


def _operators(holder_share: NDArray[np.float64], rng: np.random.Generator) -> NDArray[np.int8]:
    draw = rng.random(holder_share.size)
    rest = holder_share + (1 - holder_share) * COMPETITOR_SPLIT
    chosen = np.where(draw < holder_share, HOLDER, np.where(draw < rest, 1, 2))
    return chosen.astype(np.int8)


def regional_holder_share(
    *,
    territory: Territory,
    residents: Residents,
    owns: NDArray[np.bool_],
    params: WorldParams,
) -> NDArray[np.float64]:
    """The holder's share of phone owners in each area, from its regional factors.

    The factors are scaled by one constant, found by bisection, so that the holder's share of
    all the world's phone owners is `market_share` (capped at 1 in every region).

    Returns:
        The share of each area.
    """
    factors = dict(params.regional_share_factors)
    factor = np.array([factors.get(str(region), 1.0) for region in territory.regions])
    owners = np.bincount(residents.home_area[owns], minlength=territory.size).astype(np.float64)
    target = params.market_share * owners.sum()
    low, high = 0.0, 1.0 / max(float(factor.min()), 1e-9)
    for _ in range(60):
        middle = (low + high) / 2
        if (np.minimum(1.0, middle * factor) * owners).sum() < target:
            low = middle
        else:
            high = middle
    share: NDArray[np.float64] = np.minimum(1.0, high * factor)
    return share
