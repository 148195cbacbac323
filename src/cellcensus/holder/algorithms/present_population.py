"""Present population: distinct devices per area and time slot (15 min, 30 min, hour, day).

Method: a device's position in a slot is the cell of its last event in that slot (ties on
time go to the largest cell id). A device silent in a slot keeps its last known position,
carried forward for at most `max_carry_minutes` (in whole slots:
``max_carry_minutes // slot_minutes`` slots after the last observed one), across midnight
too; after that it is not counted until it is seen again. Positions are spread over areas by
the allocation weights (Voronoi or sector coverage), so a device adds at most 1 to each slot.
Slots follow local time: slot ``s`` of a local date starts ``s * slot_minutes`` minutes after
local midnight (assumes a time zone whose offset is a whole number of hours, as in Europe).

Reference: Ricciato, Widhalm, Craglia & Pantisano (2015), "Estimating population density
distribution from network-based mobile phone data", JRC technical report EUR 27361; Eurostat
Multi-MNO project, present population estimation (2024); FlowKit's ``spatial_aggregate`` of
``most_recent_location``.
"""

from __future__ import annotations

from typing import Literal

import ibis
import ibis.expr.types as ir
from pydantic import Field

from cellcensus.holder.algorithms.areas import count_by, spread
from cellcensus.holder.algorithms.base import (
    AREA_KEY,
    Algorithm,
    Certification,
    Key,
    KeyDomain,
    Manifest,
    PeriodParameters,
    StoreTables,
    first_per_group,
    in_period,
)
from cellcensus.holder.algorithms.device_filter import (
    DeviceFilterParameters,
    Subscribers,
    prepared_events,
)


class PresentPopulationParameters(PeriodParameters):
    """Parameters of `present_population`."""

    slot_minutes: Literal[15, 30, 60, 1440] = Field(default=60, description="Length of a slot.")
    max_carry_minutes: int = Field(
        default=720, ge=0, le=1440, description="Longest a last known position is carried."
    )
    subscribers: Subscribers = Field(default=Subscribers.ALL, description="Whose devices.")
    filters: DeviceFilterParameters = Field(default_factory=DeviceFilterParameters)


def observed_slots(events: ir.Table, slot_minutes: int) -> ir.Table:
    """One row per device and slot with events: device_id, local_date, slot, g, cell_id.

    `g` numbers slots continuously over dates (days since 1970 times slots per day plus
    slot), so that carrying forward crosses midnight.
    """
    per_day = 1440 // slot_minutes
    minute = events.local_hour.cast("int64") * 60 + events.timestamp.minute().cast("int64")
    slot = minute // slot_minutes
    events = events.mutate(
        slot=slot, g=events.local_date.epoch_days().cast("int64") * per_day + slot
    )
    last = first_per_group(
        events, ["device_id", "g"], [ibis.desc("timestamp"), ibis.desc("cell_id")]
    )
    return last.select("device_id", "local_date", "slot", "g", "cell_id")


def carried_positions(observed: ir.Table, *, slot_minutes: int, carry_slots: int) -> ir.Table:
    """Each device's position in every slot it is observed in or carried to.

    Returns:
        device_id, local_date, slot, cell_id: one row per device and slot.
    """
    per_day = 1440 // slot_minutes
    following = observed.g.lead().over(ibis.window(group_by="device_id", order_by="g"))
    observed = observed.mutate(next_g=following)
    spans = observed.mutate(k=ibis.range(0, carry_slots + 1).unnest())
    spans = spans.filter(
        (spans.k == 0) | spans.next_g.isnull() | (spans.g + spans.k < spans.next_g)
    )
    ahead = spans.slot + spans.k
    next_day = ahead >= per_day
    return spans.select(
        "device_id",
        "cell_id",
        local_date=ibis.ifelse(
            next_day, spans.local_date + ibis.interval(days=1), spans.local_date
        ),
        slot=ibis.ifelse(next_day, ahead - per_day, ahead),
    )


def compute(tables: StoreTables, params: PresentPopulationParameters) -> ir.Table:
    """Distinct devices per local date, slot and area."""
    events = prepared_events(tables, params, subscribers=params.subscribers, filters=params.filters)
    observed = observed_slots(events, params.slot_minutes)
    carry_slots = params.max_carry_minutes // params.slot_minutes
    positions = carried_positions(
        observed, slot_minutes=params.slot_minutes, carry_slots=carry_slots
    )
    # Carrying past the last day of data (or of the period) would invent a day: keep the
    # dates that have events.
    dates = in_period(tables.events, params).select("local_date").distinct()
    positions = positions.semi_join(dates, "local_date")
    located = spread(positions, tables.allocation)
    return count_by(located, ["local_date", "slot", "area_code"])


present_population = Algorithm(
    manifest=Manifest(
        name="present_population",
        version="1.0.0",
        certification=Certification.CERTIFIED,
        summary="Distinct devices per area and time slot, last known position carried forward.",
        parameters=PresentPopulationParameters,
        keys=(Key("local_date", KeyDomain.DATE), Key("slot", KeyDomain.SLOT), AREA_KEY),
        privacy_unit="device-slot",
        contribution_bound=1.0,
        reference="Ricciato et al. (2015), JRC EUR 27361; Eurostat Multi-MNO present population",
        unit_keys=("local_date", "slot"),
        examples=(
            {"slot_minutes": 15, "max_carry_minutes": 60},
            {"slot_minutes": 1440, "max_carry_minutes": 0, "subscribers": "inbound"},
            {"start": "2011-03-09", "end": "2011-03-12", "max_carry_minutes": 1440},
        ),
    ),
    compute=compute,
)
