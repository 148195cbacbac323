"""Internal migration: persons who move to another municipality during the period.

Each day, every person moves with probability ``migration_rate_per_year / 365`` (lecho-2006:
about 5% of Belgians change municipality each year), to an area drawn by a gravity model with
a short distance decay (most moves are local). A person moves at most once in the period.
Days are drawn from their own streams, so a move does not depend on the period around it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
from numpy.typing import NDArray

from cellcensus.world.params import WorldParams
from cellcensus.world.population import Residents
from cellcensus.world.sampling import gravity_areas, rare_events
from cellcensus.world.streams import Stream, random_stream
from cellcensus.world.territory import Territory


@dataclass(frozen=True)
class Migrations:
    """The moves of the period, in person order.

    Attributes:
        person: The person who moves.
        day: Ordinal of the local day of the move (at the new home from its 00:00).
        from_area: Area of the old home.
        to_area: Area of the new home.
    """

    person: NDArray[np.intp]
    day: NDArray[np.int32]
    from_area: NDArray[np.intp]
    to_area: NDArray[np.intp]

    @property
    def size(self) -> int:
        """Number of moves."""
        return int(self.person.size)


def draw_migrations(
    *, territory: Territory, residents: Residents, params: WorldParams
) -> Migrations:
    """The persons who move during the period, when, and where to.

    Args:
        territory: The areas.
        residents: The persons.
        params: The world's parameters.

    Returns:
        The moves.
    """
    probability = params.migration_rate_per_year / 365.0
    movers: list[NDArray[np.intp]] = []
    days: list[NDArray[np.int32]] = []
    for index in range(params.days):
        day = params.start + timedelta(days=index)
        rng = random_stream(seed=params.seed, stream=Stream.MIGRATION, index=day.toordinal())
        moving = rare_events(count=residents.size, probability=probability, rng=rng)
        movers.append(moving)
        days.append(np.full(moving.size, day.toordinal(), dtype=np.int32))
    person = np.concatenate(movers)
    day_of_move = np.concatenate(days)
    order = np.lexsort((day_of_move, person))
    person, day_of_move = person[order], day_of_move[order]
    first = np.ones(person.size, dtype=bool)
    first[1:] = person[1:] != person[:-1]
    person, day_of_move = person[first], day_of_move[first]
    rng = random_stream(seed=params.seed, stream=Stream.MIGRATION)
    from_area = residents.home_area[person]
    to_area = gravity_areas(
        territory=territory,
        origin=from_area,
        distance_km=params.migration_distance_km,
        rng=rng,
    )
    return Migrations(person=person, day=day_of_move, from_area=from_area, to_area=to_area)


def moved_by(migrations: Migrations, day: date) -> NDArray[np.intp]:
    """Persons who live in their new home on `day` (sorted)."""
    moved: NDArray[np.intp] = migrations.person[migrations.day <= day.toordinal()]
    return moved
