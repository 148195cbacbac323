"""Present population: distinct devices per area and time slot (15 min, 30 min, hour, day).

Method: a device's position in a slot is the cell of its last event in that slot (ties on
time go to the largest cell id). A device silent in a slot takes the position of its
observed slot nearest in time: the last one, carried forward for at most `max_carry_minutes`,
or the next one, carried back for at most `max_backfill_minutes` (in whole slots:
``minutes // slot_minutes``), across midnight too; at equal distance the last one. Beyond
both it is not counted. Positions are spread over areas by
the allocation weights (Voronoi or sector coverage), so a device adds at most 1 to each slot;
or, with ``spatial_estimator="bayesian"``, counted per cell and slot and placed on areas by the
estimator of Ricciato & Coluccia over the tile footprint (`spatial.tile_bayesian_counts`).
Slots follow local time: slot ``s`` of a local date starts ``s * slot_minutes`` minutes after
local midnight (assumes a time zone whose offset is a whole number of hours, as in Europe).

Carrying back matters at night: a phone silent from the evening is more often where its
first event of the morning is (at home) than where its last event of the day was (at work or
on the way). On the accuracy world (docs/algorithms/present_population.md) it takes r against
true presence per municipality and hour from 0.970 to 0.986, at night from 0.948 to 0.985.
``max_backfill_minutes=0`` gives the last known position only (version 1.2).

With ``usual_place_after_minutes``, slots farther than that from both observations around
them take the device's usual place at their hour (`usual_places`), where it has one: a phone
silent through the working day is at work, not at home where it was seen morning and evening.

Reference: Ricciato, Widhalm, Craglia & Pantisano (2015), "Estimating population density
distribution from network-based mobile phone data", JRC technical report EUR 27361; Eurostat
Multi-MNO project, present population estimation (2024); FlowKit's ``spatial_aggregate`` of
``most_recent_location``; Ricciato & Coluccia (2023), IEEE Transactions on Mobile Computing.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
from ibis.expr.datatypes import DataType
from pydantic import Field, model_validator

from cellcensus.errors import CellcensusError
from cellcensus.holder.algorithms.areas import allocation_on, spread, versioned
from cellcensus.holder.algorithms.base import (
    AREA_KEY,
    COUNT,
    Algorithm,
    Certification,
    Key,
    KeyDomain,
    Manifest,
    PeriodParameters,
    StoreTables,
    bayesian_needs_footprint,
    cell_keys,
    engine_of,
    footprint_refusal,
    in_period,
    whole_seconds,
)
from cellcensus.holder.algorithms.device_filter import (
    DeviceFilterParameters,
    Scope,
    Subscribers,
)
from cellcensus.holder.algorithms.spatial import tile_bayesian_counts

LEVEL_DUST = 1e-9
"""Running sums below this are rounding remainders of added and removed weights, not devices."""


class PresentPopulationParameters(PeriodParameters):
    """Parameters of `present_population`."""

    slot_minutes: Literal[15, 30, 60, 1440] = Field(default=60, description="Length of a slot.")
    max_carry_minutes: int = Field(
        default=720,
        ge=0,
        le=1440,
        description="Longest a last known position is carried; in slots, together with "
        "max_backfill_minutes, at most a day.",
    )
    max_backfill_minutes: int = Field(
        default=720,
        ge=0,
        le=1440,
        description="Longest a next known position is carried back (0: the last one only); "
        "in slots, together with max_carry_minutes, at most a day.",
    )
    usual_place_after_minutes: int = Field(
        default=0,
        ge=0,
        le=720,
        description="A slot farther than this from both of a silent device's observations "
        "takes the device's usual place at that hour (its most frequent cell within an hour "
        "of it on the period's weekdays, or weekend days), where it has one (0: never).",
    )
    subscribers: Subscribers = Field(default=Subscribers.ALL, description="Whose devices.")
    filters: DeviceFilterParameters = Field(default_factory=DeviceFilterParameters)
    spatial_estimator: Literal["allocation", "bayesian"] = Field(
        default="allocation",
        description="From cells to areas: 'allocation' (footprint shares) or 'bayesian' "
        "(Ricciato & Coluccia per slot over the coverage model's 250 m tiles, from the "
        "register prior; needs the store's tile footprint, see holder/algorithms/spatial.py).",
    )
    iterations: int = Field(
        default=1,
        ge=1,
        le=100,
        description="Updates of the bayesian estimator (1: the posterior under the prior).",
    )

    @model_validator(mode="after")
    def _spans_within_a_day(self) -> PresentPopulationParameters:
        # Days are stitched to the next day only (`presence_changes`).
        slots = self.max_carry_minutes // self.slot_minutes + (
            self.max_backfill_minutes // self.slot_minutes
        )
        if slots > 1440 // self.slot_minutes:
            raise ValueError(
                f"max_carry_minutes ({self.max_carry_minutes}) and max_backfill_minutes "
                f"({self.max_backfill_minutes}) reach {slots} slots of {self.slot_minutes} "
                "minutes together: at most a day, so lower one of them (e.g. "
                "max_backfill_minutes=0 to carry only forward)"
            )
        if self.usual_place_after_minutes and self.slot_minutes == 1440:
            raise ValueError(
                "usual_place_after_minutes needs slots within a day (slot_minutes 15, 30 "
                "or 60): a daily slot has no hour to take a usual place at"
            )
        return self


HOURS = 24
"""Hourly slots a day."""

CELL_RANKS = 2**24
"""More cells than any network has: a cell's rank fits below this in the ordering key."""


def cell_ranks(cells: ir.Table) -> ir.Table:
    """cell_id, rank: each cell's place in the order of cell ids (a small table).

    Events at a cell missing from the cells table are not placed (the store quarantines
    them at ingestion).
    """
    ids = cells.select("cell_id").distinct()
    return ids.mutate(rank=ibis.row_number().over(order_by="cell_id").cast("int64"))


def position_ranks(cells: ir.Table, allocation: ir.Table) -> ir.Table:
    """cell_id, rank: `cell_ranks`, but cells whose weights are the same rank as one.

    Cells with one version of weights for all time (no validity dates) that spread a device
    over the same areas by the same shares (most often, cells wholly inside one area) take
    the smallest of their ranks: a device moving between them stays in the same areas, so
    the move is no change of any count and need not be written. The others keep their own
    rank (a cell whose weights change needs its own level where they do: `version_changes`).
    The allocation keyed by `cell_ranks` then spreads these ranks as their cells.
    """
    ranks = cell_ranks(cells)
    if versioned(allocation):
        dated = allocation.valid_from.notnull() | allocation.valid_to.notnull()
        allocation = allocation.anti_join(allocation.filter(dated).select("cell_id"), "cell_id")
    share = ibis.struct({"area_code": allocation.area_code, "weight": allocation.weight})
    weights = allocation.group_by("cell_id").agg(shares=share.collect().sort())
    fixed = weights.join(ranks, "cell_id")
    fixed = fixed.select(_cell=fixed.cell_id, _rank=fixed["rank"].min().over(group_by=fixed.shares))
    ranks = ranks.left_join(fixed, ranks.cell_id == fixed._cell)
    return ranks.select("cell_id", rank=ranks._rank.fill_null(ranks["rank"]))


def by_key(ranks: ir.Table) -> ir.Table:
    """cell, rank: `ranks` (cell_id, rank) by the `cell_key` that lists a cell in positions.

    The small table is computed here and keyed in Python, so every engine joins the same
    integers.
    """
    table = ranks.select("cell_id", "rank").to_pyarrow()
    keys = cell_keys(table["cell_id"].to_pylist())
    if len(set(keys["cell"].to_pylist())) < table.num_rows:
        raise CellcensusError(
            "two cell ids of the cells table share one key in the hourly positions: "
            "summarise the store without them (cellcensus store summarise --no-positions)"
        )
    return ibis.memtable(pa.table({"cell": keys["cell"], "rank": table["rank"]}))


def observed_slots(events: ir.Table, cells: ir.Table, slot_minutes: int) -> ir.Table:
    """One row per device and slot with events: device_id, g, rank (of the slot's cell).

    `g` numbers slots continuously over dates (days since 1970 times slots per day plus
    slot), so that carrying forward crosses midnight. The cell is that of the slot's last
    event (ties within the same second: the largest cell id): the largest ordering key
    (seconds and cell rank), whose low bits are the winning cell's rank (see `cell_ranks`).
    A plain maximum over one integer key costs less than an arg-max or a sort of events;
    the cell id is put back on the small per-cell table later.
    """
    per_day = 1440 // slot_minutes
    minute = events.local_hour.cast("int64") * 60
    if slot_minutes % 60:
        # Slots shorter than an hour need the minute; whole-hour slots do not (the offset
        # of local time is a whole number of hours), which saves a time zone computation.
        minute = minute + events.timestamp.minute().cast("int64")
    slot = minute // slot_minutes
    events = events.mutate(g=events.local_date.epoch_days().cast("int64") * per_day + slot)
    events = events.join(cell_ranks(cells), "cell_id").select("device_id", "g", "timestamp", "rank")
    second = whole_seconds(events.timestamp)
    key = second * CELL_RANKS + events["rank"]
    latest = events.group_by(["device_id", "g"]).agg(key=key.max())
    return latest.select("device_id", "g", rank=latest.key % CELL_RANKS)


def day_observations(observed: ir.Table, *, per_day: int) -> ir.Table:
    """Each observation with the device's next one on the same day (per day).

    Returns device_id, rank, g, following and following_rank (the device's next observed
    slot that day and its cell's rank, else null), and first (whether it is the device's
    first observation that day). Windows over one day of a device's slots sort a day, not
    the period.
    """
    window = ibis.window(group_by=["device_id", observed.g // per_day], order_by="g")
    return observed.mutate(
        following=observed.g.lead().over(window),
        following_rank=observed["rank"].lead().over(window),
        first=ibis.row_number().over(window) == 0,
    )


def position_observations(summaries: ir.Table, ranks: ir.Table, *, per_day: int) -> ir.Table:
    """`day_observations` of hourly or daily slots from the devices' hourly positions.

    `summaries` are device-day summaries (`holder.store.device_days`), one row per device and
    date, whose `positions` list the hours a device was seen in, in order, each with the
    cell of its last event by the rule of `observed_slots`. Each hour is then a slot with its
    successor beside it in the list, and a day's last position is that of its last hour: no
    sort of a day's slots, no pass over its events. `ranks` ranks the cells by their keys
    (`by_key`).
    """
    day = summaries.local_date.epoch_days().cast("int64")
    if per_day == 1:
        last = summaries.positions[summaries.positions.length() - 1]["cell"]
        seen = summaries.mutate(g=day, cell=last)
        seen = seen.select(
            "device_id",
            "g",
            "cell",
            following=ibis.null().cast("int64"),
            following_cell=ibis.null().cast("int64"),
            first=ibis.literal(True),
        )
    else:
        hours = _hours_with_next(summaries.mutate(day=day))
        seen = hours.select(
            "device_id",
            g=hours.day * per_day + hours.hour.cast("int64"),
            cell=hours.at["cell"],
            following=hours.day * per_day + hours.next["hour"].cast("int64"),
            following_cell=hours.next["cell"],
            first=hours.first,
        )
    seen = seen.join(ranks, "cell").drop("cell")
    seen = seen.left_join(as_following(ranks), "following_cell")
    # A successor at a cell the cells table lacks is no observation (ingest refuses such a
    # table for stored days; the events path drops its events too).
    following = ibis.ifelse(seen.following_rank.isnull(), None, seen.following)
    return seen.select(
        "device_id",
        "rank",
        "g",
        following=following,
        following_rank="following_rank",
        first="first",
    )


def as_following(ranks: ir.Table) -> ir.Table:
    """`ranks` (`by_key`) as following_cell, following_rank: to rank a successor's cell."""
    after = ranks.view()
    return after.select(following_cell=after.cell, following_rank=after["rank"])


def _hours_with_next(summaries: ir.Table) -> ir.Table:
    """device_id, day, hour, at, next, first: each listed position and the next one.

    On DuckDB the list and its tail are unnested side by side (the tail padded with a
    null), a vectorised pass; elsewhere (Spark allows one generator per select) by position.
    """
    positions = summaries.positions
    if engine_of(summaries) == "duckdb":
        listed = summaries.select(
            "device_id",
            "day",
            opening=positions[0]["hour"],
            at=positions.unnest(),
            next=positions[1:].unnest(),
        )
        return listed.mutate(hour=listed.at["hour"], first=listed.at["hour"] == listed.opening)
    listed = summaries.mutate(at=positions).unnest("at", offset="i", keep_empty=False)
    more = listed.i + 1 < listed.positions.length()  # past the end is an error on Spark (ANSI)
    return listed.select(
        "device_id",
        "day",
        "at",
        hour=listed.at["hour"],
        next=ibis.ifelse(more, listed.positions[listed.i + 1], None),
        first=listed.i == 0,
    )


def span_end(g: ir.IntegerValue, after: ir.IntegerValue, *, carry: int, back: int) -> ir.Value:
    """Where the span of an observation at `g` ends when the device is next seen at `after`.

    Each slot between them goes to the nearer observation (at equal distance the earlier),
    the earlier one reaching at most `carry` slots forward and the later one `back` slots
    back; a slot neither reaches counts for neither.
    """
    nearer = ibis.greatest((g + after) // 2, after - (back + 1))
    return ibis.least(g + carry, nearer) + 1


def span_meeting(
    g: ir.IntegerValue, after: ir.IntegerValue, *, carry: int, back: int
) -> tuple[ir.IntegerValue, ir.IntegerValue]:
    """Where the span of an observation at `g` ends, and that of the next one at `after` starts.

    Either may be null (no observation on that side, across a night): the earlier span then
    lasts `carry` slots more, the later one reaches `back` slots back.
    """
    meet = span_end(g, after, carry=carry, back=back)
    end = ibis.ifelse(after.isnull(), g + (carry + 1), meet)
    reach = after - back
    start = ibis.ifelse(g.isnull(), reach, ibis.greatest(reach, meet))
    return end, start


def stays(
    g: ir.IntegerValue,
    after: ir.IntegerValue,
    same_cell: ir.BooleanValue,
    *,
    carry: int,
    back: int,
) -> ir.BooleanValue:
    """Whether a device observed at `g` and next at `after` stays present at one cell.

    Then the span of the first ends where that of the second starts (no slot between them is
    beyond reach of both), at the same cell: the -1 and the +1 cancel, and neither is written.
    """
    return same_cell & (after - g <= carry + back + 1)


PART = "part"
"""Which kind of row of `day_parts` a row is: `CHANGES`, `LAST`, `OPENS`, `SEEN` or `USUAL`."""
CHANGES, LAST, OPENS, SEEN, USUAL = "changes", "last", "opens", "seen", "usual"


def hour_of(g: ir.IntegerValue, *, per_day: int) -> ir.IntegerValue:
    """The local hour slot `g` starts in."""
    return (g % per_day) * (1440 // per_day) // 60


def weekend(g: ir.IntegerValue, *, per_day: int) -> ir.BooleanValue:
    """Whether slot `g` falls on a Saturday or a Sunday (day 0, 1970-01-01, was a Thursday)."""
    return (g // per_day + 3) % 7 >= 5


def usual_spans(pairs: ir.Table, *, carry: int, back: int, usual: int) -> ir.Table:
    """The slots that two observations' spans reach but are farther than `usual` from both.

    `pairs` has device_id, g and rank (an observation, or nulls), after and after_rank (the
    device's next one, or nulls). The earlier one reaches to where `span_end` puts it, the
    later one back from there (or `back` slots); of the slots either reaches, those more
    than `usual` slots from both may take the device's usual place (`usual_changes`).
    Returns device_id, rank (of the observation the slots would go to), g, until (both
    included).
    """
    end, start = span_meeting(pairs.g, pairs.after, carry=carry, back=back)
    far = pairs.mutate(
        lo_1=pairs.g + (usual + 1),
        hi_1=ibis.least(end - 1, (pairs.after - (usual + 1)).fill_null(end - 1)),
        lo_2=ibis.greatest(start, (pairs.g + (usual + 1)).fill_null(start)),
        hi_2=pairs.after - (usual + 1),
    )
    earlier = far.filter(far.g.notnull() & (far.lo_1 <= far.hi_1))
    later = far.filter(far.after.notnull() & (far.lo_2 <= far.hi_2))
    return earlier.select("device_id", "rank", g=earlier.lo_1, until=earlier.hi_1).union(
        later.select("device_id", rank=later.after_rank, g=later.lo_2, until=later.hi_2),
        distinct=False,
    )


def usual_places(seen: ir.Table, *, per_day: int) -> ir.Table:
    """device_id, weekend, hour, usual: each device's usual cell rank at each hour.

    The cell of most observed slots within an hour of it on the period's weekdays (or
    weekend days: `weekend`), ties to the largest rank, of devices seen then at all.
    """
    hours = seen.select(
        "device_id",
        "rank",
        weekend=weekend(seen.g, per_day=per_day),
        hour=hour_of(seen.g, per_day=per_day),
    )
    counts = hours.group_by(["device_id", "weekend", "hour", "rank"]).agg(n=hours.count())
    # Each hour's observations count for the hours either side too, once summed.
    near = counts.mutate(k=ibis.range(23, 26).unnest())  # an unnest of its own, for Spark
    near = near.mutate(hour=(near.hour + near.k) % 24)
    counts = near.group_by(["device_id", "weekend", "hour", "rank"]).agg(n=near.n.sum())
    key = counts.n.cast("int64") * CELL_RANKS + counts["rank"]
    best = counts.group_by(["device_id", "weekend", "hour"]).agg(key=key.max())
    return best.select("device_id", "weekend", "hour", usual=best.key % CELL_RANKS)


def usual_changes(spans: ir.Table, places: ir.Table, *, per_day: int) -> ir.Table:
    """rank, g, change: each slot of `spans` moved to the device's usual place at its hour.

    The device leaves the cell of its nearer observation for that slot and is at its usual
    place instead (where it has one there and it differs), so it still counts once per slot.
    """
    slots = spans.mutate(k=ibis.range(0, spans.until - spans.g + 1).unnest())
    slots = slots.select("device_id", "rank", g=slots.g + slots.k)
    slots = slots.mutate(
        weekend=weekend(slots.g, per_day=per_day), hour=hour_of(slots.g, per_day=per_day)
    )
    moved = slots.join(places, ["device_id", "weekend", "hour"])
    moved = moved.filter(moved.usual != moved["rank"])
    one = ibis.literal(1, type="int64")
    return ibis.union(
        moved.select("rank", g=moved.g, change=-one),
        moved.select("rank", g=moved.g + 1, change=one),
        moved.select(rank=moved.usual, g=moved.g, change=one),
        moved.select(rank=moved.usual, g=moved.g + 1, change=-one),
        distinct=False,
    )


def day_parts(
    days: ir.Table, *, carry_slots: int, back_slots: int, usual_slots: int | None = None
) -> ir.Table:
    """A day's presence spans as changes per cell rank, and its open ends (a per-day step).

    A device is at each observed cell over a span around its slot `g`: from `g` on until
    the slots nearer its next observation (at most `carry_slots` more), and back over the
    slots nearer it than the previous observation (at most `back_slots`). Within a day the
    neighbouring observations are known (`days` comes from `day_observations`): each one
    and the next give where the first's span ends and the next one's starts, which cancel
    where the device stays at one cell (`stays`). The span after a day's last observation
    and before its first depend on the days around, which `presence_changes` joins once
    every day is done.

    Returns part, device_id, rank, g, change, rows of three parts:
        `CHANGES` (rank, g, change): +1 where each span with an earlier observation that day
            starts, -1 where each span with a later one ends, summed per cell rank and slot
            (small);
        `LAST` (device_id, rank, g): each device's last observation of the day;
        `OPENS` (device_id, rank, g): each device's first observation of the day;
    and with `usual_slots`:
        `SEEN` (device_id, rank, g): every observation, for the devices' usual places;
        `USUAL` (device_id, rank, g, until): the slots between two observations that day
            farther than `usual_slots` from both (`usual_spans`).
    `until` is null but in `USUAL` rows.
    """
    spans = {"carry": carry_slots, "back": back_slots}
    device = days.device_id.type()
    moves = days.filter(days.following.notnull())
    parts = [
        as_part(CHANGES, span_changes(moves, **spans), device),
        as_part(LAST, days.filter(days.following.isnull()), device),
        as_part(OPENS, days.filter(days.first), device),
    ]
    if usual_slots is not None:
        pairs = moves.select(
            "device_id", "g", "rank", after=moves.following, after_rank=moves.following_rank
        )
        far = usual_spans(pairs, **spans, usual=usual_slots)
        parts += [as_part(SEEN, days, device), as_part(USUAL, far, device)]
    return ibis.union(*parts, distinct=False)


def as_part(part: str, rows: ir.Table, device: DataType) -> ir.Table:
    """`rows` as the `part` rows of `day_parts`: its columns, with nulls for those they lack."""
    types = {"device_id": device, **dict.fromkeys(("rank", "g", "change", "until"), "int64")}
    columns = {
        name: rows[name] if name in rows.columns else ibis.null().cast(kind)
        for name, kind in types.items()
    }
    return rows.select(ibis.literal(part).name(PART), **columns)


def span_changes(pairs: ir.Table, *, carry: int, back: int) -> ir.Table:
    """rank, g, change: where the spans of `pairs` (an observation and the next) meet, summed.

    `pairs` has rank, g, following and following_rank. Where the device moves (`stays` is
    false), the first one's span ends (-1) and the next one's starts (+1)
    (`ends_and_starts`); the rows are summed per cell rank and slot.
    """
    same_cell = pairs.following_rank == pairs["rank"]
    moves = pairs.filter(~stays(pairs.g, pairs.following, same_cell, carry=carry, back=back))
    end = span_end(moves.g, moves.following, carry=carry, back=back)
    start = ibis.greatest(moves.following - back, end)
    points = ends_and_starts(moves, moves["rank"], end, moves.following_rank, start)
    return points.group_by(["rank", "g"]).agg(change=points.change.sum())


def ends_and_starts(
    moves: ir.Table,
    ended: ir.IntegerValue,
    end: ir.IntegerValue,
    started: ir.IntegerValue,
    start: ir.IntegerValue,
) -> ir.Table:
    """rank, g, change: -1 for rank `ended` at `end` and +1 for `started` at `start`.

    Two rows per row of `moves`, from one pass over them (a list of the two, unnested)
    rather than a table read twice.
    """
    one = ibis.literal(1, "int64")
    both = ibis.array(
        [
            ibis.struct({"rank": ended, "g": end, "change": -one}),
            ibis.struct({"rank": started, "g": start, "change": one}),
        ]
    )
    return moves.select(point=both.unnest()).unpack("point")


def position_parts(
    summaries: ir.Table, ranks: ir.Table, *, carry_slots: int, back_slots: int
) -> ir.Table:
    """`day_parts` of hourly slots read off the devices' hourly positions (no usual places).

    The parts of ``day_parts(position_observations(...))``, the cells ranked by `ranks`
    (`by_key`), computed without a table of every listed hour: a day's first and last
    observations are the ends of each list, and only the hours whose next listed hour is at
    another cell (or out of reach: `stays`) are ranked (two joins on the cell keys of the
    moves, not of every hour). Every listed cell is in `ranks` (ingest quarantines the
    events of a cell the cells table lacks).
    """
    spans = {"carry": carry_slots, "back": back_slots}
    summaries = summaries.mutate(day=summaries.local_date.epoch_days().cast("int64"))
    device = summaries.device_id.type()
    positions = summaries.positions
    parts = []
    for part, position in ((LAST, positions[positions.length() - 1]), (OPENS, positions[0])):
        at = summaries.select(
            "device_id",
            g=summaries.day * HOURS + position["hour"].cast("int64"),
            cell=position["cell"],
        )
        parts.append(as_part(part, at.join(ranks, "cell"), device))
    hours = _hours_with_next(summaries)
    pairs = hours.select(
        g=hours.day * HOURS + hours.hour.cast("int64"),
        cell=hours.at["cell"],
        following=hours.day * HOURS + hours.next["hour"].cast("int64"),
        following_cell=hours.next["cell"],
    )
    same_cell = pairs.following_cell == pairs.cell  # null after the last: no pair
    moved = pairs.filter(~stays(pairs.g, pairs.following, same_cell, **spans))
    moved = moved.join(ranks, "cell").join(as_following(ranks), "following_cell")
    parts.insert(0, as_part(CHANGES, span_changes(moved, **spans), device))
    return ibis.union(*parts, distinct=False)


def presence_changes(
    parts: ir.Table,
    *,
    carry_slots: int,
    back_slots: int,
    per_day: int,
    usual_slots: int | None = None,
) -> ir.Table:
    """Devices arriving (+) and leaving (-) each cell at each slot: rank, g, change.

    `parts` comes from `day_parts` over the period. The span of each day's last observation
    and that of the next day's first meet where `span_end` puts it; a last observation with
    no first one on the next day is carried `carry_slots`, and a first one with no last one
    the day before `back_slots` back. Spans never reach past the next day, as carrying
    forward and back together last at most a day (`PresentPopulationParameters`): a join
    of the days' last and first observations, no sort of the period.

    With `usual_slots`, the slots farther than that from both observations around them, that
    day or across the night, go to the device's usual place at their hour (`usual_changes`).

    The changes are not summed per cell and slot (several rows may share both): the caller
    sums them per area (a far smaller table than the cells' slots), or per cell for the
    Bayesian estimator.
    """
    spans = {"carry": carry_slots, "back": back_slots}
    opening = parts.filter(parts[PART] == OPENS)
    opening = opening.select(
        _device=opening.device_id, _day=opening.g // per_day - 1, _next=opening.g, _rank="rank"
    )
    last = parts.filter(parts[PART] == LAST)
    last = last.select("device_id", "rank", "g", day=last.g // per_day)
    pairs = last.outer_join(opening, [last.device_id == opening._device, last.day == opening._day])
    # Null where either side is missing: then both the end and the start are written.
    stayed = stays(pairs.g, pairs._next, pairs._rank == pairs["rank"], **spans).fill_null(False)
    moved = pairs.filter(~stayed)
    end, start = span_meeting(moved.g, moved._next, **spans)
    points = ends_and_starts(moved, moved["rank"], end, moved._rank, start)
    changes = parts.filter(parts[PART] == CHANGES).select("rank", "g", "change")
    every = [changes, points.filter(points["rank"].notnull())]  # not the side a pair lacks
    if usual_slots is not None:
        nights = pairs.select(
            device_id=ibis.coalesce(pairs.device_id, pairs._device),
            g=pairs.g,
            rank=pairs["rank"],
            after=pairs._next,
            after_rank=pairs._rank,
        )
        far = usual_spans(nights, carry=carry_slots, back=back_slots, usual=usual_slots)
        within = parts.filter(parts[PART] == USUAL).select("device_id", "rank", "g", "until")
        seen = parts.filter(parts[PART] == SEEN).select("device_id", "rank", "g")
        places = usual_places(seen, per_day=per_day)
        spans_far = within.union(far, distinct=False)
        every.append(usual_changes(spans_far, places, per_day=per_day))
    return ibis.union(*every, distinct=False)


def version_changes(per_cell: ir.Table, allocation: ir.Table, *, per_day: int) -> ir.Table:
    """Changes that move a cell's devices to its new weights: cell_id, g, change, day.

    At the first slot of each day a version of a cell's weights starts, the devices then at
    the cell (the sum of its earlier changes) leave the areas of the version before (day
    before) and enter those of the new one (that day): a span that runs across the date
    counts by the weights of each day it covers.
    """
    starts = allocation.filter(allocation.valid_from.notnull())
    starts = starts.select(
        _cell=starts.cell_id, _day=starts.valid_from.epoch_days().cast("int64")
    ).distinct()
    starts = starts.mutate(_g=starts._day * per_day)
    joined = per_cell.join(starts, [per_cell.cell_id == starts._cell, per_cell.g < starts._g])
    levels = joined.group_by(cell_id=joined.cell_id, g=joined._g, day=joined._day).agg(
        level=joined.change.sum()
    )
    levels = levels.filter(levels.level != 0)
    leave = levels.select("cell_id", "g", change=-levels.level, day=levels.day - 1)
    enter = levels.select("cell_id", "g", change=levels.level, day=levels.day)
    return leave.union(enter, distinct=False)


def area_changes(
    changes: ir.Table, allocation: ir.Table, cells: ir.Table, *, per_day: int
) -> ir.Table:
    """The changes per cell rank spread over areas: area_code, g, delta.

    The weights are those valid on the day of the change (`per_day` slots a day); with a
    versioned allocation, `version_changes` moves the devices present when a cell's weights
    change. The allocation is keyed by cell rank (in its `cell_id` column) so that the
    changes, many more rows than cells, need no join to the cell ids.
    """
    by_rank = allocation.join(cell_ranks(cells), "cell_id").drop("cell_id")
    by_rank = by_rank.rename(cell_id="rank")
    per_cell = changes.select(cell_id=changes["rank"], g=changes.g, change=changes.change)
    if versioned(by_rank):
        per_cell = per_cell.mutate(day=per_cell.g // per_day)
        moved = version_changes(per_cell, by_rank, per_day=per_day)
        per_cell = per_cell.union(moved.select(per_cell.columns), distinct=False)
        located = spread(per_cell, by_rank, share="change", day="day")
    else:
        located = spread(per_cell, by_rank, share="change")
    return located.group_by(["area_code", "g"]).agg(delta=located._weight.sum())


def running_levels(deltas: ir.Table, key: str) -> ir.Table:
    """Devices per `key` from each slot on: `key`, g, level, until (the next change).

    A sweep over slots: the running sum of the changes is the count until the next change.
    This never builds one row per device and slot.
    """
    order = ibis.window(group_by=key, order_by="g", rows=(None, 0))
    levels = deltas.mutate(level=deltas.delta.sum().over(order))
    following = levels.g.lead().over(ibis.window(group_by=key, order_by="g"))
    levels = levels.mutate(until=following)
    # Rounding dust of the running sum where no device is left is not a count.
    return levels.filter(levels.level > LEVEL_DUST).drop("delta")


def compute(tables: StoreTables, params: PresentPopulationParameters) -> ir.Table:
    """Distinct devices per local date, slot and area."""
    scope = Scope(tables, params, params.subscribers, params.filters)
    per_day = 1440 // params.slot_minutes
    spans = {
        "carry_slots": params.max_carry_minutes // params.slot_minutes,
        "back_slots": params.max_backfill_minutes // params.slot_minutes,
    }
    usual = params.usual_place_after_minutes // params.slot_minutes or None

    def day(events: ir.Table) -> ir.Table:
        observed = scope.keep(observed_slots(events, tables.cells, params.slot_minutes))
        return day_parts(day_observations(observed, per_day=per_day), **spans, usual_slots=usual)

    def day_of_positions(summaries: ir.Table) -> ir.Table:
        days = position_observations(scope.keep(summaries), ranks, per_day=per_day)
        return day_parts(days, **spans, usual_slots=usual)

    def hour_of_positions(summaries: ir.Table) -> ir.Table:
        return position_parts(scope.keep(summaries), ranks, **spans)

    summaries = ("device_id", "positions")
    if tables.positions and per_day == HOURS and usual is None:
        ranks = cell_ranks(tables.cells)  # each cell's own count, for the Bayesian estimator
        if params.spatial_estimator == "allocation":
            ranks = position_ranks(tables.cells, tables.allocation)
        ranks = by_key(ranks)
        parts = scope.daily(hour_of_positions, *summaries, summaries=True)
    elif tables.positions and params.slot_minutes % 60 == 0:
        ranks = by_key(cell_ranks(tables.cells))
        parts = scope.daily(day_of_positions, *summaries, summaries=True)
    else:
        columns = ("device_id", "timestamp", "local_date", "local_hour", "cell_id")
        parts = scope.daily(day, *columns)
    parts = tables.materialize(parts)  # each part is read on its own
    changes = presence_changes(parts, **spans, per_day=per_day, usual_slots=usual)
    if params.spatial_estimator == "bayesian":
        # Devices per cell and slot: `finish` places them on areas.
        key = "cell_id"
        per_rank = changes.group_by(["rank", "g"]).agg(delta=changes.change.sum().cast("float64"))
        deltas = per_rank.join(cell_ranks(tables.cells), "rank").drop("rank")
    else:
        key = "area_code"
        deltas = area_changes(changes, tables.allocation, tables.cells, per_day=per_day)
    levels = running_levels(deltas, key)
    # A level holds until the next change (which always comes: every span ends).
    slots = levels.mutate(k=ibis.range(0, levels.until - levels.g).unnest())
    slots = slots.mutate(g=slots.g + slots.k)
    # Only dates with events: carrying past the last day of data would invent a day. The
    # device-day summaries have a row for each device seen on a date, far fewer to read.
    seen = tables.events if tables.device_days is None else tables.device_days
    dates = in_period(seen, params).select("local_date").distinct()
    dates = dates.mutate(day=dates.local_date.epoch_days().cast("int64"))
    slots = slots.mutate(day=slots.g // per_day, slot=slots.g % per_day)
    slots = slots.join(dates, "day")
    return slots.select("local_date", "slot", key, **{COUNT: slots.level})


def finish(
    raw: pd.DataFrame, tables: StoreTables, params: PresentPopulationParameters
) -> pd.DataFrame:
    """Place each slot's devices per cell on areas by the Bayesian estimator.

    A cell the footprint does not know keeps the allocation weights of its date.
    """
    if params.spatial_estimator != "bayesian":
        return raw
    if tables.footprint is None:
        raise footprint_refusal("bayesian", level=tables.level)
    placed, unknown = tile_bayesian_counts(
        cell_counts=raw,
        footprint=tables.footprint.per_area,
        by=["local_date", "slot"],
        iterations=params.iterations,
    )
    parts = [placed]
    for day, counts in unknown.groupby("local_date"):
        on = allocation_on(tables.allocation, dt.date.fromisoformat(str(day)[:10])).to_pandas()
        spread = counts.merge(on, on="cell_id")
        parts.append(spread.assign(device_count=spread[COUNT] * spread["weight"]))
    keys = ["local_date", "slot", "area_code"]
    every = pd.concat([part[[*keys, COUNT]] for part in parts], ignore_index=True)
    every = every[every[COUNT] > 0]  # areas no slot's devices reach, as in the allocation
    return every.groupby(keys, as_index=False).agg(**{COUNT: (COUNT, "sum")})


present_population = Algorithm(
    manifest=Manifest(
        name="present_population",
        version="1.4.3",
        certification=Certification.CERTIFIED,
        summary="Distinct devices per area and time slot, a silent one at its nearest position.",
        parameters=PresentPopulationParameters,
        keys=(Key("local_date", KeyDomain.DATE), Key("slot", KeyDomain.SLOT), AREA_KEY),
        privacy_unit="device-slot",
        contribution_bound=1.0,
        reference="Ricciato et al. (2015), JRC EUR 27361; Eurostat Multi-MNO present population",
        unit_keys=("local_date", "slot"),
        examples=(
            {"slot_minutes": 15, "max_carry_minutes": 60},
            {"slot_minutes": 1440, "max_carry_minutes": 0, "subscribers": "inbound"},
            {
                "start": "2011-03-09",
                "end": "2011-03-12",
                "max_carry_minutes": 1440,
                "max_backfill_minutes": 0,
            },
            {"max_carry_minutes": 180, "max_backfill_minutes": 1260},
            {"slot_minutes": 30, "usual_place_after_minutes": 120},
        ),
    ),
    compute=compute,
    finish=finish,
    precondition=bayesian_needs_footprint,
)
