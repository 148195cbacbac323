"""Inbound tourism: foreign roamers per area, as devices, nights spent and arrivals.

Method: inbound roamers are devices whose home network's MCC is not the holder's (optionally
only those of the listed `countries`' MCCs). For each night (night hours, dated by the evening)
a roamer is seen in, its night cell is the cell of most night-time events (ties: smallest cell
id). A night counts only if the roamer is seen after it, from its functional midnight
(`functional_midnight_hour`, 04:00) on, within `max_silent_days` + 1 days: a visitor gone
before then stayed no night (UNWTO's same-day visitor; the Multi-MNO pipeline's overnight stay
spans that hour). The period's last night, whose morning the data does not hold, counts as
seen. A device's first `max_nights` counted nights count. Per area, spreading each night cell
by its allocation weights:

- ``nights``: nights spent (device-nights);
- ``devices``: distinct devices that spent at least one counted night there (a device's
  weights in an area are capped at 1);
- ``arrivals``: arrivals in the country, counted in the area of the first night of each run of
  consecutive nights (a device seen again after a night away arrives again).

With ``spatial_estimator="bayesian"`` the indicators stop at the night cells, and `finish`
places them by the estimator of Ricciato & Coluccia over the tile footprint, its register
prior fitted to the roamers' own nights (visitors do not sleep where residents do); ``devices``
then counts each device once, shared among its night cells by its nights there, and the stays
never seen at night, whose cells are day-time events, are placed as the stays seen at night
are (`UNSEEN_STAYS`).

A night no event reveals would go uncounted (a visitor's phone is far less active than a
resident's); three corrections, each a parameter, recover what the roamer's own events let
one expect (measured on a synthetic Belgium of four weeks: docs/algorithms/inbound_tourism.md):

1. Silent nights between days seen (`impute_nights`, `max_silent_days`): a roamer seen on
   days `d` and `d'` with at most `max_silent_days` silent days between them spent nights
   `d` .. `d'` - 1 in the country; those without a night-time event count, at the cell of
   its nearest night seen within `max_silent_days` + 1 nights (the earlier of two as near),
   else at the cell of its last event of `d` (most often where it spent the evening).
2. The ends of a stay (`end_share`, `departure_share`, `max_end_nights`): a roamer making `r`
   events a day (over the days from its first to its last day seen, the first event not
   counted: the observation starts with it) misses its arrival evening and next day with
   chance ``q = exp(-end_share * r)``, its departure day before it leaves with chance
   ``q_d = exp(-departure_share * r)``; before its first counted night it gets ``q / (1 - q)``
   expected nights, after its last ``q_d / (1 - q)`` (each at most `max_end_nights`), at that
   night's cell. None is added outside the period.
3. Stays never seen (`night_share`, `max_weight`): a stay of `n` nights is seen at night at
   least once with chance ``1 - exp(-night_share * r) ** n``; each night and arrival of the
   roamer weighs its inverse (Horvitz and Thompson 1952), at most `max_weight`, so the roamers
   that are seen stand for the similar ones that are not.

One device adds at most `n` to ``devices``, `max_weight` x `n` to ``arrivals`` and
`max_weight` x (`n` + 2 x `max_end_nights`) to ``nights``, where `n` is `max_nights` or, if
fewer, the nights the job's period spans (its days and the night before the first): a week's
release is calibrated to 8 nights, not to 92 (the period is public: the days the store holds).
Day trippers (no night) are not tourists in this definition (UNWTO: overnight visitors).

Reference: Eurostat Multi-MNO project, inbound tourism indicators (2024; trips join stays up to
`max_trip_gap_h` apart, an overnight stay spans `functional_midnight_h`); Ricciato & Coluccia
(2023), IEEE Transactions on Mobile Computing; Ahas et al. (2008), "Evaluating passive mobile
positioning data for tourism surveys: an Estonian case study", Tourism Management 29(3);
Horvitz & Thompson (1952), "A generalization of sampling without replacement from a finite
universe", JASA 47(260).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated, Literal

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from pydantic import Field

from cellcensus.holder.algorithms.areas import (
    allocation_on,
    count_by,
    distinct_device_count,
    spread,
)
from cellcensus.holder.algorithms.base import (
    AREA_KEY,
    COUNT,
    Algorithm,
    Certification,
    Key,
    KeyDomain,
    Manifest,
    Period,
    PeriodParameters,
    StoreTables,
    bayesian_needs_footprint,
    first_per_group,
    footprint_refusal,
    one,
)
from cellcensus.holder.algorithms.device_filter import DeviceFilterParameters, Scope, Subscribers
from cellcensus.holder.algorithms.places import NIGHT_COLUMNS, NightParameters, summarise_nights
from cellcensus.holder.algorithms.spatial import tile_posterior_weights

INDICATORS = ("devices", "nights", "arrivals")
MAX_NIGHTS = 366
MAX_SILENT_DAYS = 6
MAX_END_NIGHTS = 3.0
MAX_WEIGHT = 5.0
SEEN_ONLY = {"max_silent_days": 0, "max_end_nights": 0, "max_weight": 1}
"""The parameters that turn the three corrections off: only the nights the events show, each
ended by a sighting the next day (the accuracy tests and the tourism benchmark compare with
it)."""

Mcc = Annotated[int, Field(ge=200, le=799)]


class InboundTourismParameters(NightParameters, PeriodParameters):
    """Parameters of `inbound_tourism`."""

    countries: tuple[Mcc, ...] = Field(
        default=(), max_length=600, description="Home MCCs counted (default: every foreign one)."
    )
    max_nights: int = Field(
        default=92, ge=1, le=MAX_NIGHTS, description="Maximum nights counted per device."
    )
    impute_nights: bool = Field(
        default=True,
        description="Count the silent nights between two days seen (at the nearest night "
        "seen's cell, else the day's last).",
    )
    max_silent_days: int = Field(
        default=2,
        ge=0,
        le=MAX_SILENT_DAYS,
        description="impute_nights: maximum days without an event between the two days seen.",
    )
    night_share: float = Field(
        default=0.3,
        gt=0.0,
        le=1.0,
        description="Share of a roamer's daily events made in night hours.",
    )
    end_share: float = Field(
        default=0.9,
        gt=0.0,
        le=2.0,
        description="Share of a day's events whose absence hides the first or last night.",
    )
    departure_share: float = Field(
        default=0.25,
        gt=0.0,
        le=2.0,
        description="Share of a day's events made on the departure day before leaving: whose "
        "absence hides the last night.",
    )
    functional_midnight_hour: int = Field(
        default=4,
        ge=0,
        le=12,
        description="A night counts only for a roamer seen from this local hour of the next "
        "morning on.",
    )
    max_end_nights: float = Field(
        default=2.0,
        ge=0.0,
        le=MAX_END_NIGHTS,
        description="Maximum expected silent nights added before and after a roamer's counted "
        "ones.",
    )
    max_weight: float = Field(
        default=2.0,
        ge=1.0,
        le=MAX_WEIGHT,
        description="Maximum weight of a night: 1 / chance a stay is seen (1: no expansion).",
    )
    filters: DeviceFilterParameters = Field(default_factory=DeviceFilterParameters)
    spatial_estimator: Literal["allocation", "bayesian"] = Field(
        default="allocation",
        description="From night cells to areas: 'allocation' (footprint shares, which follow "
        "residents) or 'bayesian' (Ricciato & Coluccia over the coverage model's 250 m tiles, "
        "the register prior fitted to the roamers' own nights; needs the store's tile "
        "footprint). Under 'bayesian' a device counts once in devices, shared among its night "
        "cells by its nights there, and stays never seen at night are placed as the seen are.",
    )
    iterations: int = Field(
        default=10,
        ge=1,
        le=100,
        description="bayesian: updates of the density (1: the posterior under the prior).",
    )


def daily_activity(events: ir.Table) -> ir.Table:
    """Each day a roamer is seen: device_id, local_date, events, the hours, cell_id.

    The hours are the local hours of the day's first and last events (`earliest_hour`,
    `latest_hour`); the cell is that of its last event (ties: the largest cell id).
    """
    last = first_per_group(
        events.select("device_id", "local_date", "timestamp", "cell_id"),
        ["device_id", "local_date"],
        [ibis.desc("timestamp"), ibis.desc("cell_id")],
    ).select("device_id", "local_date", "cell_id")
    counts = events.group_by("device_id", "local_date").agg(
        events=events.count(),
        earliest_hour=events.local_hour.min(),
        latest_hour=events.local_hour.max(),
    )
    return counts.join(last, ["device_id", "local_date"])


def overnight(
    nights: ir.Table, days: ir.Table, *, midnight_hour: int, max_silent_days: int, end: ir.Value
) -> ir.Table:
    """The `nights` (device_id, night, ...) after which their roamer is seen again.

    A functional day `f` runs from `midnight_hour` on date `f` to `midnight_hour` the next
    day. A night `n` stays if the roamer is seen on a functional day from `n` + 1 to `n` + 1 +
    `max_silent_days` (the gap the silent nights bridge), or if `n` is the period's last
    night (`end`: its morning lies outside the data).
    """
    late = days.filter(days.latest_hour >= midnight_hour)
    early = days.filter(days.earliest_hour < midnight_hour)
    seen = late.select("device_id", _day=late.local_date).union(
        early.select("device_id", _day=early.local_date - ibis.interval(days=1))
    )
    after = nights.night + ibis.interval(days=1)
    confirmed = nights.filter(nights.night < end).semi_join(
        seen,
        [
            nights.device_id == seen.device_id,
            seen._day >= after,
            seen._day <= after + ibis.interval(days=max_silent_days),
        ],
    )
    return confirmed.union(nights.filter(nights.night >= end), distinct=False)


def silent_nights(days: ir.Table, observed: ir.Table, *, max_silent_days: int = 0) -> ir.Table:
    """device_id, night, cell_id: nights between two days seen, without a night-time event.

    Args:
        days: The days each roamer is seen (device_id, local_date, cell_id), as from
            `daily_activity`.
        observed: The nights seen at night (device_id, night).
        max_silent_days: Most days without an event between the two days seen.

    Returns:
        Nights `d` .. `d'` - 1 of each device seen on local dates `d` and `d'` (its next day
        seen, at most `max_silent_days` + 1 days later) but not in those nights' hours, at the
        cell of its last event of `d`.
    """
    order = ibis.window(group_by="device_id", order_by="local_date")
    day_number = days.local_date.epoch_days().cast("int64")
    gaps = days.mutate(_gap=day_number.lead().over(order) - day_number)
    gaps = gaps.filter(gaps._gap.notnull() & (gaps._gap <= max_silent_days + 1))
    parts = [
        gaps.filter(gaps._gap > k).select(
            "device_id", night=gaps.local_date + ibis.interval(days=k), cell_id=gaps.cell_id
        )
        for k in range(max_silent_days + 1)
    ]
    silent = parts[0]
    for part in parts[1:]:
        silent = silent.union(part, distinct=False)
    return silent.anti_join(observed, ["device_id", "night"])


def at_nearest_seen(silent: ir.Table, seen: ir.Table, *, within: int) -> ir.Table:
    """device_id, night, cell_id: each silent night at its roamer's nearest night seen.

    The nearest night seen at most `within` nights away gives the cell (the earlier of two as
    near); without one, the silent night keeps its own cell. That is the cell of the last
    event of its day, most often where the visitor spent the evening; a night seen in the same
    stay shows where it sleeps.
    """
    pairs = silent.select("device_id", "night").join(
        seen.select("device_id", _night="night", _cell="cell_id"), "device_id"
    )
    gap = pairs.night.epoch_days().cast("int64") - pairs._night.epoch_days().cast("int64")
    pairs = pairs.mutate(_distance=gap.abs(), _later=gap < 0)
    pairs = pairs.filter(pairs._distance <= within)
    nearest = first_per_group(
        pairs, ["device_id", "night"], [ibis.asc("_distance"), ibis.asc("_later")]
    ).select("device_id", "night", cell_id="_cell")
    alone = silent.anti_join(nearest, ["device_id", "night"])
    return nearest.union(alone.select("device_id", "night", "cell_id"), distinct=False)


def night_cells(
    per_cell: ir.Table,
    days: ir.Table,
    params: InboundTourismParameters,
    silent: ir.Table | None = None,
    *,
    dates: Sequence[dt.date] = (),
) -> ir.Table:
    """device_id, night, cell_id, arrival: each counted night of each roamer.

    Args:
        per_cell: The roamers' night summary (device_id, night, cell_id, events).
        days: The days each roamer is seen, as from `daily_activity`.
        params: The parameters.
        silent: Nights to count without night-time events (device_id, night, cell_id), as
            from `silent_nights`.
        dates: The dates the store holds (`StoreTables.dates`): the period, where the
            parameters do not set it.
    """
    best = first_per_group(
        per_cell, ["device_id", "night"], [ibis.desc("events"), ibis.asc("cell_id")]
    ).select("device_id", "night", "cell_id")
    if silent is not None:
        # Before `overnight`: a night seen but not followed by a sighting (often the last of
        # a stay) does not count, but its night-time events still show where the bed is.
        silent = at_nearest_seen(silent, best, within=params.max_silent_days + 1)
        best = best.union(silent, distinct=False)
    best = overnight(
        best,
        days,
        midnight_hour=params.functional_midnight_hour,
        max_silent_days=params.max_silent_days,
        end=period(days, params, dates)[1],
    )
    order = ibis.window(group_by="device_id", order_by="night")
    best = best.mutate(previous=best.night.lag().over(order), _rank=ibis.row_number().over(order))
    best = best.filter(best._rank < params.max_nights)
    arrival = best.previous.isnull() | (best.night != best.previous + ibis.interval(days=1))
    return best.select("device_id", "night", "cell_id", arrival=arrival)


def event_rate(days: ir.Table) -> ir.Table:
    """device_id, rate: a roamer's events per day, from its first to its last day seen."""
    span = days.group_by("device_id").agg(
        events=days.events.sum(),
        first=days.local_date.min().epoch_days().cast("int64"),
        last=days.local_date.max().epoch_days().cast("int64"),
    )
    days_spanned = (span["last"] - span["first"] + 1).cast("float64")
    return span.select("device_id", rate=(span.events - 1).cast("float64") / days_spanned)


def silence(rate: ir.FloatingValue, share: float) -> ir.FloatingValue:
    """``exp(-share * rate)``: the chance of no event in a window holding `share` of a day's.

    For a roamer making `rate` events a day at random (Poisson).
    """
    return (rate * _float(-share)).exp()


def expanded_nights(
    counted: ir.Table,
    days: ir.Table,
    params: InboundTourismParameters,
    *,
    dates: Sequence[dt.date] = (),
) -> ir.Table:
    """device_id, night, cell_id, arrival, share: counted nights and expected missed ones.

    Ends of a stay: before its first counted night a roamer gets, at that night's cell, the
    expected silent nights ``q / (1 - q)`` (the mean of a geometric count of missed nights
    before the first one seen), with `q` its silence over `end_share` of a day; after its last
    ``q_d / (1 - q)``, with `q_d` its silence over `departure_share` of a day (its departure
    day, partly spent, missed first); each at most `max_end_nights`, none before the period's
    first day - 1 or after its last (`period`).

    Stays never seen: every night (and arrival) of a roamer weighs ``1 / (1 - p ** n)``, `p` its
    silence over a night (`night_share` of a day) and `n` its nights (counted and expected):
    the inverse chance that a stay that long is seen on at least one night (Horvitz and
    Thompson 1952), at most `max_weight`.
    """
    per_device = counted.group_by("device_id").agg(
        nights=counted.count(), first=counted.night.min(), last=counted.night.max()
    )
    per_device = per_device.join(event_rate(days), "device_id")
    q = silence(per_device.rate, params.end_share)
    departure = silence(per_device.rate, params.departure_share)
    most = params.max_end_nights
    # a / (1 - q) >= most exactly when a >= most * (1 - q) (and q = 1 divides by 0).
    before = ibis.ifelse(q < most * (1 - q), q / (1 - q), _float(most))
    after = ibis.ifelse(departure < most * (1 - q), departure / (1 - q), _float(most))
    start, end = period(days, params, dates)
    per_device = per_device.mutate(
        before=ibis.ifelse(per_device["first"] >= start, before, _float(0)),
        after=ibis.ifelse(per_device["last"] < end, after, _float(0)),
    )
    length = per_device.nights.cast("float64") + per_device.before + per_device.after
    seen = 1 - silence(per_device.rate, params.night_share).pow(length)
    weight = ibis.ifelse(seen * params.max_weight > 1, 1 / seen, _float(params.max_weight))
    per_device = per_device.mutate(weight=weight).view()
    nights = counted.join(per_device.select("device_id", "weight"), "device_id")
    rows = nights.select("device_id", "night", "cell_id", "arrival", share=nights.weight)
    for edge, side in (("first", "before"), ("last", "after")):
        end = counted.join(
            per_device,
            [counted.device_id == per_device.device_id, counted.night == per_device[edge]],
        )
        end = end.select(
            end.device_id,
            end.night,
            end.cell_id,
            arrival=ibis.literal(False),
            share=end[side] * end.weight,
        )
        rows = rows.union(end.filter(end.share > 0), distinct=False)
    return rows


def compute(tables: StoreTables, params: InboundTourismParameters) -> ir.Table:
    """Devices, nights and arrivals of inbound roamers per area."""
    scope = Scope(tables, params, Subscribers.INBOUND, params.filters)
    events = scope.events(*NIGHT_COLUMNS, "timestamp")
    if params.countries:
        events = events.filter(events.mcc.isin(list(params.countries)))
    nights = scope.keep(summarise_nights(events, params))
    days = tables.materialize(scope.keep(daily_activity(events)))
    observed = nights.select("device_id", "night").distinct()
    silent = None
    if params.impute_nights:
        silent = silent_nights(days, observed, max_silent_days=params.max_silent_days)
    counted = tables.materialize(night_cells(nights, days, params, silent, dates=tables.dates))
    spent = counted.mutate(share=one())
    if params.max_end_nights > 0 or params.max_weight > 1:
        spent = expanded_nights(counted, days, params, dates=tables.dates)
    if params.spatial_estimator == "bayesian":
        return per_cell(counted, spent, observed)
    # A night by the weights valid on the date of its evening.
    located = spread(counted, tables.allocation, day="night")
    spent = spread(spent, tables.allocation, share="share", day="night")
    nights = count_by(spent, ["area_code"]).mutate(indicator=ibis.literal("nights"))
    devices = distinct_device_count(located, ["area_code"]).mutate(
        indicator=ibis.literal("devices")
    )
    arrivals = count_by(spent.filter(spent.arrival), ["area_code"]).mutate(
        indicator=ibis.literal("arrivals")
    )
    columns = ["area_code", "indicator", COUNT]
    return (
        devices.select(columns)
        .union(nights.select(columns), distinct=False)
        .union(arrivals.select(columns), distinct=False)
    )


UNSEEN_STAYS = "stays-unseen-at-night"
"""The pooled cell of the stays never seen at night (`per_cell`)."""


def per_cell(counted: ir.Table, spent: ir.Table, observed: ir.Table) -> ir.Table:
    """cell_id, indicator, device_count: the indicators per night cell, for `finish`.

    A device counts once in ``devices``, shared among its night cells by its counted nights
    there (a distinct count per area cannot be placed from counts per cell). The stays never
    seen at night (no counted night among the `observed` ones, device_id and night) count
    under the one pooled cell `UNSEEN_STAYS`: their cells are day-time events, not beds.
    """
    nights_of = counted.group_by("device_id").agg(_nights=counted.count())
    shares = counted.join(nights_of, "device_id")
    shares = shares.mutate(share=one() / shares._nights.cast("float64"))
    parts = {"devices": shares, "nights": spent, "arrivals": spent.filter(spent.arrival)}
    seen = counted.semi_join(observed, ["device_id", "night"]).select("device_id").distinct()
    tables = [_indicator_per_cell(part, seen, indicator) for indicator, part in parts.items()]
    return tables[0].union(tables[1], distinct=False).union(tables[2], distinct=False)


def _indicator_per_cell(part: ir.Table, seen: ir.Table, indicator: str) -> ir.Table:
    """cell_id, indicator, device_count of `part` (device_id, cell_id, share).

    The devices not `seen` at night count under the pooled cell `UNSEEN_STAYS`.
    """
    unseen = ibis.literal(UNSEEN_STAYS)
    cell = part.device_id.isin(seen.device_id).ifelse(part.cell_id, unseen)
    counts = part.group_by(cell_id=cell).agg(**{COUNT: part.share.sum()})
    return counts.mutate(indicator=ibis.literal(indicator)).select("cell_id", "indicator", COUNT)


def finish(
    raw: pd.DataFrame, tables: StoreTables, params: InboundTourismParameters
) -> pd.DataFrame:
    """Place the indicators per night cell on areas by the Bayesian estimator.

    The density is fitted to the nights per cell (`spatial.tile_posterior_weights`), and each
    indicator placed by its cells' posterior shares, so that devices, nights and arrivals
    share one geography. A cell the footprint does not know, or whose areas all fitted to no
    density, keeps the allocation weights of the period's last day. The stays never seen at
    night (`UNSEEN_STAYS`) are placed as the stays seen at night are (`place_unseen`: the stays
    seen stand for the others; none placed where no stay is seen).
    """
    if params.spatial_estimator != "bayesian":
        return raw
    if tables.footprint is None:
        raise footprint_refusal("bayesian", level=tables.level)
    unseen = raw[raw["cell_id"] == UNSEEN_STAYS].groupby("indicator")[COUNT].sum().clip(lower=0)
    raw = raw[raw["cell_id"] != UNSEEN_STAYS]
    nights = raw[raw["indicator"] == "nights"]
    weights = tile_posterior_weights(
        cell_counts=nights, footprint=tables.footprint.per_area, iterations=params.iterations
    )
    allocated = allocation_on(tables.allocation, params.known_period(tables.dates)[1])
    allocated = allocated.to_pandas()
    allocated = allocated[~allocated["cell_id"].isin(weights["cell_id"])]
    weights = pd.concat([weights, allocated[["cell_id", "area_code", "weight"]]])
    placed = raw.merge(weights, on="cell_id")
    placed[COUNT] = placed[COUNT] * placed["weight"]
    keys = ["area_code", "indicator"]
    placed = placed.groupby(keys, as_index=False).agg(**{COUNT: (COUNT, "sum")})[[*keys, COUNT]]
    return place_unseen(placed, unseen) if not placed.empty else placed


def place_unseen(placed: pd.DataFrame, unseen: pd.Series) -> pd.DataFrame:
    """Each indicator's total over the stays never seen at night, shared as the seen are.

    Args:
        placed: area_code, indicator, and the count of the stays seen at night per area.
        unseen: The unseen stays' total per indicator (at least 0).

    Returns:
        `placed` with each area's share of its indicator's unseen total added, by its count
        clipped at 0: noisy counts can be negative, and their sum, which noise can bring near
        0, would give shares of any size. Nothing is added to an indicator no area has a
        positive count of.
    """
    seen = placed[COUNT].clip(lower=0)
    total = seen.groupby(placed["indicator"]).transform("sum").to_numpy()
    share = np.divide(seen, total, out=np.zeros(len(seen)), where=total > 0)
    extra = placed["indicator"].map(unseen).fillna(0.0)
    return placed.assign(**{COUNT: placed[COUNT] + extra * share})


def period(
    days: ir.Table, params: InboundTourismParameters, dates: Sequence[dt.date]
) -> tuple[ir.Value, ir.Value]:
    """The period's first and last days, as expressions.

    `start` and `end`, else the store's dates (public), else (no dates known, as in a
    hand-built table) the first and last days a roamer is seen.
    """
    first, last = params.known_period(dates)
    return (
        days.local_date.min() if first is None else ibis.literal(first, type="date"),
        days.local_date.max() if last is None else ibis.literal(last, type="date"),
    )


def _float(value: float) -> ir.FloatingValue:
    """A float literal that stays a double on Spark (not a DECIMAL, see `one`)."""
    return ibis.literal(value, type="float64")


def bound(params: InboundTourismParameters, period: Period | None) -> float:
    """Devices, weighted arrivals, weighted counted and expected nights (module docstring).

    A device has no more nights in a period than the period spans: each night is dated by
    its evening, from the one before the first day to the last day's (`period_nights`).
    """
    nights = params.max_nights if period is None else min(params.max_nights, period_nights(period))
    return nights + params.max_weight * (2 * nights + 2 * params.max_end_nights)


def period_nights(period: Period) -> int:
    """The nights a period's events can fall in: its days' evenings and the one before."""
    first, last = period
    return (last - first).days + 2


inbound_tourism = Algorithm(
    manifest=Manifest(
        name="inbound_tourism",
        version="1.7.1",
        certification=Certification.CERTIFIED,
        summary="Foreign roamers per area: devices, nights spent, arrivals.",
        parameters=InboundTourismParameters,
        keys=(AREA_KEY, Key("indicator", KeyDomain.CATEGORY, INDICATORS)),
        privacy_unit="device over the period",
        contribution_bound=MAX_NIGHTS + MAX_WEIGHT * (2 * MAX_NIGHTS + 2 * MAX_END_NIGHTS),
        reference="Eurostat Multi-MNO inbound tourism (2024); Ahas et al. (2008); "
        "Horvitz & Thompson (1952); Ricciato & Coluccia (2023)",
        bound_for=bound,
        examples=(
            {"countries": [208], "max_nights": 3},
            {"max_nights": 1},
            {"impute_nights": False},
            {"max_silent_days": 0, "max_end_nights": 0, "max_weight": 1},
            {"start": "2011-03-08", "end": "2011-03-18", "max_end_nights": 3, "max_weight": 5},
        ),
    ),
    compute=compute,
    finish=finish,
    pooled_cells=(UNSEEN_STAYS,),
    precondition=bayesian_needs_footprint,
)
