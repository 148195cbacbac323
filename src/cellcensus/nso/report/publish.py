"""One call from a comparison table to the finished report: figures, metrics, HTML, CSV."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cellcensus.errors import CellcensusError
from cellcensus.nso.report.figures import (
    ERROR_MAP_PNG,
    MAPS_PNG,
    SCATTER_PNG,
    relative_error_map,
    scatter_log,
    side_by_side_maps,
)
from cellcensus.nso.report.html import ReportContext, standard_figures, write_report
from cellcensus.nso.validation import Agreement, agreement

ESTIMATES_CSV = "estimates.csv"


def publish_report(
    *, out_dir: Path, areas: pd.DataFrame, comparison: pd.DataFrame, context: ReportContext
) -> Path:
    """Draw the figures, measure agreement and write the report into `out_dir`.

    Args:
        out_dir: Directory for the PNGs, ``estimates.csv`` and ``report.html``.
        areas: ``area_code``, ``area_km2``, ``geometry`` (WGS84) and optionally
            ``arrondissement`` and ``region``, as `cellcensus.reference.belgium.municipalities`
            returns.
        comparison: Output of `cellcensus.nso.validation.compare_with_census`.
        context: How the numbers were made.

    Returns:
        The path of ``report.html``.
    """
    if "area_km2" not in areas.columns:
        raise CellcensusError("areas table lacks column 'area_km2' (needed for densities)")
    keyed = comparison.set_index(comparison["area_code"].astype(str))
    estimate, census = keyed["estimate"].astype("float64"), keyed["census"].astype("float64")
    area_km2 = areas.set_index(areas["area_code"].astype(str))["area_km2"].astype("float64")
    metrics = {"Municipalities": agreement(estimate=estimate, reference=census)}
    if "arrondissement" in areas.columns:
        metrics["Arrondissements"] = _by_group(
            estimate=estimate,
            census=census,
            group=areas.set_index(areas["area_code"].astype(str))["arrondissement"].astype(str),
        )
    note = f"Census 2011 and municipality boundaries. {context.citation}."
    out_dir.mkdir(parents=True, exist_ok=True)
    comparison.to_csv(out_dir / ESTIMATES_CSV, index=False)
    side_by_side_maps(
        areas=areas,
        estimate_density=estimate / area_km2,
        census_density=census / area_km2,
        out=out_dir / MAPS_PNG,
        note=note,
    )
    scatter_log(
        estimate=estimate,
        census=census,
        out=out_dir / SCATTER_PNG,
        metrics=metrics["Municipalities"],
        note=note,
    )
    relative_error_map(
        areas=areas, estimate=estimate, census=census, out=out_dir / ERROR_MAP_PNG, note=note
    )
    return write_report(
        out_dir=out_dir,
        metrics=metrics,
        estimates=comparison,
        context=context,
        figures=standard_figures(out_dir),
    )


def _by_group(*, estimate: pd.Series, census: pd.Series, group: pd.Series) -> Agreement:
    """Agreement of group totals, each side summed over the group's released areas only."""
    released = estimate.notna()
    frame = pd.DataFrame(
        {
            "group": group.reindex(census.index),
            "estimate": estimate.where(released),
            "census": census.where(released),
            "any": released,
        }
    )
    totals = frame.groupby("group").agg(
        estimate=("estimate", "sum"), census=("census", "sum"), any=("any", "any")
    )
    whole = census.groupby(frame["group"]).sum()
    return agreement(
        estimate=totals["estimate"].where(totals["any"]),
        reference=totals["census"].where(totals["any"], whole),
    )
