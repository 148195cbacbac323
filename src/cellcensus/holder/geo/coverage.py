"""Cell coverage: where each cell serves, as polygons in a metric projection.

The default model is the Voronoi tessellation of antenna sites clipped to the country: every
point is served by its nearest site. Cells of one site share the site's polygon.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

METRIC_CRS = "EPSG:3812"  # Belgian Lambert 2008: metres, equal enough for areas in Belgium
_TO_METRIC = Transformer.from_crs("EPSG:4326", METRIC_CRS, always_xy=True)


def to_metric(geometry: np.ndarray) -> np.ndarray:
    """Project WGS84 geometries (an array) to the metric CRS."""

    def project(coords: np.ndarray) -> np.ndarray:
        x, y = _TO_METRIC.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return np.asarray(shapely.transform(geometry, project))


def voronoi_coverage(*, cells: pd.DataFrame, country: shapely.Geometry) -> pd.DataFrame:
    """Voronoi footprint of each cell's site, clipped to `country` (WGS84 in, metres out).

    Args:
        cells: cell_id, latitude, longitude (one row per cell; versions already resolved).
        country: The country outline in WGS84.

    Returns:
        cell_id, site (point) and geometry (footprint), in EPSG:3812; a cell whose site lies
        outside the country gets an empty footprint.
    """
    x, y = _TO_METRIC.transform(cells["longitude"].to_numpy(), cells["latitude"].to_numpy())
    positions = pd.DataFrame({"x": np.round(x, 1), "y": np.round(y, 1)})
    sites = positions.drop_duplicates().reset_index(drop=True)
    site_points = shapely.points(sites["x"].to_numpy(), sites["y"].to_numpy())
    outline = to_metric(np.array([country]))[0]
    envelope = shapely.box(*shapely.buffer(outline, 50_000).bounds)
    polygons = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(site_points), extend_to=envelope)
    )
    # voronoi_polygons does not keep input order: match each polygon to the site inside it.
    site_of, polygon_of = shapely.STRtree(polygons).query(site_points, predicate="intersects")
    footprint = pd.Series(polygons[polygon_of], index=site_of).groupby(level=0).first()
    clipped = shapely.intersection(footprint.sort_index().to_numpy(), outline)
    site_index = positions.merge(sites.reset_index(), on=["x", "y"], how="left")["index"]
    return pd.DataFrame(
        {
            "cell_id": cells["cell_id"].to_numpy(),
            "site": shapely.points(x, y),
            "geometry": clipped[site_index.to_numpy()],
        }
    )
