"""Geography inside the holder: cell coverage and the allocation of cells to areas."""

from cellcensus.holder.geo.allocation import (
    ALLOCATION_COLUMNS,
    DEFAULT_COVERAGE,
    GRID_LEVEL,
    VERSIONED_COLUMNS,
    AllocationPrior,
    CoverageModel,
    allocate,
    build_allocation,
    check_coverage,
    country_of,
    default_prior,
    footprint_allocation,
    read_areas,
    roll_up_allocation,
    versioned_allocation,
)
from cellcensus.holder.geo.coverage import (
    NetworkState,
    current_cells,
    network_states,
    voronoi_coverage,
)
from cellcensus.holder.geo.projection import METRIC_CRS, to_metric, to_wgs84

__all__ = [
    "ALLOCATION_COLUMNS",
    "DEFAULT_COVERAGE",
    "GRID_LEVEL",
    "METRIC_CRS",
    "VERSIONED_COLUMNS",
    "AllocationPrior",
    "CoverageModel",
    "NetworkState",
    "allocate",
    "build_allocation",
    "check_coverage",
    "country_of",
    "current_cells",
    "default_prior",
    "footprint_allocation",
    "network_states",
    "read_areas",
    "roll_up_allocation",
    "to_metric",
    "to_wgs84",
    "versioned_allocation",
    "voronoi_coverage",
]
