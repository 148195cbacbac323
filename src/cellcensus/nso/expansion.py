"""Expansion estimators: from released device counts to persons, each with its assumptions.

Every estimator returns an `Expansion`: the estimate per area and the factor behind it, so
that `cellcensus.nso.uncertainty` can carry the released count's variance through, and
`cellcensus.nso.calibration` can adjust it further. They build on each other:

1. `national_expansion`: one factor, ``1 / (market_share * sampling_fraction)``.
2. `regional_expansion`: one factor per region, from the subscribers the holder publishes
   per region and the region's known population.
3. `devices_per_person_correction`: divides by the devices counted per subscriber (second
   SIMs and machine SIMs push it above 1, undetected homes below).
4. `age_coverage_correction`: areas where many residents are too young or too old to carry
   a phone get a larger factor, from the census age structure and an ownership-by-age table.

The power law of Deville et al. (2014), which is fitted on a calibration set of areas, is in
`cellcensus.nso.power_law`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import pandas as pd

from cellcensus.errors import CellcensusError
from cellcensus.nso.estimation import expansion_factor


@dataclass(frozen=True)
class Expansion:
    """Estimated persons per area, and the factor that turned devices into persons.

    Attributes:
        name: Stable identifier of the estimator (a key of ``metrics.json``).
        devices: Released device counts indexed by area_code; NaN where suppressed.
        estimate: Estimated persons, same index; NaN where suppressed.
        factor: Persons per released device in each area (``estimate / devices`` where there
            are devices).
        gradient: How many persons one more released device adds to the area's estimate
            (``factor`` for estimators linear in the count, ``beta * factor`` for the power
            law). The uncertainty of an estimate is ``gradient`` times that of the count.
        parameters: Constants given or fitted (factors, exponents), for reports.
        assumptions: Under which the estimate is unbiased, in plain words, by topic
            (``market_share``, ``devices``, ``homes``, ``ownership``, ``margins``, ...): a
            correction replaces the assumption of its topic.
    """

    name: str
    devices: pd.Series
    estimate: pd.Series
    factor: pd.Series
    gradient: pd.Series
    parameters: Mapping[str, float] = field(default_factory=dict)
    assumptions: Mapping[str, str] = field(default_factory=dict)

    def rescaled(
        self,
        *,
        by: pd.Series,
        name: str,
        parameters: Mapping[str, float] | None = None,
        assumptions: Mapping[str, str] | None = None,
    ) -> Expansion:
        """This expansion multiplied, area by area, by `by`.

        Args:
            by: Multiplier per area_code; areas absent from it get NaN.
            name: Identifier of the new estimator.
            parameters: Constants of the new step, added to those of this one.
            assumptions: Assumptions of the new step by topic; they replace this one's on
                the same topic.

        Returns:
            The rescaled expansion.
        """
        multiplier = by.astype("float64").reindex(self.estimate.index)
        return Expansion(
            name=name,
            devices=self.devices,
            estimate=self.estimate * multiplier,
            factor=self.factor * multiplier,
            gradient=self.gradient * multiplier,
            parameters={**self.parameters, **(parameters or {})},
            assumptions={**self.assumptions, **(assumptions or {})},
        )


NATIONAL_ASSUMPTIONS: Mapping[str, str] = MappingProxyType(
    {
        "market_share": "The operator's market share is the same in every area and every "
        "population group.",
        "devices": "Each subscriber is counted once: one device per person, no machine SIMs.",
        "homes": "Every subscriber's home is found, in the right area.",
    }
)
"""Assumptions of the national factor, by topic."""


def national_expansion(
    *, devices: pd.Series, market_share: float, sampling_fraction: float
) -> Expansion:
    """One national factor: ``1 / (market_share * sampling_fraction)`` persons per device.

    Args:
        devices: Released device counts indexed by area_code (NaN where suppressed), as
            `cellcensus.nso.estimation.released_devices` returns.
        market_share: National share of residents who subscribe to the operator, in (0, 1].
        sampling_fraction: Share of the operator's subscribers in the released data, in
            (0, 1].

    Returns:
        The expansion named ``"national"``.

    Raises:
        CellcensusError: If a share is outside (0, 1].
    """
    value = expansion_factor(market_share=market_share, sampling_fraction=sampling_fraction)
    factor = pd.Series(value, index=devices.index, dtype="float64")
    return Expansion(
        name="national",
        devices=devices,
        estimate=devices * factor,
        factor=factor,
        gradient=factor,
        parameters={"factor": value},
        assumptions=NATIONAL_ASSUMPTIONS,
    )


def regional_expansion(
    *,
    devices: pd.Series,
    regions: pd.Series,
    region_population: Mapping[str, float],
    subscribers_by_region: Mapping[str, float],
) -> Expansion:
    """One factor per region: the region's population over its subscribers in the data.

    The holder publishes ``subscribers_by_region`` (resident persons with a primary device in
    the delivery, docs/schema.md); the statistics office knows each region's population (register
    or census). Their ratio is the number of persons one subscriber in the data stands for,
    which absorbs both the regional market share and the sampling fraction.

    Args:
        devices: Released device counts indexed by area_code.
        regions: Region code of each area, indexed by area_code.
        region_population: Known population of each region.
        subscribers_by_region: Published subscribers per region.

    Returns:
        The expansion named ``"regional"``.

    Raises:
        CellcensusError: If an area has no region, or a region of a released area lacks a
            population or a positive subscriber count.
    """
    region_of = _aligned_groups(groups=regions, index=devices.index, name="regions")
    population = {str(code): float(value) for code, value in region_population.items()}
    subscribers = {str(code): float(value) for code, value in subscribers_by_region.items()}
    factors: dict[str, float] = {}
    for region in sorted(set(region_of)):
        if subscribers.get(region, 0.0) <= 0 or not math.isfinite(subscribers[region]):
            raise CellcensusError(
                f"published subscribers_by_region has no positive count for region {region!r} "
                f"(it has {sorted(subscribers)}); use the national factor instead"
            )
        if population.get(region, 0.0) <= 0:
            raise CellcensusError(f"region_population has no positive value for {region!r}")
        factors[region] = population[region] / subscribers[region]
    factor = region_of.map(factors).astype("float64")
    return Expansion(
        name="regional",
        devices=devices,
        estimate=devices * factor,
        factor=factor,
        gradient=factor,
        parameters={f"factor_{region}": value for region, value in factors.items()},
        assumptions={
            **NATIONAL_ASSUMPTIONS,
            "market_share": "Within a region, the operator's market share is the same in every "
            "area and every population group.",
        },
    )


def devices_per_subscriber(
    *, devices: pd.Series, subscribers: float, population: pd.Series | None = None
) -> float:
    """Resident devices counted per subscriber: released devices over published subscribers.

    Above 1 when subscribers carry second SIMs or machine SIMs pass the holder's filter;
    below 1 when homes go undetected. Suppressed areas are missing from the numerator: with
    `population`, the subscribers are taken in the released areas' share of it, so that
    both sides cover the same areas (subscribers in proportion to residents, as the national
    factor assumes); without it the ratio is understated by the suppressed areas' share of
    devices, which is most of them on a small sample.

    Args:
        devices: Released device counts (NaN where suppressed).
        subscribers: Subscribers in the data (the sum of ``subscribers_by_region``, or
            ``market_share * sampling_fraction * population``).
        population: Residents per area_code (e.g. the register), or None.

    Returns:
        The ratio.

    Raises:
        CellcensusError: If `subscribers` is not positive, nothing was released, or no
            released area has a population.
    """
    total = float(devices.sum(skipna=True))
    if not subscribers > 0 or total <= 0:
        raise CellcensusError(
            f"devices per subscriber needs positive subscribers ({subscribers}) and released "
            f"devices ({total})"
        )
    if population is None:
        return total / subscribers
    residents = population.astype("float64").set_axis(population.index.astype(str)).dropna()
    released = devices.dropna().index.astype(str)
    covered = float(residents.reindex(released).sum())
    if not covered > 0:
        raise CellcensusError(
            "devices per subscriber: no released area has a population; give the population "
            "of the released areas (indexed by area_code)"
        )
    return total / (subscribers * covered / float(residents.sum()))


def devices_per_person_correction(
    *,
    base: Expansion,
    subscribers: float,
    known_ratio: float | None = None,
    population: pd.Series | None = None,
) -> Expansion:
    """Divide `base` by the number of resident devices counted per subscriber.

    Args:
        base: The expansion to correct (regional or national).
        subscribers: Subscribers in the data, to estimate the ratio from the release.
        known_ratio: Devices per subscriber if known from elsewhere (a survey, the holder's
            own figure); None to estimate it as released devices over subscribers.
        population: Residents per area_code, to leave the suppressed areas' subscribers
            out of the estimated ratio (`devices_per_subscriber`).

    Returns:
        The expansion named ``"devices_per_person"``.

    Raises:
        CellcensusError: If the ratio is not positive.
    """
    ratio = (
        devices_per_subscriber(devices=base.devices, subscribers=subscribers, population=population)
        if known_ratio is None
        else float(known_ratio)
    )
    if not ratio > 0 or not math.isfinite(ratio):
        raise CellcensusError(f"devices per subscriber must be positive, got {ratio}")
    return base.rescaled(
        by=pd.Series(1.0 / ratio, index=base.estimate.index),
        name="devices_per_person",
        parameters={"devices_per_subscriber": ratio},
        assumptions={
            "devices": "Second SIMs, machine SIMs and undetected homes are spread over areas "
            "in proportion to subscribers.",
            "homes": "The homes that are found are in the right area.",
        },
    )


DEFAULT_OWNERSHIP_BY_AGE: Mapping[int, float] = {
    0: 0.0,
    5: 0.05,
    10: 0.6,
    15: 0.92,
    20: 0.96,
    25: 0.97,
    55: 0.95,
    65: 0.9,
    70: 0.82,
    75: 0.7,
    80: 0.55,
    85: 0.4,
    90: 0.25,
}
"""Share of persons who carry a mobile phone of their own, by age (lower limit of the band).

An illustrative default in the range of European survey results (Eurostat ICT usage in
households; ownership near 100 % between 20 and 60, low among young children and the very
old). It is an assumption, not a measurement: give the national survey's table instead.
A band takes the value of the largest key at or below its lower age limit.
"""

_AGE_BAND = re.compile(r"^Y(?:_LT(?P<lt>\d+)|_GE(?P<ge>\d+)|(?P<low>\d+)-\d+)$")


def age_band_start(band: str) -> int:
    """Lower age limit of a census age band code (``Y_LT5`` -> 0, ``Y10-14`` -> 10).

    Args:
        band: A code as `cellcensus.reference.belgium.census_age_sex` writes it.

    Returns:
        The lower age limit in years.

    Raises:
        CellcensusError: If the code is not of that form.
    """
    match = _AGE_BAND.match(str(band))
    if match is None:
        raise CellcensusError(
            f"age band {band!r} is not a census code such as 'Y_LT5', 'Y10-14' or 'Y_GE100'"
        )
    if match["lt"] is not None:
        return 0
    return int(match["ge"] if match["ge"] is not None else match["low"])


def ownership_of(*, age: int, table: Mapping[int, float]) -> float:
    """Phone ownership at `age` from a table keyed by lower age limits.

    Args:
        age: Age in years (or a band's lower limit).
        table: Share of owners per lower age limit.

    Returns:
        The value of the largest key at or below `age`.

    Raises:
        CellcensusError: If no key is at or below `age`, or a share is outside [0, 1].
    """
    keys = sorted(int(key) for key in table if int(key) <= age)
    if not keys:
        raise CellcensusError(f"ownership-by-age table has no value for age {age}: add key 0")
    share = float(table[keys[-1]])
    if not 0.0 <= share <= 1.0:
        raise CellcensusError(f"ownership share for age {keys[-1]} must be in [0, 1], got {share}")
    return share


def coverage_by_age(
    *, age_population: pd.DataFrame, ownership_by_age: Mapping[int, float]
) -> pd.DataFrame:
    """Share of each area's residents who carry a phone, from its age structure.

    Args:
        age_population: Long table ``area_code``, ``age_5y`` (census band codes) and
            ``population`` (other columns such as ``sex`` are summed over), as
            `cellcensus.reference.belgium.census_age_sex` returns.
        ownership_by_age: Share of phone owners per lower age limit, e.g.
            `DEFAULT_OWNERSHIP_BY_AGE`.

    Returns:
        Indexed by area_code: ``population``, ``covered`` (persons expected to own a phone)
        and ``coverage`` (their share).

    Raises:
        CellcensusError: If a column is missing or a band code or share is invalid.
    """
    missing = [c for c in ("area_code", "age_5y", "population") if c not in age_population]
    if missing:
        raise CellcensusError(f"age structure table lacks column(s) {missing}")
    bands = pd.Series(age_population["age_5y"].astype(str).unique())
    share = {band: ownership_of(age=age_band_start(band), table=ownership_by_age) for band in bands}
    people = age_population["population"].astype("float64")
    frame = pd.DataFrame(
        {
            "area_code": age_population["area_code"].astype(str).to_numpy(),
            "population": people.to_numpy(),
            "covered": (people * age_population["age_5y"].astype(str).map(share)).to_numpy(),
        }
    )
    totals = frame.groupby("area_code").sum()
    totals["coverage"] = totals["covered"] / totals["population"].where(totals["population"] > 0)
    return totals


def age_coverage_correction(
    *, base: Expansion, coverage: pd.DataFrame, groups: pd.Series | None = None
) -> Expansion:
    """Correct `base` for the share of residents old enough (and young enough) to own a phone.

    The base factor was set so that it is right on average over a group (a region for the
    regional factor, the country for the national one). An area whose residents own phones
    less often than the group's average has fewer devices per resident, so its factor is
    multiplied by ``group coverage / area coverage``.

    Args:
        base: The expansion to correct.
        coverage: `coverage_by_age` output (``population`` and ``covered`` per area_code),
            covering every area of every group, released or not.
        groups: The group over which `base` was normalised (region per area_code); None for
            the whole country.

    Returns:
        The expansion named ``"age_coverage"``.

    Raises:
        CellcensusError: If a released area lacks a coverage or a group.
    """
    index = base.estimate.index
    absent = index[~index.isin(coverage.index)]
    if len(absent):
        raise CellcensusError(f"age structure lacks area_code {list(absent)[:5]}")
    frame = coverage[["population", "covered"]].astype("float64")
    if groups is None:
        group_of = pd.Series("all", index=frame.index)
    else:
        group_of = _aligned_groups(groups=groups, index=frame.index, name="groups")
    sums = frame.groupby(group_of).sum()
    group_coverage = (sums["covered"] / sums["population"]).reindex(group_of).to_numpy()
    area_coverage = (frame["covered"] / frame["population"]).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        multiplier = pd.Series(group_coverage / area_coverage, index=frame.index)
    multiplier = multiplier.where(np.isfinite(multiplier))
    return base.rescaled(
        by=multiplier,
        name="age_coverage",
        parameters={"mean_coverage": float(frame["covered"].sum() / frame["population"].sum())},
        assumptions={
            "market_share": (
                "Among persons who own a phone, the operator's market share is the same in "
                "every area"
                + (" of a region" if groups is not None else "")
                + " and every age group."
            ),
            "ownership": "Phone ownership by age is the same everywhere and follows the table "
            "used; the census age structure still describes each area.",
        },
    )


def _aligned_groups(*, groups: pd.Series, index: pd.Index, name: str) -> pd.Series:
    keyed = groups.dropna().astype(str)
    keyed.index = keyed.index.astype(str)
    aligned = keyed.reindex(index)
    if aligned.isna().any():
        raise CellcensusError(f"{name} lack area_code {list(index[aligned.isna().to_numpy()])[:5]}")
    return aligned
