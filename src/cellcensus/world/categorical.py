"""Vectorised draws from many categorical distributions at once (one per row of a table)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def cumulative_rows(weights: NDArray[np.float64]) -> NDArray[np.float64]:
    """Turn a (rows, categories) table of non-negative weights into row-wise cumulative shares.

    Args:
        weights: One distribution per row; every row needs a positive total.

    Returns:
        The cumulative shares, with the last column exactly 1 so that no draw falls past it.
    """
    totals = weights.sum(axis=1, keepdims=True)
    if np.any(totals <= 0):
        raise ValueError("every row of a categorical table needs a positive total weight")
    cumulative = np.cumsum(weights / totals, axis=1)
    cumulative[:, -1] = 1.0
    return cumulative


def draw_categories(
    *, cumulative: NDArray[np.float64], rows: NDArray[np.intp], rng: np.random.Generator
) -> NDArray[np.intp]:
    """Draw one category per element of `rows` from that row's distribution.

    The rows are laid end to end on one axis (row r occupies [r, r + 1)), so a single
    `searchsorted` answers every draw without a loop over rows.

    Args:
        cumulative: Row-wise cumulative shares from `cumulative_rows`.
        rows: For each draw, the row (distribution) to draw from.
        rng: The random generator.

    Returns:
        The category index of each draw.
    """
    n_rows, n_categories = cumulative.shape
    line = (cumulative + np.arange(n_rows)[:, None]).ravel()
    targets = rows + rng.random(rows.size)
    flat = np.searchsorted(line, targets, side="right")
    # Rounding at a row's end can land one past it; clip back into the row.
    category: NDArray[np.intp] = np.minimum(flat - rows * n_categories, n_categories - 1)
    return category.astype(np.intp)


class AliasTable:
    """Draws from one fixed categorical distribution in constant time per draw (Walker).

    Binary search over cumulative shares costs a branch misprediction per level for every
    draw; the alias method needs one uniform index, one uniform number and one comparison.
    """

    def __init__(self, weights: NDArray[np.float64]) -> None:
        """Build the table of a distribution.

        Args:
            weights: Non-negative weights of the categories, not all zero.
        """
        share = np.asarray(weights, dtype=np.float64)
        if share.ndim != 1 or share.size == 0 or share.min() < 0 or share.sum() <= 0:
            raise ValueError("an alias table needs non-negative weights, not all zero")
        count = share.size
        scaled = share / share.sum() * count
        self.keep = np.ones(count, dtype=np.float64)
        self.alias = np.arange(count, dtype=np.intp)
        small = [i for i in range(count) if scaled[i] < 1.0]
        large = [i for i in range(count) if scaled[i] >= 1.0]
        while small and large:
            low, high = small.pop(), large.pop()
            self.keep[low] = scaled[low]
            self.alias[low] = high
            scaled[high] -= 1.0 - scaled[low]
            (small if scaled[high] < 1.0 else large).append(high)

    def draw(self, size: int, rng: np.random.Generator) -> NDArray[np.intp]:
        """`size` independent categories."""
        column = rng.integers(0, self.keep.size, size=size)
        accept = rng.random(size) < self.keep[column]
        drawn: NDArray[np.intp] = np.where(accept, column, self.alias[column]).astype(np.intp)
        return drawn
