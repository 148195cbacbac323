"""The country the world is built on: Belgium's 589 municipalities of 2011, in metres.

People do not live uniformly inside a municipality: most live around its towns and villages
(GeoNames' 2,256 places of 500 inhabitants or more, close to the 2,359 municipalities merged in
1977), the rest scattered. `Settlements` holds those centres, and `settled_points` draws homes,
work places and antenna sites around them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property

import numpy as np
import pyproj
import shapely
from numpy.typing import NDArray

from cellcensus.reference import belgium

PROJECTED_CRS = "EPSG:3812"
"""Belgian Lambert 2008: metres, so that distances and nearest sites are true on the ground."""


@dataclass(frozen=True)
class Territory:
    """Municipalities (areas) in code order with what the world needs of each.

    Attributes:
        area_codes: Statbel NIS codes of 2011.
        regions: Region code of each area.
        arrondissements_2019: Arrondissement of 2019 (the commuting matrix's codes).
        population: Census 2011 population.
        area_km2: Land area.
        polygons: Boundaries in `PROJECTED_CRS`, prepared for fast containment tests.
        centroids: (n, 2) centroid coordinates in metres.
    """

    area_codes: NDArray[np.str_]
    regions: NDArray[np.str_]
    arrondissements_2019: NDArray[np.str_]
    population: NDArray[np.int64]
    area_km2: NDArray[np.float64]
    polygons: NDArray[np.object_]
    centroids: NDArray[np.float64]

    @property
    def size(self) -> int:
        """Number of areas."""
        return int(self.area_codes.size)

    @property
    def density(self) -> NDArray[np.float64]:
        """Census residents per km2 of each area."""
        density: NDArray[np.float64] = self.population / np.maximum(self.area_km2, 0.01)
        return density

    @cached_property
    def distances_km(self) -> NDArray[np.float64]:
        """(areas, areas) distance between area centroids, in km."""
        delta = self.centroids[:, None, :] - self.centroids[None, :, :]
        distance: NDArray[np.float64] = np.hypot(delta[..., 0], delta[..., 1]) / 1000.0
        return distance

    def codes_matching(self, prefixes: tuple[str, ...]) -> NDArray[np.bool_]:
        """Which areas have a NIS code starting with one of `prefixes`."""
        match: NDArray[np.bool_] = np.zeros(self.size, dtype=bool)
        for prefix in prefixes:
            match |= np.char.startswith(self.area_codes, prefix)
        return match


@cache
def belgium_territory() -> Territory:
    """Belgium from the shipped reference data (cached: projection takes a moment)."""
    areas = belgium.municipalities()
    census = belgium.census_population().set_index("area_code")["population"]
    crosswalk = belgium.crosswalk_2019().set_index("area_code")["arrondissement_2019"]
    codes = areas["area_code"].to_numpy(dtype=str)
    to_metres = pyproj.Transformer.from_crs("EPSG:4326", PROJECTED_CRS, always_xy=True)
    polygons = shapely.transform(
        areas["geometry"].to_numpy(), lambda xy: np.column_stack(to_metres.transform(*xy.T))
    )
    shapely.prepare(polygons)
    centroids = shapely.get_coordinates(shapely.centroid(polygons))
    return Territory(
        area_codes=codes,
        regions=areas["region"].to_numpy(dtype=str),
        arrondissements_2019=crosswalk.loc[codes].to_numpy(dtype=str),
        population=census.loc[codes].to_numpy(dtype=np.int64),
        area_km2=areas["area_km2"].to_numpy(dtype=np.float64),
        polygons=polygons,
        centroids=centroids,
    )


def to_wgs84(xy: NDArray[np.float64]) -> NDArray[np.float64]:
    """Convert (n, 2) projected coordinates back to (n, 2) longitude, latitude."""
    to_degrees = pyproj.Transformer.from_crs(PROJECTED_CRS, "EPSG:4326", always_xy=True)
    longitude, latitude = to_degrees.transform(xy[:, 0], xy[:, 1])
    return np.column_stack([longitude, latitude])


def sample_points(
    *, territory: Territory, areas: NDArray[np.intp], rng: np.random.Generator
) -> NDArray[np.float64]:
    """Draw one point uniformly inside the polygon of each given area.

    Rejection sampling in each area's bounding box, vectorised within the area: the loop runs
    over the 589 areas, never over points.

    Args:
        territory: The areas.
        areas: For each point wanted, the index of its area.
        rng: The random generator.

    Returns:
        (len(areas), 2) coordinates in metres, in the order of `areas`.
    """
    points = np.empty((areas.size, 2), dtype=np.float64)
    order = np.argsort(areas, kind="stable")
    counts = np.bincount(areas, minlength=territory.size)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    for area in np.flatnonzero(counts):
        wanted = order[offsets[area] : offsets[area + 1]]
        points[wanted] = _inside(territory.polygons[area], int(counts[area]), rng)
    return points


def _inside(polygon: shapely.Geometry, count: int, rng: np.random.Generator) -> NDArray[np.float64]:
    xmin, ymin, xmax, ymax = shapely.bounds(polygon)
    fill = max(shapely.area(polygon) / ((xmax - xmin) * (ymax - ymin)), 0.05)
    found: list[NDArray[np.float64]] = [np.empty((0, 2), dtype=np.float64)]
    missing = count
    while missing > 0:
        # Oversample by the expected rejection rate so that one round almost always suffices.
        tries = int(missing / fill * 1.2) + 16
        x = rng.uniform(xmin, xmax, tries)
        y = rng.uniform(ymin, ymax, tries)
        keep = shapely.contains_xy(polygon, x, y)
        hits = np.column_stack([x[keep], y[keep]])[:missing]
        found.append(hits)
        missing -= len(hits)
    return np.concatenate(found)


KM2_PER_CENTRE = 13.0
"""Land per centre of an area without a known place: 30,528 km2 over the 2,359 pre-1977
municipalities."""
DENSITY_UNIFORM = 4000.0
"""Residents per km2 above which an area is built up throughout (points drawn uniformly)."""
PLACE_SNAP_M = 2000.0
"""A place this close to an area and in none (a point on the beach) belongs to the nearest."""


@dataclass(frozen=True)
class Settlements:
    """The village and town centres of every area, around which people live and work.

    Attributes:
        area: Area of each centre (centres are grouped by area, in area order).
        xy: Centre position in metres.
        weight: Share of the area's clustered population living around the centre.
        spread_m: Standard deviation of the distance to the centre, in metres.
        first: Index of each area's first centre (and, last, the number of centres).
        dispersed: Per area, the share of points drawn uniformly instead of around a centre.
    """

    area: NDArray[np.intp]
    xy: NDArray[np.float64]
    weight: NDArray[np.float64]
    spread_m: NDArray[np.float64]
    first: NDArray[np.intp]
    dispersed: NDArray[np.float64]


def build_settlements(*, territory: Territory, rng: np.random.Generator) -> Settlements:
    """The centres of each area: its real towns and villages, weighted by their population.

    The centres are Belgium's places of 500 inhabitants or more (`belgium.places`, GeoNames):
    towns and the former municipalities merged into larger ones, each weighing its population
    (at least 500). An area without one gets one centre per 13 km2 at random points, weighing
    1/rank (a Zipf law of town sizes). Denser areas are more uniformly built up (all of
    Brussels is).

    Args:
        territory: The areas.
        rng: The random generator (for areas without a known place).

    Returns:
        The settlements.
    """
    known_area, known_xy, known_weight = _known_places(territory)
    counts = np.bincount(known_area, minlength=territory.size)
    unknown = counts == 0
    counts[unknown] = np.maximum(1, np.rint(territory.area_km2[unknown] / KM2_PER_CENTRE))
    area = np.repeat(np.arange(territory.size), counts)
    first = np.concatenate([[0], np.cumsum(counts)]).astype(np.intp)
    rank = np.arange(area.size) - first[area]
    weight: NDArray[np.float64] = 1.0 / (rank.astype(np.float64) + 1.0)
    xy = np.empty((area.size, 2), dtype=np.float64)
    drawn = unknown[area]
    xy[drawn] = sample_points(territory=territory, areas=area[drawn].astype(np.intp), rng=rng)
    order = np.argsort(known_area, kind="stable")  # the known places in area order
    xy[~drawn] = known_xy[order]
    weight[~drawn] = known_weight[order]
    weight = weight / np.bincount(area, weights=weight)[area]
    spread = 0.3 * np.sqrt(territory.area_km2[area] / counts[area]) * 1000.0
    dispersed = 0.2 + 0.8 * np.minimum(1.0, territory.density / DENSITY_UNIFORM)
    return Settlements(
        area=area.astype(np.intp),
        xy=xy,
        weight=weight,
        spread_m=spread,
        first=first,
        dispersed=dispersed,
    )


def _known_places(
    territory: Territory,
) -> tuple[NDArray[np.intp], NDArray[np.float64], NDArray[np.float64]]:
    """Area, position and weight (population, at least 500) of each place in an area."""
    places = belgium.places()
    to_metres = pyproj.Transformer.from_crs("EPSG:4326", PROJECTED_CRS, always_xy=True)
    x, y = to_metres.transform(places["longitude"].to_numpy(), places["latitude"].to_numpy())
    area = np.full(len(places), -1, dtype=np.intp)
    for index, polygon in enumerate(territory.polygons):
        area[shapely.contains_xy(polygon, x, y)] = index
    for place in np.flatnonzero(area < 0):
        distance = shapely.distance(territory.polygons, shapely.Point(x[place], y[place]))
        if distance.min() <= PLACE_SNAP_M:
            area[place] = int(np.argmin(distance))
    known = area >= 0
    weight = np.maximum(places["population"].to_numpy(dtype=np.float64), 500.0)
    return area[known], np.column_stack([x, y])[known], weight[known]


def settled_points(
    *,
    territory: Territory,
    settlements: Settlements,
    areas: NDArray[np.intp],
    rng: np.random.Generator,
    concentration: float = 1.0,
) -> NDArray[np.float64]:
    """Draw one point in each given area: around its centres, or scattered.

    Args:
        territory: The areas.
        settlements: Their centres.
        areas: For each point wanted, the index of its area.
        rng: The random generator.
        concentration: Above 1, fewer scattered points and tighter clusters (work places
            gather in town centres more than homes do).

    Returns:
        (len(areas), 2) coordinates in metres, in the order of `areas`.
    """
    points = np.empty((areas.size, 2), dtype=np.float64)
    order = np.argsort(areas, kind="stable")
    counts = np.bincount(areas, minlength=territory.size)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    for area in np.flatnonzero(counts):
        wanted = order[offsets[area] : offsets[area + 1]]
        points[wanted] = _settled_in(
            territory=territory,
            settlements=settlements,
            area=int(area),
            count=int(counts[area]),
            rng=rng,
            concentration=concentration,
        )
    return points


def _settled_in(
    *,
    territory: Territory,
    settlements: Settlements,
    area: int,
    count: int,
    rng: np.random.Generator,
    concentration: float,
) -> NDArray[np.float64]:
    polygon = territory.polygons[area]
    dispersed = settlements.dispersed[area] ** concentration
    scattered = rng.random(count) < dispersed
    points = np.empty((count, 2), dtype=np.float64)
    points[scattered] = _inside(polygon, int(scattered.sum()), rng)
    centres = slice(settlements.first[area], settlements.first[area + 1])
    weight = settlements.weight[centres]
    missing = np.flatnonzero(~scattered)
    for _ in range(4):
        if missing.size == 0:
            break
        centre = rng.choice(weight.size, size=missing.size, p=weight)
        spread = settlements.spread_m[centres][centre] / concentration
        xy = settlements.xy[centres][centre] + rng.normal(size=(missing.size, 2)) * spread[:, None]
        inside = shapely.contains_xy(polygon, xy[:, 0], xy[:, 1])
        points[missing[inside]] = xy[inside]
        missing = missing[~inside]
    if missing.size:
        points[missing] = _inside(polygon, int(missing.size), rng)
    return points
