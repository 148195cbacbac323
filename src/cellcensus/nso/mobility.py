"""Present population by hour and home-work flows, expanded to persons and validated.

Both start from a release of the enclave and from the residents' `EstimationResult`, whose
default estimator gives each area its persons per released device; the mobility counts are
expanded with those same factors, so that they speak of persons as the resident figures do.

- `estimate_present_population`: ``present_population`` (hourly, municipalities), expanded
  with the residents' factors and scaled, hour by hour, so that the phones located at that
  hour stand for every resident (phones silent beyond the carrying limits are located
  at no hour, and more of them at night), averaged over the weekdays of the release after
  its first day (no position comes into its first night from before the period, so its
  early hours may undercount). Checked against the
  census commuting of Brussels-Capital (jobs against resident workers) and, when the data
  are synthetic, against the true hourly presence.
- `estimate_commuting`: ``home_work_flows`` released between arrondissements (2019 codes,
  those of the census commuting table), expanded with the home arrondissement's factor,
  calibrated to the resident workers of each home arrondissement and compared with the census
  2011 commuting matrix. The phones' work place is any place visited on weekdays in working
  hours, so the expanded flows count pupils, students and others with a daily routine as
  well as workers (on the synthetic world about half the devices with a work place are
  workers'): their level is not the workers', their split over work places is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import shapely

from cellcensus.errors import CellcensusError
from cellcensus.nso.expansion import Expansion
from cellcensus.nso.production import EstimationResult
from cellcensus.nso.uncertainty import (
    CI95_Z,
    cross_fitted_model_error,
    declared_noise,
    noisy_interval,
    normal_interval,
    sampling_variance,
    size_class_model_error,
)
from cellcensus.nso.validation import Agreement, agreement
from cellcensus.reference import belgium
from cellcensus.release import Release, published_period

BRUSSELS_REGION = "4000"
"""Region code of Brussels-Capital."""
BRUSSELS_ARRONDISSEMENT = "21000"
"""Arrondissement code of Brussels-Capital (the region is one arrondissement)."""
NIGHT_HOUR = 3
"""Local hour shown as night (03:00-04:00)."""
DAY_HOUR = 11
"""Local hour shown as day (11:00-12:00)."""


def area_factors(residents: EstimationResult, *, parent: pd.Series | None = None) -> pd.Series:
    """Persons per released device of each area under the residents' default estimator.

    Args:
        residents: The residents' estimation.
        parent: The area (e.g. arrondissement) of each of the residents' areas, to give the
            factors of those larger areas (their persons over their released devices).

    Returns:
        Indexed by area_code; where the area's count was suppressed (a parent: the counts of
        all its areas), the ratio of all estimated residents to all released devices (also in
        ``attrs["overall"]``).
    """
    table = residents.best.table
    devices = table["released_devices"].astype("float64")
    estimate = table["estimate"].astype("float64")
    known = estimate.notna() & devices.gt(0) & estimate.gt(0)
    overall = float(estimate[known].sum() / devices[known].sum()) if known.any() else math.nan
    if parent is not None:
        parents = parent.reindex(table.index)
        every = pd.Index(parents.dropna().unique(), name="area_code")
        # A parent none of whose areas was released keeps a factor: the overall one.
        estimate = estimate[known].groupby(parents[known]).sum().reindex(every)
        devices = devices[known].groupby(parents[known]).sum().reindex(every)
    ratio = estimate / devices.where(devices > 0)
    fine = ratio.notna() & np.isfinite(ratio) & (ratio > 0)
    factors = ratio.where(fine, overall).astype("float64").rename("factor")
    factors.attrs["overall"] = overall
    return factors


def parent_areas(areas: pd.DataFrame, parent: pd.Series) -> pd.DataFrame:
    """`areas` (area_code, region, area_km2, geometry) merged into their parents' areas."""
    keyed = areas.assign(area_code=parent.reindex(areas["area_code"].astype(str)).to_numpy())
    groups = keyed.groupby("area_code", sort=True)
    return pd.DataFrame(
        {
            "area_code": list(groups.groups),
            "region": groups["region"].first().astype(str).to_numpy(),
            "area_km2": groups["area_km2"].sum().to_numpy(),
            "geometry": [
                shapely.coverage_union_all(frame["geometry"].to_numpy()) for _, frame in groups
            ],
        }
    )


@dataclass(frozen=True)
class PresentPopulation:
    """Present population per area and hour, expanded to persons.

    Attributes:
        long: One row per local_date, slot and area_code: ``devices`` (released, NaN where
            suppressed), ``estimate`` (persons), and its ``std_error``, ``ci_lower`` and
            ``ci_upper`` (95 %, from sampling and the declared noise: `_present_variances`).
        weekday_table: Mean over the weekdays of `long`'s estimates: area_code, slot,
            ``days`` (weekdays with an estimate), ``estimate``, ``std_error``, ``ci_lower``
            and ``ci_upper`` (95 %, `_weekday_means`); `weekday` is its pivot.
        weekdays: The dates averaged.
        regions: Region code of every area_code.
        night_hour: Hour shown as night.
        day_hour: Hour shown as day.
        census_jobs: Jobs located in Brussels-Capital (census 2011 commuting).
        census_resident_workers: Workers resident in Brussels-Capital (idem).
        census_population: Residents of Brussels-Capital (census 2011).
        truth: Where the data are synthetic: true persons present (of a sample) per
            local_date, slot and area_code, column ``persons``; else None.
        source: The release: algorithm, version and job.
        areas: The release's areas (area_code, region, area_km2, geometry), for maps.
        level: What those areas are (municipality, arrondissement), for the words.
        noise: Indexed like `long`: ``variance``, the declared noise and rounding variance
            of each released count, ``sampling``, its sampling variance, and ``scaled``,
            whether the count is in its hour's scale (`_scaled_rows`); None when not known.
        timezone: The time zone of the release's local hours, when it publishes it.
        skipped_hours: The local hours of the release that the clocks skip in `timezone`
            (``2011-03-27T02:00``), left out of `long` (`estimate_present_population`).
        model_error: Relative model error ``tau`` of each area (indexed by area_code), in
            every interval of the area: fitted on the night hour against the residents of
            the other areas (`_night_model_error`, leave-one-out); None when not fitted.
    """

    long: pd.DataFrame
    weekday_table: pd.DataFrame
    weekdays: tuple[str, ...]
    regions: pd.Series
    night_hour: int
    day_hour: int
    census_jobs: float
    census_resident_workers: float
    census_population: float
    truth: pd.DataFrame | None = None
    source: str = ""
    areas: pd.DataFrame | None = None
    level: str = "municipality"
    noise: pd.DataFrame | None = None
    timezone: str | None = None
    skipped_hours: tuple[str, ...] = ()
    model_error: pd.Series | None = None

    @property
    def median_model_error(self) -> float:
        """Median of the areas' `model_error` (0 when not fitted)."""
        tau = self.model_error
        return 0.0 if tau is None or tau.dropna().empty else float(tau.median())

    @cached_property
    def repeated_hours(self) -> tuple[str, ...]:
        """The local hours of `long` that the clocks repeat: each covers two hours."""
        repeated = _clock_hours(self.long, self.timezone, _lasts_longer)
        return tuple(_hour_label(day, slot) for day, slot in repeated)

    @cached_property
    def weekday(self) -> pd.DataFrame:
        """The weekday means as area_code (every one of `regions`) by slot (0-23)."""
        table = self.weekday_table.pivot(index="area_code", columns="slot", values="estimate")
        return table.reindex(self.regions.index)

    def region_areas(self, region: str = BRUSSELS_REGION) -> pd.Index:
        """Areas of `region` with an estimate at every hour of the weekday means.

        The others are left out of the region's totals, so that what is summed does not
        change from hour to hour as counts are withheld.
        """
        inside = (self.regions.reindex(self.weekday.index) == region).to_numpy()
        complete = self.weekday.notna().all(axis=1).to_numpy()
        return self.weekday.index[inside & complete]

    def region_hourly(self, region: str = BRUSSELS_REGION) -> pd.Series:
        """Estimated persons present in `region` per hour of a weekday (see `region_areas`)."""
        return self.weekday.loc[self.region_areas(region)].sum(min_count=1)

    def day_night_ratio(self, region: str = BRUSSELS_REGION) -> float:
        """Persons present in `region` at the day hour over those present at the night hour."""
        hourly = self.region_hourly(region)
        return _ratio(hourly.get(self.day_hour, math.nan), hourly.get(self.night_hour, math.nan))

    def day_night_ratio_ci95(self, region: str = BRUSSELS_REGION) -> tuple[float, float]:
        """Approximate 95 % interval of `day_night_ratio` from sampling and the declared noise.

        Delta method on the two hourly sums the ratio divides (`_hourly_variances`). Their
        noise is independent. Their sampling is not: a phone present at both hours counts in
        both, which raises both sums together and so narrows the ratio's spread, but how
        many phones do the release does not say. The interval takes their covariance as
        none: conservative wherever more phones stay in the region from night to day than
        chance would put there (every region whose residents mostly stay), and exact where
        the hours' phones are independent. Model error is not in it. NaN when the noise is
        not known.
        """
        ratio = self.day_night_ratio(region)
        if self.noise is None or math.isnan(ratio):
            return math.nan, math.nan
        night = float(self.region_hourly(region).get(self.night_hour, math.nan))
        day_variance = sum(self._hourly_variances(region, self.day_hour))
        night_variance = sum(self._hourly_variances(region, self.night_hour))
        half = CI95_Z * math.sqrt(day_variance + ratio**2 * night_variance) / night
        return ratio - half, ratio + half

    def _hourly_variances(self, region: str, hour: int) -> tuple[float, float]:
        """Sampling and noise variances of `region_hourly`'s value at `hour`.

        That value is a mean over weekdays. On a date, the region's estimate is
        ``R * x_reg / x_scaled`` (persons ``x`` scaled so that the scaled areas hold their
        residents ``R``), so a count ``D_a`` moves it by ``m_a (1[a in region] - q 1[a
        scaled])``, with ``m_a`` its persons per device and ``q`` the region's share of
        ``R``. The same phones are sampled every day, so the days' sampling errors are
        shared (their standard deviations average, as in `_weekday_means`); each day's
        noise is drawn anew (its variance divides by the days).
        """
        assert self.noise is not None
        dates = self.weekdays or tuple(sorted(self.long["local_date"].unique()))
        rows = self.long["local_date"].isin(dates) & (self.long["slot"] == hour)
        hours = self.long[rows].assign(**self.noise[rows])
        inside = hours["area_code"].isin(self.region_areas(region))
        sampling_sd, noise = 0.0, 0.0
        for _, day in hours.groupby("local_date"):
            within = inside.reindex(day.index).to_numpy()
            per_device = (day["estimate"] / day["devices"].where(day["devices"] > 0)).fillna(0.0)
            scaled = day["scaled"].to_numpy(dtype=bool)
            share = day.loc[within, "estimate"].sum() / day.loc[scaled, "estimate"].sum()
            gradient = per_device * (within - share * scaled)
            sampling_sd += math.sqrt(float((gradient**2 * day["sampling"]).sum()))
            noise += float((gradient**2 * day["variance"]).sum())
        return (sampling_sd / len(dates)) ** 2, noise / len(dates) ** 2

    @property
    def median_relative_std_error(self) -> float:
        """Median standard error of the estimates above zero, as a share of the estimate."""
        return _median_relative(self.long)

    def truth_hourly(self, region: str = BRUSSELS_REGION) -> pd.Series | None:
        """True persons (of the sample) present in `region` per weekday hour, if known."""
        if self.truth is None:
            return None
        truth = self.truth[self.truth["local_date"].isin(self.weekdays)]
        inside = truth["area_code"].isin(self.region_areas(region)).to_numpy()
        days = max(len(self.weekdays), 1)
        hourly: pd.Series = truth[inside].groupby("slot")["persons"].sum() / days
        return hourly

    def truth_day_night_ratio(self, region: str = BRUSSELS_REGION) -> float | None:
        """`day_night_ratio` of the true presence, if known."""
        truth = self.truth_hourly(region)
        if truth is None:
            return None
        return _ratio(truth.get(self.day_hour, math.nan), truth.get(self.night_hour, math.nan))

    @property
    def census_job_ratio(self) -> float:
        """Jobs in Brussels-Capital per resident worker (census 2011)."""
        return _ratio(self.census_jobs, self.census_resident_workers)

    @property
    def census_day_night_ratio(self) -> float:
        """Daytime over night-time population of Brussels-Capital implied by the census.

        ``(residents + jobs - resident workers) / residents``: every worker at work, nobody
        else moving; an upper bound of what a weekday hour can show.
        """
        extra = self.census_jobs - self.census_resident_workers
        return _ratio(self.census_population + extra, self.census_population)

    def truth_agreement(self) -> Agreement | None:
        """Estimates against the true presence per municipality and hour (r is what counts).

        The truth follows a sample of persons, so only correlations and the log slope are
        meaningful, not the errors in persons.
        """
        if self.truth is None:
            return None
        keys = ["local_date", "slot", "area_code"]
        kept = self.long[self.long["local_date"].isin(self.weekdays)]
        estimate = kept.set_index(keys)["estimate"]
        truth = self.truth.set_index(keys)["persons"].astype("float64")
        truth = truth.reindex(estimate.index).fillna(0.0)
        flat = pd.Index(["|".join(map(str, key)) for key in estimate.index])
        return agreement(
            estimate=pd.Series(estimate.to_numpy(), index=flat),
            reference=pd.Series(truth.to_numpy(), index=flat),
        )

    def metrics(self) -> dict[str, Any]:
        """The ``present_population`` block of ``metrics.json``."""
        block: dict[str, Any] = {
            "night_hour": self.night_hour,
            "day_hour": self.day_hour,
            "weekdays": list(self.weekdays),
            "brussels_day_night_ratio": self.day_night_ratio(),
            "brussels_day_night_ratio_ci95": list(self.day_night_ratio_ci95()),
            "brussels_night_persons": float(self.region_hourly().get(self.night_hour, math.nan)),
            "brussels_day_persons": float(self.region_hourly().get(self.day_hour, math.nan)),
            "brussels_areas_compared": len(self.region_areas()),
            "census_brussels_jobs_per_resident_worker": self.census_job_ratio,
            "census_brussels_day_night_ratio": self.census_day_night_ratio,
            "n_suppressed": int(self.long["devices"].isna().sum()),
            "n_keys": len(self.long),
            "skipped_local_hours": list(self.skipped_hours),
            "repeated_local_hours": list(self.repeated_hours),
            "median_relative_std_error": self.median_relative_std_error,
            "model_error": self.median_model_error,
        }
        truth = self.truth_day_night_ratio()
        if truth is not None:
            block["truth_brussels_day_night_ratio"] = truth
        measured = self.truth_agreement()
        if measured is not None:
            block["truth_pearson_r"] = measured.pearson_r
            block["truth_log_pearson_r"] = measured.log_pearson_r
            block["truth_n_keys"] = measured.n_areas
        return block


def estimate_present_population(
    *,
    release: Release,
    residents: EstimationResult,
    areas: pd.DataFrame | None = None,
    truth: pd.DataFrame | None = None,
    night_hour: int = NIGHT_HOUR,
    day_hour: int = DAY_HOUR,
    warm_up_days: int = 1,
    parent: pd.Series | None = None,
    level: str = "municipality",
) -> PresentPopulation:
    """Expand a ``present_population`` release (hourly) to persons.

    The hours the clocks skip in the release's published time zone are left out (see
    `local_hour`); those they repeat stay, each one row over two hours.

    Args:
        release: ``local_date``, ``slot`` (local hour), ``area_code``, ``device_count``.
        residents: The residents' estimation of the same period.
        areas: ``area_code`` and ``region`` of the release's areas, and ``area_km2`` and
            ``geometry`` to map them (default: Belgian municipalities 2011).
        truth: Optional ``local_date``, ``slot``, ``area_code``, ``persons``: the true
            presence (synthetic data only), see `presence_counts`.
        night_hour: Hour shown as night.
        day_hour: Hour shown as day.
        warm_up_days: First dates of the release left out of the means (when later ones
            exist): no position comes in from before the period, so the first night
            counts only the phones active since midnight or placed back from the morning.
        parent: When the release's areas are larger than the residents' (e.g.
            arrondissements), the release area of each of the residents' areas.
        level: What the release's areas are, for the words of the report.

    Returns:
        The present population, per date and hour, and averaged over weekdays.

    Raises:
        CellcensusError: If the release lacks a column or is not hourly.
    """
    _check_columns(
        release, "present_population", ("local_date", "slot", "area_code", "device_count")
    )
    if int(release.table["slot"].max()) > 23:
        raise CellcensusError("present_population release is not hourly: ask slot_minutes=60")
    area_table = areas if areas is not None else belgium.municipalities()
    release, long, skipped = _without_skipped_hours(release)
    factors = area_factors(residents, parent=parent).reindex(long["area_code"])
    per_device = pd.Series(factors.to_numpy(), index=long.index)
    resident_persons = _resident_persons(residents, parent=parent)
    persons = long["devices"] * per_device
    hour_scale = _hour_scale(long=long.assign(persons=persons), residents=resident_persons)
    long["estimate"] = persons * hour_scale
    noise = _present_noise(
        long=long, release=release, residents=residents, resident_persons=resident_persons
    )
    parts = _present_variances(long=long, noise=noise, per_device=per_device * hour_scale)
    weekdays = _averaged_weekdays(long, warm_up_days=warm_up_days)
    chosen = long["local_date"].isin(weekdays) if weekdays else long["local_date"].notna()
    tau = _night_model_error(
        night=_weekday_means(long[chosen & (long["slot"] == night_hour)].join(parts)),
        residents=resident_persons,
        areas=long.groupby("area_code")["estimate"].mean(),
    )
    row_tau = pd.Series(tau.reindex(long["area_code"]).to_numpy(), index=long.index)
    parts["model"] = (row_tau * long["estimate"]) ** 2
    spread = (parts["sampling"] + parts["noise"] + parts["model"]) ** 0.5
    long = long.join(noisy_interval(long["estimate"], spread, laplace=parts["laplace"]))
    jobs, workers, population = _brussels_census()
    return PresentPopulation(
        long=long,
        weekday_table=_weekday_means(long[chosen].join(parts)),
        weekdays=weekdays,
        regions=pd.Series(
            area_table["region"].astype(str).to_numpy(),
            index=pd.Index(area_table["area_code"].astype(str).to_numpy(), name="area_code"),
        ),
        night_hour=night_hour,
        day_hour=day_hour,
        census_jobs=jobs,
        census_resident_workers=workers,
        census_population=population,
        truth=truth,
        source=_source(release),
        areas=area_table,
        level=level,
        noise=noise,
        timezone=release.published.get("timezone"),
        skipped_hours=tuple(_hour_label(day, slot) for day, slot in skipped),
        model_error=tau,
    )


def _check_columns(release: Release, algorithm: str, columns: tuple[str, ...]) -> None:
    """Refuse a release of `algorithm` that lacks any of `columns`, naming them."""
    missing = [c for c in columns if c not in release.table]
    if missing:
        raise CellcensusError(f"{algorithm} release lacks column(s) {missing}")


def _without_skipped_hours(
    release: Release,
) -> tuple[Release, pd.DataFrame, list[tuple[str, int]]]:
    """A present population release without the hours the clocks skip in its time zone.

    Returns:
        The release without those hours' rows (its noise is declared row by row); its
        counts as local_date, slot, area_code and ``devices`` (NaN where suppressed),
        without them too; and the (local_date, slot) pairs left out.
    """
    table = release.table
    long = pd.DataFrame(
        {
            "local_date": table["local_date"].astype(str).str[:10].to_numpy(),
            "slot": table["slot"].astype("int64").to_numpy(),
            "area_code": table["area_code"].astype(str).to_numpy(),
            "devices": pd.to_numeric(table["device_count"], errors="coerce")
            .astype("float64")
            .to_numpy(),
        }
    )
    skipped = _clock_hours(long, release.published.get("timezone"), lambda hour: hour is None)
    # Every date of the release has every slot, but a skipped hour counts only the phones
    # carried into it from the hours around: not a figure of any real hour.
    kept = ~pd.MultiIndex.from_frame(long[["local_date", "slot"]]).isin(skipped)
    release = replace(release, table=table[kept].reset_index(drop=True))
    return release, long[kept].reset_index(drop=True), skipped


def _resident_persons(residents: EstimationResult, *, parent: pd.Series | None) -> pd.Series:
    """The residents' default estimates per area, or summed into their `parent` areas."""
    estimate = residents.best.table["estimate"].astype("float64")
    if parent is None:
        return estimate
    return estimate.groupby(parent.reindex(estimate.index)).sum(min_count=1)


def _present_noise(
    *,
    long: pd.DataFrame,
    release: Release,
    residents: EstimationResult,
    resident_persons: pd.Series,
) -> pd.DataFrame:
    """Per count of `long` (the rows of `release`): the columns of `PresentPopulation.noise`.

    Also ``laplace``, the scale of the count's Laplace noise (for `_present_variances`).
    """
    declared = declared_noise(release=release)
    return pd.DataFrame(
        {
            "variance": declared.per_count().to_numpy(),
            "laplace": declared.laplace_scale().to_numpy(),
            "sampling": sampling_variance(long["devices"], selection_probability(residents)),
            "scaled": _scaled_rows(long=long, residents=resident_persons),
        },
        index=long.index,
    )


def _averaged_weekdays(long: pd.DataFrame, *, warm_up_days: int) -> tuple[str, ...]:
    """The weekdays among `long`'s dates, after its first `warm_up_days` if later ones exist."""
    dates = pd.to_datetime(pd.Series(sorted(long["local_date"].unique())))
    if len(dates) > warm_up_days:
        dates = dates.iloc[warm_up_days:]
    return tuple(sorted(d.strftime("%Y-%m-%d") for d in dates[dates.dt.day_of_week < 5]))


def local_hour(local_date: str, hour: int, timezone: str) -> tuple[datetime, timedelta] | None:
    """When local `hour` of `local_date` starts in `timezone`, and how long it lasts.

    None where the clocks skip the hour (the change to summer time). An hour the clocks
    repeat (the change back) starts at its first occurrence, in the summer offset, and
    lasts two hours: a slot of the release is a local clock hour, so it covers both.
    """
    zone = ZoneInfo(timezone)
    midnight = datetime.combine(date.fromisoformat(local_date[:10]), time(), tzinfo=zone)
    start = midnight + timedelta(hours=hour)  # wall-clock sum: the first occurrence
    if start.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != start.replace(tzinfo=None):
        return None  # a skipped wall time comes back from UTC as another one
    end = start + timedelta(hours=1)
    return start, end.astimezone(UTC) - start.astimezone(UTC)


def _clock_hours(
    long: pd.DataFrame,
    timezone: str | None,
    chosen: Callable[[tuple[datetime, timedelta] | None], bool],
) -> list[tuple[str, int]]:
    """The (local_date, slot) pairs of `long` whose `local_hour` in `timezone` is `chosen`."""
    if timezone is None:
        return []
    hours = long[["local_date", "slot"]].drop_duplicates()
    pairs = sorted(hours.itertuples(index=False, name=None))
    return [(day, slot) for day, slot in pairs if chosen(local_hour(day, slot, timezone))]


def _lasts_longer(hour: tuple[datetime, timedelta] | None) -> bool:
    return hour is not None and hour[1] > timedelta(hours=1)


def _hour_label(local_date: str, slot: int) -> str:
    return f"{local_date}T{slot:02d}:00"


def _scaled_rows(*, long: pd.DataFrame, residents: pd.Series) -> pd.Series:
    """Rows in their hour's scale (`_hour_scale`): counted every hour of the date, resident."""
    released = long["devices"].notna()
    complete = released.groupby([long["local_date"], long["area_code"]]).transform("all")
    has_residents = residents.reindex(long["area_code"]).notna().to_numpy()
    return complete & has_residents


def selection_probability(residents: EstimationResult) -> float:
    """Probability that a person is in the data: market share times sampling fraction.

    Both are the holder's published facts, which the residents' release carries.
    """
    published = residents.published
    return float(published["market_share"]) * float(published["sampling_fraction"])


def _present_variances(
    *, long: pd.DataFrame, noise: pd.DataFrame, per_device: pd.Series
) -> pd.DataFrame:
    """Per row: its estimate's variance from ``sampling`` and from ``noise`` (and rounding).

    Also ``laplace``, the scale of its own count's Laplace noise in persons
    (`noisy_interval`).

    Delta method on ``e_a = R m_a D_a / X``: a count ``D_a`` times its persons per device
    ``m_a``, scaled so that the hour's scaled rows hold their residents ``R`` (``X``: their
    persons before the scale). With ``u_b`` the persons per device after the scale and
    ``q_a = e_a / R``, ``D_a`` moves it by ``u_a (1 - q_a s_a)`` and each other scaled
    count ``D_b`` by ``-q_a u_b``; counts' sampling and noise are independent. Model error
    (where the phones' people are not the residents) is not in it.
    """
    scaled = noise["scaled"].to_numpy(dtype=bool)
    hour = [long["local_date"], long["slot"]]
    share = long["estimate"] / long["estimate"].where(scaled, 0.0).groupby(hour).transform("sum")
    weight = per_device * (1.0 - share * scaled)

    def spread(variance: pd.Series) -> pd.Series:
        own = (per_device**2 * variance).where(scaled, 0.0)
        every = own.groupby(hour).transform("sum")
        moved: pd.Series = weight**2 * variance + share**2 * (every - own)
        return moved

    return pd.DataFrame(
        {
            "sampling": spread(noise["sampling"]),
            "noise": spread(noise["variance"]),
            "laplace": (weight * noise["laplace"]).abs(),
        }
    )


def _as_expansion(name: str, estimate: pd.Series, *, index: pd.Index) -> Expansion:
    """Estimates already in persons as an `Expansion` (factor 1), for the model error's fit."""
    values = pd.Series(estimate.to_numpy(dtype="float64"), index=index)
    ones = pd.Series(1.0, index=index)
    return Expansion(name=name, devices=values, estimate=values, factor=ones, gradient=ones)


def _night_model_error(*, night: pd.DataFrame, residents: pd.Series, areas: pd.Series) -> pd.Series:
    """Relative model error ``tau`` of each area's present population, from the night hour.

    Sampling and noise leave out the error of the method: where silent phones are placed,
    the hour's scale to the residents, the persons per device of each area. At night
    nearly everyone is at home, so the residents' estimate of an area (calibrated to the
    register) is a reference for its present population at the night hour, as the register
    is for the residents. Each area is one calibration unit: its night estimate averaged
    over the weekdays, with that mean's standard error (`_weekday_means`: the sampling
    shared by the days, the noise divided), so that no area counts once per day. Per class
    of estimated size, ``tau`` is the split-conformal quantile of what each area's interval
    lacks to cover its residents (`size_class_model_error`, Mondrian; one class where the
    other areas are fewer than 80 per class), cross-fitted leave-one-out
    (`cross_fitted_model_error`, one fold per area): each area gets the quantile of every
    other area's scores, so that no area's interval is calibrated on its own residents and
    each rests on n - 1 areas, not half of them (the jackknife+ idea: Barber, Candès,
    Ramdas & Tibshirani 2021, *Ann. Statist.* 49(1); the estimates are not refitted, so
    this is split conformal with n - 1 calibration areas for each). It is taken as the
    same share of the estimate at every hour and date: the method's error in the synthetic
    world is mostly an area's, not an hour's. Conservative where true absence at night
    (night shifts, trips) adds to what it measures.

    Args:
        night: The night hour's weekday means from sampling and noise alone
            (`_weekday_means`): ``area_code``, ``estimate``, ``std_error``.
        residents: The residents' estimate of each area.
        areas: An estimate of every area to give a ``tau`` (e.g. its mean over every row),
            indexed by area_code: an area without a night mean (or without residents) gets
            the ``tau`` fitted on every area, by the class of this estimate.

    Returns:
        ``tau`` indexed like `areas` (0 for all when no area has a reference).
    """
    tau = pd.Series(0.0, index=areas.index.astype(str), name="model_error", dtype="float64")
    units = night[night["estimate"].notna() & (night["estimate"] > 0)]
    codes = pd.Index(units["area_code"].astype(str))
    reference = residents.set_axis(residents.index.astype(str)).reindex(codes).astype("float64")
    known = reference.notna() & (reference > 0)
    if not known.any():
        return tau
    expansion = _as_expansion("present_population", units["estimate"], index=codes)
    variance = pd.Series(units["std_error"].to_numpy(dtype="float64") ** 2, index=codes)
    crossed = cross_fitted_model_error(
        expansion=expansion,
        variance=variance,
        reference=reference[known],
        folds=_night_folds(codes[known.to_numpy()].unique()),
    )
    tau[:] = crossed.tau.reindex(tau.index).to_numpy()
    missing = tau.isna()
    if missing.any():
        whole = size_class_model_error(
            expansion=expansion, variance=variance, reference=reference[known]
        )
        tau[missing] = whole.of(areas.set_axis(tau.index)[missing]).to_numpy()
    return tau


MOST_NIGHT_FOLDS = 1000
"""Most folds of the night model error: up to this many areas, each is its own fold."""
NIGHT_FOLD_SEED = 1
"""Seed of the folds beyond `MOST_NIGHT_FOLDS` areas."""


def _night_folds(codes: pd.Index) -> list[pd.Index]:
    """Each area its own fold (leave-one-out), or `MOST_NIGHT_FOLDS` random folds of them.

    Each fold ranks the scores of every other area, so leave-one-out costs the square of
    the areas: 0.2 s for the 589 municipalities, 8.5 s for 5,000 areas, minutes for the
    1 km grid. Beyond 1,000 areas each ``tau`` rests on all but a thousandth of them.
    """
    if len(codes) <= MOST_NIGHT_FOLDS:
        return [pd.Index([code]) for code in codes]
    order = np.random.default_rng(NIGHT_FOLD_SEED).permutation(np.sort(codes.to_numpy()))
    return [pd.Index(order[fold::MOST_NIGHT_FOLDS]) for fold in range(MOST_NIGHT_FOLDS)]


def _weekday_means(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean estimate per area and hour over the days of `rows`, with its interval.

    The same phones are sampled every day, so their sampling error is taken as shared by
    the days (its standard deviation averages, it does not shrink), while each day's noise
    is drawn anew (its variance divides by the days). The model error (``model``, the
    variance of each area's `_night_model_error`) is the method's, the same every day: it
    is shared by the days too (its standard deviation averages), independent of the others.
    The mean of several days' Laplace noise is near normal: the interval is normal.
    """
    rows = rows[rows["estimate"].notna()]
    model = rows["model"] if "model" in rows else pd.Series(0.0, index=rows.index)
    grouped = rows.assign(sampling_sd=np.sqrt(rows["sampling"]), model_sd=np.sqrt(model)).groupby(
        ["area_code", "slot"], sort=True
    )
    table = grouped.agg(
        days=("estimate", "size"),
        estimate=("estimate", "mean"),
        sampling_sd=("sampling_sd", "mean"),
        noise=("noise", "sum"),
        model_sd=("model_sd", "mean"),
    ).reset_index()
    std_error = np.sqrt(
        table["sampling_sd"] ** 2 + table["model_sd"] ** 2 + table["noise"] / table["days"] ** 2
    )
    bounds = normal_interval(table["estimate"], std_error)
    return pd.concat([table[["area_code", "slot", "days", "estimate"]], bounds], axis=1)


def _hour_scale(*, long: pd.DataFrame, residents: pd.Series) -> pd.Series:
    """Per row of `long`, the factor that makes its hour stand for every resident.

    Phones silent for longer than the carrying limits are located at no hour, and which
    ones are silent changes with the hour (many at night, few by day). Over the areas with
    a count at every hour of the date (and a resident estimate), each hour's persons are
    scaled to add up to those areas' estimated residents: what is compared between hours is
    then where people are, not how many phones were heard.
    """
    wide = long.pivot_table(
        index="area_code", columns=["local_date", "slot"], values="persons", dropna=False
    )
    scale = pd.Series(np.nan, index=wide.columns)
    for local_date in wide.columns.get_level_values(0).unique():
        day = wide[local_date]
        complete = day.notna().all(axis=1) & residents.reindex(day.index).notna()
        located = day[complete].sum()
        total = float(residents.reindex(day.index[complete]).sum())
        scale[local_date] = (total / located.where(located > 0)).to_numpy()
    keys = pd.MultiIndex.from_arrays([long["local_date"], long["slot"]])
    return pd.Series(scale.reindex(keys).to_numpy(), index=long.index)


def presence_counts(*, presence: pd.DataFrame, timezone: str = "Europe/Brussels") -> pd.DataFrame:
    """Hourly truth of a synthetic world as counts per local date, hour and area.

    Args:
        presence: One row per person and hour: ``hour`` (UTC start of the hour) and ``area``
            (area code; null when abroad).
        timezone: Local time zone of the slots.

    Returns:
        ``local_date``, ``slot``, ``area_code``, ``persons``.
    """
    # Group first (abroad rows, with a null area, drop out), convert the few keys after.
    sizes: pd.Series = presence.groupby(["hour", "area"], observed=True).size()
    counts = sizes.rename("persons").reset_index()
    hour = pd.Series(pd.to_datetime(counts["hour"], utc=True))
    local = hour.dt.tz_convert(timezone)
    table = pd.DataFrame(
        {
            "local_date": local.dt.strftime("%Y-%m-%d").to_numpy(),
            "slot": local.dt.hour.astype("int64").to_numpy(),
            "area_code": counts["area"].astype(str).to_numpy(),
            "persons": counts["persons"].astype("int64").to_numpy(),
        }
    )
    # The hour the clocks repeat is one slot: a device is where its last event in the slot
    # puts it, so a person is where the later of the two hours has them.
    last = hour.groupby([table["local_date"], table["slot"]]).transform("max")
    return table[(hour == last).to_numpy()].reset_index(drop=True)


@dataclass(frozen=True)
class Commuting:
    """Home-work flows between arrondissements, expanded, beside the census 2011.

    Attributes:
        flows: One row per (home, work) arrondissement pair of the census matrix:
            ``home_area``, ``work_area``, ``devices`` (released, NaN where suppressed),
            ``expanded`` (persons with that home and weekday place), ``estimate`` (workers:
            the expanded flows scaled so that each home arrondissement's released flows add
            up to its resident workers), its ``std_error``, ``ci_lower`` and ``ci_upper``
            (95 %, from sampling and the declared noise: `_flow_intervals`) and ``census``
            (workers).
        agreement: Estimated flows against the census flows, pair by pair (suppressed pairs
            left out and counted as suppressed).
        log_agreement_pairs: Pairs in the log correlation (both sides above zero).
        source: The release: algorithm, version and job.
        period: First and last day the flows were observed, when known.
        between: `agreement` over the flows between two different arrondissements only.
            Where the workers margin is the census's own (`workers_from_census`), each
            home's total is the census's by construction, and with it the flows within the
            home arrondissement, which are most workers: `agreement` is then high whatever
            the phones say of where people work; `between` is not set by the margin.
        workers_from_census: Whether the resident workers each home's flows are scaled to
            are the totals of the census matrix the flows are compared with.
        model_error: Relative model error ``tau`` in each flow's interval, indexed like
            `flows` (`_flow_model_error`); None when not fitted.
    """

    flows: pd.DataFrame
    agreement: Agreement
    log_agreement_pairs: int
    source: str = ""
    period: tuple[date, date] | None = None
    between: Agreement | None = None
    workers_from_census: bool = False
    model_error: pd.Series | None = None

    @property
    def share_within(self) -> float:
        """Share of the estimated commuters who work in their home arrondissement."""
        return _within(self.flows, "estimate")

    @property
    def census_share_within(self) -> float:
        """The same share in the census 2011, over every pair (62.96 %)."""
        return _within(self.flows, "census", released_only=False)

    @property
    def margin_alone_r(self) -> float:
        """R over all flows of flows that know nothing the phones tell, only the census margin.

        Each home's census workers, the census's national share of them in their home
        arrondissement, and the others spread evenly over the home's other pairs: how much of
        `agreement`'s r the margin sets when it is the census's own (`workers_from_census`).
        """
        census = self.flows[["home_area", "work_area", "census"]].dropna()
        within = (census["home_area"] == census["work_area"]).to_numpy()
        homes = census.groupby("home_area")["census"]
        workers = homes.transform("sum").to_numpy(dtype="float64")
        total = float(census["census"].sum())
        share = float(census.loc[within, "census"].sum()) / total if total > 0 else math.nan
        others = (
            pd.Series(~within, index=census.index).groupby(census["home_area"]).transform("sum")
        ).to_numpy(dtype="float64")
        blind = np.where(
            within, share * workers, (1 - share) * workers / np.where(others > 0, others, np.nan)
        )
        keys = pd.RangeIndex(len(census))
        return agreement(
            estimate=pd.Series(blind, index=keys),
            reference=pd.Series(census["census"].to_numpy(dtype="float64"), index=keys),
        ).pearson_r

    @property
    def median_relative_std_error(self) -> float:
        """Median standard error of the flows above zero, as a share of the estimate.

        A home's only released flow is its resident workers, exactly (standard error 0):
        such flows are left out, or on a small release the median would say no error.
        """
        return _median_relative(self.flows[self.flows["std_error"] > 0])

    def metrics(self) -> dict[str, Any]:
        """The ``home_work_flows`` block of ``metrics.json``."""
        released = self.flows["estimate"].notna()
        return {
            "level": "arrondissement",
            "pearson_r": self.agreement.pearson_r,
            "log_pearson_r": self.agreement.log_pearson_r,
            "log_slope": self.agreement.log_slope,
            "weighted_ape": self.agreement.weighted_ape,
            "relative_bias": self.agreement.relative_bias,
            "n_pairs": self.agreement.n_areas,
            "n_suppressed": self.agreement.n_suppressed,
            "share_within_arrondissement": self.share_within,
            "census_share_within_arrondissement": self.census_share_within,
            "census_share_within_released_pairs": _within(self.flows, "census"),
            "estimated_commuters": float(self.flows.loc[released, "estimate"].sum()),
            "expanded_persons_with_a_work_place": float(self.flows.loc[released, "expanded"].sum()),
            "census_commuters_in_released_pairs": float(self.flows.loc[released, "census"].sum()),
            "median_relative_std_error": self.median_relative_std_error,
            "workers_margin": "census" if self.workers_from_census else "given",
            **(
                {}
                if self.between is None
                else {
                    "between_pearson_r": self.between.pearson_r,
                    "between_log_pearson_r": self.between.log_pearson_r,
                    "between_weighted_ape": self.between.weighted_ape,
                    "between_n_pairs": self.between.n_areas,
                }
            ),
        }


def estimate_commuting(
    *,
    release: Release,
    residents: EstimationResult,
    census: pd.DataFrame | None = None,
    crosswalk: pd.DataFrame | None = None,
    workers: pd.Series | None = None,
) -> Commuting:
    """Expand a ``home_work_flows`` release between arrondissements and compare with census.

    The flows are expanded with the persons per device of their home arrondissement, then
    scaled so that each home arrondissement's released flows add up to its resident workers
    (a known margin, as the register population is for residents; suppressed flows count
    as none): what the phones tell is how the workers split over work places, not how many
    there are, since a weekday place is also a school or a daily errand.

    Args:
        release: ``home_area``, ``work_area`` (arrondissement codes of 2019, as the census
            commuting table) and ``device_count``.
        residents: The residents' estimation (municipalities of 2011).
        census: Long commuting matrix ``home_arrondissement``, ``work_arrondissement``,
            ``workers`` (default: Belgian census 2011).
        crosswalk: ``area_code`` (2011 municipality) and ``arrondissement_2019`` (default:
            the Belgian crosswalk), to aggregate the residents' factors.
        workers: Resident workers per home arrondissement (default: the census matrix's
            totals by home arrondissement, which makes each home's total agree with the
            census by construction: `Commuting.between` is then the check). A home
            arrondissement without one keeps its expanded flows.

    Returns:
        The expanded flows beside the census, and their agreement.

    Raises:
        CellcensusError: If the release lacks a column.
    """
    _check_columns(release, "home_work_flows", ("home_area", "work_area", "device_count"))
    matrix = census if census is not None else belgium.commuting_matrix()
    flows = _flows_beside_census(release, matrix)
    factor = area_factors(residents, parent=belgium.arrondissements_2019(crosswalk))
    per_device = factor.reindex(flows["home_area"]).fillna(float(factor.attrs["overall"]))
    per_device = per_device.set_axis(flows.index)
    flows["expanded"] = flows["devices"] * per_device
    from_census = workers is None
    if workers is None:
        workers = flows.groupby("home_area")["census"].sum()
    home_scale = _home_scale(flows, workers=workers)
    flows["estimate"] = flows["expanded"] * home_scale.fillna(1.0)
    sampling = sampling_variance(flows["devices"], selection_probability(residents))
    stated = {
        "variance": sampling + flows["noise"],
        "per_device": per_device * home_scale.fillna(1.0),
        "calibrated": home_scale.notna(),
    }
    tau = _flow_model_error(flows, std_error=_flow_intervals(flows, **stated)["std_error"])
    flows = flows.join(_flow_intervals(flows, **stated, model=(tau * flows["estimate"]) ** 2))
    columns = ["devices", "expanded", "estimate", "std_error", "ci_lower", "ci_upper", "census"]
    flows = flows[["home_area", "work_area", *columns]]
    measured, between = _flow_agreements(flows)
    return Commuting(
        flows=flows,
        agreement=measured,
        log_agreement_pairs=int(((flows["estimate"] > 0) & (flows["census"] > 0)).sum()),
        source=_source(release),
        period=published_period(release.published),
        between=between,
        workers_from_census=from_census,
        model_error=tau,
    )


def _flows_beside_census(release: Release, matrix: pd.DataFrame) -> pd.DataFrame:
    """One row per (home, work) pair of the census `matrix`, with what the release says of it.

    Returns:
        ``home_area``, ``work_area``, ``census`` (workers), ``devices`` (released, NaN where
        suppressed or not in the release), ``noise`` (its declared noise and rounding
        variance) and ``laplace`` (its Laplace noise's scale).
    """
    table = release.table
    released = pd.DataFrame(
        {
            "home_area": table["home_area"].astype(str).to_numpy(),
            "work_area": table["work_area"].astype(str).to_numpy(),
            "devices": pd.to_numeric(table["device_count"], errors="coerce")
            .astype("float64")
            .to_numpy(),
        }
    )
    declared = declared_noise(release=release)
    released["noise"] = declared.per_count().to_numpy()
    released["laplace"] = declared.laplace_scale().to_numpy()
    return pd.DataFrame(
        {
            "home_area": matrix["home_arrondissement"].astype(str).to_numpy(),
            "work_area": matrix["work_arrondissement"].astype(str).to_numpy(),
            "census": matrix["workers"].astype("float64").to_numpy(),
        }
    ).merge(released, on=["home_area", "work_area"], how="left")


def _home_scale(flows: pd.DataFrame, *, workers: pd.Series) -> pd.Series:
    """Per flow, the factor that makes its home's ``expanded`` flows add up to its `workers`.

    NaN where the home has no workers or no released flow: its flows keep their expansion.

    Raises:
        CellcensusError: If `workers` share no code with the homes of the released flows.
    """
    expanded = flows.groupby("home_area")["expanded"].sum(min_count=1)
    workers = workers.set_axis(workers.index.astype(str))
    known = expanded.dropna().index
    if len(known) and not known.isin(workers.index).any():
        raise CellcensusError(
            "workers per home arrondissement share no code with the released flows "
            f"(e.g. {known[0]!r}): index them by the 2019 arrondissement codes, as strings"
        )
    scale = (workers / expanded).replace([np.inf, -np.inf], np.nan)
    return scale.reindex(flows["home_area"]).set_axis(flows.index)


def _flow_agreements(flows: pd.DataFrame) -> tuple[Agreement, Agreement]:
    """Estimated against census flows, over every pair and over those between two areas."""
    keys = pd.Index(flows["home_area"] + "|" + flows["work_area"])
    estimate = pd.Series(flows["estimate"].to_numpy(), index=keys)
    reference = pd.Series(flows["census"].to_numpy(), index=keys)
    apart = (flows["home_area"] != flows["work_area"]).to_numpy()
    return (
        agreement(estimate=estimate, reference=reference),
        agreement(estimate=estimate[apart], reference=reference[apart]),
    )


def _flow_intervals(
    flows: pd.DataFrame,
    *,
    variance: pd.Series,
    per_device: pd.Series,
    calibrated: pd.Series,
    model: pd.Series | None = None,
) -> pd.DataFrame:
    """``std_error``, ``ci_lower`` and ``ci_upper`` (95 %) of each flow's estimate.

    A flow calibrated to its home's workers ``W`` is ``W D_f / S`` (``S``: the home's
    released devices), so the delta method gives ``c² ((1 - p)² v_f + p² sum of the home's
    other v)``, with ``c`` its persons per device, ``p = D_f / S`` and ``v`` each count's
    sampling and noise variance; an uncalibrated one ``c² v_f``. The half-width is the
    normal-Laplace quantile of the flow's own noise, weighted ``c (1 - p)``, beside the rest
    (`noisy_interval`). `model`, the variance of the method's error (`_flow_model_error`),
    adds to the normal part.
    """
    released = flows["devices"].notna()
    home = flows["home_area"]
    total = flows["devices"].where(released).groupby(home).transform("sum")
    every = variance.where(released).groupby(home).transform("sum")
    share = flows["devices"] / total.where(total > 0)
    tied = (1.0 - share) ** 2 * variance + share**2 * (every - variance)
    spread = per_device**2 * tied.where(calibrated, variance)
    if model is not None:
        spread = spread + model.fillna(0.0)
    weight = per_device * (1.0 - share).where(calibrated, 1.0)
    laplace = (weight * flows["laplace"]).abs()
    return noisy_interval(flows["estimate"], np.sqrt(spread), laplace=laplace)


def _flow_model_error(flows: pd.DataFrame, *, std_error: pd.Series) -> pd.Series:
    """Relative model error ``tau`` of each flow, from the census flows, cross-fitted.

    Sampling and noise leave out the error of the method, which dominates the flows: a
    weekday place is a school or an errand as often as a job, nearer home than work, so
    the flows within the home arrondissement come out too large and those between too
    small. The census commuting matrix is the flows' reference, as the register is the
    residents': per class of estimated size, ``tau`` is the split-conformal quantile of
    what each flow's interval lacks to cover its census flow (`size_class_model_error`,
    Mondrian), cross-fitted leaving one home arrondissement out (`cross_fitted_model_error`:
    the flows from each home get the quantile fitted on every other home's flows), so no
    flow's interval is calibrated on its own census flow, nor on its home's other flows,
    which share its home's error. A home's only flow (its workers exactly) gets none.

    Args:
        flows: ``home_area``, ``work_area``, ``estimate``, ``census``.
        std_error: Standard error of each flow from sampling and noise.

    Returns:
        ``tau`` of each flow, indexed like `flows` (0 where there is no estimate).
    """
    fitted = flows["estimate"].notna() & (flows["estimate"] > 0) & (std_error > 0)
    rows = flows[fitted]
    tau = pd.Series(0.0, index=flows.index)
    if rows.empty:
        return tau
    keys = pd.Index(rows["home_area"].astype(str) + "|" + rows["work_area"].astype(str))
    expansion = _as_expansion("home_work_flows", rows["estimate"], index=keys)
    home = rows["home_area"].astype(str).to_numpy()
    crossed = cross_fitted_model_error(
        expansion=expansion,
        variance=pd.Series(std_error[fitted].to_numpy() ** 2, index=keys),
        reference=pd.Series(rows["census"].to_numpy(dtype="float64"), index=keys),
        folds=[keys[home == code] for code in np.unique(home)],
    )
    tau[fitted] = crossed.tau.to_numpy()
    return tau


def _source(release: Release) -> str:
    provenance = release.provenance
    return f"{provenance.algorithm} {provenance.version} (job {provenance.job_id})"


def _brussels_census() -> tuple[float, float, float]:
    """Jobs in, workers resident in (census 2011 commuting) and residents of Brussels-Capital."""
    matrix = belgium.commuting_matrix()
    jobs = matrix.loc[matrix["work_arrondissement"] == BRUSSELS_ARRONDISSEMENT, "workers"].sum()
    workers = matrix.loc[matrix["home_arrondissement"] == BRUSSELS_ARRONDISSEMENT, "workers"].sum()
    census = belgium.census_population()
    municipal = belgium.municipalities()
    region_of = pd.Series(municipal["region"].astype(str).to_numpy(), index=municipal["area_code"])
    in_brussels = region_of.reindex(census["area_code"].astype(str)).to_numpy() == BRUSSELS_REGION
    return float(jobs), float(workers), float(census.loc[in_brussels, "population"].sum())


def _within(flows: pd.DataFrame, column: str, *, released_only: bool = True) -> float:
    """Share of `column`'s total on the diagonal (over the released pairs, or all)."""
    released = flows[flows["estimate"].notna()] if released_only else flows
    total = float(released[column].sum())
    diagonal = float(released.loc[released["home_area"] == released["work_area"], column].sum())
    return diagonal / total if total > 0 else math.nan


def _median_relative(table: pd.DataFrame) -> float:
    """Median standard error as a share of its estimate, over the estimates above zero."""
    positive = table["estimate"] > 0
    return float((table.loc[positive, "std_error"] / table.loc[positive, "estimate"]).median())


def _ratio(numerator: float, denominator: float) -> float:
    if math.isnan(numerator) or math.isnan(denominator) or denominator <= 0:
        return math.nan
    return float(numerator / denominator)


def mobility_metrics(
    *, present: PresentPopulation | None, commuting: Commuting | None
) -> Mapping[str, Any]:
    """The ``present_population`` and ``home_work_flows`` blocks of ``metrics.json``."""
    blocks: dict[str, Any] = {}
    if present is not None:
        blocks["present_population"] = present.metrics()
    if commuting is not None:
        blocks["home_work_flows"] = commuting.metrics()
    return blocks
