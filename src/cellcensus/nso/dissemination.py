"""Output files in the formats statisticians use: CSV, Parquet, GeoJSON and SDMX-CSV.

The official table holds the default estimator's figures with codes, names and parent codes
of each area, the standard error and interval, and a status (``estimated`` or
``suppressed``). Suppressed areas stay in every file with an empty value, so that a reader
sees they exist and why they have no figure.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely

from cellcensus.errors import CellcensusError
from cellcensus.nso.migration import Migration
from cellcensus.nso.mobility import Commuting, PresentPopulation, local_hour
from cellcensus.nso.production import EstimationResult
from cellcensus.nso.uncertainty import CI95
from cellcensus.reference import belgium
from cellcensus.release import published_period

OFFICIAL_STEM = "usual_residents"
"""File name stem of the official table (``usual_residents.csv``, ``.parquet``, ...)."""

SDMX_DATAFLOW = "CELLCENSUS:DF_POP_MNO(1.0.0)"
"""SDMX dataflow id (AGENCY:ID(VERSION)) written in the STRUCTURE_ID column."""

SDMX_COMMUTING_DATAFLOW = "CELLCENSUS:DF_COMMUTING_MNO(1.0.0)"
"""SDMX dataflow of the home-work flows: their COUNTERPART_AREA dimension makes a structure
of its own (a dataflow has one data structure, so one set of dimensions)."""

SDMX_INDICATOR = "POP_USUAL_RES"
"""Code of the indicator: usual resident population."""

SDMX_PRESENT = "POP_PRESENT"
"""Code of the indicator: persons present in an area during an hour."""

SDMX_COMMUTERS = "COMMUTERS"
"""Code of the indicator: workers living in one area and working in another (or the same)."""

SDMX_MIGRATION = {
    "stayers": "MIGR_STAYERS",
    "out_migrants": "MIGR_OUT",
    "in_migrants": "MIGR_IN",
    "net_migration": "MIGR_NET",
}
"""Codes of the internal migration indicators in persons, by `Migration.areas` measure."""

_COORDINATE_DECIMALS = 6
"""Decimals of GeoJSON coordinates (about 0.1 m)."""


@dataclass(frozen=True)
class OutputFiles:
    """The files `write_outputs` wrote.

    Attributes:
        csv: The official table as CSV (UTF-8, comma separated, point decimals).
        parquet: The same as Parquet.
        geojson: The same as GeoJSON features with the area boundaries (WGS84).
        sdmx_csv: The same as SDMX-CSV 2.0 observations.
        all_estimators: Every estimator's estimates in long form (CSV).
        comparison: Estimators side by side (CSV).
    """

    csv: Path
    parquet: Path
    geojson: Path
    sdmx_csv: Path
    all_estimators: Path
    comparison: Path


def official_table(*, result: EstimationResult, areas: pd.DataFrame | None = None) -> pd.DataFrame:
    """The default estimator's estimates with the codes and names of the areas.

    Args:
        result: Output of `cellcensus.nso.production.estimate_all`.
        areas: ``area_code`` and optionally ``name_nl``, ``name_fr``, ``name``,
            ``arrondissement``, ``province``, ``region`` (default: Belgian municipalities).

    Returns:
        One row per area: ``area_code``, the names and parent codes present, ``estimate``
        (persons, rounded to units), ``std_error``, ``ci_lower``, ``ci_upper`` (rounded),
        ``ci_level`` (the intervals' confidence level), ``released_devices`` (``Int64``,
        missing where suppressed), ``status`` and ``estimator``.
    """
    frame = areas if areas is not None else belgium.municipalities()
    keep = [
        c
        for c in ("area_code", "name", "name_nl", "name_fr", "arrondissement", "province", "region")
        if c in frame.columns
    ]
    described = frame[keep].assign(area_code=frame["area_code"].astype(str))
    best = result.best.table.reset_index()
    rounded = best[["estimate", "std_error", "ci_lower", "ci_upper"]].round(0)
    devices = as_counts(best["released_devices"])
    table = described.merge(
        pd.concat([best[["area_code"]], devices, rounded], axis=1),
        on="area_code",
        how="outer",
    )
    table["status"] = np.where(table["estimate"].notna(), "estimated", "suppressed")
    table["estimator"] = result.default
    table["ci_level"] = result.options.level  # a file read alone says what its bounds are
    ordered = [
        *keep,
        "estimate",
        "std_error",
        "ci_lower",
        "ci_upper",
        "ci_level",
        "released_devices",
        "status",
        "estimator",
    ]
    return table[ordered].sort_values("area_code").reset_index(drop=True)


def as_counts(values: pd.Series) -> pd.Series:
    """Counts (released devices, census persons) as nullable integers, missing where unknown.

    Releases carry whole counts (``Int64``, missing where suppressed); the estimators compute
    with floats, which would write ``25.0`` and a double column.
    """
    return values.astype("float64").round(0).astype("Int64")


def write_geojson(*, table: pd.DataFrame, areas: pd.DataFrame, out: Path) -> Path:
    """Write `table` as GeoJSON features with the boundaries of `areas`.

    Args:
        table: One row per area with ``area_code``; its columns become properties (NaN
            becomes null).
        areas: ``area_code`` and ``geometry`` (shapely, WGS84).
        out: File to write.

    Returns:
        `out`.

    Raises:
        CellcensusError: If `areas` lacks a column or a row of `table` has no geometry.
    """
    if not {"area_code", "geometry"} <= set(areas.columns):
        raise CellcensusError("areas table needs 'area_code' and 'geometry' for GeoJSON")
    shapes = areas.set_index(areas["area_code"].astype(str))["geometry"]
    missing = sorted(set(table["area_code"].astype(str)) - set(shapes.index))
    if missing:
        raise CellcensusError(f"no boundary for area_code {missing[:5]}")
    rounded = shapely.transform(
        shapes.to_numpy(), lambda coords: np.round(coords, _COORDINATE_DECIMALS)
    )
    rounded = shapely.orient_polygons(rounded)  # RFC 7946: exteriors counter-clockwise
    geometry = dict(zip(shapes.index, shapely.to_geojson(rounded), strict=True))
    features = ",\n".join(
        '{"type": "Feature", "properties": '
        + json.dumps({key: _plain(value) for key, value in row.items()}, ensure_ascii=False)
        + ', "geometry": '
        + geometry[str(row["area_code"])]
        + "}"
        for row in table.to_dict(orient="records")
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        '{"type": "FeatureCollection", "features": [\n' + features + "\n]}\n", encoding="utf-8"
    )
    return out


def write_sdmx_csv(
    *,
    table: pd.DataFrame,
    out: Path,
    period_start: date | str,
    period_end: date | str,
    dataflow: str = SDMX_DATAFLOW,
    indicator: str = SDMX_INDICATOR,
) -> Path:
    """Write `table` as SDMX-CSV 2.0 observations (one row per area).

    Columns: ``STRUCTURE`` (``dataflow``), ``STRUCTURE_ID`` (`dataflow`), ``ACTION``
    (``I``, information), the dimensions ``REF_AREA``, ``INDICATOR`` and ``TIME_PERIOD`` (an
    ISO 8601 interval such as ``2011-03-01/P28D``), ``OBS_VALUE`` (persons, empty when
    suppressed), the attributes ``UNIT_MEASURE`` (``PS``: persons), ``UNIT_MULT`` (0),
    ``OBS_STATUS`` (``E``: estimated value) and ``CONF_STATUS`` (``F`` free, ``C``
    confidential), and the custom columns ``STD_ERROR``, ``CI_LOWER``, ``CI_UPPER``,
    ``CI_LEVEL`` (the intervals' confidence level) and ``ESTIMATOR``.

    Args:
        table: `official_table` output.
        out: File to write.
        period_start: First day of the observation period.
        period_end: Last day (inclusive).
        dataflow: Dataflow identification ``AGENCY:ID(VERSION)``.
        indicator: Indicator code.

    Returns:
        `out`.
    """
    period = _period(period_start, period_end)
    rows = [
        {
            **_observation(
                row,
                dataflow=dataflow,
                dimensions={
                    "REF_AREA": row["area_code"],
                    "INDICATOR": indicator,
                    "TIME_PERIOD": period,
                },
            ),
            "ESTIMATOR": row.get("estimator", ""),
        }
        for row in table.to_dict(orient="records")
    ]
    return _write_observations(rows, out)


def write_present_population_sdmx(
    *, present: PresentPopulation, out: Path, dataflow: str = SDMX_DATAFLOW
) -> Path:
    """Write the present population as SDMX-CSV 2.0 observations, one per area and hour.

    As `write_sdmx_csv`, with indicator `SDMX_PRESENT` and ``TIME_PERIOD`` the hour as an
    ISO 8601 interval (``2011-03-08T03:00:00+01:00/PT1H``; local time without an offset
    when the release does not publish its time zone). The hour the clocks repeat lasts two
    hours from its first occurrence (``2011-10-30T02:00:00+02:00/PT2H``).

    Raises:
        CellcensusError: If an hour of the table does not exist in the time zone.
    """
    zone = present.timezone or None
    rows = [
        _observation(
            row,
            dataflow=dataflow,
            dimensions={
                "REF_AREA": row["area_code"],
                "INDICATOR": SDMX_PRESENT,
                "TIME_PERIOD": _hour(str(row["local_date"]), int(row["slot"]), zone),
            },
        )
        for row in present.long.sort_values(["local_date", "slot", "area_code"]).to_dict(
            orient="records"
        )
    ]
    return _write_observations(rows, out)


def write_commuting_sdmx(
    *, commuting: Commuting, out: Path, dataflow: str = SDMX_COMMUTING_DATAFLOW
) -> Path:
    """Write the home-work flows as SDMX-CSV 2.0 observations, one per pair of areas.

    As `write_sdmx_csv`, with indicator `SDMX_COMMUTERS`, ``REF_AREA`` the home area and
    ``COUNTERPART_AREA`` the work area, over the release's period, in the dataflow
    `SDMX_COMMUTING_DATAFLOW` (the other tables have no COUNTERPART_AREA).

    Raises:
        CellcensusError: If the flows' period is not known.
    """
    if commuting.period is None:
        raise CellcensusError("the flows' release publishes no period; SDMX needs it")
    period = _period(*commuting.period)
    rows = [
        _observation(
            row,
            dataflow=dataflow,
            dimensions={
                "REF_AREA": row["home_area"],
                "COUNTERPART_AREA": row["work_area"],
                "INDICATOR": SDMX_COMMUTERS,
                "TIME_PERIOD": period,
            },
        )
        for row in commuting.flows.to_dict(orient="records")
    ]
    return _write_observations(rows, out)


def write_migration_sdmx(*, migration: Migration, out: Path, dataflow: str = SDMX_DATAFLOW) -> Path:
    """Write the internal migration per area as SDMX-CSV 2.0 observations.

    As `write_sdmx_csv`, one observation per area and `SDMX_MIGRATION` indicator, over the
    days from the earlier period's first to the later period's last. A sum with pairs
    withheld (status ``partial``) is no figure of the area: it is written as suppressed.
    The migration rate, not in persons, stays in ``migration.csv``.
    """
    (start, _), (_, end) = migration.periods
    table = migration.areas[migration.areas["measure"].isin(list(SDMX_MIGRATION))]
    figures = ["estimate", "std_error", "ci_lower", "ci_upper"]
    table = table.assign(
        **{name: table[name].where(table["status"] == "estimated") for name in figures}
    )
    rows = [
        _observation(
            row,
            dataflow=dataflow,
            dimensions={
                "REF_AREA": row["area_code"],
                "INDICATOR": SDMX_MIGRATION[row["measure"]],
                "TIME_PERIOD": _period(start, end),
            },
        )
        for row in table.to_dict(orient="records")
    ]
    return _write_observations(rows, out)


def _observation(
    row: Mapping[Any, Any], *, dataflow: str, dimensions: Mapping[str, Any]
) -> dict[str, Any]:
    """One SDMX-CSV observation of an estimate in persons with its interval."""
    known = not _missing(row["estimate"])
    return {
        "STRUCTURE": "dataflow",
        "STRUCTURE_ID": dataflow,
        "ACTION": "I",
        **dimensions,
        "OBS_VALUE": _integer(row["estimate"]),
        "UNIT_MEASURE": "PS",
        "UNIT_MULT": 0,
        "OBS_STATUS": "E" if known else "",
        "CONF_STATUS": "F" if known else "C",
        "STD_ERROR": _integer(row.get("std_error")),
        "CI_LOWER": _integer(row.get("ci_lower")),
        "CI_UPPER": _integer(row.get("ci_upper")),
        "CI_LEVEL": f"{row.get('ci_level', CI95):g}",
    }


def _write_observations(rows: list[dict[str, Any]], out: Path) -> Path:
    """Write SDMX-CSV rows (CRLF line ends, as the standard's examples)."""
    if not rows:
        raise CellcensusError(f"no observation to write to {out.name}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)
    return out


def _period(period_start: date | str, period_end: date | str) -> str:
    """The days from start to end (inclusive) as an ISO 8601 interval: ``start/PnD``."""
    start, end = (_day(value) for value in (period_start, period_end))
    if end < start:
        raise CellcensusError(f"period ends ({end}) before it starts ({start})")
    return f"{start.isoformat()}/P{(end - start).days + 1}D"


def _hour(local_date: str, hour: int, zone: str | None) -> str:
    """A local hour as an ISO 8601 interval, with its UTC offset and true length when known."""
    if zone is None:
        start = datetime.combine(_day(local_date[:10]), time(hour))
        return f"{start.isoformat(timespec='seconds')}/PT1H"
    known = local_hour(local_date, hour, zone)
    if known is None:
        raise CellcensusError(
            f"local hour {hour:02d}:00 of {local_date[:10]} does not exist in {zone} (the "
            "clocks skip it); estimate_present_population leaves such hours out"
        )
    start, length = known
    return f"{start.isoformat(timespec='seconds')}/PT{length // timedelta(hours=1)}H"


def write_outputs(
    *,
    result: EstimationResult,
    out_dir: Path,
    areas: pd.DataFrame | None = None,
    dataflow: str = SDMX_DATAFLOW,
) -> OutputFiles:
    """Write the official table in every format, with all estimators and their comparison.

    Args:
        result: Output of `cellcensus.nso.production.estimate_all`.
        out_dir: Folder to write into (created).
        areas: Areas with names, parent codes and geometry (default: Belgian municipalities).
        dataflow: SDMX dataflow identification.

    Returns:
        The paths written.

    Raises:
        CellcensusError: If the release's published facts lack the period (for SDMX).
    """
    frame = areas if areas is not None else belgium.municipalities()
    period = published_period(result.published)
    if period is None:
        raise CellcensusError(
            "the release does not publish its period {'start', 'end'}; SDMX needs it"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    table = official_table(result=result, areas=frame)
    csv_path = out_dir / f"{OFFICIAL_STEM}.csv"
    table.to_csv(csv_path, index=False)
    parquet_path = out_dir / f"{OFFICIAL_STEM}.parquet"
    table.to_parquet(parquet_path, index=False)
    all_path = out_dir / "estimators.csv"
    long = result.long_table()
    long.assign(released_devices=as_counts(long["released_devices"])).to_csv(all_path, index=False)
    comparison_path = out_dir / "estimator_comparison.csv"
    result.comparison().to_csv(comparison_path)
    return OutputFiles(
        csv=csv_path,
        parquet=parquet_path,
        geojson=write_geojson(table=table, areas=frame, out=out_dir / f"{OFFICIAL_STEM}.geojson"),
        sdmx_csv=write_sdmx_csv(
            table=table,
            out=out_dir / f"{OFFICIAL_STEM}.sdmx.csv",
            period_start=period[0],
            period_end=period[1],
            dataflow=dataflow,
        ),
        all_estimators=all_path,
        comparison=comparison_path,
    )


def _day(value: date | str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise CellcensusError(f"period date {value!r} is not YYYY-MM-DD") from None


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _integer(value: Any) -> str:
    return "" if _missing(value) else str(round(float(value)))


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    return None if _missing(value) else value
