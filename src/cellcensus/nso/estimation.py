"""From released device counts to population estimates (expansion).

The holder releases, per area, the number of distinct devices whose usual residence is there.
Those devices are a sample of the population: only the operator's subscribers, and of them only
the share that the holder's data covers. Expansion multiplies each count by the number of
persons one resident device stands for.

This module holds the simplest estimator (one national factor) and the reading of a released
table; the corrected estimators are in `cellcensus.nso.expansion`, calibration in
`cellcensus.nso.calibration`, and `cellcensus.nso.production.estimate_all` runs them all.
"""

from __future__ import annotations

import math

import pandas as pd

from cellcensus.errors import CellcensusError

_RELEASE_COLUMNS = ("area_code", "device_count")


def expansion_factor(*, market_share: float, sampling_fraction: float) -> float:
    """Persons per resident device: ``1 / (market_share * sampling_fraction)``.

    Args:
        market_share: Share of the resident population that subscribes to the operator,
            in (0, 1].
        sampling_fraction: Share of the operator's subscribers present in the released data
            (1.0 when the holder processed all of them), in (0, 1].

    Returns:
        The factor by which a device count is multiplied to estimate persons.

    Raises:
        CellcensusError: If either share is not a number in (0, 1].
    """
    _check_share(name="market_share", value=market_share)
    _check_share(name="sampling_fraction", value=sampling_fraction)
    return 1.0 / (market_share * sampling_fraction)


def expand_national(
    *, released: pd.DataFrame, market_share: float, sampling_fraction: float
) -> pd.DataFrame:
    """Estimate the resident population per area with one national expansion factor.

    Every released count is multiplied by the same factor,
    ``1 / (market_share * sampling_fraction)``. That is unbiased only under these assumptions:

    - one device per subscriber, and one subscriber per person (no second phones, no
      machine-to-machine SIMs, no persons without a phone);
    - the operator's market share is the same in every area and every population group;
    - every sampled subscriber's home is detected, in the right area (nobody is lost by the
      usual-residence algorithm, nobody is counted twice).

    Where one of them fails (regional market shares, children without phones, second homes),
    the estimate is biased by the same proportion; calibration corrects for that.

    Args:
        released: The released table: ``area_code`` and ``device_count``, one row per area;
            ``device_count`` is null (NaN, None or ``pd.NA``) where the holder suppressed it.
        market_share: Share of the resident population that subscribes to the operator,
            in (0, 1].
        sampling_fraction: Share of the operator's subscribers present in the released data,
            in (0, 1].

    Returns:
        One row per released area, in input order: ``area_code``, ``released_devices``
        (float, NaN where suppressed), ``estimate`` (persons, float, NaN where suppressed) and
        ``factor`` (persons per device).

    Raises:
        CellcensusError: If a share is outside (0, 1], a column is missing, an area repeats, or
            a device count is negative or not a number.
    """
    factor = expansion_factor(market_share=market_share, sampling_fraction=sampling_fraction)
    devices = _released_devices(released)
    return pd.DataFrame(
        {
            "area_code": released["area_code"].to_numpy(),
            "released_devices": devices.to_numpy(),
            "estimate": (devices * factor).to_numpy(),
            "factor": factor,
        }
    )


def released_devices(*, table: pd.DataFrame) -> pd.Series:
    """The released device counts as floats indexed by area_code (a string).

    Args:
        table: A released table: ``area_code`` and ``device_count`` (null where suppressed).

    Returns:
        Device counts (float64, NaN where suppressed), index ``area_code`` of strings.

    Raises:
        CellcensusError: If a column is missing, an area repeats, or a count is negative or
            not a number.
    """
    devices = _released_devices(table)
    devices.index = pd.Index(table["area_code"].astype(str).to_numpy(), name="area_code")
    return devices.rename("device_count")


def _check_share(*, name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CellcensusError(f"{name} must be a number in (0, 1], got {value!r}")
    if math.isnan(value) or not 0.0 < value <= 1.0:
        raise CellcensusError(f"{name} must be in (0, 1] (a share, not a percentage), got {value}")


def _released_devices(released: pd.DataFrame) -> pd.Series:
    missing = [column for column in _RELEASE_COLUMNS if column not in released.columns]
    if missing:
        raise CellcensusError(
            f"released table lacks column(s) {missing}; it has {list(released.columns)}"
        )
    repeated = released["area_code"][released["area_code"].duplicated()]
    if not repeated.empty:
        raise CellcensusError(
            f"released table repeats area_code {sorted(set(repeated.astype(str)))[:5]}: "
            "expected one row per area"
        )
    try:
        devices = pd.to_numeric(released["device_count"], errors="raise").astype("float64")
        devices = devices.reset_index(drop=True)
    except (TypeError, ValueError) as error:
        raise CellcensusError(f"released device_count is not numeric: {error}") from None
    negative = released["area_code"].reset_index(drop=True)[devices < 0]
    if not negative.empty:
        raise CellcensusError(
            f"released device_count is negative for area_code {list(negative.astype(str))[:5]}"
        )
    return devices
