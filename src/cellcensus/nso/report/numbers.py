"""How numbers are written in the report: thousands separators, true minus signs, dashes."""

from __future__ import annotations

import math


def number(value: float, decimals: int = 0, missing: str = "–") -> str:
    """``12,345`` (or `missing` for NaN)."""
    return missing if math.isnan(value) else f"{value:,.{decimals}f}"


def factor(value: float) -> str:
    """A factor with at most two decimals and no trailing zeros: ``2.5``, ``25``."""
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def signed_number(value: float) -> str:
    """``+1,234`` or ``−1,234`` (true minus sign), ``0`` when it rounds to zero, ``–`` for NaN."""
    return "–" if math.isnan(value) else _unsigned_zero(f"{value:+,.0f}").replace("-", "−")


def signed_percent(value: float) -> str:
    """``+1.2%`` or ``−1.2%`` (true minus sign), ``0.0%`` when it rounds to zero, ``–`` for NaN."""
    return "–" if math.isnan(value) else _unsigned_zero(f"{value:+.1%}").replace("-", "−")


def _unsigned_zero(text: str) -> str:
    """``-0.0%`` and ``+0`` lose their sign: a rounded zero is neither above nor below."""
    return text[1:] if text[1:].strip("0.,%") == "" else text


def percent(value: float, decimals: int = 1) -> str:
    """``1.2%``, ``–`` for NaN."""
    return "–" if math.isnan(value) else f"{value:.{decimals}%}"


def decimal(value: float, decimals: int = 4) -> str:
    """``0.9876``, ``–`` for NaN."""
    return "–" if math.isnan(value) else f"{value:.{decimals}f}"
