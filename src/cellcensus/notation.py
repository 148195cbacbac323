"""How numbers and dates are written for readers: ``δ = 10⁻⁶``, not ``1e-06``; days as runs.

One notation on the holder's side (its pages and messages) and in the NSO's report.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def scientific(value: float) -> str:
    """`value` as ``:g`` writes it, an exponent as a power of ten: ``10⁻⁶``, ``5 × 10⁻⁷``."""
    mantissa, exponent_sign, exponent = f"{value:g}".partition("e")
    if not exponent_sign:
        return mantissa  # 0.001, 0.5: no exponent
    power = "10" + str(int(exponent)).translate(_SUPERSCRIPT)
    return power if mantissa == "1" else f"{mantissa} × {power}"


def date_runs(days: Iterable[dt.date]) -> str:
    """Days as runs of consecutive dates: ``2011-03-07 to 2011-03-09, 2011-03-11``."""
    runs: list[list[dt.date]] = []
    for day in sorted(days):
        if runs and day - runs[-1][-1] == dt.timedelta(days=1):
            runs[-1].append(day)
        else:
            runs.append([day])
    return ", ".join(f"{run[0]} to {run[-1]}" if len(run) > 1 else str(run[0]) for run in runs)
