"""From counts per cell to counts per area: the two spatial estimators of the catalogue.

`allocation`: each cell's devices are shared among areas by the share of the cell's footprint
in each area. It assumes devices are spread evenly over a cell's footprint, which fails where a
cell straddles a dense town and its sparse neighbour: the town loses devices to the neighbour.

`bayesian`: the iterative estimator of Ricciato & Coluccia (2020) with areas as tiles. A device
in area j is served by cell i with probability P(i | j) = |footprint_i ∩ j| / |j| (even spread
*within an area*, not within a cell). The Poisson maximum-likelihood densities are found by the
expectation-maximisation update

    u_j <- u_j * sum_i P(i | j) n_i / sum_l P(i | l) u_l

started from the allocation estimate. It keeps the total (sum_j u_j = sum_i n_i) and uses only
the released network's geometry and the counts themselves: no census or other prior.

Reference: F. Ricciato, A. Coluccia, "On the estimation of spatial density from mobile network
operator data", IEEE Transactions on Mobile Computing (2023), arXiv:2009.05410.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

SpatialEstimator = Literal["allocation", "bayesian", "posterior"]


def allocation_counts(*, cell_counts: pd.DataFrame, allocation: pd.DataFrame) -> pd.DataFrame:
    """Share each cell's device_count among areas by its allocation weights."""
    joined = cell_counts.merge(allocation[["cell_id", "area_code", "weight"]], on="cell_id")
    joined["device_count"] = joined["device_count"] * joined["weight"]
    return _per_area(joined)


def bayesian_counts(
    *,
    cell_counts: pd.DataFrame,
    allocation: pd.DataFrame,
    max_iterations: int = 200,
    tolerance: float = 1e-6,
) -> pd.DataFrame:
    """Maximum-likelihood device counts per area from counts per cell (see module docstring).

    Args:
        cell_counts: cell_id, device_count.
        allocation: cell_id, area_code, weight, overlap_km2 (footprint ∩ area).
        max_iterations: Upper bound on EM updates.
        tolerance: Stop when no area's count moves by more than this fraction of a device.

    Returns:
        area_code, device_count for every area with any footprint.
    """
    cell_counts, pairs = _by_footprint(cell_counts, allocation[allocation["overlap_km2"] > 0])
    areas, area_index = np.unique(pairs["area_code"].to_numpy(), return_inverse=True)
    cells, cell_index = np.unique(pairs["cell_id"].to_numpy(), return_inverse=True)
    overlap = pairs["overlap_km2"].to_numpy(dtype="float64")
    serving = overlap / np.bincount(area_index, weights=overlap)[area_index]  # P(i | j)
    observed = (
        cell_counts.set_index("cell_id")["device_count"].reindex(cells, fill_value=0.0)
    ).to_numpy(dtype="float64")
    start = allocation_counts(cell_counts=cell_counts, allocation=pairs)
    density = start.set_index("area_code")["device_count"].reindex(areas, fill_value=0.0)
    u = density.to_numpy(dtype="float64")
    for _ in range(max_iterations):
        expected = np.bincount(cell_index, weights=serving * u[area_index], minlength=len(cells))
        ratio = np.divide(
            observed[cell_index],
            expected[cell_index],
            out=np.zeros_like(serving),
            where=expected[cell_index] > 0,
        )
        updated = u * np.bincount(area_index, weights=serving * ratio, minlength=len(areas))
        converged = np.max(np.abs(updated - u)) < tolerance
        u = updated
        if converged:
            break
    return pd.DataFrame({"area_code": areas, "device_count": u})


def _by_footprint(
    cell_counts: pd.DataFrame, pairs: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Counts and footprints with the cells of one footprint merged (under its first cell).

    Cells of one sector (2G, 3G, ...) share a footprint: in P(i | j) they are one emitter,
    whose devices split among technologies by handset, not by place.
    """
    ordered = pairs.sort_values(["cell_id", "area_code"], kind="stable")
    part = ordered["area_code"].astype(str) + ":" + ordered["overlap_km2"].round(9).astype(str)
    signature = part.groupby(ordered["cell_id"]).agg("|".join)
    owner = (
        pd.Series(signature.index.to_numpy(), index=signature.to_numpy())
        .groupby(level=0)
        .transform("min")
    )
    owner.index = signature.index
    merged = cell_counts.assign(
        cell_id=cell_counts["cell_id"].map(owner).fillna(cell_counts["cell_id"])
    )
    counts = merged.groupby("cell_id", as_index=False).agg(device_count=("device_count", "sum"))
    return counts, pairs[pairs["cell_id"].isin(set(owner.to_numpy()))]


def _per_area(joined: pd.DataFrame) -> pd.DataFrame:
    grouped = joined.groupby("area_code")["device_count"].sum()
    return grouped.sort_index().reset_index()
