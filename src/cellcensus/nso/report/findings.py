"""What each figure of the report shows, in words: the main finding of its text alternative.

A reader who cannot see a figure gets from its ``alt`` what the figure is and what it shows
(WCAG 2.1, success criterion 1.1.1), computed from the same numbers the figure is drawn from;
the alternative also says which table of the report holds those numbers.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Any

import numpy as np
import pandas as pd

from cellcensus.nso.production import EstimationResult
from cellcensus.nso.report.figures import (
    DENSITY_BREAKS,
    ERROR_MAP_PNG,
    ESTIMATORS_PNG,
    INTERVALS_PNG,
    MAPS_PNG,
    RELATIVE_ERROR_BREAKS,
    SCATTER_PNG,
    classify,
)
from cellcensus.nso.report.numbers import decimal, percent, signed_percent
from cellcensus.nso.validation import agreement

ALL_AREAS_TABLE = "The numbers are in the table of all municipalities."
"""Where the numbers behind the figures of municipalities are."""

CLOSE = 0.1
"""A relative difference within which an estimate counts as close to the census."""


def residents_findings(
    table: pd.DataFrame,
    *,
    estimation: EstimationResult | None = None,
    area_km2: pd.Series | None = None,
) -> dict[str, str]:
    """The finding of each standard figure of the resident population, by its file name.

    Args:
        table: One row per municipality with ``area_code``, ``name``, ``estimate`` (NaN where
            suppressed), ``census``, ``relative_error`` and optionally ``ci_lower`` and
            ``ci_upper``.
        estimation: The estimation, for the chart of estimators; None leaves it out.
        area_km2: Area of each municipality (index: area_code), for the classes of the
            density maps; None gives the maps the share of close estimates only.

    Returns:
        One or two sentences per figure that the inputs allow.
    """
    released = table[table["estimate"].notna()]
    areas = [MAPS_PNG, SCATTER_PNG, ERROR_MAP_PNG]
    if {"ci_lower", "ci_upper"} <= set(table.columns):
        areas.append(INTERVALS_PNG)
    if released.empty:
        # Every sentence below counts among the estimates: with none, say so instead.
        nothing = f"None of the {len(table):,} municipalities has an estimate: all are withheld."
        found = dict.fromkeys(areas, nothing)
    else:
        describe = {
            MAPS_PNG: lambda: _maps(table, released=released, area_km2=area_km2),
            SCATTER_PNG: lambda: _scatter(table),
            ERROR_MAP_PNG: lambda: _error_map(released),
            INTERVALS_PNG: lambda: _intervals(released),
        }
        found = {name: describe[name]() for name in areas}
    if estimation is not None:
        found[ESTIMATORS_PNG] = _estimators(estimation)
    return found


def _maps(table: pd.DataFrame, *, released: pd.DataFrame, area_km2: pd.Series | None) -> str:
    close = int((released["relative_error"].abs() <= CLOSE).sum())
    withheld = len(table) - len(released)
    hatched = (
        f" The {withheld:,} municipalities without an estimate are hatched grey."
        if withheld
        else ""
    )
    classes = ""
    if area_km2 is not None:
        area = area_km2.reindex(released["area_code"].astype(str)).to_numpy(dtype="float64")
        keyed = pd.Index(released["area_code"].astype(str))
        estimated = classify(
            values=pd.Series(released["estimate"].to_numpy() / area, index=keyed),
            breaks=DENSITY_BREAKS,
        )
        counted = classify(
            values=pd.Series(released["census"].to_numpy() / area, index=keyed),
            breaks=DENSITY_BREAKS,
        )
        known = estimated.notna() & counted.notna()
        same = int((estimated[known] == counted[known]).sum())
        apart = (estimated[known] - counted[known]).abs()
        rest = (
            ", the others in a neighbouring class"
            if same < int(known.sum()) and int(apart.max()) <= 1
            else ""
        )
        classes = (
            f"{same:,} of the {int(known.sum()):,} municipalities with an estimate are in the "
            f"same density class on both maps{rest}."
        )
    return (
        f"{classes.strip()} The estimate is within {CLOSE:.0%} of the census for {close:,} of "
        f"{len(released):,} municipalities.{hatched} {ALL_AREAS_TABLE}"
    )


def _scatter(table: pd.DataFrame) -> str:
    keyed = table.set_index(table["area_code"].astype(str))
    measured = agreement(estimate=keyed["estimate"], reference=keyed["census"])
    # The axes are logarithmic: an estimate or census of 0 is no dot (`scatter_log`).
    dots = int(((keyed["estimate"] > 0) & (keyed["census"] > 0)).sum())
    return (
        f"On the diagonal, estimate and census agree. Over the {dots:,} dots: "
        f"correlation of the logarithms {decimal(measured.log_pearson_r, 3)}, half of "
        f"the municipalities within {percent(measured.ape_median)} of the census, and "
        f"{percent(measured.ape_p90)} or less for nine in ten. {ALL_AREAS_TABLE}"
    )


def _error_map(released: pd.DataFrame) -> str:
    error = released["relative_error"]
    # Counted in the map's own classes, so that an error on a limit (+10% exactly) is told
    # in the colour the map gives it (the class from +10%), not in the one below.
    classes = classify(values=error, breaks=RELATIVE_ERROR_BREAKS)
    known = classes.dropna().to_numpy(dtype="int64")
    limits = np.asarray(RELATIVE_ERROR_BREAKS, dtype="float64")
    above = int((limits[known] >= CLOSE).sum())
    below = int((limits[known + 1] <= -CLOSE).sum())
    within = len(known) - above - below
    largest = ""
    if error.notna().any():
        worst = released.iloc[int(error.abs().fillna(-1.0).to_numpy().argmax())]
        largest = (
            f" The largest relative difference is {signed_percent(float(worst['relative_error']))}"
            f" ({worst['name']})."
        )
    return (
        f"{within:,} municipalities are within {CLOSE:.0%} of the census (white and pale), "
        f"{above:,} are {CLOSE:.0%} or more above it (red) and {below:,} more than "
        f"{CLOSE:.0%} below it (blue).{largest} {ALL_AREAS_TABLE}"
    )


def _estimators(estimation: EstimationResult) -> str:
    rows: dict[Hashable, dict[Hashable, Any]] = estimation.comparison().to_dict("index")
    best = rows[estimation.default]
    national = rows.get("national") if estimation.default != "national" else None
    alone = (
        f" The national factor alone: {percent(float(national['weighted_ape']))}."
        if national is not None
        else ""
    )
    return (
        f"{best['label']}, the default estimator, has a population-weighted error of "
        f"{percent(float(best['weighted_ape']))} "
        f"({percent(float(best['holdout_weighted_ape']))} on the hold-out half) and a median "
        f"error of {percent(float(best['ape_median']))}.{alone} The numbers are in the table "
        "of estimators compared."
    )


def _intervals(released: pd.DataFrame) -> str:
    rows = released[released["census"] > 0]
    census = rows["census"].to_numpy(dtype="float64")
    covers = (rows["ci_lower"].to_numpy() <= census) & (census <= rows["ci_upper"].to_numpy())
    half = (rows["ci_upper"] - rows["ci_lower"]) / 2 / rows["estimate"].where(rows["estimate"] > 0)
    small = float(half[rows["census"] < 5_000].median())
    large = float(half[rows["census"] >= 20_000].median())
    # Which way the width goes is read from the numbers: with a model error fitted per
    # size class, the large municipalities' intervals can be the wider ones.
    trend = (
        "narrow as municipalities grow"
        if large < small
        else "widen as municipalities grow"
        if large > small
        else "are as wide for small municipalities as for large ones"
    )
    widths = (
        f" The intervals {trend}: a median of ±{percent(small)} under "
        f"5,000 residents, ±{percent(large)} from 20,000."
        if not (math.isnan(small) or math.isnan(large))
        else ""
    )
    return (
        f"{percent(float(covers.mean()) if covers.size else math.nan)} of the {covers.size:,} "
        f"intervals contain the census value.{widths} {ALL_AREAS_TABLE}"
    )
