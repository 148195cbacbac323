"""Inbound tourism: the holder's foreign roamers expanded to the country's foreign visitors.

`estimate_tourism` reads an ``inbound_tourism`` release (nights spent and arrivals of foreign
roamers per area) and expands each count by the inverse of the chance that a visitor is in
the data: the holder's share of the country's inbound roaming (``roaming_share``, a fact the
holder publishes; roaming visitors pick a network by their home operator's agreements, so it
is not the market share among residents) times the sampling fraction. Nights and arrivals
are the two measures of tourism statistics (UNWTO, Eurostat); their ratio is the average
length of stay. Roamers who are not tourists (cross-border workers sleeping in the country,
foreign SIMs of residents) count as visitors too: the holder's algorithm cannot tell them
apart, and neither can this.

Each estimate has a 95 % interval from the sampling of visitors and the release's declared
noise. The sampling is of visitors, not of nights: a visitor in the data brings all of its
nights in the area, so the variance of a count of nights is that of a count of visitors times
the nights each brings (`_sampling_variance`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cellcensus.errors import CellcensusError
from cellcensus.nso.levels import MUNICIPALITY, level_of
from cellcensus.nso.uncertainty import declared_noise, noisy_interval, sampling_variance
from cellcensus.nso.validation import agreement, display_names
from cellcensus.nso.worlds import check_truth
from cellcensus.reference import (
    area_names,
    arrondissements_2019,
    census_population,
    municipalities,
)
from cellcensus.release import Release, published_period

ALGORITHM = "inbound_tourism"
INDICATORS = ("nights", "arrivals")
"""The released indicators this expands (``devices``, distinct roamers per area, carries no
weight for the stays never seen, and distinct counts do not add up over areas)."""
LEVELS = (MUNICIPALITY, "arrondissement", "province", "region")
TOURISM_LEVEL = "province"
"""Where tourism statistics are published (NUTS 2) and a visitor's night is placed well
enough (docs/algorithms/inbound_tourism.md)."""
RUN_TOURISM = (
    f"cellcensus store allocate --store STORE --level {TOURISM_LEVEL} (once), then "
    f"cellcensus run inbound_tourism --store STORE --level {TOURISM_LEVEL} --out tourism.csv"
)
"""How the holder makes the release this expands, at the level tourism is published at."""
STAYS = Path("truth") / "roamer_stays.parquet"
"""Where a synthetic world keeps its visitors' true stays (`cellcensus synth`)."""


@dataclass(frozen=True)
class Tourism:
    """Nights spent and arrivals of foreign visitors per area, expanded, with intervals.

    Attributes:
        table: One row per area and indicator (``nights``, ``arrivals``): ``area_code``,
            ``area_name``, ``indicator``, ``devices`` (released, NaN where suppressed), ``estimate``
            (visitors' nights or arrivals), ``std_error``, ``ci_lower``, ``ci_upper`` and
            ``truth`` (a synthetic world's, scaled to all its visitors; NaN when unknown).
        level: The areas' level (``province``, ...).
        selection_probability: The chance that a visitor is in the data (``roaming_share``
            times ``sampling_fraction``).
        source: The release: algorithm, version and job.
        period: First and last day of the release, when known.
    """

    table: pd.DataFrame
    level: str
    selection_probability: float
    source: str = ""
    period: tuple[date, date] | None = None

    @property
    def plural(self) -> str:
        """The areas' level in the plural, for sentences."""
        return "municipalities" if self.level == MUNICIPALITY else f"{self.level}s"

    def indicator(self, name: str) -> pd.DataFrame:
        """The rows of one indicator, indexed by area_code."""
        rows = self.table[self.table["indicator"] == name]
        return rows.set_index("area_code").drop(columns=["area_name", "indicator"])

    @property
    def average_stay(self) -> float:
        """Nights per arrival over the areas where both were released."""
        nights = self.indicator("nights")["estimate"]
        arrivals = self.indicator("arrivals")["estimate"].reindex(nights.index)
        both = nights.notna() & arrivals.notna()
        total = float(arrivals[both].sum())
        return float(nights[both].sum()) / total if total > 0 else math.nan

    def metrics(self) -> dict[str, Any]:
        """The ``inbound_tourism`` block of ``metrics.json``."""
        block: dict[str, Any] = {
            "level": self.level,
            "selection_probability": self.selection_probability,
            "average_stay_nights": self.average_stay,
        }
        for name in INDICATORS:
            rows = self.indicator(name)
            released = rows["estimate"].notna()
            block[name] = {
                "estimate": float(rows.loc[released, "estimate"].sum()),
                "n_areas": int(released.sum()),
                "n_suppressed": int((~released).sum()),
                "median_relative_std_error": float(
                    (rows["std_error"] / rows["estimate"]).where(rows["estimate"] > 0).median()
                ),
            }
            if rows["truth"].notna().any():
                measured = agreement(estimate=rows["estimate"], reference=rows["truth"])
                block[name] |= {
                    "truth_in_released_areas": float(rows.loc[released, "truth"].sum()),
                    "pearson_r": measured.pearson_r,
                    "weighted_ape": measured.weighted_ape,
                    "relative_bias": measured.relative_bias,
                    "interval_coverage": _coverage(rows[released]),
                }
        return block


def estimate_tourism(
    release: Release,
    *,
    roaming_share: float | None = None,
    world: Path | None = None,
    source: str = "the inbound tourism release",
) -> Tourism:
    """Expand an ``inbound_tourism`` release to the country's foreign visitors.

    Args:
        release: Nights and arrivals per area, as the enclave released them.
        roaming_share: The holder's share of inbound roaming visitors (default: the one the
            release publishes).
        world: A synthetic world's folder, to set its true nights and arrivals beside.
        source: What to call the release in messages (its file).

    Raises:
        CellcensusError: The release is not one this can expand (`check_tourism_release`),
            no roaming share is given or published, or `world` holds no true stays.
    """
    level, parent = check_tourism_release(release, source=source)
    probability = _selection_probability(release, roaming_share=roaming_share, source=source)
    table = _expanded(release, probability=probability)
    truth = None if world is None else tourism_truth(world, release=release, parent=parent)
    keys = pd.MultiIndex.from_frame(table[["area_code", "indicator"]])
    table["truth"] = np.nan if truth is None else truth.reindex(keys).fillna(0.0).to_numpy()
    named = _names(level).reindex(table["area_code"]).to_numpy()
    table.insert(1, "area_name", np.where(pd.isna(named), table["area_code"], named))
    return Tourism(
        table=table,
        level=level,
        selection_probability=probability,
        source=f"{release.provenance.algorithm} {release.provenance.version}, "
        f"job {release.provenance.job_id}",
        period=published_period(release.published),
    )


def check_tourism_release(release: Release, *, source: str) -> tuple[str, pd.Series | None]:
    """Refuse a release this cannot expand; else its level and each municipality's area.

    Raises:
        CellcensusError: The release is of another algorithm, lacks a column or an
            indicator, or its areas are of no Belgian level (a grid, say).
    """
    algorithm = release.provenance.algorithm
    if algorithm != ALGORITHM:
        raise CellcensusError(
            f"{source} is a release of {algorithm}, not of {ALGORITHM}; ask the holder for "
            f"`{RUN_TOURISM}`"
        )
    table = release.table
    missing = [name for name in ("area_code", "indicator", "device_count") if name not in table]
    if missing:
        raise CellcensusError(
            f"{source} lacks the column(s) {', '.join(missing)} of an {ALGORITHM} release; "
            "give the file `cellcensus run` wrote, unchanged"
        )
    absent = [name for name in INDICATORS if name not in set(table["indicator"].astype(str))]
    if absent:
        raise CellcensusError(f"{source} has no {' or '.join(absent)} rows; give the whole release")
    areas = municipalities()
    codes = pd.Index(table["area_code"].astype(str).unique())
    level = level_of(codes, areas, levels=LEVELS)
    if level is None:
        raise CellcensusError(
            f"{source}: its areas (e.g. {', '.join(codes[:3])}) are no Belgian municipalities, "
            "arrondissements, provinces or regions, so no truth or total can be set beside "
            f"them; ask the holder for `{RUN_TOURISM}`"
        )
    return level, _parent(level, codes=codes, areas=areas)


def _parent(level: str, *, codes: pd.Index, areas: pd.DataFrame) -> pd.Series | None:
    """Each 2011 municipality's area of `level` (None: the municipalities themselves)."""
    if level == MUNICIPALITY:
        return None
    if level == "arrondissement" and not codes.isin(areas["arrondissement"].astype(str)).all():
        return arrondissements_2019().astype(str)  # the holder's arrondissements of 2019
    return pd.Series(
        areas[level].astype(str).to_numpy(), index=areas["area_code"].astype(str), name=level
    )


def _names(level: str) -> pd.Series:
    """Each area's name in the language of its region, by area_code."""
    table = census_population() if level == MUNICIPALITY else area_names(level)
    return pd.Series(display_names(table).to_numpy(), index=table["area_code"].astype(str))


def _selection_probability(release: Release, *, roaming_share: float | None, source: str) -> float:
    """``roaming_share * sampling_fraction``: the chance that a visitor is in the data."""
    published: Mapping[str, Any] = release.published
    share = roaming_share if roaming_share is not None else published.get("roaming_share")
    if share is None:
        raise CellcensusError(
            f"{source} publishes no roaming_share (the holder's share of the country's "
            "inbound roaming visitors): give it with --roaming-share, from the holder or "
            "the roaming agreements' traffic figures"
        )
    fraction = float(published.get("sampling_fraction") or 1.0)
    probability = float(share) * fraction
    if not 0.0 < probability <= 1.0:
        raise CellcensusError(
            f"roaming share {share!r} times sampling fraction {fraction!r} is {probability:g}; "
            "the roaming share must be in (0, 1]"
        )
    return probability


def _expanded(release: Release, *, probability: float) -> pd.DataFrame:
    """The nights and arrivals rows, expanded, with their standard errors and intervals."""
    table = release.table
    declared = declared_noise(release=release)
    rows = pd.DataFrame(
        {
            "area_code": table["area_code"].astype(str).to_numpy(),
            "indicator": table["indicator"].astype(str).to_numpy(),
            "devices": pd.to_numeric(table["device_count"], errors="coerce").to_numpy("float64"),
            "noise": declared.per_count().to_numpy(),
            "laplace": declared.laplace_scale().to_numpy(),
        }
    )
    rows = rows[rows["indicator"].isin(INDICATORS)].reset_index(drop=True)
    weight = 1.0 / probability
    variance = _sampling_variance(rows, probability) + rows["noise"]
    rows["estimate"] = rows["devices"] * weight
    rows = rows.join(
        noisy_interval(
            rows["estimate"],
            variance.pow(0.5) * weight,
            laplace=rows["laplace"] * weight,
        )
    )
    columns = ["devices", "estimate", "std_error", "ci_lower", "ci_upper"]
    return rows[["area_code", "indicator", *columns]]


def _sampling_variance(rows: pd.DataFrame, probability: float) -> pd.Series:
    """Binomial variance of each count from the sampling of visitors, in released units.

    A visitor's nights come in or stay out together: a count of nights ``N`` made of stays
    of ``n_i`` nights varies as a count of ``sum n_i² = N m`` with ``m = E[n²] / E[n]``. Of
    the stays only their mean ``n`` is known (the area's nights per arrival, at least 1; the
    country's where either is suppressed); they are taken as geometric, the most spread
    lengths with that mean, whose ``m = 2 n - 1``. An arrival is one visitor.
    """
    wide = rows.pivot_table(index="area_code", columns="indicator", values="devices")
    wide = wide.reindex(columns=list(INDICATORS))
    stay = (wide["nights"] / wide["arrivals"]).replace([np.inf, -np.inf], np.nan)
    known = wide.dropna()
    overall = known["nights"].sum() / known["arrivals"].sum() if len(known) else 1.0
    mean = stay.fillna(overall if np.isfinite(overall) else 1.0).clip(lower=1.0)
    nights = (rows["indicator"] == "nights").to_numpy()
    per_visitor = np.where(nights, 2.0 * mean.reindex(rows["area_code"]).to_numpy() - 1.0, 1.0)
    return sampling_variance(rows["devices"] * per_visitor, probability)


def tourism_truth(
    world: Path, *, release: Release, parent: pd.Series | None = None
) -> pd.Series | None:
    """A synthetic world's true nights and arrivals of all its visitors, per area.

    The nights of evenings the release's period sees (its first morning's night to its last
    evening's, as the algorithm dates them) and one arrival per stay with a night in them
    (a stay begun before the period arrives on its first night in it, as the algorithm counts
    it), per the area of the accommodation (or its `parent`). The world makes only the
    holder's visitors, ``market_share * scale`` of all (its parameters in ``world.json``):
    the counts are divided by that, so they speak of all visitors as the estimates do.

    Returns:
        Indexed by (area_code, indicator); None when `world` holds no stays (real data).

    Raises:
        CellcensusError: The release publishes no period, or is not of synthetic data.
    """
    path = world / STAYS
    if not path.is_file():
        return None
    check_truth(world, release=release, truth=STAYS, what="inbound tourism")
    period = published_period(release.published)
    if period is None:
        raise CellcensusError("the inbound tourism release publishes no period to set truth in")
    stays = pd.read_parquet(path, columns=["arrival", "nights", "area"])
    zone = str(release.published.get("timezone") or "Europe/Brussels")
    first = pd.to_datetime(stays["arrival"]).dt.tz_convert(zone).dt.tz_localize(None)
    first = first.dt.normalize()  # the local date of the first night's evening
    last = first + pd.to_timedelta(stays["nights"] - 1, unit="D")
    nights_in = _overlap(first, last, start=period[0] - timedelta(days=1), end=period[1])
    areas = stays["area"].astype(str)
    if parent is not None:
        areas = pd.Series(parent.reindex(areas).to_numpy(), index=stays.index)
    counted = pd.DataFrame({"area_code": areas, "nights": nights_in, "arrivals": nights_in > 0})
    per_area = counted.groupby("area_code")[list(INDICATORS)].sum().astype("float64")
    truth = pd.Series(per_area.stack(), name="truth")
    truth.index.names = ["area_code", "indicator"]
    return truth / _world_selection(world)


def _overlap(first: pd.Series, last: pd.Series, *, start: date, end: date) -> np.ndarray:
    """Nights from `first` to `last` (a stay's; none if before) within `start` to `end`."""
    lower = np.maximum(first.to_numpy("datetime64[D]"), np.datetime64(start, "D"))
    upper = np.minimum(last.to_numpy("datetime64[D]"), np.datetime64(end, "D"))
    days = (upper - lower).astype("int64") + 1
    nights: np.ndarray = np.maximum(days, 0)
    return nights


def _world_selection(world: Path) -> float:
    """The share of all visitors a synthetic world makes: its market share times its scale."""
    parameters = json.loads((world / "world.json").read_text(encoding="utf-8"))["parameters"]
    return float(parameters["market_share"]) * float(parameters["scale"])


def _coverage(rows: pd.DataFrame) -> float:
    """Share of the rows whose interval holds the truth."""
    inside = (rows["ci_lower"] <= rows["truth"]) & (rows["truth"] <= rows["ci_upper"])
    return float(inside.mean()) if len(rows) else math.nan
