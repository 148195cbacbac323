"""The default rules of `usual_residence` and `present_population` in Polars (lazy).

One lazy query per rule over all day files, collected by the streaming engine. Same rules
as the certified algorithms (see their module docstrings): the device filter, the
most-distinct-nights home with at least `min_nights` nights, and the last known position
per slot carried for at most `max_carry_minutes` and back for at most `max_backfill_minutes`
(the nearer observation wins), spread over areas by the allocation.
"""

from __future__ import annotations

import polars as pl

from cellcensus.holder.algorithms.device_filter import DeviceFilterParameters, Subscribers
from cellcensus.holder.algorithms.places import HomeRule
from cellcensus.holder.algorithms.present_population import PresentPopulationParameters
from cellcensus.holder.algorithms.usual_residence import UsualResidenceParameters

from . import (
    CELL_RANKS,
    INTERACTIVE_EVENTS,
    LEVEL_DUST,
    StoreFiles,
    allocation_versions,
    latest_versions,
)


def scan_events(files: StoreFiles) -> pl.LazyFrame:
    """All events, lazily."""
    return pl.scan_parquet([str(path) for path in files.events], hive_partitioning=False)


def in_period(events: pl.LazyFrame, start: object, end: object) -> pl.LazyFrame:
    """Events whose local date is within [start, end] (None: open)."""
    if start is not None:
        events = events.filter(pl.col("local_date") >= pl.lit(start))
    if end is not None:
        events = events.filter(pl.col("local_date") <= pl.lit(end))
    return events


def in_scope(events: pl.LazyFrame, subscribers: Subscribers, home_mcc: int) -> pl.LazyFrame:
    """Events of the subscribers in scope."""
    if subscribers is Subscribers.DOMESTIC:
        return events.filter(pl.col("mcc") == home_mcc)
    if subscribers is Subscribers.INBOUND:
        return events.filter(pl.col("mcc") != home_mcc)
    return events


def kept_devices(
    files: StoreFiles,
    events: pl.LazyFrame,
    filters: DeviceFilterParameters,
    *,
    start: object,
    end: object,
    subscribers: Subscribers,
) -> pl.LazyFrame:
    """device_id of the devices that pass the device filter, from the store's device-day
    summaries where it has them, else from `events` (the scope's)."""
    if not files.device_days:
        return kept_by_events(events, filters)
    days = pl.scan_parquet([str(path) for path in files.device_days], hive_partitioning=False)
    days = in_scope(in_period(days, start, end), subscribers, filters.home_mcc)
    listed = pl.col("tacs").list.set_intersection(list(filters.m2m_tacs)).list.len() > 0
    stats = days.group_by("device_id").agg(
        n_events=pl.col("n_events").sum(),
        n_days=pl.col("local_date").n_unique(),
        n_interactive=pl.col("n_interactive").sum(),
        n_listed=listed.any(),
    )
    cells = days.select("device_id", "cells").explode("cells").drop_nulls("cells")
    cells = cells.group_by("device_id").agg(n_cells=pl.col("cells").n_unique())
    stats = stats.join(cells, on="device_id", how="left")
    return _passing(stats.with_columns(pl.col("n_listed").cast(pl.Int64)), filters)


def kept_by_events(events: pl.LazyFrame, filters: DeviceFilterParameters) -> pl.LazyFrame:
    """device_id of the devices of `events` that pass the device filter."""
    interactive = pl.col("event_type").is_in(INTERACTIVE_EVENTS).fill_null(False)
    listed = pl.col("tac").is_in(list(filters.m2m_tacs) or [""]).fill_null(False)
    stats = events.group_by("device_id").agg(
        n_events=pl.len(),
        n_days=pl.col("local_date").drop_nulls().n_unique(),
        n_cells=pl.col("cell_id").drop_nulls().n_unique(),
        n_interactive=interactive.cast(pl.Int64).sum(),
        n_listed=listed.cast(pl.Int64).sum(),
    )
    return _passing(stats, filters)


def _passing(stats: pl.LazyFrame, filters: DeviceFilterParameters) -> pl.LazyFrame:
    """device_id of the devices whose per-device figures pass every filter."""
    m2m_tac = pl.col("n_listed") > 0
    behaves_m2m = (
        pl.lit(filters.m2m_behaviour)
        & (pl.col("n_interactive") == 0)
        & (pl.col("n_cells") <= filters.m2m_max_cells)
    )
    too_little = (pl.col("n_days") < filters.min_days) | (pl.col("n_events") < filters.min_events)
    return stats.filter(~(m2m_tac | behaves_m2m | too_little)).select("device_id")


def usual_residence(files: StoreFiles, params: UsualResidenceParameters) -> pl.DataFrame:
    """area_code, device_count: devices by home area (most distinct nights)."""
    if params.rule is not HomeRule.MOST_DISTINCT_NIGHTS or params.spatial_estimator != "allocation":
        raise NotImplementedError("the baseline implements the default rule and estimator only")
    filters = params.filters
    events = in_period(scan_events(files), params.start, params.end)
    events = in_scope(events, Subscribers.DOMESTIC, filters.home_mcc)
    kept = kept_devices(
        files, events, filters, start=params.start, end=params.end, subscribers=Subscribers.DOMESTIC
    )
    hour = pl.col("local_hour")
    evening = hour >= params.night_start_hour
    nights = events.filter(evening | (hour < params.night_end_hour)).select(
        "device_id",
        "cell_id",
        night=pl.col("local_date").cast(pl.Int32) - (~evening).cast(pl.Int32),
    )
    summary = nights.unique().join(kept, on="device_id", how="semi")
    per_cell = summary.group_by("device_id", "cell_id").agg(nights=pl.len())
    best = per_cell.filter(pl.col("nights") == pl.col("nights").max().over("device_id"))
    homes = best.group_by("device_id").agg(pl.col("cell_id").min())
    totals = summary.group_by("device_id").agg(total=pl.col("night").n_unique())
    eligible = totals.filter(pl.col("total") >= params.min_nights).select("device_id")
    homes = homes.join(eligible, on="device_id", how="semi")
    allocation = pl.DataFrame(latest_versions(files.allocation)).lazy()
    located = homes.join(allocation, on="cell_id")
    counts = located.group_by("area_code").agg(device_count=pl.col("weight").sum())
    return counts.collect(engine="streaming")


def present_population(files: StoreFiles, params: PresentPopulationParameters) -> pl.DataFrame:
    """local_date, slot, area_code, device_count: devices present per slot and area."""
    slot_minutes = params.slot_minutes
    per_day = 1440 // slot_minutes
    carry = params.max_carry_minutes // slot_minutes
    back = params.max_backfill_minutes // slot_minutes
    filters = params.filters
    everything = in_period(scan_events(files), params.start, params.end)
    events = in_scope(everything, params.subscribers, filters.home_mcc)
    kept = kept_devices(
        files, events, filters, start=params.start, end=params.end, subscribers=params.subscribers
    )
    ranks = (
        pl.scan_parquet(files.cells)
        .select("cell_id")
        .unique()
        .sort("cell_id")
        .with_row_index("rank")
        .with_columns(pl.col("rank").cast(pl.Int64))
    )
    minute = pl.col("local_hour").cast(pl.Int64) * 60
    if slot_minutes % 60:
        minute = minute + pl.col("timestamp").dt.minute().cast(pl.Int64)
    g = pl.col("local_date").cast(pl.Int64) * per_day + minute // slot_minutes
    # Whole seconds by truncation, as the certified rule counts them.
    seconds = pl.col("timestamp").dt.epoch("us") // 1_000_000
    key = seconds * CELL_RANKS + pl.col("rank")
    observed = (
        events.join(ranks, on="cell_id")
        .group_by("device_id", g.alias("g"))
        .agg(key=key.max())
        .select("device_id", "g", rank=pl.col("key") % CELL_RANKS)
        .join(kept, on="device_id", how="semi")
    )
    g = pl.col("g")
    following = g.shift(-1).over("device_id", order_by="g")
    previous = g.shift(1).over("device_id", order_by="g")
    spans = observed.with_columns(
        end=pl.when(following.is_null())
        .then(g + carry + 1)
        .otherwise(span_end(g, following, carry, back)),
        start=pl.when(previous.is_null())
        .then(g - back)
        .otherwise(pl.max_horizontal(g - back, span_end(previous, g, carry, back))),
    )
    points = pl.concat(
        [
            spans.select("rank", g="start", change=pl.lit(1, pl.Int64)),
            spans.select("rank", g="end", change=pl.lit(-1, pl.Int64)),
        ]
    )
    # Collected (cells x slots at most): the weights' versions read it twice, and a lazy
    # frame read twice is computed twice, events and all.
    per_rank = (
        points.group_by("rank", "g")
        .agg(pl.col("change").sum().cast(pl.Float64))
        .collect(engine="streaming")
        .lazy()
    )
    allocation = (
        pl.DataFrame(allocation_versions(files.allocation)).lazy().join(ranks, on="cell_id")
    )
    located = on_day_weights(per_rank, allocation, per_day)
    deltas = located.group_by("area_code", "g").agg(
        delta=(pl.col("weight") * pl.col("change")).sum()
    )
    levels = deltas.with_columns(
        level=pl.col("delta").cum_sum().over("area_code", order_by="g"),
        until=pl.col("g").shift(-1).over("area_code", order_by="g"),
    ).filter((pl.col("level") > LEVEL_DUST) & pl.col("until").is_not_null())
    slots = levels.with_columns(g=pl.int_ranges("g", "until")).explode("g")
    dates = everything.select("local_date").unique()
    dates = dates.with_columns(day=pl.col("local_date").cast(pl.Int64))
    slots = slots.with_columns(day=pl.col("g") // per_day, slot=pl.col("g") % per_day)
    result = slots.join(dates, on="day").select(
        "local_date", "slot", "area_code", device_count=pl.col("level")
    )
    return result.collect(engine="streaming")


def span_end(g: pl.Expr, after: pl.Expr, carry: int, back: int) -> pl.Expr:
    """End of the span of an observation at `g` when the next is at `after` (nearer wins)."""
    nearer = pl.max_horizontal((g + after) // 2, after - (back + 1))
    return pl.min_horizontal(g + carry, nearer) + 1


def on_day_weights(per_rank: pl.LazyFrame, allocation: pl.LazyFrame, per_day: int) -> pl.LazyFrame:
    """Each cell's changes (rank, g, change) on the areas of the weights of their day.

    Where a new version of a cell's weights starts, the devices at the cell then leave the
    areas of the day before and enter those of the new version.
    """
    per_rank = per_rank.with_columns(day=pl.col("g") // per_day)
    starts = (
        allocation.filter(pl.col("first_day").is_not_null())
        .select("rank", "first_day")
        .unique()
        .with_columns(start=pl.col("first_day") * per_day)
    )
    present = (
        per_rank.join(starts, on="rank")
        .filter(pl.col("g") < pl.col("start"))
        .group_by("rank", "start", "first_day")
        .agg(level=pl.col("change").sum())
        .filter(pl.col("level") != 0)
    )
    moves = pl.concat(
        [
            present.select("rank", g="start", change=-pl.col("level"), day=pl.col("first_day") - 1),
            present.select("rank", g="start", change="level", day="first_day"),
        ]
    )
    changes = pl.concat([per_rank.select("rank", "g", "change", "day"), moves])
    day = pl.col("day")
    valid = (pl.col("first_day").is_null() | (pl.col("first_day") <= day)) & (
        pl.col("last_day").is_null() | (day <= pl.col("last_day"))
    )
    return changes.join(allocation, on="rank").filter(valid)
