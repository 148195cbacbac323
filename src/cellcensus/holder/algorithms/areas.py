"""From cells to areas: spreading each device's share over the allocation weights.

A device located at a cell is shared among the areas the cell serves, in proportion to the
allocation weights (which sum to 1 per cell), so a device never adds more than its share.

The allocation is versioned with the network (``valid_from``, ``valid_to``: local dates, both
inclusive, null = open; a cell's versions tile the time line, so exactly one holds on any day).
Which version a row uses:

- rows of one day (an event, a slot, a trip, a night) use the version valid on that day:
  `spread` with ``day=`` the row's date column;
- outputs over a whole period (a device's home, work or usual places over a month) use, for
  every cell, the version valid on the last day of the period (`allocation_on`; an open
  period: the latest version). Like a census reference date, the release then describes one
  network, the one in force when the period closed; a place cell is never split between
  versions, so a device still adds exactly its share, and no per-device dates are needed.
  (Weighting each version by the device's days there would follow a cell that moved more
  closely, but would split a device's home between the old and the new site of its cell.)

An allocation without the validity columns (a hand-made one, a store from before versioning)
is one version for all time.
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir

from cellcensus.holder.algorithms.base import COUNT, one


def allocation_as(allocation: ir.Table, *, cell: str, area: str, weight: str) -> ir.Table:
    """The allocation with its columns renamed (to join it twice without collisions)."""
    return allocation.select(
        **{cell: allocation.cell_id, area: allocation.area_code, weight: allocation.weight}
    )


def versioned(allocation: ir.Table) -> bool:
    """Whether the allocation carries validity dates (else it holds for all time)."""
    return {"valid_from", "valid_to"} <= set(allocation.columns)


def allocation_on(allocation: ir.Table, day: dt.date | None) -> ir.Table:
    """Each cell's version valid on `day` (None: its latest, open-ended version).

    The weights a whole-period output uses, with `day` the last day of the period (see the
    module docstring). An allocation without validity dates is returned as it is.
    """
    if not versioned(allocation):
        return allocation
    if day is None:
        return allocation.filter(allocation.valid_to.isnull())
    on = ibis.literal(day, type="date")
    return allocation.filter(
        (allocation.valid_from.isnull() | (allocation.valid_from <= on))
        & (allocation.valid_to.isnull() | (on <= allocation.valid_to))
    )


def spread(
    located: ir.Table,
    allocation: ir.Table,
    *,
    cell: str = "cell_id",
    area: str = "area_code",
    share: str | None = None,
    day: str | None = None,
) -> ir.Table:
    """Rows of `located` times the areas of their cell, with `_weight` = share x weight.

    Args:
        located: Rows with a cell column (and optionally a share column, default 1).
        allocation: cell_id, area_code, weight (and optionally valid_from, valid_to).
        cell: Name of the cell column of `located`.
        area: Name to give the area column.
        share: Column of `located` holding the row's share of its device (None: 1).
        day: Column of `located` holding the day whose version of the weights applies: a
            date, or an integer count of days since 1970-01-01. None: every version of the
            allocation applies, so pass an allocation of one version per cell (as from
            `allocation_on`), or an unversioned one.
    """
    # `view()` makes `located` a relation of its own: joining a table that selected window
    # functions straight off a join would otherwise extend that join, and Ibis would then
    # evaluate the windows over the joined (duplicated) rows.
    located = located.view()
    if day is None or not versioned(allocation):
        alloc = allocation_as(allocation, cell="_cell", area=area, weight="_alloc_weight")
        joined = located.join(alloc, located[cell] == alloc._cell).drop("_cell")
    else:
        alloc = allocation.select(
            **{
                "_cell": allocation.cell_id,
                area: allocation.area_code,
                "_alloc_weight": allocation.weight,
                "_from": allocation.valid_from,
                "_to": allocation.valid_to,
            }
        )
        when = located[day]
        start, end = alloc._from, alloc._to
        if not when.type().is_date():  # days since 1970, as present_population counts
            start, end = start.epoch_days().cast("int64"), end.epoch_days().cast("int64")
        condition = (
            (located[cell] == alloc._cell)
            & (alloc._from.isnull() | (start <= when))
            & (alloc._to.isnull() | (when <= end))
        )
        joined = located.join(alloc, condition).drop("_cell", "_from", "_to")
    weight = joined._alloc_weight if share is None else joined._alloc_weight * joined[share]
    return joined.mutate(_weight=weight).drop("_alloc_weight")


def count_by(spread_rows: ir.Table, keys: list[str]) -> ir.Table:
    """Sum `_weight` by `keys` into `device_count`."""
    return spread_rows.group_by(keys).agg(**{COUNT: spread_rows._weight.sum()})


def distinct_device_count(spread_rows: ir.Table, keys: list[str]) -> ir.Table:
    """Distinct devices per key: each device's weights on a key are capped at 1, then summed."""
    per_device = spread_rows.group_by(["device_id", *keys]).agg(_weight=spread_rows._weight.sum())
    capped = per_device.mutate(_weight=ibis.least(per_device._weight, one()))
    return count_by(capped, keys)


def transitions(
    before: ir.Table,
    after: ir.Table,
    allocation: ir.Table,
    *,
    origin: str,
    destination: str,
    after_allocation: ir.Table | None = None,
) -> ir.Table:
    """Devices by (area before, area after), from two tables of device_id, cell_id, share.

    A device at the same cell in both stays on the diagonal (its cell's weights after); a
    device that moved between cells is spread by the product of both cells' weights, the
    cell before by `allocation`, the cell after by `after_allocation` (default: the same).
    Each should hold one version per cell (see `allocation_on`). A device at the same cell
    whose weights changed in between still counts as staying: a migrant is a device whose
    cell changed, not one whose cell was moved. Each device present in both tables adds
    exactly 1 in total.
    """
    later = allocation if after_allocation is None else after_allocation
    pairs = before.select("device_id", cell_a=before.cell_id, share_a=before.share).join(
        after.select("device_id", cell_b=after.cell_id, share_b=after.share), "device_id"
    )
    pairs = pairs.mutate(share=pairs.share_a * pairs.share_b)
    same = pairs.filter(pairs.cell_a == pairs.cell_b)
    stayed = spread(same, later, cell="cell_a", area=origin, share="share")
    stayed = stayed.mutate(**{destination: stayed[origin]})
    moved = pairs.filter(pairs.cell_a != pairs.cell_b)
    moved = spread(moved, allocation, cell="cell_a", area=origin, share="share")
    moved = spread(
        moved.mutate(share=moved._weight).drop("_weight"),
        later,
        cell="cell_b",
        area=destination,
        share="share",
    )
    columns = ["device_id", origin, destination, "_weight"]
    rows = stayed.select(columns).union(moved.select(columns), distinct=False)
    return count_by(rows, [origin, destination])
