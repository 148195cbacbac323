"""Figures of the report: choropleth maps and the estimate-versus-census scatter.

Drawn with matplotlib's object API (``Figure``, Agg canvas): no GUI, no pyplot state. Maps are
projected to Belgian Lambert 2008 (EPSG:3812) so Belgium keeps its shape, and every map of one
figure shares the same fixed classes, so equal colours mean equal values.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.colors import LinearSegmentedColormap, to_hex
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from matplotlib.path import Path as MplPath
from matplotlib.ticker import FuncFormatter
from pyproj import Transformer

from cellcensus.errors import CellcensusError
from cellcensus.nso.validation import Agreement

MAP_CRS = "EPSG:3812"
"""Belgian Lambert 2008: the projection of every map."""

DENSITY_BREAKS: tuple[float, ...] = (0, 50, 100, 200, 400, 800, 1600, 3200, math.inf)
"""Class limits of population density (inhabitants per km²); a class includes its lower limit."""

DENSITY_COLOURS: tuple[str, ...] = (
    "#ffffd9",
    "#edf8b1",
    "#c7e9b4",
    "#7fcdbb",
    "#41b6c4",
    "#1d91c0",
    "#225ea8",
    "#0c2c84",
)
"""ColorBrewer YlGnBu, one colour per density class."""

RELATIVE_ERROR_BREAKS: tuple[float, ...] = (-math.inf, -0.2, -0.1, -0.05, 0.05, 0.1, 0.2, math.inf)
"""Class limits of the relative error (estimate - census) / census."""

RELATIVE_ERROR_COLOURS: tuple[str, ...] = (
    "#2166ac",
    "#67a9cf",
    "#d1e5f0",
    "#f7f7f7",
    "#fddbc7",
    "#ef8a62",
    "#b2182b",
)
"""ColorBrewer RdBu (reversed): blue below the census, red above."""

BRUSSELS_REGION = "4000"
"""Region code of Brussels-Capital, enlarged in an inset by default."""

DPI = 150
"""Resolution of every PNG."""

MAPS_PNG = "maps.png"
SCATTER_PNG = "scatter.png"
ERROR_MAP_PNG = "relative_error_map.png"
ESTIMATORS_PNG = "estimators.png"
INTERVALS_PNG = "intervals.png"
PRESENT_MAPS_PNG = "present_population_maps.png"
PRESENT_HOURLY_PNG = "present_population_brussels.png"
FLOWS_PNG = "commuting_scatter.png"
"""Standard file names of the figures (the report picks these up from its folder)."""

ACCENT = "#225ea8"
"""The first series of a chart (blue; 6.5:1 against white)."""

CONTRAST = "#d55e00"
"""The second series (vermilion, of the Okabe-Ito palette): told from the blue by readers of
every colour vision, 3.9:1 against white (WCAG 2.1 asks 3:1 of the parts of a chart)."""

LIGHT_ACCENT = "#6a8fc8"
"""A lighter blue for the bars beside the accent's (3.3:1 against white)."""

_MISSING_FACE = "#e6e6e6"
_MISSING_EDGE = "#9a9a9a"
_BORDER = "#ffffff"
_TEXT = "#222222"
_OUTLINE = "#7a7a7a"


def classify(*, values: pd.Series, breaks: Sequence[float]) -> pd.Series:
    """Assign each value to a class ``i`` such that ``breaks[i] <= value < breaks[i + 1]``.

    Args:
        values: Values to classify (any index); NaN stays unclassified.
        breaks: Strictly increasing class limits; ``len(breaks) - 1`` classes. Use
            ``math.inf`` as the last limit for an open top class.

    Returns:
        Class numbers (nullable ``Int64``, ``<NA>`` for NaN), with the index of `values`.

    Raises:
        CellcensusError: If the breaks are not increasing or a value lies outside them.
    """
    limits = np.asarray(breaks, dtype="float64")
    if limits.size < 2 or not np.all(np.diff(limits) > 0):
        raise CellcensusError(f"class breaks must be at least two increasing numbers: {breaks}")
    numbers = values.astype("float64")
    known = numbers.notna()
    found = np.searchsorted(limits, numbers[known].to_numpy(), side="right") - 1
    top = numbers[known].to_numpy() == limits[-1]
    found[top] = limits.size - 2
    outside = (found < 0) | (found > limits.size - 2)
    if outside.any():
        raise CellcensusError(
            f"values {numbers[known][outside].tolist()[:5]} lie outside the class breaks {breaks}"
        )
    classes = pd.Series(pd.NA, index=values.index, dtype="Int64")
    classes[known] = found
    return classes


def class_labels(
    *, breaks: Sequence[float], fmt: Callable[[float], str], separator: str = " – "
) -> list[str]:
    """Legend labels of the classes, e.g. ``["under 50", "50 – 100", ..., "3,200 and over"]``.

    Args:
        breaks: The class limits, as for `classify`.
        fmt: Formats one limit.
        separator: Between the two limits of a closed class.

    Returns:
        One label per class.
    """
    labels = []
    for low, high in itertools.pairwise(breaks):
        if math.isinf(low) or low == 0:
            labels.append(f"under {fmt(high)}")
        elif math.isinf(high):
            labels.append(f"{fmt(low)} and over")
        else:
            labels.append(f"{fmt(low)}{separator}{fmt(high)}")
    return labels


def project(*, geometries: pd.Series, crs: str = MAP_CRS) -> pd.Series:
    """Project WGS84 (longitude, latitude) shapely geometries to `crs`.

    Args:
        geometries: Shapely geometries in EPSG:4326.
        crs: Target coordinate reference system.

    Returns:
        The projected geometries, same index.
    """
    transformer = Transformer.from_crs("EPSG:4326", crs, always_xy=True)

    def _transform(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    projected = shapely.transform(geometries.to_numpy(), _transform)
    return pd.Series(projected, index=geometries.index)


def geometry_path(geometry: shapely.Geometry) -> MplPath:
    """A matplotlib path of a (multi)polygon, holes included (filled with nonzero winding).

    Args:
        geometry: A Polygon, MultiPolygon or collection; non-polygonal parts are ignored.

    Returns:
        One compound path; empty if the geometry has no polygon.
    """
    vertices: list[np.ndarray] = []
    codes: list[np.ndarray] = []
    for polygon in shapely.get_parts(geometry):
        if polygon.geom_type != "Polygon" or polygon.is_empty:
            continue
        oriented = shapely.geometry.polygon.orient(polygon, sign=1.0)
        for ring in (oriented.exterior, *oriented.interiors):
            coords = np.asarray(ring.coords)[:, :2]
            ring_codes = np.full(len(coords), MplPath.LINETO, dtype=MplPath.code_type)
            ring_codes[0], ring_codes[-1] = MplPath.MOVETO, MplPath.CLOSEPOLY
            vertices.append(coords)
            codes.append(ring_codes)
    if not vertices:
        return MplPath(np.empty((0, 2)))
    return MplPath(np.concatenate(vertices), np.concatenate(codes))


def draw_side_by_side_maps(
    *,
    areas: pd.DataFrame,
    estimate_density: pd.Series,
    census_density: pd.Series,
    breaks: Sequence[float] = DENSITY_BREAKS,
    inset_region: str | None = BRUSSELS_REGION,
    missing_label: str = "Suppressed (too few devices)",
    note: str | None = None,
    titles: tuple[str, str] = ("Based on mobile phone data", "Based on 2011 census"),
    title: str = "Population density by municipality",
    legend_title: str = "Inhabitants per km²",
) -> Figure:
    """Draw the two density maps with shared classes; see `side_by_side_maps`.

    Returns:
        The figure: axes 0 is the mobile-phone map, axes 1 the census map.
    """
    shapes = _MapShapes.of(areas)
    colours = _resampled(DENSITY_COLOURS, len(breaks) - 1)
    figure = Figure(figsize=(12.0, 6.6))
    figure.subplots_adjust(left=0.01, right=0.99, top=0.86, bottom=0.17, wspace=0.02)
    panels = ((titles[0], estimate_density), (titles[1], census_density))
    missing = False
    for index, (panel_title, density) in enumerate(panels):
        axes = figure.add_subplot(1, 2, index + 1)
        classes = classify(values=density.reindex(shapes.codes), breaks=breaks)
        _choropleth(axes=axes, shapes=shapes, classes=classes, colours=colours)
        _inset(axes=axes, shapes=shapes, classes=classes, colours=colours, region=inset_region)
        axes.set_title(panel_title, fontsize=13, color=_TEXT, pad=6)
        missing = missing or bool(classes.isna().any())
    figure.suptitle(title, fontsize=16, color=_TEXT, fontweight="bold")
    labels = class_labels(breaks=breaks, fmt=lambda value: f"{value:,.0f}")
    _legend(
        figure=figure,
        colours=colours,
        labels=labels,
        title=legend_title,
        missing_label=missing_label if missing else None,
    )
    _note(figure=figure, note=note)
    return figure


def side_by_side_maps(
    *,
    areas: pd.DataFrame,
    estimate_density: pd.Series,
    census_density: pd.Series,
    out: Path,
    breaks: Sequence[float] = DENSITY_BREAKS,
    inset_region: str | None = BRUSSELS_REGION,
    missing_label: str = "Suppressed (too few devices)",
    note: str | None = None,
    titles: tuple[str, str] = ("Based on mobile phone data", "Based on 2011 census"),
    title: str = "Population density by municipality",
    legend_title: str = "Inhabitants per km²",
) -> Path:
    """Two choropleth maps of population density, mobile phone data beside the census.

    Both maps use the same classes and colours and share one legend. Areas without an
    estimate (suppressed by the holder) are grey and hatched.

    Args:
        areas: ``area_code`` and ``geometry`` (shapely, WGS84); optionally ``region`` for the
            inset.
        estimate_density: Estimated inhabitants per km², indexed by area_code; NaN where
            suppressed.
        census_density: Census inhabitants per km², indexed by area_code.
        out: PNG file to write (parent directories are created).
        breaks: Class limits (inhabitants per km²), see `classify`.
        inset_region: Region code whose areas are enlarged in an inset (Brussels-Capital by
            default); None, or an absent ``region`` column, for no inset.
        missing_label: Legend entry of the hatched areas.
        note: Source line printed under the maps.
        titles: Titles of the left and right maps.
        title: Title of the figure.
        legend_title: Title of the shared legend (what the density counts).

    Returns:
        `out`.
    """
    figure = draw_side_by_side_maps(
        areas=areas,
        estimate_density=estimate_density,
        census_density=census_density,
        breaks=breaks,
        inset_region=inset_region,
        missing_label=missing_label,
        note=note,
        titles=titles,
        title=title,
        legend_title=legend_title,
    )
    return _save(figure=figure, out=out)


def relative_error_map(
    *,
    areas: pd.DataFrame,
    estimate: pd.Series,
    census: pd.Series,
    out: Path,
    breaks: Sequence[float] = RELATIVE_ERROR_BREAKS,
    inset_region: str | None = BRUSSELS_REGION,
    note: str | None = None,
) -> Path:
    """Map of the relative error ``(estimate - census) / census`` per area.

    Args:
        areas: ``area_code`` and ``geometry`` (shapely, WGS84); optionally ``region``.
        estimate: Estimated population indexed by area_code; NaN where suppressed.
        census: Census population indexed by area_code.
        out: PNG file to write.
        breaks: Class limits of the relative error (fractions).
        inset_region: Region code enlarged in an inset, or None.
        note: Source line printed under the map.

    Returns:
        `out`.
    """
    shapes = _MapShapes.of(areas)
    reference = census.reindex(shapes.codes).astype("float64")
    error = (estimate.reindex(shapes.codes).astype("float64") - reference) / reference.where(
        reference > 0
    )
    classes = classify(values=error, breaks=breaks)
    colours = _resampled(RELATIVE_ERROR_COLOURS, len(breaks) - 1)
    figure = Figure(figsize=(7.5, 7.0))
    figure.subplots_adjust(left=0.01, right=0.99, top=0.92, bottom=0.17)
    axes = figure.add_subplot(1, 1, 1)
    # Light grey borders: the middle class is nearly white.
    border = "#c8c8c8"
    _choropleth(axes=axes, shapes=shapes, classes=classes, colours=colours, border=border)
    _inset(
        axes=axes,
        shapes=shapes,
        classes=classes,
        colours=colours,
        region=inset_region,
        border=border,
    )
    figure.suptitle(
        "Estimate against 2011 census: relative error", fontsize=14, color=_TEXT, fontweight="bold"
    )
    _legend(
        figure=figure,
        colours=colours,
        labels=class_labels(breaks=breaks, fmt=_signed_percent, separator=" to "),
        title="(estimate − census) / census",
        missing_label="No estimate (suppressed)" if classes.isna().any() else None,
        columns=4,
    )
    _note(figure=figure, note=note)
    return _save(figure=figure, out=out)


def scatter_log(
    *,
    estimate: pd.Series,
    census: pd.Series,
    out: Path,
    metrics: Agreement,
    area_name: str = "municipality",
    note: str | None = None,
) -> Path:
    """Estimate against census per area on log-log axes, with the line of equality.

    Args:
        estimate: Estimated population indexed by area_code; NaN where suppressed.
        census: Census population indexed by area_code.
        out: PNG file to write.
        metrics: Agreement of the two, printed on the chart.
        area_name: What one point is, for the title and legend.
        note: Source line printed under the chart.

    Returns:
        `out`.
    """
    pair = pd.DataFrame({"census": census.astype("float64")})
    pair["estimate"] = estimate.astype("float64").reindex(pair.index)
    pair = pair[(pair["census"] > 0) & (pair["estimate"] > 0)]
    figure = Figure(figsize=(7.0, 7.0))
    figure.subplots_adjust(left=0.14, right=0.96, top=0.9, bottom=0.13)
    axes = figure.add_subplot(1, 1, 1)
    low = float(min(pair.min().min(), 1e3)) / 1.5 if len(pair) else 10.0
    high = float(max(pair.max().max(), 1e4)) * 1.5 if len(pair) else 1e6
    span = np.array([low, high])
    axes.fill_between(span, span * 0.9, span * 1.1, color="#dddddd", lw=0, label="± 10%")
    axes.plot(span, span, color="#555555", lw=1.0, label="estimate = census")
    axes.scatter(
        pair["census"], pair["estimate"], s=12, color=ACCENT, alpha=0.7, lw=0, label=area_name
    )
    axes.set(xscale="log", yscale="log", xlim=(low, high), ylim=(low, high), aspect="equal")
    thousands = FuncFormatter(lambda value, _: f"{value:,.0f}")
    axes.xaxis.set_major_formatter(thousands)
    axes.yaxis.set_major_formatter(thousands)
    axes.set_xlabel("Population, 2011 census", color=_TEXT)
    axes.set_ylabel("Population estimated from mobile phone data", color=_TEXT)
    axes.set_axisbelow(True)
    axes.grid(True, which="major", color="#eeeeee", lw=0.8)
    axes.spines[["top", "right"]].set_visible(False)
    axes.legend(loc="lower right", frameon=False, fontsize=9)
    _corner_box(axes, _metrics_text(metrics))
    figure.suptitle(
        f"Estimate against census, per {area_name}", fontsize=14, color=_TEXT, fontweight="bold"
    )
    _note(figure=figure, note=note)
    return _save(figure=figure, out=out)


def estimator_chart(
    *,
    comparison: pd.DataFrame,
    out: Path,
    default: str | None = None,
    note: str | None = None,
) -> Path:
    """Bars of the errors of every estimator, on all areas and on the hold-out half.

    Args:
        comparison: One row per estimator (index: name) with ``label``, ``weighted_ape``,
            ``ape_median``, ``holdout_weighted_ape`` and ``holdout_ape_median``, as
            `cellcensus.nso.production.EstimationResult.comparison` returns.
        out: PNG file to write.
        default: Name of the default estimator, drawn in the accent colour.
        note: Source line printed under the chart.

    Returns:
        `out`.

    Raises:
        CellcensusError: If a column is missing.
    """
    needed = ("label", "weighted_ape", "ape_median", "holdout_weighted_ape", "holdout_ape_median")
    missing = [column for column in needed if column not in comparison.columns]
    if missing:
        raise CellcensusError(f"estimator comparison lacks column(s) {missing}")
    rows = comparison.iloc[::-1]
    figure = Figure(figsize=(10.0, 1.2 + 0.55 * len(rows)))
    figure.subplots_adjust(left=0.25, right=0.98, top=0.84, bottom=0.2, wspace=0.08)
    panels = (
        ("Population-weighted error", "weighted_ape", "holdout_weighted_ape"),
        ("Median error of a municipality", "ape_median", "holdout_ape_median"),
    )
    positions = np.arange(len(rows))
    for index, (title, full, held) in enumerate(panels):
        axes = figure.add_subplot(1, 2, index + 1)
        accent = [ACCENT if name == default else LIGHT_ACCENT for name in rows.index]
        axes.barh(positions + 0.18, rows[full].to_numpy(), height=0.36, color=accent)
        axes.barh(
            positions - 0.18,
            rows[held].to_numpy(),
            height=0.36,
            color=CONTRAST,
            hatch="////",
            edgecolor="white",
            linewidth=0,
            label="hold-out",
        )
        labels = [
            f"{label} (default)" if name == default else str(label)
            for name, label in zip(rows.index, rows["label"], strict=True)
        ]
        axes.set_yticks(positions, labels if index == 0 else [""] * len(rows))
        axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: percent_tick(value)))
        axes.set_title(title, fontsize=11, color=_TEXT)
        axes.grid(True, axis="x", color="#eeeeee")
        axes.set_axisbelow(True)
        axes.spines[["top", "right"]].set_visible(False)
    handles = [
        Patch(facecolor=LIGHT_ACCENT, label="fitted on all calibration areas"),
        Patch(facecolor=ACCENT, label="default estimator"),
        Patch(
            facecolor=CONTRAST,
            hatch="////",
            edgecolor="white",
            linewidth=0,
            label="hold-out: fitted on half, judged on the other half",
        ),
    ]
    figure.legend(
        handles=handles,
        loc="lower center",
        ncols=3,
        frameon=False,
        fontsize=8.5,
        bbox_to_anchor=(0.5, 0.02),
    )
    figure.suptitle(
        "Error against the census, by estimator", fontsize=14, color=_TEXT, fontweight="bold"
    )
    _note(figure=figure, note=note)
    return _save(figure=figure, out=out)


def interval_chart(
    *, table: pd.DataFrame, out: Path, level: float = 0.95, note: str | None = None
) -> Path:
    """Relative error and interval of every area against its census size.

    Args:
        table: One row per area with ``estimate``, ``ci_lower``, ``ci_upper`` and
            ``census`` (NaN estimates are left out).
        out: PNG file to write.
        level: Confidence level of the intervals (for the legend).
        note: Source line printed under the chart.

    Returns:
        `out`.

    Raises:
        CellcensusError: If a column is missing.
    """
    needed = ("estimate", "ci_lower", "ci_upper", "census")
    missing = [column for column in needed if column not in table.columns]
    if missing:
        raise CellcensusError(f"interval table lacks column(s) {missing}")
    rows = table[table["estimate"].notna() & (table["census"] > 0)]
    census = rows["census"].to_numpy(dtype="float64")
    error = (rows["estimate"].to_numpy(dtype="float64") - census) / census
    low = (rows["ci_lower"].to_numpy(dtype="float64") - census) / census
    high = (rows["ci_upper"].to_numpy(dtype="float64") - census) / census
    inside = (low <= 0) & (high >= 0)
    figure = Figure(figsize=(9.0, 5.6))
    figure.subplots_adjust(left=0.1, right=0.97, top=0.88, bottom=0.2)
    axes = figure.add_subplot(1, 1, 1)
    # A miss is a cross, not only another colour: it shows in grey print and to every eye.
    for mask, colour, marker, size, label in (
        (inside, ACCENT, "o", 7, "interval covers the census"),
        (~inside, CONTRAST, "x", 16, "interval misses the census"),
    ):
        axes.vlines(census[mask], low[mask], high[mask], color=colour, alpha=0.35, lw=0.8)
        axes.scatter(
            census[mask],
            error[mask],
            s=size,
            color=colour,
            marker=marker,
            lw=0 if marker == "o" else 1.0,
            label=label,
        )
    axes.axhline(0.0, color="#555555", lw=0.9)
    axes.set_xscale("log")
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: percent_tick(value, signed=True)))
    axes.set_xlabel("Population, 2011 census", color=_TEXT)
    axes.set_ylabel("(estimate − census) / census", color=_TEXT)
    axes.grid(True, color="#eeeeee")
    axes.set_axisbelow(True)
    axes.spines[["top", "right"]].set_visible(False)
    axes.legend(loc="upper right", frameon=False, fontsize=9)
    share = float(inside.mean()) if inside.size else math.nan
    figure.suptitle(
        f"{level:.0%} intervals: {share:.1%} of municipalities covered",
        fontsize=14,
        color=_TEXT,
        fontweight="bold",
    )
    _note(figure=figure, note=note)
    return _save(figure=figure, out=out)


def hourly_chart(
    *,
    series: dict[str, pd.Series],
    out: Path,
    title: str,
    marks: Sequence[int] = (),
    note: str | None = None,
) -> Path:
    """Lines of a quantity by hour of the day, relative to its value at the first mark.

    Args:
        series: Label to values indexed by hour (0-23); each is divided by its value at
            ``marks[0]`` (or its mean when there is no mark), so that shapes compare.
        out: PNG file to write.
        title: Title of the chart.
        marks: Hours marked by a vertical line (e.g. the night and day hours of the maps).
        note: Source line printed under the chart.

    Returns:
        `out`.
    """
    figure = Figure(figsize=(9.0, 4.8))
    figure.subplots_adjust(left=0.1, right=0.97, top=0.8, bottom=0.2)
    axes = figure.add_subplot(1, 1, 1)
    # Each line its own colour, dashes and marker: told apart without colour too.
    styles = ((ACCENT, "-", "o"), (CONTRAST, "--", "s"), ("#1d91c0", ":", "^"), (_TEXT, "-.", "D"))
    for (label, values), (colour, dashes, marker) in zip(
        series.items(), itertools.cycle(styles), strict=False
    ):
        values = values.astype("float64").sort_index()
        base = values.get(marks[0], math.nan) if marks else float(values.mean())
        if not base or math.isnan(base):
            continue
        axes.plot(
            values.index,
            values / base,
            color=colour,
            lw=2.0,
            ls=dashes,
            marker=marker,
            ms=3.5,
            label=label,
        )
    for hour in marks:
        axes.axvline(hour, color="#999999", lw=0.8, ls="--")
    axes.axhline(1.0, color="#555555", lw=0.8)
    axes.set_xticks(range(0, 24, 3), [f"{hour:02d}:00" for hour in range(0, 24, 3)])
    axes.set_xlim(-0.5, 23.5)
    reference = f"{marks[0]:02d}:00" if marks else "the daily mean"
    axes.set_ylabel(f"Persons present, relative to {reference}", color=_TEXT)
    axes.grid(True, color="#eeeeee")
    axes.set_axisbelow(True)
    axes.spines[["top", "right"]].set_visible(False)
    # Above the axes: inside, the lines of a busy hour run through it.
    axes.legend(loc="lower left", bbox_to_anchor=(0.0, 1.01), ncol=2, frameon=False, fontsize=9)
    figure.suptitle(title, fontsize=14, color=_TEXT, fontweight="bold")
    _note(figure=figure, note=note)
    return _save(figure=figure, out=out)


def flow_scatter(
    *,
    estimate: pd.Series,
    census: pd.Series,
    within: pd.Series,
    out: Path,
    metrics: Agreement,
    note: str | None = None,
) -> Path:
    """Estimated against census commuting flows, one point per pair of areas, log axes.

    Args:
        estimate: Estimated commuters per pair (NaN where suppressed).
        census: Census commuters per pair, same index.
        within: True where home and work area are the same (drawn in another colour).
        out: PNG file to write.
        metrics: Agreement of the flows, printed on the chart.
        note: Source line printed under the chart.

    Returns:
        `out`.
    """
    pair = pd.DataFrame(
        {
            "census": census.astype("float64"),
            "estimate": estimate.astype("float64").reindex(census.index),
            "within": within.reindex(census.index).fillna(False).astype(bool),
        }
    )
    pair = pair[(pair["census"] > 0) & (pair["estimate"] > 0)]
    figure = Figure(figsize=(7.0, 7.0))
    figure.subplots_adjust(left=0.14, right=0.96, top=0.9, bottom=0.13)
    axes = figure.add_subplot(1, 1, 1)
    values = pair[["census", "estimate"]]
    low = float(values.min().min()) / 1.5 if len(pair) else 10.0
    high = float(values.max().max()) * 1.5 if len(pair) else 1e6
    span = np.array([low, high])
    axes.plot(span, span, color="#555555", lw=1.0, label="estimate = census")
    for mask, colour, marker, label in (
        (~pair["within"], ACCENT, "o", "between two arrondissements"),
        (pair["within"], CONTRAST, "^", "within one arrondissement"),
    ):
        axes.scatter(
            pair.loc[mask, "census"],
            pair.loc[mask, "estimate"],
            s=14 if marker == "o" else 22,
            color=colour,
            marker=marker,
            alpha=0.75,
            lw=0,
            label=label,
        )
    axes.set(xscale="log", yscale="log", xlim=(low, high), ylim=(low, high), aspect="equal")
    thousands = FuncFormatter(lambda value, _: f"{value:,.0f}")
    axes.xaxis.set_major_formatter(thousands)
    axes.yaxis.set_major_formatter(thousands)
    axes.set_xlabel("Commuters, 2011 census", color=_TEXT)
    axes.set_ylabel("Commuters estimated from mobile phone data", color=_TEXT)
    axes.grid(True, which="major", color="#eeeeee", lw=0.8)
    axes.set_axisbelow(True)
    axes.spines[["top", "right"]].set_visible(False)
    axes.legend(loc="lower right", frameon=False, fontsize=9)
    text = "\n".join(
        (
            f"Pearson r = {metrics.pearson_r:.4f}",
            f"r of logarithms = {metrics.log_pearson_r:.4f}",
            f"log-log slope = {metrics.log_slope:.3f}",
            f"{metrics.n_areas:,} flows compared, {metrics.n_suppressed:,} suppressed",
        )
    )
    _corner_box(axes, text)
    figure.suptitle(
        "Home-work flows between arrondissements", fontsize=14, color=_TEXT, fontweight="bold"
    )
    _note(figure=figure, note=note)
    return _save(figure=figure, out=out)


class _MapShapes:
    """Projected areas as matplotlib paths, with their codes and regions."""

    def __init__(self, *, codes: pd.Index, paths: list[MplPath], regions: pd.Series) -> None:
        self.codes = codes
        self.paths = paths
        self.regions = regions

    @classmethod
    def of(cls, areas: pd.DataFrame) -> _MapShapes:
        missing = [column for column in ("area_code", "geometry") if column not in areas.columns]
        if missing:
            raise CellcensusError(f"areas table lacks column(s) {missing}")
        codes = pd.Index(areas["area_code"].astype(str), name="area_code")
        projected = project(geometries=areas["geometry"])
        regions = areas["region"].astype(str) if "region" in areas.columns else None
        return cls(
            codes=codes,
            paths=[geometry_path(geometry) for geometry in projected],
            regions=pd.Series(
                regions.to_numpy() if regions is not None else "", index=codes, dtype=str
            ),
        )


def _choropleth(
    *,
    axes: Axes,
    shapes: _MapShapes,
    classes: pd.Series,
    colours: Sequence[str],
    border: str = _BORDER,
) -> None:
    known = classes.notna().to_numpy()
    faces = [colours[int(c)] for c in classes[known]]
    known_paths = [path for path, flag in zip(shapes.paths, known, strict=True) if flag]
    missing_paths = [path for path, flag in zip(shapes.paths, known, strict=True) if not flag]
    # A wide grey stroke under the fills: the fills hide its inner half along shared borders,
    # so only the outer border of the whole map stays visible, even around the lightest class.
    axes.add_collection(
        PathCollection(shapes.paths, facecolors="none", edgecolors=_OUTLINE, linewidths=0.9),
        autolim=False,
    )
    axes.add_collection(
        PathCollection(known_paths, facecolors=faces, edgecolors=border, linewidths=0.2),
        autolim=False,
    )
    if missing_paths:
        axes.add_collection(
            PathCollection(
                missing_paths,
                facecolors=_MISSING_FACE,
                edgecolors=_MISSING_EDGE,
                linewidths=0.2,
                hatch="//////",
            ),
            autolim=False,
        )
    _frame(axes=axes, paths=shapes.paths)


def _frame(*, axes: Axes, paths: Sequence[MplPath]) -> None:
    extents = [path.get_extents() for path in paths if len(np.asarray(path.vertices))]
    x0 = min(box.x0 for box in extents)
    x1 = max(box.x1 for box in extents)
    y0 = min(box.y0 for box in extents)
    y1 = max(box.y1 for box in extents)
    pad = 0.02 * max(x1 - x0, y1 - y0)
    axes.set_xlim(x0 - pad, x1 + pad)
    axes.set_ylim(y0 - pad, y1 + pad)
    axes.set_aspect("equal")
    axes.set_axis_off()


def _inset(
    *,
    axes: Axes,
    shapes: _MapShapes,
    classes: pd.Series,
    colours: Sequence[str],
    region: str | None,
    border: str = _BORDER,
) -> None:
    if region is None:
        return
    chosen = (shapes.regions == region).to_numpy()
    if not chosen.any():
        return
    subset = _MapShapes(
        codes=shapes.codes[chosen],
        paths=[path for path, flag in zip(shapes.paths, chosen, strict=True) if flag],
        regions=shapes.regions[chosen],
    )
    inset = axes.inset_axes((0.0, 0.0, 0.3, 0.3))
    _choropleth(axes=inset, shapes=subset, classes=classes[chosen], colours=colours, border=border)
    inset.set_axis_on()
    inset.set_xticks([])
    inset.set_yticks([])
    for spine in inset.spines.values():
        spine.set_edgecolor("#888888")
        spine.set_linewidth(0.6)
    inset.set_title("Brussels-Capital" if region == BRUSSELS_REGION else region, fontsize=8)
    x0, x1 = inset.get_xlim()
    y0, y1 = inset.get_ylim()
    axes.add_patch(
        Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor="#333333", linewidth=0.8)
    )


def _legend(
    *,
    figure: Figure,
    colours: Sequence[str],
    labels: Sequence[str],
    title: str,
    missing_label: str | None,
    columns: int | None = None,
) -> None:
    handles = [
        Patch(facecolor=colour, edgecolor="#999999", linewidth=0.5, label=label)
        for colour, label in zip(colours, labels, strict=True)
    ]
    if missing_label is not None:
        handles.append(
            Patch(
                facecolor=_MISSING_FACE,
                edgecolor=_MISSING_EDGE,
                hatch="//////",
                linewidth=0.5,
                label=missing_label,
            )
        )
    figure.legend(
        handles=handles,
        loc="lower center",
        bbox_to_anchor=(0.5, 0.045),
        ncols=columns or math.ceil(len(handles) / 2),
        title=title,
        title_fontsize=10,
        fontsize=9,
        frameon=False,
        handlelength=1.6,
        handleheight=1.1,
        columnspacing=1.4,
    )


def _corner_box(axes: Axes, text: str) -> None:
    """`text` in a framed box in the top-left corner of `axes` (the figures' metrics)."""
    axes.text(
        0.03,
        0.97,
        text,
        transform=axes.transAxes,
        va="top",
        fontsize=9.5,
        color=_TEXT,
        bbox={"boxstyle": "round,pad=0.5", "facecolor": "white", "edgecolor": "#cccccc"},
    )


def _note(*, figure: Figure, note: str | None) -> None:
    if note:
        figure.text(
            0.01, 0.012, note, fontsize=7.5, color="#666666", ha="left", va="bottom", wrap=True
        )


def _metrics_text(metrics: Agreement) -> str:
    return "\n".join(
        (
            f"Pearson r = {metrics.pearson_r:.4f}",
            f"r of logarithms = {metrics.log_pearson_r:.4f}",
            f"log-log slope = {metrics.log_slope:.3f}",
            f"APE median = {metrics.ape_median:.1%}",
            f"APE 90th percentile = {metrics.ape_p90:.1%}",
            f"Population-weighted APE = {metrics.weighted_ape:.1%}",
            f"{metrics.n_areas:,} areas compared, {metrics.n_suppressed:,} suppressed",
        )
    )


def percent_tick(value: float, *, signed: bool = False) -> str:
    """A tick label in percent with as many decimals as the tick needs (2.5%, not 2%).

    Args:
        value: The tick as a fraction.
        signed: Whether to show ``+`` before positive values (a true minus sign always).

    Returns:
        ``"2.5%"``, ``"+10%"``, ``"−20%"`` or ``"0%"``.
    """
    hundredths = round(value * 100, 6)
    if hundredths == 0:
        return "0%"
    text = f"{hundredths:+g}%" if signed else f"{hundredths:g}%"
    return text.replace("-", "\N{MINUS SIGN}")


def _signed_percent(value: float) -> str:
    return f"{value:+.0%}".replace("-", "\N{MINUS SIGN}")


def _resampled(colours: Sequence[str], count: int) -> list[str]:
    if count == len(colours):
        return list(colours)
    ramp = LinearSegmentedColormap.from_list("classes", list(colours))
    return [to_hex(ramp(position)) for position in np.linspace(0.0, 1.0, count)]


def _save(*, figure: Figure, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=DPI, facecolor="white")
    return out
