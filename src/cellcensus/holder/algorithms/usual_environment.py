"""Usual environment: devices per area by kind of meaningful place (home, work, other).

Method: the home cell by the chosen home rule (see `usual_residence`); the work cell, the cell
seen on the most distinct weekdays during working hours other than home and its antenna site,
if seen on at least `min_work_days` such days; other meaningful places, cells other than home,
work and their sites seen on at least `min_days_share` of the device's observed days (and on
at least two), the `max_other_places` most frequent. Each place spreads over areas by its
cell's allocation weights; within one kind of place and area a device counts at most once, so
one device adds at most 1 (home) + 1 (work) + `max_other_places` to the release.

Reference: Eurostat Multi-MNO project, usual environment and home/work labelling (2024);
Schulz, Bauer & Mühlhäuser (2012) and Ahas et al. (2010) on anchor points (home, work,
secondary anchors) from mobile phone data.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
from pydantic import Field

from cellcensus.holder.algorithms.areas import allocation_on, distinct_device_count, spread
from cellcensus.holder.algorithms.base import (
    AREA_KEY,
    Algorithm,
    Certification,
    Key,
    KeyDomain,
    Manifest,
    Period,
    PeriodParameters,
    StoreTables,
)
from cellcensus.holder.algorithms.device_filter import DeviceFilterParameters, Scope, Subscribers
from cellcensus.holder.algorithms.places import (
    HomeParameters,
    WorkParameters,
    home_cells,
    needs_hours,
    night_summary,
    other_places,
    work_cells,
)

PLACES = ("home", "work", "other")
MAX_OTHER_PLACES = 10


class UsualEnvironmentParameters(HomeParameters, WorkParameters, PeriodParameters):
    """Parameters of `usual_environment`."""

    min_days_share: float = Field(
        default=0.25, gt=0.0, le=1.0, description="Minimum share of days at an other place."
    )
    max_other_places: int = Field(
        default=3, ge=0, le=MAX_OTHER_PLACES, description="Maximum other places per device."
    )
    filters: DeviceFilterParameters = Field(default_factory=DeviceFilterParameters)


def places(tables: StoreTables, params: UsualEnvironmentParameters) -> ir.Table:
    """device_id, place, cell_id, share: every meaningful place of every kept device."""
    scope = Scope(tables, params, Subscribers.DOMESTIC, params.filters)
    home = tables.materialize(
        home_cells(night_summary(scope, params, hours=needs_hours(params)), params)
    )
    work = tables.materialize(work_cells(scope, home, params))
    anchors = home.union(work, distinct=False)
    other = other_places(
        scope,
        anchors,
        min_days_share=params.min_days_share,
        max_places=params.max_other_places,
    )
    kinds = [home, work, other]
    tagged = [
        table.mutate(place=ibis.literal(kind)) for kind, table in zip(PLACES, kinds, strict=True)
    ]
    union = tagged[0]
    for table in tagged[1:]:
        union = union.union(table, distinct=False)
    return union


def compute(tables: StoreTables, params: UsualEnvironmentParameters) -> ir.Table:
    """Distinct devices per kind of place and area."""
    # Places over the period: the weights valid on its last day (see `areas`).
    allocation = allocation_on(tables.allocation, params.end)
    located = spread(places(tables, params), allocation, share="share")
    return distinct_device_count(located, ["place", "area_code"])


def bound(params: UsualEnvironmentParameters, _period: Period | None) -> float:
    """Home and work once each, plus each other place."""
    return 2.0 + params.max_other_places


usual_environment = Algorithm(
    manifest=Manifest(
        name="usual_environment",
        version="1.2.0",
        certification=Certification.CERTIFIED,
        summary="Devices per area by kind of meaningful place: home, work, other.",
        parameters=UsualEnvironmentParameters,
        keys=(Key("place", KeyDomain.CATEGORY, PLACES), AREA_KEY),
        privacy_unit="device over the period",
        contribution_bound=2.0 + MAX_OTHER_PLACES,
        reference="Eurostat Multi-MNO usual environment labelling (2024); Ahas et al. (2010)",
        bound_for=bound,
        examples=({"max_other_places": 0, "min_work_days": 2}, {"min_days_share": 0.1}),
    ),
    compute=compute,
)
