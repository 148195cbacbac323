"""Consistent rounding: the same cell with the same value always rounds the same way.

Each cell is rounded on its own grid of multiples of `base`, shifted by an offset that a keyed
hash (HMAC-SHA256 with the holder's secret) derives from the cell's identity alone:

    rounded = base * floor((value + offset) / base),  offset in [0, base)

Because the offset depends only on the cell, not on the release, repeating a release gives the
same figure (nothing to average away), and a one-device change moves the figure only when it
crosses that cell's secret boundary (1 time in `base`), which the analyst cannot locate.
Over the secret, the offset is uniform, so the rounding is unbiased: sums of many rounded cells
stay centred on the true sum. Without a secret the offset is ``base / 2``: plain round-half-up,
equally consistent but biased by position on a public grid.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def consistent_round(
    *, values: FloatArray, cells: Sequence[str], base: int, secret: bytes | None = None
) -> FloatArray:
    """Round each value to a multiple of `base` on its cell's keyed grid.

    Args:
        values: Values to round (device counts, exact or noisy).
        cells: Identity of each cell (level and code), same length as `values`.
        base: Rounding base; 1 rounds to whole devices.
        secret: Holder secret keying the grid offsets; None rounds half up.

    Returns:
        Multiples of `base`, as floats.
    """
    if secret is None:
        offsets = np.full(len(values), base / 2.0)
    else:
        offsets = np.array([_unit_offset(secret, cell) for cell in cells]) * base
    return np.asarray(base * np.floor((values + offsets) / base), dtype=np.float64)


@lru_cache(maxsize=65536)
def _unit_offset(secret: bytes, cell: str) -> float:
    digest = hmac.new(secret, b"cellcensus-rounding|" + cell.encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64
