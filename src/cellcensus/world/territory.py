"""The country the world is built on: Belgium's 589 municipalities of 2011, in metres."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

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
    found: list[NDArray[np.float64]] = []
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
