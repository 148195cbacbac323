"""Internal migration: devices by usual residence in an earlier and in a later period.

Method: the home cell of each kept domestic device in each period, by the chosen home rule
(see `usual_residence`; each period must give the device `min_nights` nights). A device with
the same home cell in both periods stays on the diagonal (its cell's allocation weights); a
device whose home cell changed is spread over (origin, destination) pairs by the product of
both cells' weights. Each device with a home in both periods adds exactly 1; off-diagonal
sums are the migrants. Devices seen in only one period are left out (they may have changed
operator), which is why the matrix is completed with the operator's churn figures outside.

Reference: Eurostat Multi-MNO project, internal migration indicator (2024); Lai et al. (2019),
"Exploring the use of mobile phone data for national migration statistics", Palgrave
Communications 5:34.
"""

from __future__ import annotations

import datetime as dt

import ibis.expr.types as ir
from pydantic import Field, model_validator

from cellcensus.holder.algorithms.areas import transitions
from cellcensus.holder.algorithms.base import (
    Algorithm,
    Certification,
    Key,
    KeyDomain,
    Manifest,
    PeriodParameters,
    StoreTables,
)
from cellcensus.holder.algorithms.device_filter import DeviceFilterParameters, Scope, Subscribers
from cellcensus.holder.algorithms.places import (
    HomeParameters,
    home_cells,
    needs_hours,
    night_summary,
)


class InternalMigrationParameters(HomeParameters):
    """Parameters of `internal_migration`: two periods of local dates (inclusive)."""

    before_start: dt.date = Field(description="First local date of the earlier period.")
    before_end: dt.date = Field(description="Last local date of the earlier period.")
    after_start: dt.date = Field(description="First local date of the later period.")
    after_end: dt.date = Field(description="Last local date of the later period.")
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


def period_homes(
    tables: StoreTables, params: InternalMigrationParameters, start: dt.date, end: dt.date
) -> ir.Table:
    """Home cells of kept domestic devices from the events of one period."""
    period = PeriodParameters(start=start, end=end)
    scope = Scope(tables, period, Subscribers.DOMESTIC, params.filters)
    nights = night_summary(scope, params, hours=needs_hours(params))
    return tables.materialize(home_cells(nights, params))


def compute(tables: StoreTables, params: InternalMigrationParameters) -> ir.Table:
    """Devices by (home area before, home area after)."""
    before = period_homes(tables, params, params.before_start, params.before_end)
    after = period_homes(tables, params, params.after_start, params.after_end)
    return transitions(before, after, tables.allocation, origin="origin", destination="destination")


internal_migration = Algorithm(
    manifest=Manifest(
        name="internal_migration",
        version="1.0.0",
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
        ),
    ),
    compute=compute,
)
