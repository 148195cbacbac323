"""From cells to areas: spreading each device's share over the allocation weights.

A device located at a cell is shared among the areas the cell serves, in proportion to the
allocation weights (which sum to 1 per cell), so a device never adds more than its share.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from cellcensus.holder.algorithms.base import COUNT, one


def allocation_as(allocation: ir.Table, *, cell: str, area: str, weight: str) -> ir.Table:
    """The allocation with its columns renamed (to join it twice without collisions)."""
    return allocation.select(
        **{cell: allocation.cell_id, area: allocation.area_code, weight: allocation.weight}
    )


def spread(
    located: ir.Table,
    allocation: ir.Table,
    *,
    cell: str = "cell_id",
    area: str = "area_code",
    share: str | None = None,
) -> ir.Table:
    """Rows of `located` times the areas of their cell, with `_weight` = share x weight.

    Args:
        located: Rows with a cell column (and optionally a share column, default 1).
        allocation: cell_id, area_code, weight.
        cell: Name of the cell column of `located`.
        area: Name to give the area column.
        share: Column of `located` holding the row's share of its device (None: 1).
    """
    alloc = allocation_as(allocation, cell="_cell", area=area, weight="_alloc_weight")
    # `view()` makes `located` a relation of its own: joining a table that selected window
    # functions straight off a join would otherwise extend that join, and Ibis would then
    # evaluate the windows over the joined (duplicated) rows.
    located = located.view()
    joined = located.join(alloc, located[cell] == alloc._cell).drop("_cell")
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
) -> ir.Table:
    """Devices by (area before, area after), from two tables of device_id, cell_id, share.

    A device at the same cell in both stays on the diagonal (its cell's weights); a device
    that moved between cells is spread by the product of both cells' weights. Each device
    present in both tables adds exactly 1 in total.
    """
    pairs = before.select("device_id", cell_a=before.cell_id, share_a=before.share).join(
        after.select("device_id", cell_b=after.cell_id, share_b=after.share), "device_id"
    )
    pairs = pairs.mutate(share=pairs.share_a * pairs.share_b)
    same = pairs.filter(pairs.cell_a == pairs.cell_b)
    stayed = spread(same, allocation, cell="cell_a", area=origin, share="share")
    stayed = stayed.mutate(**{destination: stayed[origin]})
    moved = pairs.filter(pairs.cell_a != pairs.cell_b)
    moved = spread(moved, allocation, cell="cell_a", area=origin, share="share")
    moved = spread(
        moved.mutate(share=moved._weight).drop("_weight"),
        allocation,
        cell="cell_b",
        area=destination,
        share="share",
    )
    columns = ["device_id", origin, destination, "_weight"]
    rows = stayed.select(columns).union(moved.select(columns), distinct=False)
    return count_by(rows, [origin, destination])
