"""Geography inside the holder: cell coverage and the allocation of cells to areas."""

from cellcensus.holder.geo.allocation import (
    ALLOCATION_COLUMNS,
    allocate,
    build_allocation,
    country_of,
    footprint_allocation,
)
from cellcensus.holder.geo.coverage import current_cells, voronoi_coverage
from cellcensus.holder.geo.projection import METRIC_CRS, to_metric, to_wgs84

__all__ = [
    "ALLOCATION_COLUMNS",
    "METRIC_CRS",
    "allocate",
    "build_allocation",
    "country_of",
    "footprint_allocation",
    "current_cells",
    "to_metric",
    "to_wgs84",
    "voronoi_coverage",
]
