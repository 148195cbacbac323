"""The default rules of `usual_residence` and `present_population` in pandas, day by day.

Each day file is read (PyArrow), reduced at once to small per-day summaries with pandas
group-bys, and only the summaries are combined: a month of events never sits in memory.
Cells are numbered by their place in the sorted cell ids (the certified rank), so group-bys
run on integers. Same rules as the certified algorithms (see their module docstrings).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

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

FILTER_KEYS = ["device_id", "day", "cell"]


def cell_ids(files: StoreFiles) -> pa.Array:
    """The sorted distinct cell ids: a cell's position is its rank."""
    cells = pq.read_table(files.cells, columns=["cell_id"]).column("cell_id")
    return pc.unique(cells.drop_null()).sort()


def day_frames(
    files: StoreFiles,
    columns: list[str],
    *,
    period: tuple[Any, Any],
    subscribers: Subscribers,
    home_mcc: int,
    cells: pa.Array,
) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
    """Per day file: events in period and scope (device_id, day, cell, ...), and all its days.

    `day` is the local date in days since 1970 and `cell` the cell's rank.
    """
    wanted = list(dict.fromkeys(["device_id", "local_date", "cell_id", "mcc", *columns]))
    for path in files.events:
        table = pq.read_table(path, columns=wanted)
        start, end = period
        if start is not None:
            table = table.filter(pc.greater_equal(table.column("local_date"), pa.scalar(start)))
        if end is not None:
            table = table.filter(pc.less_equal(table.column("local_date"), pa.scalar(end)))
        days = np.unique(table.column("local_date").cast(pa.int32()).to_numpy())
        if subscribers is Subscribers.DOMESTIC:
            table = table.filter(pc.equal(table.column("mcc"), home_mcc))
        elif subscribers is Subscribers.INBOUND:
            table = table.filter(pc.not_equal(table.column("mcc"), home_mcc))
        rank = pc.index_in(table.column("cell_id"), value_set=cells)
        if rank.null_count:
            raise ValueError(f"{path}: events at cells missing from the cells table")
        frame = pd.DataFrame(
            {
                "device_id": table.column("device_id").to_numpy(),
                "day": table.column("local_date").cast(pa.int32()).to_numpy(),
                "cell": rank.to_numpy(),
            }
        )
        for name in columns:
            frame[name] = table.column(name).to_numpy()
        yield frame, days


def filter_summary(frame: pd.DataFrame, filters: DeviceFilterParameters) -> pd.DataFrame:
    """Per device, day and cell: events, calls/SMS, events with a listed TAC."""
    summary = frame[FILTER_KEYS].assign(
        n_events=1,
        n_interactive=frame["event_type"].isin(INTERACTIVE_EVENTS).astype("int64"),
        n_listed=frame["tac"].isin(list(filters.m2m_tacs) or [""]).astype("int64"),
    )
    return summary.groupby(FILTER_KEYS, sort=False, as_index=False).sum()


def kept_devices(parts: list[pd.DataFrame], filters: DeviceFilterParameters) -> pd.Index:
    """device_id of the devices that pass the device filter, from the daily summaries."""
    daily = pd.concat(parts, ignore_index=True)
    daily = daily.groupby(FILTER_KEYS, sort=False, as_index=False).sum()
    stats = daily.groupby("device_id", sort=False)[["n_events", "n_interactive", "n_listed"]].sum()
    stats["n_days"] = daily.drop_duplicates(["device_id", "day"]).groupby("device_id").size()
    stats["n_cells"] = daily.drop_duplicates(["device_id", "cell"]).groupby("device_id").size()
    m2m_tac = stats["n_listed"] > 0
    behaves_m2m = (
        filters.m2m_behaviour
        & (stats["n_interactive"] == 0)
        & (stats["n_cells"] <= filters.m2m_max_cells)
    )
    too_little = (stats["n_days"] < filters.min_days) | (stats["n_events"] < filters.min_events)
    return stats.index[~(m2m_tac | behaves_m2m | too_little)]


def allocation_by_rank(table: pa.Table, cells: pa.Array) -> pd.DataFrame:
    """The allocation `table` with cell ranks for ids (cells that are in the cells table)."""
    rank = pc.index_in(table.column("cell_id"), value_set=cells)
    frame = table.drop_columns(["cell_id"]).to_pandas().assign(rank=rank.to_numpy(False))
    ranked: pd.DataFrame = frame.dropna(subset=["rank"]).astype({"rank": "int64"})
    return ranked


def on_day_weights(per_rank: pd.DataFrame, allocation: pd.DataFrame, per_day: int) -> pd.DataFrame:
    """Each cell's changes (rank, g, change) on the areas of the weights of their day.

    Where a new version of a cell's weights starts, the devices at the cell then leave the
    areas of the day before and enter those of the new version.
    """
    per_rank = per_rank.assign(day=per_rank["g"] // per_day)
    starts = allocation.loc[allocation["first_day"].notna(), ["rank", "first_day"]]
    starts = starts.drop_duplicates().astype("int64")
    starts["start"] = starts["first_day"] * per_day
    before = per_rank.merge(starts, on="rank")
    before = before[before["g"] < before["start"]]
    present = before.groupby(["rank", "start", "first_day"], as_index=False)["change"].sum()
    present = present[present["change"] != 0]
    moves = [
        pd.DataFrame(
            {
                "rank": present["rank"],
                "g": present["start"],
                "change": sign * present["change"],
                "day": present["first_day"] + shift,
            }
        )
        for sign, shift in ((-1, -1), (1, 0))
    ]
    changes = pd.concat([per_rank, *moves], ignore_index=True)
    located = changes.merge(allocation, on="rank")
    day = located["day"]
    valid = (located["first_day"].isna() | (located["first_day"] <= day)) & (
        located["last_day"].isna() | (day <= located["last_day"])
    )
    return located[valid]


def usual_residence(files: StoreFiles, params: UsualResidenceParameters) -> pd.DataFrame:
    """area_code, device_count: devices by home area (most distinct nights)."""
    if params.rule is not HomeRule.MOST_DISTINCT_NIGHTS or params.spatial_estimator != "allocation":
        raise NotImplementedError("the baseline implements the default rule and estimator only")
    filters = params.filters
    cells = cell_ids(files)
    summaries, night_parts = [], []
    for frame, _days in day_frames(
        files,
        ["local_hour", "event_type", "tac"],
        period=(params.start, params.end),
        subscribers=Subscribers.DOMESTIC,
        home_mcc=filters.home_mcc,
        cells=cells,
    ):
        summaries.append(filter_summary(frame, filters))
        hour = frame["local_hour"]
        evening = hour >= params.night_start_hour
        nights = frame.loc[evening | (hour < params.night_end_hour), ["device_id", "cell", "day"]]
        nights["day"] -= (~evening[nights.index]).astype("int32")
        night_parts.append(nights.drop_duplicates())
    kept = kept_devices(summaries, filters)
    summary = pd.concat(night_parts, ignore_index=True).drop_duplicates()
    summary = summary[summary["device_id"].isin(kept)]
    per_cell = summary.groupby(["device_id", "cell"], as_index=False).size()
    per_cell = per_cell.sort_values(["device_id", "size", "cell"], ascending=[True, False, True])
    homes = per_cell.drop_duplicates("device_id")
    totals = summary.drop_duplicates(["device_id", "day"]).groupby("device_id").size()
    eligible = totals.index[totals >= params.min_nights]
    homes = homes[homes["device_id"].isin(eligible)]
    located = homes.merge(
        allocation_by_rank(latest_versions(files.allocation), cells),
        left_on="cell",
        right_on="rank",
    )
    return located.groupby("area_code", as_index=False).agg(device_count=("weight", "sum"))


def present_population(files: StoreFiles, params: PresentPopulationParameters) -> pd.DataFrame:
    """local_date, slot, area_code, device_count: devices present per slot and area."""
    slot_minutes = params.slot_minutes
    per_day = 1440 // slot_minutes
    carry = params.max_carry_minutes // slot_minutes
    back = params.max_backfill_minutes // slot_minutes
    filters = params.filters
    cells = cell_ids(files)
    summaries, observed_parts, all_days = [], [], []
    for frame, days in day_frames(
        files,
        ["local_hour", "timestamp", "event_type", "tac"],
        period=(params.start, params.end),
        subscribers=params.subscribers,
        home_mcc=filters.home_mcc,
        cells=cells,
    ):
        all_days.append(days)
        summaries.append(filter_summary(frame, filters))
        micros = frame["timestamp"].to_numpy().astype("datetime64[us]").astype("int64")
        minute = frame["local_hour"].to_numpy().astype("int64") * 60
        if slot_minutes % 60:
            minute += (micros // 60_000_000) % 60
        # Whole seconds by truncation, as the certified rule counts them.
        seconds = micros // 1_000_000
        observed = pd.DataFrame(
            {
                "device_id": frame["device_id"].to_numpy(),
                "g": frame["day"].to_numpy().astype("int64") * per_day + minute // slot_minutes,
                "key": seconds * CELL_RANKS + frame["cell"].to_numpy(),
            }
        )
        observed_parts.append(
            observed.groupby(["device_id", "g"], sort=False, as_index=False).max()
        )
    kept = kept_devices(summaries, filters)
    observed = pd.concat(observed_parts, ignore_index=True)
    observed = observed[observed["device_id"].isin(kept)]
    observed = observed.groupby(["device_id", "g"], as_index=False).max()  # sorted by both
    device = observed["device_id"].to_numpy()
    g = observed["g"].to_numpy()
    rank = observed["key"].to_numpy() % CELL_RANKS
    # Each slot between two observations goes to the nearer (the earlier at equal distance),
    # reaching at most `carry` slots forward and `back` slots back.
    same_device = np.append(device[1:] == device[:-1], False)
    following = np.append(g[1:], 0)
    nearer = np.maximum((g + following) // 2, following - (back + 1))
    end = np.where(same_device, np.minimum(g + carry, nearer) + 1, g + carry + 1)
    after_one = np.insert(same_device[:-1], 0, False)
    previous_end = np.insert(end[:-1], 0, 0)
    start = np.where(after_one, np.maximum(g - back, previous_end), g - back)
    points = pd.DataFrame(
        {
            "rank": np.concatenate([rank, rank]),
            "g": np.concatenate([start, end]),
            "change": np.concatenate([np.ones(len(g)), -np.ones(len(g))]),
        }
    )
    per_rank = points.groupby(["rank", "g"], as_index=False, sort=False).agg(
        change=("change", "sum")
    )
    allocation = allocation_by_rank(allocation_versions(files.allocation), cells)
    located = on_day_weights(per_rank, allocation, per_day)
    located["delta"] = located["weight"] * located["change"]
    deltas = located.groupby(["area_code", "g"], as_index=False)["delta"].sum()  # sorted
    deltas["level"] = deltas.groupby("area_code")["delta"].cumsum()
    deltas["until"] = deltas.groupby("area_code")["g"].shift(-1)
    levels = deltas[(deltas["level"] > LEVEL_DUST) & deltas["until"].notna()]
    lengths = (levels["until"].to_numpy() - levels["g"].to_numpy()).astype("int64")
    rows = np.repeat(np.arange(len(levels)), lengths)
    offsets = np.arange(len(rows)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    slot_g = levels["g"].to_numpy()[rows] + offsets
    slots = pd.DataFrame(
        {
            "day": slot_g // per_day,
            "slot": slot_g % per_day,
            "area_code": levels["area_code"].to_numpy()[rows],
            "device_count": levels["level"].to_numpy()[rows],
        }
    )
    slots = slots[slots["day"].isin(np.unique(np.concatenate(all_days)))]
    local_date = pd.to_datetime(slots["day"].to_numpy(), unit="D")
    return pd.DataFrame(
        {
            "local_date": local_date,
            "slot": slots["slot"].to_numpy(),
            "area_code": slots["area_code"].to_numpy(),
            "device_count": slots["device_count"].to_numpy(),
        }
    )
