"""Geography inside the holder: cell coverage and the allocation of cells to areas."""

from cellcensus.holder.geo.allocation import ALLOCATION_COLUMNS, allocate, build_allocation
from cellcensus.holder.geo.coverage import METRIC_CRS, to_metric, voronoi_coverage

__all__ = [
    "ALLOCATION_COLUMNS",
    "METRIC_CRS",
    "allocate",
    "build_allocation",
    "to_metric",
    "voronoi_coverage",
]
