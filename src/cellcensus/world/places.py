"""Where people can be: homes, points of interest and road points, with their serving cells.

Every place an agent (a person or a visitor) can be at is a *location*: its own home (a
visitor's accommodation and sights), a point of interest shared with others (a workplace, a
school, a shop), or a road point. Locations are numbered in one table whose serving cells are
computed once, so a day only looks them up.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from cellcensus.world.territory import Settlements, Territory, settled_points


class Column(IntEnum):
    """The places of an agent, as columns of `Agents.places`."""

    HOME = 0
    NEW_HOME = 1
    WORK = 2
    OTHER_1 = 3
    OTHER_2 = 4
    OTHER_3 = 5
    TRIP = 6
    STAY = 7


PLACE_COLUMNS = len(Column)
AWAY = 255
"""A day-schedule value: not in Belgium (abroad, or a visitor before arriving or after)."""


class PoiKind(IntEnum):
    """Kinds of points of interest."""

    WORKPLACE = 0
    SCHOOL = 1
    LEISURE = 2


PERSONS_PER_POI = {PoiKind.WORKPLACE: 25.0, PoiKind.SCHOOL: 250.0, PoiKind.LEISURE: 150.0}
"""Workers per workplace, pupils per school, residents per shop or leisure place (assumption)."""
POI_CONCENTRATION = {PoiKind.WORKPLACE: 2.0, PoiKind.SCHOOL: 1.5, PoiKind.LEISURE: 2.0}
"""How much each kind gathers in town centres (see `settled_points`)."""


@dataclass(frozen=True)
class PointsOfInterest:
    """Workplaces, schools and leisure places of every area.

    POIs of one kind and area are consecutive locations: kind ``k`` in area ``a`` occupies
    ``first[k, a]`` to ``first[k, a] + count[k, a]`` (location indices).

    Attributes:
        first: (kinds, areas) first location of each kind and area.
        count: (kinds, areas) number of POIs of each kind and area (at least 1).
        area: Area of each POI, in location order from the first POI.
        xy: Position of each POI in metres.
        offset: Location index of the first POI.
    """

    first: NDArray[np.int64]
    count: NDArray[np.int64]
    area: NDArray[np.intp]
    xy: NDArray[np.float64]
    offset: int

    @property
    def size(self) -> int:
        """Number of POIs."""
        return int(self.area.size)

    def pick(
        self, *, kind: PoiKind, areas: NDArray[np.intp], rng: np.random.Generator
    ) -> NDArray[np.int32]:
        """One POI of a kind in each given area, uniformly among the area's."""
        count = self.count[kind, areas]
        offset = np.floor(rng.random(areas.size) * count).astype(np.int64)
        chosen: NDArray[np.int32] = (self.first[kind, areas] + offset).astype(np.int32)
        return chosen


def build_pois(
    *,
    territory: Territory,
    settlements: Settlements,
    users: dict[PoiKind, NDArray[np.float64]],
    offset: int,
    rng: np.random.Generator,
) -> PointsOfInterest:
    """Place the POIs: per area, one for every `PERSONS_PER_POI` users, at least one.

    Args:
        territory: The areas.
        settlements: Their centres (POIs gather there).
        users: Expected users of each kind of POI in each area.
        offset: Location index of the first POI.
        rng: The random generator.

    Returns:
        The POIs.
    """
    count = np.stack(
        [np.maximum(1, np.ceil(users[kind] / PERSONS_PER_POI[kind])) for kind in PoiKind]
    ).astype(np.int64)
    flat_first = offset + np.concatenate([[0], np.cumsum(count.ravel())[:-1]])
    areas: list[NDArray[np.intp]] = []
    points: list[NDArray[np.float64]] = []
    for kind in PoiKind:
        area = np.repeat(np.arange(territory.size), count[kind]).astype(np.intp)
        areas.append(area)
        points.append(
            settled_points(
                territory=territory,
                settlements=settlements,
                areas=area,
                rng=rng,
                concentration=POI_CONCENTRATION[kind],
            )
        )
    return PointsOfInterest(
        first=flat_first.reshape(count.shape),
        count=count,
        area=np.concatenate(areas),
        xy=np.concatenate(points),
        offset=offset,
    )


@dataclass(frozen=True)
class Locations:
    """Every location's area and candidate serving sectors.

    Attributes:
        area: Area of each location.
        sector: (locations, CANDIDATES) candidate sectors, most likely first.
        cumulative: (locations, CANDIDATES) cumulative shares of the candidates (uint16).
    """

    area: NDArray[np.int16]
    sector: NDArray[np.int32]
    cumulative: NDArray[np.uint16]

    @property
    def size(self) -> int:
        """Number of locations."""
        return int(self.area.size)
