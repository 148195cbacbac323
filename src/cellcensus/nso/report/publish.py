"""One call to the finished release: figures, metrics, output files and the HTML report.

`publish_report` turns a comparison table (one estimator) into the report;
`publish_release` turns a whole `EstimationResult` into the statistical release.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from cellcensus.errors import CellcensusError
from cellcensus.nso.dissemination import (
    OutputFiles,
    as_counts,
    write_commuting_sdmx,
    write_migration_sdmx,
    write_outputs,
    write_present_population_sdmx,
)
from cellcensus.nso.migration import Migration
from cellcensus.nso.migration_releases import MIGRATION, migration_tables
from cellcensus.nso.mobility import Commuting, PresentPopulation, mobility_metrics
from cellcensus.nso.production import EstimationResult, json_ready
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
from cellcensus.nso.report.html import ReportContext, write_report
from cellcensus.nso.report.migration import migration_section
from cellcensus.nso.report.mobility import (
    commuting_section,
    draw_mobility_figures,
    present_population_section,
)
from cellcensus.nso.report.tourism import tourism_section
from cellcensus.nso.tourism import ALGORITHM as TOURISM
from cellcensus.nso.tourism import Tourism
from cellcensus.nso.validation import Agreement, agreement, compare_with_census
from cellcensus.reference import belgium

ESTIMATES_CSV = "estimates.csv"
METRICS_JSON = "metrics.json"
PRESENT_POPULATION_STEM = "present_population"
COMMUTING_STEM = "commuting_flows"
TOURISM_STEM = "inbound_tourism"
MIGRATION_STEM = "migration"

ESTIMATES_COLUMNS: tuple[str, ...] = (
    "area_code",
    "area_name",
    "released_devices",
    "estimate",
    "ci_lower",
    "ci_upper",
    "census_2011",
)
"""Columns of ``estimates.csv``, in order: the contract of the demo's output."""


@dataclass(frozen=True)
class PublishedRelease:
    """What `publish_release` wrote.

    Attributes:
        report: ``report.html``.
        metrics: ``metrics.json``.
        estimates: ``estimates.csv`` (default estimator beside the census, with intervals).
        outputs: The official table in every format, all estimators, their comparison.
        mobility: ``present_population`` and ``commuting_flows`` as CSV, Parquet and
            SDMX-CSV, and ``present_population_weekday`` (the weekday means) as CSV and
            Parquet, when written.
    """

    report: Path
    metrics: Path
    estimates: Path
    outputs: OutputFiles
    mobility: tuple[Path, ...] = ()


def publish_release(
    *,
    out_dir: Path,
    result: EstimationResult,
    context: ReportContext,
    areas: pd.DataFrame | None = None,
    census: pd.DataFrame | None = None,
    present: PresentPopulation | None = None,
    commuting: Commuting | None = None,
    tourism: Tourism | None = None,
    migration: Migration | None = None,
) -> PublishedRelease:
    """Write the whole statistical release of an estimation into `out_dir`.

    Draws the maps, scatter and error map of the default estimator, the estimator comparison
    and the interval chart; writes ``metrics.json``, ``estimates.csv``, the official table
    as CSV, Parquet, GeoJSON and SDMX-CSV, and ``report.html``. With `present` and
    `commuting`, also their figures, sections, ``metrics.json`` blocks and tables. A release
    is dated: without ``context.generated_at`` the report is dated now (UTC), which also
    gives its timeliness row the processing time since the holder's release.

    Args:
        out_dir: Folder to write into (created).
        result: Output of `cellcensus.nso.production.estimate_all`.
        context: How the numbers were made (for the report).
        areas: Municipalities with ``area_km2``, ``geometry`` and parent codes (default:
            Belgian municipalities 2011).
        census: Census with ``area_code``, ``population`` and names (default: Belgian
            census 2011).
        present: Present population by hour (`cellcensus.nso.mobility`), or None.
        commuting: Home-work flows between arrondissements, or None.
        tourism: Foreign visitors' nights and arrivals, or None.
        migration: Internal migration between two periods, or None.

    Returns:
        The paths written.
    """
    if context.generated_at is None:
        context = replace(context, generated_at=datetime.now(UTC).replace(microsecond=0))
    area_table = areas if areas is not None else belgium.municipalities()
    census_table = census if census is not None else belgium.census_population()
    best = result.best.table.reset_index()
    comparison = compare_with_census(expanded=best, census=census_table)
    comparison = comparison.merge(
        best[["area_code", "std_error", "ci_lower", "ci_upper"]], on="area_code", how="left"
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = out_dir / METRICS_JSON
    metrics = {
        **result.metrics_json(),
        **json_ready(mobility_metrics(present=present, commuting=commuting)),
        **({} if tourism is None else {TOURISM: json_ready(tourism.metrics())}),
        **({} if migration is None else {MIGRATION: json_ready(migration.metrics())}),
    }
    metrics_path.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    note = f"Census 2011 and municipality boundaries. {context.citation}."
    draw_mobility_figures(
        out_dir=out_dir, areas=area_table, present=present, commuting=commuting, note=note
    )
    sections = []
    if present is not None:
        sections.append(present_population_section(present=present, out_dir=out_dir))
    if commuting is not None:
        sections.append(commuting_section(commuting=commuting, out_dir=out_dir))
    if tourism is not None:
        sections.append(tourism_section(tourism))
    if migration is not None:
        sections.append(migration_section(migration))
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
        extra_sections=sections,
    )
    return PublishedRelease(
        report=report,
        metrics=metrics_path,
        estimates=out_dir / ESTIMATES_CSV,
        outputs=write_outputs(result=result, out_dir=out_dir, areas=area_table),
        mobility=_write_mobility(
            out_dir=out_dir,
            present=present,
            commuting=commuting,
            tourism=tourism,
            migration=migration,
        ),
    )


def estimates_table(comparison: pd.DataFrame) -> pd.DataFrame:
    """The content of ``estimates.csv``: `ESTIMATES_COLUMNS`, one row per area.

    Args:
        comparison: `cellcensus.nso.validation.compare_with_census` output, with
            ``ci_lower`` and ``ci_upper`` when the estimates have intervals.

    Returns:
        Released devices as nullable integers and estimates and interval bounds rounded to
        persons (all missing where suppressed or unknown), census as integers.
    """
    table = comparison.reset_index(drop=True)
    missing = pd.Series(float("nan"), index=table.index)
    frame = pd.DataFrame(
        {
            "area_code": table["area_code"].astype(str),
            "area_name": table["name"],
            "released_devices": as_counts(table["released_devices"]),
            "estimate": table["estimate"].astype("float64").round(0),
            "ci_lower": table.get("ci_lower", missing).astype("float64").round(0),
            "ci_upper": table.get("ci_upper", missing).astype("float64").round(0),
            "census_2011": table["census"].round(0).astype("Int64"),
        }
    )
    return frame[list(ESTIMATES_COLUMNS)]


PERSONS_COLUMNS = ("expanded", "estimate", "std_error", "ci_lower", "ci_upper")
"""Columns in persons, written rounded to persons (``expanded``: the flows' only)."""


def _write_mobility(
    *,
    out_dir: Path,
    present: PresentPopulation | None,
    commuting: Commuting | None,
    tourism: Tourism | None = None,
    migration: Migration | None = None,
) -> tuple[Path, ...]:
    """Each mobility table as CSV, Parquet and SDMX-CSV (tourism: CSV and Parquet), in persons.

    The migration's per-area table has the SDMX-CSV; its pairs are CSV and Parquet.

    The flows' SDMX-CSV needs their period: without it only CSV and Parquet.
    """
    written = []
    if present is not None:
        table = present.long.sort_values(["local_date", "slot", "area_code"])
        table = _in_persons(table.assign(devices=as_counts(table["devices"])))
        written += _write_table(table, out_dir / PRESENT_POPULATION_STEM)
        sdmx = out_dir / f"{PRESENT_POPULATION_STEM}.sdmx.csv"
        written.append(write_present_population_sdmx(present=present, out=sdmx))
        weekday = out_dir / f"{PRESENT_POPULATION_STEM}_weekday"
        written += _write_table(_in_persons(present.weekday_table), weekday)
    if commuting is not None:
        flows = commuting.flows
        flows = flows.assign(devices=as_counts(flows["devices"]), census=as_counts(flows["census"]))
        written += _write_table(_in_persons(flows), out_dir / COMMUTING_STEM)
        if commuting.period is not None:
            sdmx = out_dir / f"{COMMUTING_STEM}.sdmx.csv"
            written.append(write_commuting_sdmx(commuting=commuting, out=sdmx))
    if tourism is not None:
        table = tourism.table.assign(
            devices=as_counts(tourism.table["devices"]), truth=tourism.table["truth"].round(0)
        )
        written += _write_table(_in_persons(table), out_dir / TOURISM_STEM)
    if migration is not None:
        areas, pairs = migration_tables(migration)
        written += _write_table(areas, out_dir / MIGRATION_STEM)
        sdmx = out_dir / f"{MIGRATION_STEM}.sdmx.csv"
        written.append(write_migration_sdmx(migration=migration, out=sdmx))
        written += _write_table(pairs, out_dir / f"{MIGRATION_STEM}_pairs")
    return tuple(written)


def _write_table(table: pd.DataFrame, stem: Path) -> list[Path]:
    """`table` as ``stem.csv`` and ``stem.parquet``."""
    csv_path, parquet_path = stem.with_suffix(".csv"), stem.with_suffix(".parquet")
    table.to_csv(csv_path, index=False)
    table.to_parquet(parquet_path, index=False)
    return [csv_path, parquet_path]


def _in_persons(table: pd.DataFrame) -> pd.DataFrame:
    """`table` with its `PERSONS_COLUMNS` rounded to persons."""
    return table.assign(**{name: table[name].round(0) for name in PERSONS_COLUMNS if name in table})


def publish_report(
    *,
    out_dir: Path,
    areas: pd.DataFrame,
    comparison: pd.DataFrame,
    context: ReportContext,
    estimation: EstimationResult | None = None,
    extra_sections: Sequence[str] = (),
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
        extra_sections: Further HTML sections of the report (present population, commuting).

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
    estimates_table(comparison).to_csv(out_dir / ESTIMATES_CSV, index=False)
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
        estimation=estimation,
        extra_sections=extra_sections,
        area_km2=area_km2,
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
