"""Identifiers of persons, devices, sites and cells: a prefix and a zero-padded number."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def numbered(prefix: str, numbers: NDArray[np.integer], width: int) -> NDArray[np.str_]:
    """Format each number as `prefix` followed by the number zero-padded to `width` digits.

    Args:
        prefix: Text before the number, e.g. ``"P"`` or ``"3247"``.
        numbers: Non-negative integers.
        width: Minimum number of digits.

    Returns:
        The identifiers (vectorised; an empty input gives an empty array).
    """
    if numbers.size == 0:
        return np.empty(0, dtype=f"<U{len(prefix) + width}")
    return np.char.add(prefix, np.char.zfill(np.asarray(numbers).astype(str), width))


def person_ids(persons: NDArray[np.integer]) -> NDArray[np.str_]:
    """Identifiers of persons by index: person 0 is ``P00000001``."""
    return numbered("P", np.asarray(persons) + 1, 8)


def site_ids(sites: int) -> NDArray[np.str_]:
    """Identifiers of sites 0..n-1: ``S00001`` onwards."""
    return numbered("S", np.arange(1, sites + 1), 5)


def cell_ids(cells: int) -> NDArray[np.str_]:
    """Identifiers of cells 0..n-1: ``C000001`` onwards."""
    return numbered("C", np.arange(1, cells + 1), 6)
