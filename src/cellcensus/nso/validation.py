"""Agreement between population estimates and a reference (the census).

All measures are computed over the areas the reference covers, aligned on ``area_code``.
Absolute percentage errors are fractions (0.1 means 10 %).
"""

from __future__ import annotations

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
        weighted_ape: ``sum |e - r| / sum r``: the population-weighted absolute percentage
            error, i.e. the share of persons placed in the wrong area.
        n_areas: Number of areas compared (reference and estimate both present).
        n_suppressed: Number of areas of the reference without an estimate (suppressed by the
            holder or not released).
    """

    pearson_r: float
    log_pearson_r: float
    ape_median: float
    ape_p90: float
    weighted_ape: float
    n_areas: int
    n_suppressed: int

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
    compared = est.notna()
    e = est[compared].to_numpy(dtype="float64")
    r = ref[compared].to_numpy(dtype="float64")
    ape = _absolute_percentage_errors(e=e, r=r)
    positive = (e > 0) & (r > 0)
    return Agreement(
        pearson_r=_pearson(x=e, y=r),
        log_pearson_r=_pearson(x=np.log(e[positive]), y=np.log(r[positive])),
        ape_median=float(np.median(ape)) if ape.size else float("nan"),
        ape_p90=float(np.quantile(ape, 0.9)) if ape.size else float("nan"),
        weighted_ape=float(np.abs(e - r).sum() / r.sum()) if r.sum() > 0 else float("nan"),
        n_areas=int(compared.sum()),
        n_suppressed=int((~compared).sum()),
    )


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
            "name": _display_names(census).to_numpy(),
            "released_devices": aligned["released_devices"].astype("float64").to_numpy(),
            "estimate": aligned["estimate"].astype("float64").to_numpy(),
            "census": census["population"].astype("float64").to_numpy(),
        }
    )
    table["error"] = table["estimate"] - table["census"]
    table["relative_error"] = table["error"] / table["census"].where(table["census"] > 0)
    return table


def _display_names(census: pd.DataFrame) -> pd.Series:
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


def _pearson(*, x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])
