"""Internal migration: devices by usual residence in an earlier and in a later period.

Method: the home cell of each kept domestic device in each period, by the chosen home rule
(see `usual_residence`; each period must give the device `min_nights` nights). A device with
the same home cell in both periods stays on the diagonal (its cell's allocation weights); a
device whose home cell changed is spread over (origin, destination) pairs by the product of
both cells' weights.

A changed home cell is not yet a move: the cells serving one home take turns (ping-pong
between sectors and neighbouring sites, a site switched on nearby), so the most frequent
night cell of a stayer changes between periods far more often than people move (in a
synthetic Belgium, for about 5 % of devices between two 12-night periods, while at
Belgium's 4.7 % a year only 0.2 % of people move in a fortnight). A device therefore counts
as a mover only if neither home was a night place in the other period: its later home's
antenna site seen on at most `max_visit_nights` nights of the earlier period, and its
earlier home's site on at most `max_visit_nights` nights of the later period (a visit to
the new home before moving is allowed). Otherwise it stays on the diagonal, at its earlier
home.

Each device with a home in both periods adds exactly 1; off-diagonal sums are the migrants.
Devices seen in only one period are left out (they may have changed operator), which is why
the matrix is completed with the operator's churn figures outside. Periods of a few nights
mistake a week away (holidays, a stay with family) for a move; use periods of weeks.

Reference: Eurostat Multi-MNO project, internal migration indicator (2024); Lai et al. (2019),
"Exploring the use of mobile phone data for national migration statistics", Palgrave
Communications 5:34.
"""

from __future__ import annotations

import datetime as dt

import ibis.expr.types as ir
from pydantic import Field, model_validator

from cellcensus.holder.algorithms.areas import allocation_on, transitions
from cellcensus.holder.algorithms.base import (
    Algorithm,
    Certification,
    Key,
    KeyDomain,
    Manifest,
    PeriodParameters,
    StoreLayout,
    StoreTables,
    check_days,
)
from cellcensus.holder.algorithms.device_filter import (
    DeviceFilterParameters,
    Scope,
    Subscribers,
    cell_sites,
)
from cellcensus.holder.algorithms.places import (
    HomeParameters,
    home_cells,
    needs_hours,
    night_summary,
)


class InternalMigrationParameters(HomeParameters):
    """Parameters of `internal_migration`: two periods of local dates (inclusive)."""

    before_start: dt.date = Field(description="First local date of the earlier period.")
    before_end: dt.date = Field(
        description="Last local date of the earlier period; not before before_start, and "
        "before after_start."
    )
    after_start: dt.date = Field(description="First local date of the later period.")
    after_end: dt.date = Field(
        description="Last local date of the later period; not before after_start."
    )
    max_visit_nights: int = Field(
        default=1,
        ge=0,
        le=366,
        description="Maximum nights a mover's new home (old home) may be seen in the earlier "
        "(later) period.",
    )
    filters: DeviceFilterParameters = Field(default_factory=DeviceFilterParameters)

    @model_validator(mode="after")
    def _periods_ordered(self) -> InternalMigrationParameters:
        if self.before_start > self.before_end:
            raise ValueError(f"before_start {self.before_start} is after before_end")
        if self.after_start > self.after_end:
            raise ValueError(f"after_start {self.after_start} is after after_end")
        if self.before_end >= self.after_start:
            raise ValueError("the earlier period must end before the later one starts")
        return self


def period_nights(
    tables: StoreTables, params: InternalMigrationParameters, start: dt.date, end: dt.date
) -> ir.Table:
    """The night summary of kept domestic devices over one period (materialised)."""
    period = PeriodParameters(start=start, end=end)
    scope = Scope(tables, period, Subscribers.DOMESTIC, params.filters)
    return tables.materialize(night_summary(scope, params, hours=needs_hours(params)))


def period_homes(
    tables: StoreTables, params: InternalMigrationParameters, start: dt.date, end: dt.date
) -> ir.Table:
    """Home cells of kept domestic devices from the events of one period."""
    nights = period_nights(tables, params, start, end)
    return tables.materialize(home_cells(nights, params))


def home_site_nights(homes: ir.Table, nights: ir.Table, sites: ir.Table) -> ir.Table:
    """device_id, seen: the most nights of `nights` spent at a site of one of `homes`' cells."""
    home_sites = homes.join(sites, "cell_id").select("device_id", "site").distinct()
    at_sites = nights.join(sites, "cell_id").select("device_id", "site", "night").distinct()
    per_site = at_sites.group_by("device_id", "site").agg(nights=at_sites.count())
    seen = home_sites.join(per_site, ["device_id", "site"])
    return seen.group_by("device_id").agg(seen=seen.nights.max())


def stayers(
    homes: tuple[ir.Table, ir.Table],
    nights: tuple[ir.Table, ir.Table],
    sites: ir.Table,
    max_visit_nights: int,
) -> ir.Table:
    """device_id of devices whose home in one period was a night place in the other."""
    before, after = homes
    nights_before, nights_after = nights
    parts = [
        home_site_nights(after, nights_before, sites),
        home_site_nights(before, nights_after, sites),
    ]
    both = parts[0].union(parts[1], distinct=False)
    return both.filter(both.seen > max_visit_nights).select("device_id").distinct()


def compute(tables: StoreTables, params: InternalMigrationParameters) -> ir.Table:
    """Devices by (home area before, home area after)."""
    nights_before = period_nights(tables, params, params.before_start, params.before_end)
    nights_after = period_nights(tables, params, params.after_start, params.after_end)
    before = tables.materialize(home_cells(nights_before, params))
    after = tables.materialize(home_cells(nights_after, params))
    stayed = stayers(
        (before, after),
        (nights_before, nights_after),
        cell_sites(tables.cells),
        params.max_visit_nights,
    )
    # A stayer keeps its earlier home in the later period (if it has a later home at all).
    kept_home = before.semi_join(stayed, "device_id").semi_join(after, "device_id")
    after = after.anti_join(stayed, "device_id").union(kept_home, distinct=False)
    # Each period's homes by the weights valid on its last day (see `areas`).
    return transitions(
        before,
        after,
        allocation_on(tables.allocation, params.before_end),
        after_allocation=allocation_on(tables.allocation, params.after_end),
        origin="origin",
        destination="destination",
    )


def precondition(params: InternalMigrationParameters, layout: StoreLayout) -> None:
    """Each period spans `min_nights` nights: a device needs a home in both."""
    for period, start, end in (
        ("the earlier period", params.before_start, params.before_end),
        ("the later period", params.after_start, params.after_end),
    ):
        check_days(
            layout, start, end, least=params.min_nights, parameter="min_nights", period=period
        )


internal_migration = Algorithm(
    manifest=Manifest(
        name="internal_migration",
        version="1.3.0",
        certification=Certification.CERTIFIED,
        summary="Devices by usual residence area in an earlier and a later period.",
        parameters=InternalMigrationParameters,
        keys=(Key("origin", KeyDomain.AREA), Key("destination", KeyDomain.AREA)),
        privacy_unit="device over both periods",
        contribution_bound=1.0,
        reference="Eurostat Multi-MNO internal migration (2024); Lai et al. (2019)",
        examples=(
            {
                "before_start": "2011-03-07",
                "before_end": "2011-03-13",
                "after_start": "2011-03-14",
                "after_end": "2011-03-20",
            },
            {
                "before_start": "2011-03-07",
                "before_end": "2011-03-11",
                "after_start": "2011-03-16",
                "after_end": "2011-03-20",
                "rule": "most_night_activity",
                "min_nights": 1,
            },
            {
                "before_start": "2011-03-07",
                "before_end": "2011-03-10",
                "after_start": "2011-03-11",
                "after_end": "2011-03-20",
                "max_visit_nights": 0,
            },
        ),
    ),
    compute=compute,
    precondition=precondition,
)
