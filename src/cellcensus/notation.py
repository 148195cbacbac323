"""How small privacy parameters are written for readers: ``δ = 10⁻⁶``, not ``1e-06``.

One notation on the holder's transparency page and in the NSO's report.
"""

from __future__ import annotations

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def scientific(value: float) -> str:
    """`value` as ``:g`` writes it, an exponent as a power of ten: ``10⁻⁶``, ``5 × 10⁻⁷``."""
    mantissa, exponent_sign, exponent = f"{value:g}".partition("e")
    if not exponent_sign:
        return mantissa  # 0.001, 0.5: no exponent
    power = "10" + str(int(exponent)).translate(_SUPERSCRIPT)
    return power if mantissa == "1" else f"{mantissa} × {power}"
