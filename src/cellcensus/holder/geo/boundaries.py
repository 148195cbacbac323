"""The boundaries of each area level, kept in the store for maps of its releases.

``STORE/areas/LEVEL.geojson`` is a FeatureCollection (WGS84, 6 decimals, exterior rings
counter-clockwise as RFC 7946 asks) with one feature per area and its code in the
``area_code`` property: the service's GeoJSON releases take their geometries from it
(docs/service.md). It is written beside every allocation: the areas allocated to, the
squares of a grid level, the union of its parts for a rolled-up level.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from cellcensus.holder.geo.projection import from_grid
from cellcensus.holder.store import Store

AREAS_FOLDER = "areas"
DECIMALS = 6
"""Decimals of the coordinates (about 0.1 m)."""
_GRID_ID = re.compile(r"CRS3035RES(\d+)mN(\d+)E(\d+)")


def boundaries_path(store: Store, level: str) -> Path:
    """Where the boundaries of `level` are kept: ``STORE/areas/LEVEL.geojson``."""
    return store.root / AREAS_FOLDER / f"{level}.geojson"


def save_boundaries(store: Store, *, areas: pd.DataFrame, level: str) -> Path:
    """Write `areas` (``area_code``, ``geometry`` in WGS84) as the boundaries of `level`."""
    shapes = shapely.transform(
        np.asarray(areas["geometry"], dtype=object), lambda xy: np.round(xy, DECIMALS)
    )
    # RFC 7946: exterior rings counter-clockwise, holes clockwise (GEOS unions turn them).
    shapes = shapely.orient_polygons(shapes)
    features = [
        {"type": "Feature", "properties": {"area_code": str(code)}, "geometry": geometry}
        for code, geometry in zip(
            areas["area_code"], map(json.loads, shapely.to_geojson(shapes)), strict=True
        )
    ]
    path = boundaries_path(store, level)
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.tmp")  # readers never see half a file
    aside.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    aside.replace(path)
    return path


def grid_squares(codes: Iterable[str]) -> pd.DataFrame:
    """The squares of INSPIRE grid ids (``CRS3035RES1000mN...E...``), in WGS84."""
    codes = sorted(set(codes))
    corners = [_GRID_ID.fullmatch(code) for code in codes]
    boxes = [
        shapely.box(int(east), int(north), int(east) + int(size), int(north) + int(size))
        for size, north, east in (match.groups() for match in corners if match is not None)
    ]
    kept = [code for code, match in zip(codes, corners, strict=True) if match is not None]
    # Densified: a square's sides are not straight lines in degrees.
    squares = shapely.segmentize(np.array(boxes, dtype=object), 100.0)
    return pd.DataFrame({"area_code": kept, "geometry": list(from_grid(squares))})


def roll_up_boundaries(store: Store, *, parent: pd.Series, level: str, source: str) -> Path | None:
    """The boundaries of `level` as unions of its `source` areas (none if `source` has none).

    Args:
        store: The store.
        parent: The `level` area of each `source` area code.
        level: The level to write.
        source: The level whose boundaries are merged.
    """
    path = boundaries_path(store, source)
    if not path.is_file():
        return None
    features = json.loads(path.read_text(encoding="utf-8"))["features"]
    parts = pd.DataFrame(
        {
            "area_code": [parent.get(str(f["properties"]["area_code"])) for f in features],
            "geometry": [shapely.from_geojson(json.dumps(f["geometry"])) for f in features],
        }
    ).dropna(subset=["area_code"])
    groups = parts.groupby("area_code", sort=True)["geometry"]
    merged = pd.DataFrame(
        {
            "area_code": list(groups.groups),
            "geometry": [shapely.union_all(shapes.to_numpy()) for _, shapes in groups],
        }
    )
    return save_boundaries(store, areas=merged, level=level)
