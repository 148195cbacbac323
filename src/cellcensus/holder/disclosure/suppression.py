"""Primary and secondary suppression of small counts.

Primary: a cell with `min_count` devices or fewer is withheld. Secondary: when totals are
released beside their parts, a withheld part could be recovered by subtraction (parent minus
the published siblings), so more cells are withheld until no single subtraction recovers one:

1. a published parent with exactly one withheld child: withhold its smallest published
   sibling (or the parent itself when it has no other child);
2. a withheld parent whose children are all published (it would be their sum): withhold its
   smallest child.

Both rules are applied until nothing changes. They defeat recovery by one subtraction; a
suppressed cell can still be bounded by linear programming over many totals (its value is
known to lie between 0 and the threshold anyway), which is why the threshold is not the only
protection.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def primary_suppression(*, values: FloatArray, min_count: FloatArray | float) -> BoolArray:
    """Cells whose (unscaled) device count is `min_count` (its own, where one per cell) or fewer."""
    return np.asarray(values <= min_count, dtype=np.bool_)


def secondary_suppression(
    *, values: FloatArray, suppressed: BoolArray, children: Sequence[Sequence[int]]
) -> BoolArray:
    """Extend `suppressed` until no withheld cell is one subtraction away from the totals.

    Args:
        values: Value of every cell (before rounding).
        suppressed: Cells already withheld.
        children: For each cell, the cells that add up to it (empty for leaves).

    Returns:
        The cells to withhold, a superset of `suppressed`.
    """
    hidden = suppressed.copy()
    changed = True
    while changed:
        changed = False
        for parent, kids in enumerate(children):
            extra = _exposed(parent=parent, kids=kids, hidden=hidden, values=values)
            if extra is not None:
                hidden[extra] = True
                changed = True
    return hidden


def _exposed(
    *, parent: int, kids: Sequence[int], hidden: BoolArray, values: FloatArray
) -> int | None:
    """The cell to withhold so that no child of `parent` is recoverable (None if safe)."""
    if not kids:
        return None
    shown = [kid for kid in kids if not hidden[kid]]
    n_hidden = len(kids) - len(shown)
    if not hidden[parent] and n_hidden == 1:
        return _smallest(shown, values=values) if shown else parent
    if hidden[parent] and n_hidden == 0:
        return _smallest(shown, values=values)
    return None


def _smallest(cells: Sequence[int], *, values: FloatArray) -> int:
    return min(cells, key=lambda cell: (float(values[cell]), cell))
