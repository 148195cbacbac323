"""Meaningful places of a device: home (by named literature rules), work, other places.

Home rules work on the night summary (per device, night and cell: events and distinct night
hours), or, for the rules that count nights and events per cell, on the night sets (per
device and cell: the nights seen as bits of an integer, and the events), which need one
grouping of the night events where the summary needs two; work and other places read the
scope's events themselves. Each returns one row per device and place cell: device_id,
cell_id, share, where a device's shares of one kind of place sum to 1 (a rule may give a
device several home cells, each with an equal share).
Ties always go to the smallest cell id, so results depend on neither engine nor row order.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

import ibis
import ibis.expr.types as ir
from pydantic import Field

from cellcensus.holder.algorithms.base import (
    Parameters,
    StoreTables,
    first_per_group,
    night_of,
    one,
)
from cellcensus.holder.algorithms.device_filter import FILTER_COLUMNS, Scope, daily_summaries


class HomeRule(StrEnum):
    """Home detection rules found in the literature (Vanhoof et al. 2018; Multi-MNO)."""

    MOST_DISTINCT_NIGHTS = "most_distinct_nights"
    """The cell seen on the most distinct nights."""
    MOST_NIGHT_ACTIVITY = "most_night_activity"
    """The cell with the most night-time events."""
    MULTI_MNO = "multi_mno"
    """Multi-MNO home label: every cell holding a large share of the device's night-time
    permanence (distinct night hours at the cell, summed over cells) or of its nights; the
    device is shared among them."""
    ANCHOR_POINT = "anchor_point"
    """Anchor point over months: the cell that is the monthly most-distinct-nights home in
    the most months."""


HOME_RULES = tuple(HomeRule)


class NightParameters(Parameters):
    """When night is (local time)."""

    night_start_hour: int = Field(default=20, ge=16, le=23, description="Local hour night starts.")
    night_end_hour: int = Field(default=7, ge=0, le=10, description="Local hour night ends.")


class HomeParameters(NightParameters):
    """Which home rule, and how much observation it needs.

    A home's nights run from 19:00 to 08:00, wider than a stay's (`NightParameters`): the
    evening and morning hours at home add evidence of where a resident sleeps
    (docs/algorithms/usual_residence.md measures it), where a visitor's evening out in the
    same hours must not count as a night in that town.
    """

    night_start_hour: int = Field(default=19, ge=16, le=23, description="Local hour night starts.")
    night_end_hour: int = Field(default=8, ge=0, le=10, description="Local hour night ends.")
    rule: HomeRule = Field(default=HomeRule.MOST_DISTINCT_NIGHTS, description="Home rule.")
    min_nights: int = Field(
        default=2, ge=1, le=366, description="Minimum distinct nights a device is seen."
    )
    home_ps_share: float = Field(
        default=0.8, gt=0.0, le=1.0, description="multi_mno: minimum share of night hours."
    )
    home_nights_share: float = Field(
        default=0.8, gt=0.0, le=1.0, description="multi_mno: minimum share of nights."
    )
    min_months: int = Field(
        default=1, ge=1, le=24, description="anchor_point: minimum months with a monthly home."
    )


class WorkParameters(Parameters):
    """When and how often a work place is visited (local time, Monday to Friday)."""

    work_start_hour: int = Field(default=9, ge=5, le=12, description="Local hour work starts.")
    work_end_hour: int = Field(default=17, ge=13, le=22, description="Local hour work ends.")
    min_work_days: int = Field(
        default=3, ge=1, le=366, description="Minimum distinct working days at the work cell."
    )


NIGHT_COLUMNS = ("device_id", "local_date", "local_hour", "cell_id")


def night_events(events: ir.Table, params: NightParameters) -> ir.Table:
    """Night-time events with their `night` (the local date of the evening)."""
    events = events.filter(
        (events.local_hour >= params.night_start_hour) | (events.local_hour < params.night_end_hour)
    )
    return events.mutate(night=night_of(events, night_start_hour=params.night_start_hour))


@ibis.udf.agg.builtin  # type: ignore[untyped-decorator]
def bit_or(value: int) -> int:  # type: ignore[empty-body]
    """The bitwise OR of a group's values (DuckDB and Spark SQL name it alike)."""


@ibis.udf.scalar.builtin  # type: ignore[untyped-decorator]
def bit_count(value: int) -> int:  # type: ignore[empty-body]
    """How many bits of an integer are set (DuckDB and Spark SQL name it alike)."""


NIGHT_WINDOW = 63
"""Nights per bit set of `night_sets`: a window's nights fit one signed 64-bit integer."""

SET_RULES = (HomeRule.MOST_DISTINCT_NIGHTS, HomeRule.MOST_NIGHT_ACTIVITY)
"""Home rules that need only each device's nights and events per cell (`night_sets`)."""


def night_sets(
    nights: ir.Table, events: ir.IntegerValue, first_night: dt.date | None = None
) -> ir.Table:
    """The nights a device was seen at each cell, as bit sets of `NIGHT_WINDOW` nights.

    Returns device_id, cell_id, seen and events (the `events` aggregate of the rows), and,
    without `first_night`, window: one row per window of 63 nights from 1970-01-01 (bit k
    of window w: night 63 w + k). With `first_night`, the first night of a period whose
    nights fit one set (`one_set_from`), bit k is night `first_night` + k and each device
    and cell has one row. Distinct nights are then counts of set bits, per cell or over a
    device's cells once their sets are OR-ed: one grouping by device and cell instead of
    one by device, cell and night and another over its rows.

    Args:
        nights: Rows with device_id, cell_id and `night` (night events or a night summary).
        events: The events of a group of `nights` rows (a count of night events, the sum of
            a summary's `events`).
        first_night: Where the bits start when the nights fit one set, else None.
    """
    day = nights.night.epoch_days().cast("int64")
    one = ibis.literal(1).cast("int64")  # Spark shifts an INT modulo 32
    if first_night is not None:
        since = day - (first_night - dt.date(1970, 1, 1)).days
        return nights.group_by("device_id", "cell_id").agg(seen=bit_or(one << since), events=events)
    return nights.group_by("device_id", "cell_id", window=day // NIGHT_WINDOW).agg(
        seen=bit_or(one << (day % NIGHT_WINDOW)), events=events
    )


def one_set_from(scope: Scope) -> dt.date | None:
    """The first night of the scope's period, if all its nights fit one set, else None.

    The period is its parameters' ``start`` and ``end``, else the dates the store holds
    (`StoreTables.dates`); its nights run from the evening before its first date to the
    evening of its last. A month fits: its sets need no window, and a device's nights at a
    cell are one row, not one per window it crosses.
    """
    first, last = scope.period.known_period(scope.tables.dates)
    if first is None or last is None:
        return None
    first_night = first - dt.timedelta(days=1)
    return first_night if (last - first_night).days < NIGHT_WINDOW else None


def _windows(sets: ir.Table) -> list[str]:
    """The sets' window column, if they have one (`night_sets`)."""
    return ["window"] if "window" in sets.columns else []


def night_counts(sets: ir.Table) -> ir.Table:
    """device_id, cell_id, nights (distinct), events: per device and cell, from `night_sets`."""
    if not _windows(sets):
        return sets.select("device_id", "cell_id", nights=bit_count(sets.seen), events="events")
    return sets.group_by("device_id", "cell_id").agg(
        nights=bit_count(sets.seen).sum(), events=sets.events.sum()
    )


def nights_seen(scope: Scope, params: NightParameters) -> ir.Table:
    """The `night_sets` of the scope's kept devices, staged.

    Where the filter reads the store's device-day summaries, the sets come straight from the
    night events: the least a rule that counts nights per cell must do, and less than the
    night summary (one row per device and cell, not per night as well). Otherwise from the
    night summary, whose daily pass the filter shares.
    """
    if scope.summarised:
        rows = night_events(scope.events(*NIGHT_COLUMNS), params)
        sets = night_sets(rows, rows.count(), one_set_from(scope))
        return scope.keep(scope.tables.materialize(sets))
    return summary_sets(night_summary(scope, params), scope)


def summary_sets(nights: ir.Table, scope: Scope) -> ir.Table:
    """The `night_sets` of a night summary of `scope` (`night_summary`), staged.

    Staged so that every home rule reading them (and the posterior's counts) shares one build.
    """
    sets = night_sets(nights, nights.events.sum(), one_set_from(scope))
    return scope.tables.materialize(sets)


def summarise_nights(events: ir.Table, params: NightParameters, *, hours: bool = False) -> ir.Table:
    """Per device, night and cell: events (and distinct night hours): the night summary.

    Distinct hours cost a second grouping of the night events, so only the rules that need
    them (`multi_mno`) ask for them.
    """
    nights = night_events(events, params)
    counts = {"events": nights.count()}
    if hours:
        counts["hours"] = nights.local_hour.nunique()
    return nights.group_by(["device_id", "night", "cell_id"]).agg(**counts)


def night_summary(scope: Scope, params: NightParameters, *, hours: bool = False) -> ir.Table:
    """The night summary of the scope's kept devices.

    One pass over the scope's events groups them by device, local date and cell into the
    device filter's daily summary, with each day's evening (night of that date) and morning
    (night of the day before) events beside it; the filter and the nights are both read off
    that summary, so the events are grouped once, not once for the filter and again for the
    nights. Where the filter reads the store's device-day summaries instead, the night events
    alone are grouped by device, night and cell over the period in one aggregation (a night
    crosses midnight, so this is not a per-date step): the least any night rule must do. It
    is staged on its own; planned together with the home rule it ran out of DuckDB's 4 GB on
    a national month.
    """
    if scope.summarised:
        nights = summarise_nights(scope.events(*NIGHT_COLUMNS), params, hours=hours)
        return scope.keep(scope.tables.materialize(nights))
    daily = scope.tables.materialize(daily_nights(scope, params, hours=hours))
    return scope.keep_by(nights_of_days(daily, params, hours=hours), daily)


def daily_nights(scope: Scope, params: NightParameters, *, hours: bool = False) -> ir.Table:
    """The scope's daily summary with its evening and morning parts (see `night_summary`).

    Per device, local date and cell: the filter's counts, ``evening`` and ``morning`` (night
    events from `night_start_hour` on, and before `night_end_hour`), and with `hours` their
    distinct hours (``evening_hours``, ``morning_hours``).
    """

    def summary(events: ir.Table) -> ir.Table:
        hour = events.local_hour
        evening = hour >= params.night_start_hour
        morning = hour < params.night_end_hour
        extra = {
            "evening": evening.cast("int64").sum(),
            "morning": morning.cast("int64").sum(),
        }
        if hours:
            extra["evening_hours"] = hour.nunique(where=evening)
            extra["morning_hours"] = hour.nunique(where=morning)
        return daily_summaries(events, scope.filters, **extra)

    return scope.daily(summary, *NIGHT_COLUMNS, *FILTER_COLUMNS)


def nights_of_days(daily: ir.Table, params: NightParameters, *, hours: bool = False) -> ir.Table:
    """The night summary (device_id, night, cell_id, events[, hours]) from `daily_nights`.

    A night joins the evening of its date to the morning of the next date; its distinct
    hours are those of both parts (an evening hour is never a morning hour).
    """
    parts = []
    for part, shift in (("evening", 0), ("morning", 1)):
        rows = daily.filter(daily[part] > 0)
        columns = {"events": rows[part]}
        if hours:
            columns["hours"] = rows[f"{part}_hours"]
        night = rows.local_date - ibis.interval(days=1) if shift else rows.local_date
        parts.append(rows.select("device_id", "cell_id", night=night, **columns))
    both = parts[0].union(parts[1], distinct=False)
    sums = {"events": both.events.sum()}
    if hours:
        sums["hours"] = both.hours.sum()
    return both.group_by(["device_id", "night", "cell_id"]).agg(**sums)


def needs_hours(params: HomeParameters) -> bool:
    """Whether the home rule needs the night summary's distinct hours."""
    return params.rule is HomeRule.MULTI_MNO


def home_cells(nights: ir.Table, params: HomeParameters) -> ir.Table:
    """Home cells by `params.rule` from a night summary: device_id, cell_id, share."""
    return homes_of(night_sets(nights, nights.events.sum()), params, nights)


def homes_of(sets: ir.Table, params: HomeParameters, nights: ir.Table | None = None) -> ir.Table:
    """Home cells by `params.rule` from `night_sets`: device_id, cell_id, share.

    The rules outside `SET_RULES` read the night summary `nights` as well.
    """
    per_cell = night_counts(sets)
    if params.rule is HomeRule.MOST_DISTINCT_NIGHTS:
        homes = _best_cell(per_cell, "nights")
    elif params.rule is HomeRule.MOST_NIGHT_ACTIVITY:
        homes = _best_cell(per_cell, "events")
    elif nights is None:
        raise ValueError(f"rule {params.rule} needs the night summary as well as night sets")
    elif params.rule is HomeRule.MULTI_MNO:
        homes = _multi_mno(nights, params)
    else:
        homes = _anchor_point(nights, params)
    return homes.semi_join(_eligible(sets, per_cell, params), "device_id")


def _eligible(sets: ir.Table, per_cell: ir.Table, params: HomeParameters) -> ir.Table:
    """Devices seen on at least `min_nights` distinct nights.

    A device with that many nights at one cell is; only the others have their cells' sets
    of nights joined, which spares most devices the work.
    """
    most = per_cell.group_by("device_id").agg(most=per_cell.nights.max())
    sure = most.filter(most.most >= params.min_nights).select("device_id")
    unsure = most.filter(most.most < params.min_nights)
    few = sets.semi_join(unsure, "device_id")
    merged = few.group_by("device_id", *_windows(few)).agg(seen=bit_or(few.seen))
    counted = merged.group_by("device_id").agg(total=bit_count(merged.seen).sum())
    enough = counted.filter(counted.total >= params.min_nights).select("device_id")
    return sure.union(enough, distinct=False)


def _with_share_one(table: ir.Table) -> ir.Table:
    return table.select("device_id", "cell_id", share=one())


def _best_cell(per_cell: ir.Table, by: str) -> ir.Table:
    """Each device's cell of most `by` (ties: the smallest cell id), with share 1.

    Grouped, not ranked: the most per device, then the least cell id among the cells that
    hold it (half the time of a row number over each device's cells).
    """
    per_cell = per_cell.view()  # a relation of its own, whatever chain it ends
    most = per_cell.group_by("device_id").agg(_most=per_cell[by].max())
    top = per_cell.join(most, ["device_id", per_cell[by] == most._most])
    best = top.group_by("device_id").agg(cell_id=top.cell_id.min())
    return _with_share_one(best)


def _multi_mno(nights: ir.Table, params: HomeParameters) -> ir.Table:
    per_cell = nights.group_by("device_id", "cell_id").agg(
        ps=nights.hours.sum(), nights=nights.count()
    )
    totals = nights.group_by("device_id").agg(
        total_ps=nights.hours.sum(), total_nights=nights.night.nunique()
    )
    scored = per_cell.join(totals, "device_id")
    home = scored.filter(
        (scored.ps >= params.home_ps_share * scored.total_ps)
        | (scored.nights >= params.home_nights_share * scored.total_nights)
    )
    count = home.cell_id.count().over(ibis.window(group_by="device_id"))
    return home.select("device_id", "cell_id", share=one() / count.cast("float64"))


def _anchor_point(nights: ir.Table, params: HomeParameters) -> ir.Table:
    nights = nights.mutate(month=nights.night.year() * 100 + nights.night.month())
    monthly = nights.group_by("device_id", "month", "cell_id").agg(nights=nights.count())
    monthly = first_per_group(
        monthly, ["device_id", "month"], [ibis.desc("nights"), ibis.asc("cell_id")]
    )
    per_cell = monthly.group_by("device_id", "cell_id").agg(
        months=monthly.count(), nights=monthly.nights.sum()
    )
    months = monthly.group_by("device_id").agg(n_months=monthly.count())
    enough = months.filter(months.n_months >= params.min_months).select("device_id")
    order = [ibis.desc("months"), ibis.desc("nights"), ibis.asc("cell_id")]
    best = first_per_group(per_cell, ["device_id"], order)
    return _with_share_one(best.semi_join(enough, "device_id"))


def same_site_cells(tables: StoreTables, places: ir.Table) -> ir.Table:
    """device_id, cell_id of the place cells and of every cell on the same antenna site."""
    own = places.select("device_id", "cell_id")
    if "site_id" not in tables.cells.columns:
        return own
    sites = tables.cells.select("cell_id", "site_id").filter(ibis._.site_id.notnull()).distinct()
    place_sites = own.join(sites, "cell_id").select("device_id", "site_id").distinct()
    siblings = place_sites.join(sites, "site_id").select("device_id", "cell_id")
    return own.union(siblings).distinct()


def work_cells(scope: Scope, homes: ir.Table, params: WorkParameters) -> ir.Table:
    """Work cells: device_id, cell_id, share (=1).

    The work cell is the cell seen on the most distinct weekdays during working hours, other
    than the home cells and the cells of their antenna sites, if seen on at least
    `min_work_days` such days.
    """

    def working_days(events: ir.Table) -> ir.Table:
        weekday = events.local_date.day_of_week.index() < 5
        hours = (events.local_hour >= params.work_start_hour) & (
            events.local_hour < params.work_end_hour
        )
        work = events.filter(weekday & hours)
        return work.select("device_id", "cell_id", "local_date").distinct()

    work = scope.keep(scope.daily(working_days, *NIGHT_COLUMNS)).anti_join(
        same_site_cells(scope.tables, homes), ["device_id", "cell_id"]
    )
    per_cell = work.group_by("device_id", "cell_id").agg(days=work.count())
    per_cell = per_cell.filter(per_cell.days >= params.min_work_days)
    best = first_per_group(per_cell, ["device_id"], [ibis.desc("days"), ibis.asc("cell_id")])
    return _with_share_one(best)


def other_places(
    scope: Scope, anchors: ir.Table, *, min_days_share: float, max_places: int
) -> ir.Table:
    """Other meaningful places: device_id, cell_id, share (=1 each), at most `max_places`.

    Cells other than the anchors (home, work and their sites) seen on at least
    `min_days_share` of the device's observed days (and on at least two days), the most
    frequent first.
    """
    columns = ("device_id", "cell_id", "local_date")
    days = scope.keep(scope.daily(lambda events: events.select(columns).distinct(), *columns))
    totals = days.select("device_id", "local_date").distinct()
    totals = totals.group_by("device_id").agg(total_days=totals.count())
    per_cell = days.group_by("device_id", "cell_id").agg(days=days.count())
    per_cell = per_cell.anti_join(same_site_cells(scope.tables, anchors), ["device_id", "cell_id"])
    scored = per_cell.join(totals, "device_id")
    frequent = scored.filter(
        (scored.days >= 2) & (scored.days >= min_days_share * scored.total_days)
    )
    rank = ibis.row_number().over(
        group_by="device_id", order_by=[ibis.desc("days"), ibis.asc("cell_id")]
    )
    ranked = frequent.mutate(_rank=rank)
    return _with_share_one(ranked.filter(ranked._rank < max_places))
