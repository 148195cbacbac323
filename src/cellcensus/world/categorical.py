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
