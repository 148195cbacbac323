"""Between WGS84 degrees and a metric CRS, for areas and distances that mean something."""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt
import pyproj
import shapely

WGS84 = "EPSG:4326"
METRIC_CRS = "EPSG:3812"
"""Belgian Lambert 2008 (ETRS89): metres, equal enough in area over Belgium and its borders."""


@cache
def _transformer(source: str, target: str) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(source, target, always_xy=True)


def _project(geometries: npt.ArrayLike, *, source: str, target: str) -> npt.NDArray[np.object_]:
    transformer = _transformer(source, target)

    def transform(coordinates: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        x, y = transformer.transform(coordinates[:, 0], coordinates[:, 1])
        return np.column_stack([x, y])

    projected: npt.NDArray[np.object_] = shapely.transform(
        np.asarray(geometries, dtype=object), transform
    )
    return projected


def to_metric(geometries: npt.ArrayLike) -> npt.NDArray[np.object_]:
    """Geometries in WGS84 (longitude, latitude) -> EPSG:3812 metres."""
    return _project(geometries, source=WGS84, target=METRIC_CRS)


def to_wgs84(geometries: npt.ArrayLike) -> npt.NDArray[np.object_]:
    """Geometries in EPSG:3812 metres -> WGS84 (longitude, latitude)."""
    return _project(geometries, source=METRIC_CRS, target=WGS84)


GRID_CRS = "EPSG:3035"
"""ETRS89-LAEA Europe: the CRS of the INSPIRE statistical grid (equal area, metres)."""


def to_grid(geometries: npt.ArrayLike) -> npt.NDArray[np.object_]:
    """Geometries in WGS84 (longitude, latitude) -> EPSG:3035 metres."""
    return _project(geometries, source=WGS84, target=GRID_CRS)


def from_grid(geometries: npt.ArrayLike) -> npt.NDArray[np.object_]:
    """Geometries in EPSG:3035 metres -> WGS84 (longitude, latitude)."""
    return _project(geometries, source=GRID_CRS, target=WGS84)


def project_points(
    longitude: npt.NDArray[np.float64], latitude: npt.NDArray[np.float64], *, crs: str = GRID_CRS
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """WGS84 positions -> x, y in `crs` (EPSG:3035 by default)."""
    x, y = _transformer(WGS84, crs).transform(longitude, latitude)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
