"""Allocation of cells to areas: each cell's share of each area, by footprint overlap."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from cellcensus.holder.geo.coverage import to_metric, voronoi_coverage
from cellcensus.holder.store import Store
from cellcensus.reference import country_outline

ALLOCATION_COLUMNS = ("cell_id", "area_code", "weight", "overlap_km2")


def allocate(*, coverage: pd.DataFrame, areas: pd.DataFrame) -> pd.DataFrame:
    """Weights of each cell over areas, proportional to the overlap of footprint and area.

    Args:
        coverage: cell_id, site, geometry in the metric CRS (from a coverage model).
        areas: area_code, geometry in WGS84 (e.g. `reference.municipalities()`).

    Returns:
        cell_id, area_code, weight (sums to 1 per cell), overlap_km2. A cell whose footprint
        misses every area goes whole (weight 1, overlap 0) to the area nearest to it.
    """
    footprints = coverage["geometry"].to_numpy()
    area_shapes = to_metric(areas["geometry"].to_numpy())
    cell_at, area_at = shapely.STRtree(area_shapes).query(footprints, predicate="intersects")
    overlap = shapely.area(shapely.intersection(footprints[cell_at], area_shapes[area_at]))
    pairs = pd.DataFrame(
        {
            "cell_id": coverage["cell_id"].to_numpy()[cell_at],
            "area_code": areas["area_code"].to_numpy()[area_at],
            "overlap_km2": overlap / 1e6,
        }
    )
    pairs = pairs[pairs["overlap_km2"] > 0]
    pairs = pd.concat([pairs, _nearest_for_orphans(coverage, areas, area_shapes, pairs)])
    total = pairs.groupby("cell_id")["overlap_km2"].transform("sum")
    pairs["weight"] = np.where(total > 0, pairs["overlap_km2"] / total.where(total > 0, 1), 1.0)
    ordered = pairs.sort_values(["cell_id", "area_code"]).reset_index(drop=True)
    return ordered[list(ALLOCATION_COLUMNS)]


def _nearest_for_orphans(
    coverage: pd.DataFrame, areas: pd.DataFrame, area_shapes: np.ndarray, pairs: pd.DataFrame
) -> pd.DataFrame:
    orphans = coverage[~coverage["cell_id"].isin(pairs["cell_id"])]
    if orphans.empty:
        return pairs.iloc[0:0]
    nearest = shapely.STRtree(area_shapes).nearest(orphans["site"].to_numpy())
    return pd.DataFrame(
        {
            "cell_id": orphans["cell_id"].to_numpy(),
            "area_code": areas["area_code"].to_numpy()[nearest],
            "overlap_km2": 0.0,
        }
    )


def build_allocation(
    *, store: Store | Path, areas: pd.DataFrame, level: str = "municipality"
) -> Path:
    """Compute the Voronoi allocation of the store's cells to `areas` and save it in the store."""
    store = store if isinstance(store, Store) else Store(store)
    cells = pd.read_parquet(store.cells_path, columns=["cell_id", "latitude", "longitude"])
    cells = cells.drop_duplicates("cell_id", keep="last").reset_index(drop=True)
    coverage = voronoi_coverage(cells=cells, country=country_outline())
    allocation = allocate(coverage=coverage, areas=areas)
    path = store.allocation_path(level)
    path.parent.mkdir(parents=True, exist_ok=True)
    allocation.to_parquet(path, index=False)
    return path
