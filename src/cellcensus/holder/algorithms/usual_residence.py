"""Usual residence: devices per area by their home, under a named home detection rule.

Method: nights run from `night_start_hour` to `night_end_hour` local time and belong to the
date of their evening. Devices seen on fewer than `min_nights` distinct nights are left out.
The home cell is chosen by one of the rules of the literature (see `HomeRule`):
``most_distinct_nights`` (default), ``most_night_activity``, ``multi_mno`` (Multi-MNO home
label by permanence and frequency shares; a device may have several home cells and is shared
equally among them) or ``anchor_point`` (monthly homes, the most frequent over months). Ties
go to the smallest cell id. A home cell's devices are shared among areas by the cell's
allocation weights, so one device adds at most 1 to the whole release.

`usual_residence_sensitivity` shows how much the answer depends on the rule: for each other
rule, the devices by (area under the chosen rule, area under the other rule); the diagonal
holds the devices both rules place in the same area.

Reference: Vanhoof, Reis, Ploetz & Smoreda (2018), "Assessing the quality of home detection
from mobile phone data for official statistics", Journal of Official Statistics 34(4);
Ahas et al. (2010), "Using mobile positioning data to model locations meaningful to users of
mobile phones", Journal of Urban Technology 17(1) (anchor points); Eurostat Multi-MNO project,
usual environment labelling (2024).
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import pandas as pd
from pydantic import Field

from cellcensus.holder.algorithms.areas import allocation_on, count_by, spread, transitions
from cellcensus.holder.algorithms.base import (
    AREA_KEY,
    COUNT,
    Algorithm,
    Certification,
    Key,
    KeyDomain,
    Manifest,
    PeriodParameters,
    StoreLayout,
    StoreTables,
    check_days,
    check_footprint,
    footprint_refusal,
)
from cellcensus.holder.algorithms.device_filter import DeviceFilterParameters, Scope, Subscribers
from cellcensus.holder.algorithms.places import (
    HOME_RULES,
    SET_RULES,
    HomeParameters,
    homes_of,
    needs_hours,
    night_counts,
    night_summary,
    nights_seen,
    summary_sets,
)
from cellcensus.holder.algorithms.posterior import posterior_areas
from cellcensus.holder.algorithms.spatial import SpatialEstimator, bayesian_counts


class UsualResidenceParameters(HomeParameters, PeriodParameters):
    """Parameters of `usual_residence` and `usual_residence_sensitivity`."""

    filters: DeviceFilterParameters = Field(default_factory=DeviceFilterParameters)
    spatial_estimator: SpatialEstimator = Field(
        default="allocation",
        description="From home cells to areas: 'allocation' (footprint shares), 'bayesian' "
        "(Ricciato & Coluccia maximum likelihood; docs/algorithms/usual_residence.md) or "
        "'posterior' (each device's tile posterior from its night cells; needs the store's "
        "tile footprint, see holder/algorithms/posterior.py).",
    )


def enough_nights(params: UsualResidenceParameters, layout: StoreLayout) -> None:
    """The period spans at least `min_nights` nights."""
    check_days(layout, params.start, params.end, least=params.min_nights, parameter="min_nights")


def precondition(params: UsualResidenceParameters, layout: StoreLayout) -> None:
    """Enough nights; the posterior estimator reads the tile footprint."""
    enough_nights(params, layout)
    if params.spatial_estimator == "posterior":
        check_footprint("posterior", layout)


def homes(tables: StoreTables, params: UsualResidenceParameters) -> ir.Table:
    """Home cells of the holder's kept subscribers: device_id, cell_id, share."""
    return homes_and_nights(tables, params)[0]


def homes_and_nights(
    tables: StoreTables, params: UsualResidenceParameters
) -> tuple[ir.Table, ir.Table]:
    """Home cells, and the distinct nights per device and cell they come from.

    The rules that count nights and events per cell read the night sets (`nights_seen`);
    the others the night summary.

    Returns:
        (device_id, cell_id, share) and (device_id, cell_id, nights, events).
    """
    scope = Scope(tables, params, Subscribers.DOMESTIC, params.filters)
    if params.rule in SET_RULES:
        summary, sets = None, nights_seen(scope, params)
    else:
        summary = night_summary(scope, params, hours=needs_hours(params))
        sets = summary_sets(summary, scope)
    return homes_of(sets, params, summary), night_counts(sets)


def compute(tables: StoreTables, params: UsualResidenceParameters) -> ir.Table:
    """Distinct devices per area whose usual residence is there (fractional by allocation).

    With the Bayesian estimator the expression stops at devices per home cell; `finish`
    turns those into areas.
    """
    located, counts = homes_and_nights(tables, params)
    if params.spatial_estimator == "bayesian":
        return located.group_by("cell_id").agg(device_count=located.share.sum())
    # A home over the period: the weights valid on its last day (see `areas`).
    allocation = allocation_on(tables.allocation, params.end)
    if params.spatial_estimator == "posterior":
        if tables.footprint is None:
            raise footprint_refusal("posterior", level=tables.level)
        located = tables.materialize(located)
        counts = tables.materialize(counts)  # read by the candidates and the likelihood
        shares = posterior_areas(counts, located, tables.footprint, allocation, tables.materialize)
        return shares.group_by("area_code").agg(**{COUNT: shares.share.sum()})
    return count_by(spread(located, allocation, share="share"), ["area_code"])


def finish(
    raw: pd.DataFrame, tables: StoreTables, params: UsualResidenceParameters
) -> pd.DataFrame:
    """Apply the Bayesian spatial estimator to devices per home cell (allocation: as is)."""
    if params.spatial_estimator != "bayesian":
        return raw
    allocation = allocation_on(tables.allocation, params.end).to_pandas()
    return bayesian_counts(cell_counts=raw, allocation=allocation)


def compute_sensitivity(tables: StoreTables, params: UsualResidenceParameters) -> ir.Table:
    """Devices by area under the chosen rule and under each other rule."""
    scope = Scope(tables, params, Subscribers.DOMESTIC, params.filters)
    nights = tables.materialize(night_summary(scope, params, hours=True))
    sets = summary_sets(nights, scope)  # read by every rule
    chosen = tables.materialize(homes_of(sets, params, nights))
    allocation = allocation_on(tables.allocation, params.end)
    parts = []
    for rule in HOME_RULES:
        if rule is params.rule:
            continue
        other = homes_of(sets, params.model_copy(update={"rule": rule}), nights)
        matrix = transitions(
            chosen, other, allocation, origin="area_code", destination="alternative_area"
        )
        parts.append(matrix.mutate(alternative_rule=ibis.literal(str(rule))))
    union = parts[0]
    for part in parts[1:]:
        union = union.union(part, distinct=False)
    return union.select("alternative_rule", "area_code", "alternative_area", "device_count")


usual_residence = Algorithm(
    manifest=Manifest(
        name="usual_residence",
        version="2.4.0",
        certification=Certification.CERTIFIED,
        summary="Devices per area by usual residence, under a named home detection rule.",
        parameters=UsualResidenceParameters,
        keys=(AREA_KEY,),
        privacy_unit="device over the period",
        contribution_bound=1.0,
        reference="Vanhoof et al. (2018), J. Official Statistics 34(4), 935-960",
        examples=(
            *({"rule": str(rule)} for rule in HOME_RULES[1:]),
            {"start": "2011-03-10", "end": "2011-03-16", "min_nights": 3},
        ),
    ),
    compute=compute,
    finish=finish,
    precondition=precondition,
)

usual_residence_sensitivity = Algorithm(
    manifest=Manifest(
        name="usual_residence_sensitivity",
        version="1.2.0",
        certification=Certification.CERTIFIED,
        summary="Devices by home area under the chosen rule and under each other rule.",
        parameters=UsualResidenceParameters,
        keys=(
            Key("alternative_rule", KeyDomain.CATEGORY, tuple(str(rule) for rule in HOME_RULES)),
            AREA_KEY,
            Key("alternative_area", KeyDomain.AREA),
        ),
        privacy_unit="device over the period",
        contribution_bound=float(len(HOME_RULES) - 1),
        reference="Vanhoof et al. (2018), J. Official Statistics 34(4), 935-960",
        examples=({"rule": "multi_mno"},),
    ),
    compute=compute_sensitivity,
    precondition=enough_nights,
)
