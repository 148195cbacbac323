"""Device filter: which devices the statistics count, and how many each rule removes.

Every other algorithm keeps only the devices that pass (`Scope.keep`). Rules, in the order a
removed device is counted under (one reason per device):

1. ``m2m_tac``: the handset's TAC is on the machine-to-machine list (e.g. from the GSMA TAC
   database's device type "module"), because meters, cars and alarms are not people.
2. ``m2m_behaviour``: never a call or an SMS over the period and never more than
   `m2m_max_cells` distinct cells (a static data-only SIM: a meter, a router, a tablet at
   home), when `m2m_behaviour` is on.
3. ``seen_too_little``: seen on fewer than `min_days` distinct days or with fewer than
   `min_events` events, too little to place reliably.

Which subscribers are in scope at all (the holder's own, inbound roamers, or both) is
decided by the home network's MCC. As an algorithm, `device_filter` releases the number of
devices per reason (and ``kept``), so every statistic can state what it left out.

Multi-SIM hints (`multi_sim_hints`): kept devices that look like a person's second SIM (a
second phone, a dual-SIM handset, a data SIM in a tablet), which the NSO's devices-per-person
factor must account for. A hint is a pair of kept devices whose cell sequences agree: over
the local hours both are seen in, they are at the same antenna site in at least
`agreement` of them, at `min_sites` distinct sites or more (moving together, not merely
sleeping under one roof); the less active device of each pair (fewer hours seen; ties: the
larger id) is the hinted one. Hinted devices stay kept: this is a count, not a filter. In a
synthetic Belgium, 83 % of the hinted pairs are both devices of one person, and 45 % of the
persons with two devices are found (a data-only second SIM is rarely seen in the same hours).
The pairs come from devices seen at the same site in the same hour: a cost that grows with
the square of the devices per site and hour.

The hint count is computed inside the holder and not part of the `device_filter` release: it
is a statistic of pairs, and one device seen everywhere would make any number of others look
like second SIMs, so no contribution bound per device holds. Releasing it needs a pair-level
privacy unit or a degree-bounded pair graph.

Reference: Eurostat Multi-MNO project, methodological framework for the processing of MNO
data (device activity statistics and event cleaning, 2023-2025); Vanhoof et al. (2018) on
minimum observation requirements.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Annotated

import ibis
import ibis.expr.types as ir
from pydantic import BeforeValidator, Field, StringConstraints

from cellcensus.holder.algorithms.base import (
    COUNT,
    Algorithm,
    Certification,
    Key,
    KeyDomain,
    Manifest,
    Parameters,
    PeriodParameters,
    StoreTables,
    in_period,
)

INTERACTIVE_EVENTS = ("call_out", "call_in", "sms_out", "sms_in")
REASONS = ("m2m_tac", "m2m_behaviour", "seen_too_little", "kept")
MAX_M2M_CELLS = 10
"""The most distinct cells a behavioural M2M SIM may be set to use (`m2m_max_cells`)."""


def _quoted_tac(value: object) -> object:
    """Refuse a TAC given as a number, which has lost any leading zero, saying how to write it."""
    if isinstance(value, int | float):
        raise ValueError(
            'a TAC is 8 digits written as a string, in quotes ("01234567"): '
            "as a number it loses its leading zeros"
        )
    return value


TAC_PATTERN = r"^[0-9]{8}$"
# The constraint before the validator: pydantic publishes a constraint placed after a
# BeforeValidator in no JSON schema, and the catalogue must show the format it enforces.
Tac = Annotated[str, StringConstraints(pattern=TAC_PATTERN), BeforeValidator(_quoted_tac)]


class Subscribers(StrEnum):
    """Whose devices an algorithm counts."""

    DOMESTIC = "domestic"
    """The holder's own subscribers (home network MCC)."""
    INBOUND = "inbound"
    """Inbound roamers (any other MCC)."""
    ALL = "all"
    """Both."""


class DeviceFilterParameters(Parameters):
    """Which devices are counted: shared by every algorithm of the catalogue."""

    home_mcc: int = Field(
        default=206, ge=200, le=799, description="MCC of the holder's network (206: Belgium)."
    )
    m2m_tacs: tuple[Tac, ...] = Field(
        default=(),
        max_length=100_000,
        description="TACs of machine-to-machine modules, each 8 digits written as a string.",
    )
    m2m_behaviour: bool = Field(default=True, description="Drop static SIMs without calls/SMS.")
    m2m_max_cells: int = Field(
        default=1,
        ge=1,
        le=MAX_M2M_CELLS,
        description="Maximum distinct cells of a behavioural M2M SIM.",
    )
    min_days: int = Field(
        default=1, ge=1, le=366, description="Minimum distinct days a device is seen."
    )
    min_events: int = Field(
        default=1, ge=1, le=1_000_000, description="Minimum events of a device."
    )


def in_scope(events: ir.Table, subscribers: Subscribers, *, home_mcc: int) -> ir.Table:
    """Events of the subscribers in scope (by the MCC of their home network)."""
    if subscribers is Subscribers.DOMESTIC:
        return events.filter(events.mcc == home_mcc)
    if subscribers is Subscribers.INBOUND:
        return events.filter(events.mcc != home_mcc)
    return events


def daily_summaries(
    events: ir.Table,
    filters: DeviceFilterParameters,
    *,
    by: tuple[str, ...] = ("device_id", "local_date", "cell_id"),
    **extra: ir.Scalar,
) -> ir.Table:
    """Per device, local date and cell: events, calls/SMS, events with an M2M TAC.

    The daily device summary the filters (and long periods) are built from: one row per
    (device, day, cell) instead of one per event. A step that needs a finer grouping of the
    same events (`by`, e.g. with the hour) or more aggregates (`extra`) asks for them here,
    so that one pass over the events yields both the filter's summary and its own.
    """
    interactive = events.event_type.isin(INTERACTIVE_EVENTS).fill_null(False)
    # Without a TAC list no event is listed (a stored TAC is 8 digits or null): the TAC
    # column, a string per event, is then not read at all.
    n_listed = ibis.literal(0, type="int64")
    if filters.m2m_tacs:
        n_listed = events.tac.isin(list(filters.m2m_tacs)).fill_null(False).cast("int64").sum()
    return events.group_by(list(by)).agg(
        n_events=events.count(),
        n_interactive=interactive.cast("int64").sum(),
        n_listed=n_listed,
        **extra,
    )


def device_day_counts(
    device_days: ir.Table, filters: DeviceFilterParameters
) -> tuple[ir.Table, ir.Table]:
    """The filter's inputs from device-day summaries: (daily counts, silent days' cells).

    A summary (`holder.store.device_days`) has one row per device, local date and home
    network: device_id, local_date, mcc, n_events, n_interactive (calls and SMS), tacs (the
    day's distinct TACs) and cells (on a day without a call or an SMS, its first
    `MAX_M2M_CELLS` + 1 distinct cells in order, else null). The counts (device_id,
    local_date, n_events, n_interactive, n_listed) and the cells (device_id, cell_id) are
    what `device_reasons` reads, and give the same reasons as the events summarised: a
    device silent over a period is silent on each of its days, and a day with more cells
    than a behavioural M2M SIM may use keeps more than that many.
    """
    listed = ibis.literal(0, type="int64")
    if filters.m2m_tacs:
        tacs = device_days.select("device_id", "local_date", tac=device_days.tacs.unnest())
        hits = tacs.filter(tacs.tac.isin(list(filters.m2m_tacs)))
        hits = hits.group_by(["device_id", "local_date"]).agg(n_listed=hits.count())
        device_days = device_days.left_join(hits, ["device_id", "local_date"])
        listed = device_days.n_listed.fill_null(0)
    counts = device_days.select(
        "device_id", "local_date", "n_events", "n_interactive", n_listed=listed
    )
    silent = device_days.filter(device_days.cells.notnull())
    cells = silent.select("device_id", cell_id=silent.cells.unnest())
    return counts, cells


def device_reasons(
    daily: ir.Table, filters: DeviceFilterParameters, *, cells: ir.Table | None = None
) -> ir.Table:
    """One row per device: device_id, reason (one of `REASONS`).

    Args:
        daily: A daily summary (`daily_summaries`): device_id, local_date, n_events,
            n_interactive, n_listed (and cell_id unless `cells` is given), grouped by
            device and date or finer.
        filters: The device filter.
        cells: device_id, cell_id rows of the cells each device was seen at, for the
            behavioural M2M rule (default: `daily`'s).
    """
    # Distinct days and cells cost a hash table of device-days and device-cells each: the
    # days are counted only when a least number is asked for, and the cells only for the
    # devices with no call or SMS (the only ones that may behave as machines).
    days = {"n_days": daily.local_date.nunique()} if filters.min_days > 1 else {}
    stats = daily.group_by("device_id").agg(
        n_events=daily.n_events.sum(),
        n_interactive=daily.n_interactive.sum(),
        n_listed=daily.n_listed.sum(),
        **days,
    )
    behaves_m2m = ibis.literal(False)
    if filters.m2m_behaviour:
        static = static_devices(daily if cells is None else cells, stats, filters.m2m_max_cells)
        stats = stats.left_join(static, "device_id").drop("device_id_right")
        behaves_m2m = stats.static.notnull()
    too_little = stats.n_events < filters.min_events
    if days:
        too_little |= stats.n_days < filters.min_days
    reason = ibis.cases(
        (stats.n_listed > 0, "m2m_tac"),
        (behaves_m2m, "m2m_behaviour"),
        (too_little, "seen_too_little"),
        else_="kept",
    )
    return stats.select("device_id", reason=reason)


def static_devices(seen: ir.Table, stats: ir.Table, max_cells: int) -> ir.Table:
    """device_id, static (true) of the devices with no call or SMS seen at few cells.

    `seen` holds device_id, cell_id rows (repeats allowed) of where devices were seen.
    """
    silent = stats.filter(stats.n_interactive == 0).select("device_id")
    cells = seen.semi_join(silent, "device_id")
    per_device = cells.group_by("device_id").agg(n_cells=cells.cell_id.nunique())
    few = per_device.filter(per_device.n_cells <= max_cells)
    return few.select("device_id", static=ibis.literal(True))


def kept_devices(
    daily: ir.Table, filters: DeviceFilterParameters, *, cells: ir.Table | None = None
) -> ir.Table:
    """device_id of every device of a daily summary that passes every filter."""
    reasons = device_reasons(daily, filters, cells=cells)
    return reasons.filter(reasons.reason == "kept").select("device_id")


FILTER_COLUMNS = ("device_id", "local_date", "cell_id", "event_type", "tac", "mcc")


@dataclass(frozen=True)
class Scope:
    """The devices and events an algorithm counts: period, subscribers, device filter.

    Each step of an algorithm starts its own pipeline over the store's events with
    `events` (its own columns and row filters first, then period and scope), aggregates, and
    only then drops filtered devices with `keep`. Pipelines therefore never share an
    event-sized intermediate table, which DuckDB would otherwise materialise (a month of
    events does not fit in memory) and Spark would recompute.
    """

    tables: StoreTables
    period: PeriodParameters
    subscribers: Subscribers
    filters: DeviceFilterParameters

    def events(self, *columns: str) -> ir.Table:
        """The store's events in the period and scope, with `columns` (and mcc) only."""
        chosen = list(dict.fromkeys([*columns, "local_date", "mcc"]))
        events = self.tables.events.select(chosen)
        return in_scope(
            in_period(events, self.period), self.subscribers, home_mcc=self.filters.home_mcc
        )

    def summaries(self, *columns: str) -> ir.Table:
        """The store's device-day summaries in the period and scope, with `columns` (and mcc)."""
        if self.tables.device_days is None:
            raise ValueError("the tables have no device-day summaries")
        chosen = list(dict.fromkeys([*columns, "local_date", "mcc"]))
        days = self.tables.device_days.select(chosen)
        return in_scope(
            in_period(days, self.period), self.subscribers, home_mcc=self.filters.home_mcc
        )

    def daily(
        self, step: Callable[[ir.Table], ir.Table], *columns: str, summaries: bool = False
    ) -> ir.Table:
        """`step` over the scope's events (with `columns`), one local date at a time.

        `step` is a per-day aggregation: it groups by the local date (or something finer
        within a day), so the union of its results on each date is its result on the period.
        Dates are taken one at a time where the tables ask for it (`StoreTables.per_day`), each
        date's result computed on its own (`StoreTables.materialize`). With `summaries`, the
        step reads the device-day summaries instead of the events.
        """
        events = self.summaries(*columns) if summaries else self.events(*columns)
        start, end = self.period.start, self.period.end
        if not self.tables.per_day:
            return step(events)
        days = [
            day
            for day in self.tables.dates
            if (start is None or day >= start) and (end is None or day <= end)
        ]
        if len(days) < 2:
            return step(events)
        return self.tables.materialize.each_date(
            lambda day: step(events.filter(events.local_date == day)), days
        )

    @property
    def summarised(self) -> bool:
        """Whether the filter reads the store's device-day summaries, not the events."""
        return self.tables.device_days is not None

    @cached_property
    def reasons(self) -> ir.Table:
        """device_id, reason of every device in scope (`device_reasons`).

        From the store's device-day summaries where it has them (`StoreTables.device_days`),
        else from one pass over the scope's events.
        """
        cells = None
        if self.tables.device_days is not None:
            days = in_period(self.tables.device_days, self.period)
            days = in_scope(days, self.subscribers, home_mcc=self.filters.home_mcc)
            daily, cells = device_day_counts(days, self.filters)
        else:
            daily = self.daily(
                lambda events: daily_summaries(events, self.filters), *FILTER_COLUMNS
            )
            daily = self.tables.materialize(daily)  # read twice by `device_reasons`
        return device_reasons(daily, self.filters, cells=cells)

    @cached_property
    def dropped(self) -> ir.Table:
        """device_id of every device in scope that fails a filter (materialised)."""
        reasons = self.reasons
        return self.tables.materialize(reasons.filter(reasons.reason != "kept").select("device_id"))

    def keep(self, table: ir.Table) -> ir.Table:
        """Rows of `table` of kept devices; `table` comes from the scope's `events` or `summaries`.

        Every device in scope has a reason, so those not dropped are the kept ones: an anti
        join of the few dropped devices costs less than a semi join of the many kept ones
        (a hash table of thousands of devices, not of every device, in each day's step). A
        table with devices out of the scope (or null ids, which ingest quarantines) would
        keep them.
        """
        return table.anti_join(self.dropped, "device_id")

    def keep_by(self, table: ir.Table, daily: ir.Table) -> ir.Table:
        """Rows of `table` of the devices that pass the filters, judged on `daily`.

        `daily` is a daily summary of the scope's events (`daily_summaries`, maybe finer and
        with more aggregates) that the step built from the same pass over the events as
        `table`: the filter then costs no pass of its own.
        """
        return table.semi_join(kept_devices(daily, self.filters), "device_id")


class DeviceFilterAlgorithmParameters(PeriodParameters):
    """Parameters of the `device_filter` release."""

    subscribers: Subscribers = Field(default=Subscribers.ALL, description="Whose devices.")
    filters: DeviceFilterParameters = Field(default_factory=DeviceFilterParameters)


class MultiSimParameters(Parameters):
    """When two kept devices are taken for one person's SIMs (see `multi_sim_hints`)."""

    agreement: float = Field(
        default=0.7,
        gt=0.0,
        le=1.0,
        description="Minimum share of the hours two devices are both seen in at one site.",
    )
    min_sites: int = Field(
        default=3, ge=1, le=100, description="Minimum distinct sites two devices share an hour at."
    )


def cell_sites(cells: ir.Table) -> ir.Table:
    """cell_id, site: each cell's antenna site (the cell itself where no site is known)."""
    if "site_id" not in cells.columns:
        return cells.select("cell_id", site=cells.cell_id).distinct()
    return cells.select("cell_id", site=cells.site_id.fill_null(cells.cell_id)).distinct()


def multi_sim_pairs(events: ir.Table, cells: ir.Table, params: MultiSimParameters) -> ir.Table:
    """Pairs of devices with near-identical site sequences: device_a < device_b, hours.

    Args:
        events: Events (device_id, local_date, local_hour, cell_id) of the devices compared.
        cells: The cells table (cell_id, and site_id where known).
        params: The agreement and the least number of sites.

    Returns:
        device_a, device_b, hours_a, hours_b (hours each device is seen in) of each pair.
    """
    tokens = events.join(cell_sites(cells), "cell_id")
    tokens = tokens.select("device_id", "local_date", "local_hour", "site").distinct()
    hours = tokens.select("device_id", "local_date", "local_hour").distinct()
    a = tokens.select(device_a="device_id", date_a="local_date", hour_a="local_hour", site_a="site")
    b = tokens.select(device_b="device_id", date_b="local_date", hour_b="local_hour", site_b="site")
    same = a.join(
        b,
        (a.date_a == b.date_b)
        & (a.hour_a == b.hour_b)
        & (a.site_a == b.site_b)
        & (a.device_a < b.device_b),
    )
    shared = same.group_by("device_a", "device_b").agg(
        sites=same.site_a.nunique(),
        shared=(same.date_a.epoch_days().cast("int64") * 24 + same.hour_a.cast("int64")).nunique(),
    )
    candidates = shared.filter(shared.sites >= params.min_sites)
    hours_a = hours.select(device_a="device_id", date_a="local_date", hour_a="local_hour")
    hours_b = hours.select(device_b="device_id", date_b="local_date", hour_b="local_hour")
    first = candidates.join(hours_a, "device_a")
    both = first.join(
        hours_b,
        (first.device_b == hours_b.device_b)
        & (first.date_a == hours_b.date_b)
        & (first.hour_a == hours_b.hour_b),
    )
    together = both.group_by("device_a", "device_b").agg(
        shared=both.shared.max(), together=both.count()
    )
    agree = together.filter(together.shared >= params.agreement * together.together)
    active = hours.group_by("device_id").agg(hours=hours.count())
    agree = agree.join(active.select(device_a="device_id", hours_a="hours"), "device_a")
    agree = agree.join(active.select(device_b="device_id", hours_b="hours"), "device_b")
    return agree.select("device_a", "device_b", "hours_a", "hours_b")


def multi_sim_hints(scope: Scope, params: MultiSimParameters) -> ir.Table:
    """device_id of each hinted kept device: the less active of a pair (ties: larger id)."""
    kept = scope.keep(scope.events("device_id", "local_date", "local_hour", "cell_id"))
    pairs = multi_sim_pairs(kept, scope.tables.cells, params)
    second = ibis.ifelse(pairs.hours_a < pairs.hours_b, pairs.device_a, pairs.device_b)
    return pairs.select(device_id=second).distinct()


def compute(tables: StoreTables, params: DeviceFilterAlgorithmParameters) -> ir.Table:
    """Devices per filter reason (``kept`` for those that pass every filter)."""
    reasons = Scope(tables, params, params.subscribers, params.filters).reasons
    return reasons.group_by("reason").agg(**{COUNT: reasons.count().cast("float64")})


device_filter = Algorithm(
    manifest=Manifest(
        name="device_filter",
        version="1.0.0",
        certification=Certification.CERTIFIED,
        summary="Devices removed by each filter (M2M by TAC and behaviour, seen too little).",
        parameters=DeviceFilterAlgorithmParameters,
        keys=(Key("reason", KeyDomain.CATEGORY, REASONS),),
        privacy_unit="device over the period",
        contribution_bound=1.0,
        reference="Eurostat Multi-MNO methodological framework (2023-2025), event cleaning",
        examples=(
            {"subscribers": "domestic", "filters": {"m2m_tacs": ["35000001"], "min_days": 3}},
        ),
    ),
    compute=compute,
)
