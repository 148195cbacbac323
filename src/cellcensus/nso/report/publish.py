"""One call to the finished release: figures, metrics, output files and the HTML report.

`publish_report` turns a comparison table (one estimator) into the report;
`publish_release` turns a whole `EstimationResult` into the statistical release.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cellcensus.errors import CellcensusError
from cellcensus.nso.dissemination import OutputFiles, write_outputs
from cellcensus.nso.production import EstimationResult
from cellcensus.nso.report.figures import (
    ERROR_MAP_PNG,
    ESTIMATORS_PNG,
    INTERVALS_PNG,
    MAPS_PNG,
    SCATTER_PNG,
    estimator_chart,
    interval_chart,
    relative_error_map,
    scatter_log,
    side_by_side_maps,
)
from cellcensus.nso.report.html import ReportContext, standard_figures, write_report
from cellcensus.nso.validation import Agreement, agreement, compare_with_census
from cellcensus.reference import belgium

ESTIMATES_CSV = "estimates.csv"
METRICS_JSON = "metrics.json"


@dataclass(frozen=True)
class PublishedRelease:
    """What `publish_release` wrote.

    Attributes:
        report: ``report.html``.
        metrics: ``metrics.json``.
        estimates: ``estimates.csv`` (default estimator beside the census, with intervals).
        outputs: The official table in every format, all estimators, their comparison.
    """

    report: Path
    metrics: Path
    estimates: Path
    outputs: OutputFiles


def publish_release(
    *,
    out_dir: Path,
    result: EstimationResult,
    context: ReportContext,
    areas: pd.DataFrame | None = None,
    census: pd.DataFrame | None = None,
) -> PublishedRelease:
    """Write the whole statistical release of an estimation into `out_dir`.

    Draws the maps, scatter and error map of the default estimator, the estimator comparison
    and the interval chart; writes ``metrics.json``, ``estimates.csv``, the official table
    as CSV, Parquet, GeoJSON and SDMX-CSV, and ``report.html``.

    Args:
        out_dir: Folder to write into (created).
        result: Output of `cellcensus.nso.production.estimate_all`.
        context: How the numbers were made (for the report).
        areas: Municipalities with ``area_km2``, ``geometry`` and parent codes (default:
            Belgian municipalities 2011).
        census: Census with ``area_code``, ``population`` and names (default: Belgian
            census 2011).

    Returns:
        The paths written.
    """
    area_table = areas if areas is not None else belgium.municipalities()
    census_table = census if census is not None else belgium.census_population()
    best = result.best.table.reset_index()
    comparison = compare_with_census(expanded=best, census=census_table)
    comparison = comparison.merge(
        best[["area_code", "std_error", "ci_lower", "ci_upper"]], on="area_code", how="left"
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = out_dir / METRICS_JSON
    metrics_path.write_text(json.dumps(result.metrics_json(), indent=2, sort_keys=True) + "\n")
    note = f"Census 2011 and municipality boundaries. {context.citation}."
    estimator_chart(
        comparison=result.comparison(),
        out=out_dir / ESTIMATORS_PNG,
        default=result.default,
        note=note,
    )
    interval_chart(
        table=comparison, out=out_dir / INTERVALS_PNG, level=result.options.level, note=note
    )
    report = publish_report(
        out_dir=out_dir,
        areas=area_table,
        comparison=comparison,
        context=context,
        estimation=result,
    )
    return PublishedRelease(
        report=report,
        metrics=metrics_path,
        estimates=out_dir / ESTIMATES_CSV,
        outputs=write_outputs(result=result, out_dir=out_dir, areas=area_table),
    )


def publish_report(
    *,
    out_dir: Path,
    areas: pd.DataFrame,
    comparison: pd.DataFrame,
    context: ReportContext,
    estimation: EstimationResult | None = None,
) -> Path:
    """Draw the figures, measure agreement and write the report into `out_dir`.

    Args:
        out_dir: Directory for the PNGs, ``estimates.csv`` and ``report.html``.
        areas: ``area_code``, ``area_km2``, ``geometry`` (WGS84) and optionally
            ``arrondissement`` and ``region``, as `cellcensus.reference.belgium.municipalities`
            returns.
        comparison: Output of `cellcensus.nso.validation.compare_with_census`.
        context: How the numbers were made.
        estimation: The estimation behind `comparison`, for the full statistical release
            (see `cellcensus.nso.report.html.write_report`).

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
        estimation=estimation,
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
