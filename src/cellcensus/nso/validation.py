"""Agreement between population estimates and a reference (the census), and hold-out tools.

All measures are computed over the areas the reference covers, aligned on ``area_code``.
Absolute percentage errors are fractions (0.1 means 10 %).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from cellcensus.errors import CellcensusError


@dataclass(frozen=True)
class Agreement:
    """How well estimates agree with a reference, area by area.

    Attributes:
        pearson_r: Pearson correlation of estimate and reference counts (NaN if undefined).
        log_pearson_r: Pearson correlation of their logarithms, over areas where both are > 0;
            less dominated by the few largest areas.
        ape_median: Median absolute percentage error ``|e - r| / r`` (fraction), over areas
            with ``r > 0``.
        ape_p90: 90th percentile of the absolute percentage error (fraction).
        weighted_ape: ``sum |e - r| / sum r``: the sum of absolute differences as a share
            of the reference population (population-weighted APE). Not the share of persons
            placed in the wrong area: errors of opposite sign in one area cancel, and
            sampling and noise count too.
        n_areas: Number of areas compared (reference and estimate both present).
        n_suppressed: Number of areas of the reference without an estimate (suppressed by the
            holder or not released).
        log_r2: Share of the variance of ``log r`` explained by ``log e`` (the square of
            `log_pearson_r`).
        log_slope: Slope of the least-squares line of ``log e`` on ``log r``: 1 when the
            relative error does not depend on the size of the area, below 1 when small areas
            are overestimated and large ones underestimated.
        relative_bias: ``sum e / sum r - 1`` over the compared areas: the error of the total.
    """

    pearson_r: float
    log_pearson_r: float
    ape_median: float
    ape_p90: float
    weighted_ape: float
    n_areas: int
    n_suppressed: int
    log_r2: float = math.nan
    log_slope: float = math.nan
    relative_bias: float = math.nan

    def to_dict(self) -> dict[str, float | int]:
        """The measures as a plain dict (JSON-ready, NaN kept as float NaN)."""
        return asdict(self)


def agreement(*, estimate: pd.Series, reference: pd.Series) -> Agreement:
    """Measure the agreement of `estimate` with `reference`, area by area.

    Args:
        estimate: Estimated population indexed by area_code; NaN where suppressed.
        reference: Reference population (e.g. census) indexed by area_code. Areas where the
            reference is NaN are left out; estimate areas absent from it are ignored.

    Returns:
        The agreement measures. Measures that cannot be computed (fewer than two areas, a
        constant series, no positive reference) are NaN.

    Raises:
        CellcensusError: If an index repeats an area_code or a value is negative.
    """
    ref = _clean(series=reference, name="reference").dropna()
    est = _clean(series=estimate, name="estimate").reindex(ref.index)
    return _measure(est=est.to_numpy(dtype="float64"), ref=ref.to_numpy(dtype="float64"))


def _measure(*, est: np.ndarray, ref: np.ndarray) -> Agreement:
    """The measures of aligned arrays; NaN estimates are suppressed areas."""
    compared = ~np.isnan(est)
    e, r = est[compared], ref[compared]
    ape = _absolute_percentage_errors(e=e, r=r)
    positive = (e > 0) & (r > 0)
    log_e, log_r = np.log(e[positive]), np.log(r[positive])
    log_r_value = _pearson(x=log_e, y=log_r)
    total = r.sum()
    return Agreement(
        pearson_r=_pearson(x=e, y=r),
        log_pearson_r=log_r_value,
        ape_median=float(np.median(ape)) if ape.size else math.nan,
        ape_p90=float(np.quantile(ape, 0.9)) if ape.size else math.nan,
        weighted_ape=float(np.abs(e - r).sum() / total) if total > 0 else math.nan,
        n_areas=int(compared.sum()),
        n_suppressed=int((~compared).sum()),
        log_r2=log_r_value**2,
        log_slope=_slope(x=log_r, y=log_e),
        relative_bias=float(e.sum() / total - 1.0) if total > 0 else math.nan,
    )


SIZE_CLASS_BREAKS: tuple[float, ...] = (0, 2_000, 5_000, 10_000, 20_000, 50_000, math.inf)
"""Default limits of the area size classes (reference population); lower limit included."""


def error_by_size_class(
    *,
    estimate: pd.Series,
    reference: pd.Series,
    breaks: Sequence[float] = SIZE_CLASS_BREAKS,
    lower: pd.Series | None = None,
    upper: pd.Series | None = None,
) -> pd.DataFrame:
    """Errors, and how often the intervals cover, per class of area size.

    Official statistics judge intervals within domains: a 95 % overall coverage can hide
    large areas covered far less often and small ones nearly always.

    Args:
        estimate: Estimated population indexed by area_code; NaN where suppressed.
        reference: Reference population indexed by area_code; it defines the classes.
        breaks: Increasing class limits of the reference population; a class includes its
            lower limit. The last limit may be ``math.inf``.
        lower: Lower interval limits indexed by area_code (None: no coverage measured).
        upper: Upper interval limits, same index.

    Returns:
        One row per class, smallest first: ``size_class`` (a label such as
        ``"2,000 – 5,000"``), ``n_areas`` (compared), ``n_suppressed``, ``ape_median``,
        ``ape_p90``, ``weighted_ape``, ``relative_bias``, ``interval_coverage`` (share of
        the class's areas whose reference lies inside their interval, `interval_coverage`)
        and ``median_relative_ci`` (median interval half-width as a share of the
        estimate); NaN where a class has no area, or no interval was given.

    Raises:
        CellcensusError: If the breaks are not increasing, or a series is invalid.
    """
    limits = np.asarray(breaks, dtype="float64")
    if limits.size < 2 or not np.all(np.diff(limits) > 0):
        raise CellcensusError(f"size class breaks must be increasing numbers, got {breaks}")
    ref = _clean(series=reference, name="reference").dropna()
    r = ref.to_numpy(dtype="float64")
    e = _clean(series=estimate, name="estimate").reindex(ref.index).to_numpy(dtype="float64")
    low_limit, high_limit = (
        (math.nan * r, math.nan * r)
        if lower is None or upper is None
        else (_aligned(lower, ref.index), _aligned(upper, ref.index))
    )
    rows = []
    for low, high in itertools.pairwise(limits):
        inside = (r >= low) & (r < high)
        measured = _measure(est=e[inside], ref=r[inside])
        bounded = inside & ~np.isnan(low_limit) & ~np.isnan(high_limit)
        covered = (low_limit[bounded] <= r[bounded]) & (r[bounded] <= high_limit[bounded])
        half = (high_limit[bounded] - low_limit[bounded]) / 2.0
        positive = e[bounded] > 0
        rows.append(
            {
                "size_class": _class_label(low=low, high=high),
                "n_areas": measured.n_areas,
                "n_suppressed": measured.n_suppressed,
                "ape_median": measured.ape_median,
                "ape_p90": measured.ape_p90,
                "weighted_ape": measured.weighted_ape,
                "relative_bias": measured.relative_bias,
                "interval_coverage": float(covered.mean()) if covered.size else math.nan,
                "median_relative_ci": (
                    float(np.median(half[positive] / e[bounded][positive]))
                    if positive.any()
                    else math.nan
                ),
            }
        )
    return pd.DataFrame(rows)


def _aligned(series: pd.Series, index: pd.Index) -> np.ndarray:
    """`series` as floats aligned on the area_code strings of `index`."""
    values = series.astype("float64").set_axis(series.index.astype(str)).reindex(index)
    return values.to_numpy(dtype="float64")


def interval_coverage(*, lower: pd.Series, upper: pd.Series, reference: pd.Series) -> float:
    """Share of areas whose reference value lies inside their interval.

    Args:
        lower: Lower interval limits indexed by area_code (NaN where there is no estimate).
        upper: Upper interval limits, same index.
        reference: Reference values indexed by area_code.

    Returns:
        The share (fraction) over areas with an interval and a reference; NaN if none.
    """
    ref = _clean(series=reference, name="reference").dropna()
    low = lower.astype("float64").set_axis(lower.index.astype(str)).reindex(ref.index)
    high = upper.astype("float64").set_axis(upper.index.astype(str)).reindex(ref.index)
    known = low.notna() & high.notna()
    if not known.any():
        return math.nan
    inside = (ref[known] >= low[known]) & (ref[known] <= high[known])
    return float(inside.mean())


def holdout_split(
    *,
    codes: Sequence[str] | pd.Index,
    fraction: float = 0.5,
    seed: int | Sequence[int] = 0,
    strata: pd.Series | None = None,
) -> tuple[pd.Index, pd.Index]:
    """Split areas at random into a calibration set and a validation set.

    Within each stratum (e.g. arrondissement), ``round(fraction * n)`` areas go to
    calibration, at least one when the stratum has two areas or more, so that every stratum
    can be calibrated and validated.

    Args:
        codes: The area codes to split.
        fraction: Share of areas in the calibration set, in (0, 1).
        seed: Seed of the random split (the same seed gives the same split): an integer, or
            integers (``(seed, k)``: the k-th of several independent splits).
        strata: Stratum of each area, indexed by area_code; None for one stratum.

    Returns:
        ``(calibration, validation)``: two disjoint indexes of area codes, together `codes`.

    Raises:
        CellcensusError: If `fraction` is not in (0, 1) or a code has no stratum.
    """
    if not 0.0 < fraction < 1.0:
        raise CellcensusError(f"hold-out fraction must be in (0, 1), got {fraction}")
    index = pd.Index([str(code) for code in codes], name="area_code")
    groups = (
        pd.Series("all", index=index)
        if strata is None
        else strata.set_axis(strata.index.astype(str)).reindex(index)
    )
    if groups.isna().any():
        raise CellcensusError(
            f"hold-out strata lack area_code {list(index[groups.isna().to_numpy()])[:5]}"
        )
    rng = np.random.default_rng(seed)
    chosen: list[str] = []
    for _, members in groups.groupby(groups, sort=True):
        size = len(members)
        take = (
            min(size - 1, max(1, round(fraction * size)))
            if size > 1
            else int(rng.random() < fraction)
        )
        chosen.extend(rng.choice(members.index.to_numpy(), size=take, replace=False).tolist())
    calibration = index[index.isin(chosen)]
    return calibration, index[~index.isin(chosen)]


def compare_with_census(*, expanded: pd.DataFrame, census: pd.DataFrame) -> pd.DataFrame:
    """Put estimates beside the census, one row per census area.

    Args:
        expanded: Output of `cellcensus.nso.estimation.expand_national` (or any table with
            ``area_code``, ``estimate`` and optionally ``released_devices``).
        census: ``area_code``, ``population`` and optionally ``name`` or ``name_nl``/``name_fr``
            (as `cellcensus.reference.belgium.census_population` returns).

    Returns:
        ``area_code``, ``name``, ``released_devices``, ``estimate``, ``census``, ``error``
        (estimate minus census) and ``relative_error`` (error / census), in census order.
        Census areas missing from `expanded` get NaN estimates, like suppressed ones.
    """
    for label, table, columns in (
        ("expanded", expanded, ("area_code", "estimate")),
        ("census", census, ("area_code", "population")),
    ):
        missing = [column for column in columns if column not in table.columns]
        if missing:
            raise CellcensusError(f"{label} table lacks column(s) {missing}")
    keyed = expanded.assign(area_code=expanded["area_code"].astype(str)).set_index("area_code")
    if keyed.index.duplicated().any():
        raise CellcensusError("expanded table repeats an area_code: expected one row per area")
    if "released_devices" not in keyed.columns:
        keyed = keyed.assign(released_devices=np.nan)
    codes = census["area_code"].astype(str)
    aligned = keyed.reindex(codes)
    table = pd.DataFrame(
        {
            "area_code": codes.to_numpy(),
            "name": display_names(census).to_numpy(),
            "released_devices": aligned["released_devices"].astype("float64").to_numpy(),
            "estimate": aligned["estimate"].astype("float64").to_numpy(),
            "census": census["population"].astype("float64").to_numpy(),
        }
    )
    table["error"] = table["estimate"] - table["census"]
    table["relative_error"] = table["error"] / table["census"].where(table["census"] > 0)
    return table


def display_names(census: pd.DataFrame) -> pd.Series:
    """One name per area: ``name``, else the name in the region's language (NUTS1 code).

    Flemish (BE2) municipalities get their Dutch name, Walloon (BE3) ones their French name,
    bilingual Brussels (BE1) ones "French / Dutch" when they differ.
    """
    if "name" in census.columns:
        return census["name"].astype(str)
    if not {"name_nl", "name_fr"} <= set(census.columns):
        return census["area_code"].astype(str)
    nl, fr = census["name_nl"].astype(str), census["name_fr"].astype(str)
    both = fr.where(fr == nl, fr + " / " + nl)
    if "nuts1" not in census.columns:
        return both
    region = census["nuts1"].astype(str)
    return nl.where(region == "BE2", fr.where(region == "BE3", both))


def _clean(*, series: pd.Series, name: str) -> pd.Series:
    try:
        values = pd.to_numeric(series, errors="raise").astype("float64")
    except (TypeError, ValueError) as error:
        raise CellcensusError(f"{name} is not numeric: {error}") from None
    values.index = values.index.astype(str)
    repeated = values.index[values.index.duplicated()]
    if len(repeated):
        raise CellcensusError(f"{name} repeats area_code {sorted(set(repeated))[:5]}")
    if (values < 0).any():
        raise CellcensusError(f"{name} has negative values at {list(values.index[values < 0])[:5]}")
    return values


def _absolute_percentage_errors(*, e: np.ndarray, r: np.ndarray) -> np.ndarray:
    defined = r > 0
    return np.asarray(np.abs(e[defined] - r[defined]) / r[defined], dtype="float64")


def _slope(*, x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 2 or np.ptp(x) == 0:
        return math.nan
    return float(np.polyfit(x, y, 1)[0])


def _class_label(*, low: float, high: float) -> str:
    if math.isinf(high):
        return f"{low:,.0f} and over"
    if low <= 0:
        return f"under {high:,.0f}"
    return f"{low:,.0f} – {high:,.0f}"


def _pearson(*, x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])
