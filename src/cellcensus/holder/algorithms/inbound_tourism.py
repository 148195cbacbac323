"""Inbound tourism: foreign roamers per area, as devices, nights spent and arrivals.

Method: inbound roamers are devices whose home network's MCC is not the holder's (optionally
only those of the listed `countries`' MCCs). For each night (night hours, dated by the evening)
a roamer is seen in, its night cell is the cell of most night-time events (ties: smallest cell
id). A roamer seen on two consecutive days spent the night between them in the country even
when its phone was silent that night: with `impute_nights` (default) that night counts too,
at the cell of the roamer's last event of the first day (a visitor's phone is silent on about
one night in five, which would otherwise go uncounted). A device's first `max_nights` nights
count. Per area, spreading each night cell by its
allocation weights:

- ``nights``: nights spent (device-nights);
- ``devices``: distinct devices that spent at least one night there (a device's weights in an
  area are capped at 1);
- ``arrivals``: arrivals in the country, counted in the area of the first night of each run of
  consecutive nights (a device seen again after a night away arrives again).

One device adds at most `max_nights` to each indicator, so at most 3 x `max_nights` in all.
Day trippers (no night) are not tourists in this definition (UNWTO: overnight visitors).

Reference: Eurostat Multi-MNO project, inbound tourism indicators (2024); Ahas et al. (2008),
"Evaluating passive mobile positioning data for tourism surveys: an Estonian case study",
Tourism Management 29(3).
"""

from __future__ import annotations

from typing import Annotated

import ibis
import ibis.expr.types as ir
from pydantic import Field

from cellcensus.holder.algorithms.areas import count_by, distinct_device_count, spread
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
    first_per_group,
)
from cellcensus.holder.algorithms.device_filter import DeviceFilterParameters, Scope, Subscribers
from cellcensus.holder.algorithms.places import NIGHT_COLUMNS, NightParameters, summarise_nights

INDICATORS = ("devices", "nights", "arrivals")
MAX_NIGHTS = 366

Mcc = Annotated[int, Field(ge=200, le=799)]


class InboundTourismParameters(NightParameters, PeriodParameters):
    """Parameters of `inbound_tourism`."""

    countries: tuple[Mcc, ...] = Field(
        default=(), max_length=600, description="Home MCCs counted (default: every foreign one)."
    )
    max_nights: int = Field(
        default=92, ge=1, le=MAX_NIGHTS, description="Most nights counted per device."
    )
    impute_nights: bool = Field(
        default=True,
        description="Count a silent night between two consecutive days seen (at the last cell).",
    )
    filters: DeviceFilterParameters = Field(default_factory=DeviceFilterParameters)


def silent_nights(events: ir.Table, observed: ir.Table) -> ir.Table:
    """device_id, night, cell_id: nights between two consecutive days seen, without an event.

    Args:
        events: The roamers' events (device_id, timestamp, local_date, cell_id).
        observed: The nights seen at night (device_id, night).

    Returns:
        Night `d` of each device seen on local dates `d` and `d + 1` but not in night `d`'s
        hours, at the cell of its last event of `d` (ties: the largest cell id).
    """
    last = first_per_group(
        events.select("device_id", "local_date", "timestamp", "cell_id"),
        ["device_id", "local_date"],
        [ibis.desc("timestamp"), ibis.desc("cell_id")],
    )
    days = events.select("device_id", "local_date").distinct()
    following = days.select("device_id", local_date=days.local_date - ibis.interval(days=1))
    silent = last.semi_join(following, ["device_id", "local_date"])
    silent = silent.select("device_id", night=silent.local_date, cell_id=silent.cell_id)
    return silent.anti_join(observed, ["device_id", "night"])


def night_cells(
    per_cell: ir.Table, params: InboundTourismParameters, silent: ir.Table | None = None
) -> ir.Table:
    """device_id, night, cell_id, arrival: each counted night of each roamer.

    Args:
        per_cell: The roamers' night summary (device_id, night, cell_id, events).
        params: The parameters.
        silent: Nights to count without night-time events (device_id, night, cell_id), as
            from `silent_nights`.
    """
    best = first_per_group(
        per_cell, ["device_id", "night"], [ibis.desc("events"), ibis.asc("cell_id")]
    ).select("device_id", "night", "cell_id")
    if silent is not None:
        best = best.union(silent.select("device_id", "night", "cell_id"), distinct=False)
    order = ibis.window(group_by="device_id", order_by="night")
    best = best.mutate(previous=best.night.lag().over(order), _rank=ibis.row_number().over(order))
    best = best.filter(best._rank < params.max_nights)
    arrival = best.previous.isnull() | (best.night != best.previous + ibis.interval(days=1))
    return best.select("device_id", "night", "cell_id", arrival=arrival)


def compute(tables: StoreTables, params: InboundTourismParameters) -> ir.Table:
    """Devices, nights and arrivals of inbound roamers per area."""
    scope = Scope(tables, params, Subscribers.INBOUND, params.filters)
    events = scope.events(*NIGHT_COLUMNS, "timestamp")
    if params.countries:
        events = events.filter(events.mcc.isin(list(params.countries)))
    nights = scope.keep(summarise_nights(events, params))
    silent = None
    if params.impute_nights:
        observed = nights.select("device_id", "night").distinct()
        silent = scope.keep(silent_nights(events, observed))
    # A night by the weights valid on the date of its evening.
    located = spread(night_cells(nights, params, silent), tables.allocation, day="night")
    nights = count_by(located, ["area_code"]).mutate(indicator=ibis.literal("nights"))
    devices = distinct_device_count(located, ["area_code"]).mutate(
        indicator=ibis.literal("devices")
    )
    arrivals = count_by(located.filter(located.arrival), ["area_code"]).mutate(
        indicator=ibis.literal("arrivals")
    )
    columns = ["area_code", "indicator", COUNT]
    return (
        devices.select(columns)
        .union(nights.select(columns), distinct=False)
        .union(arrivals.select(columns), distinct=False)
    )


def bound(params: InboundTourismParameters) -> float:
    """At most `max_nights` per indicator."""
    return 3.0 * params.max_nights


inbound_tourism = Algorithm(
    manifest=Manifest(
        name="inbound_tourism",
        version="1.2.0",
        certification=Certification.CERTIFIED,
        summary="Foreign roamers per area: devices, nights spent, arrivals.",
        parameters=InboundTourismParameters,
        keys=(AREA_KEY, Key("indicator", KeyDomain.CATEGORY, INDICATORS)),
        privacy_unit="device over the period",
        contribution_bound=3.0 * MAX_NIGHTS,
        reference="Eurostat Multi-MNO inbound tourism (2024); Ahas et al. (2008)",
        bound_for=bound,
        examples=(
            {"countries": [208], "max_nights": 3},
            {"max_nights": 1},
            {"impute_nights": False},
        ),
    ),
    compute=compute,
)
