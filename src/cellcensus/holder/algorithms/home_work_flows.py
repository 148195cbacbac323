"""Home-work flows: the commuting origin-destination matrix between areas.

Method: each kept domestic device's home cell (chosen home rule, see `usual_residence`) and
work cell (most distinct weekdays during working hours, other than the home cells and their
antenna sites, on at least `min_work_days` days; see `usual_environment`). A device with both
is spread over (home area, work area) pairs by the product of both cells' allocation weights
(times its home share), so it adds exactly 1 to the matrix; devices without a work cell are
left out. People working in their home area (but not at home) are on the diagonal.

Reference: Eurostat Multi-MNO project, home-work labelling (2024); Ahas et al. (2010), Journal
of Urban Technology 17(1); FlowKit's ``meaningful_locations_between_label_od_matrix``.
"""

from __future__ import annotations

import ibis.expr.types as ir
from pydantic import Field

from cellcensus.holder.algorithms.areas import allocation_on, count_by, spread
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
from cellcensus.holder.algorithms.device_filter import DeviceFilterParameters, Scope, Subscribers
from cellcensus.holder.algorithms.places import (
    HomeParameters,
    WorkParameters,
    home_cells,
    needs_hours,
    night_summary,
    work_cells,
)


class HomeWorkFlowsParameters(HomeParameters, WorkParameters, PeriodParameters):
    """Parameters of `home_work_flows`."""

    filters: DeviceFilterParameters = Field(default_factory=DeviceFilterParameters)


def compute(tables: StoreTables, params: HomeWorkFlowsParameters) -> ir.Table:
    """Devices by (home area, work area)."""
    scope = Scope(tables, params, Subscribers.DOMESTIC, params.filters)
    home = tables.materialize(
        home_cells(night_summary(scope, params, hours=needs_hours(params)), params)
    )
    work = work_cells(scope, home, params)
    pairs = home.select("device_id", home_cell=home.cell_id, share=home.share).join(
        work.select("device_id", work_cell=work.cell_id), "device_id"
    )
    # Places over the period: the weights valid on its last day (see `areas`).
    allocation = allocation_on(tables.allocation, params.end)
    pairs = spread(pairs, allocation, cell="home_cell", area="home_area", share="share")
    pairs = pairs.mutate(share=pairs._weight).drop("_weight")
    pairs = spread(pairs, allocation, cell="work_cell", area="work_area", share="share")
    return count_by(pairs, ["home_area", "work_area"])


def precondition(params: HomeWorkFlowsParameters, layout: StoreLayout) -> None:
    """The period spans `min_nights` nights and `min_work_days` weekdays."""
    check_days(layout, params.start, params.end, least=params.min_nights, parameter="min_nights")
    check_days(
        layout,
        params.start,
        params.end,
        least=params.min_work_days,
        parameter="min_work_days",
        unit="weekdays",
    )


home_work_flows = Algorithm(
    manifest=Manifest(
        name="home_work_flows",
        version="1.2.0",
        certification=Certification.CERTIFIED,
        summary="Commuting matrix: devices by home area and work area.",
        parameters=HomeWorkFlowsParameters,
        keys=(Key("home_area", KeyDomain.AREA), Key("work_area", KeyDomain.AREA)),
        privacy_unit="device over the period",
        contribution_bound=1.0,
        reference="Eurostat Multi-MNO home-work labelling (2024); Ahas et al. (2010)",
        examples=({"min_work_days": 1, "work_start_hour": 10, "work_end_hour": 16},),
    ),
    compute=compute,
    precondition=precondition,
)
