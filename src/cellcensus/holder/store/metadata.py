"""The holder facts that come beside a delivery (``metadata.json``), checked."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

from cellcensus.errors import SCHEMA_DOC, InputDataError
from cellcensus.holder.store.local_time import zone

REQUIRED_METADATA: tuple[str, ...] = ("period", "timezone", "market_share", "sampling_fraction")
"""Keys a delivery's metadata.json must have (see docs/schema.md)."""

DEFAULT_TIMEZONE = "Europe/Brussels"
"""The zone of local dates when a delivery comes without metadata."""

_HINTS = {
    "period": '{"start": "YYYY-MM-DD", "end": "YYYY-MM-DD"} (local dates, end inclusive)',
    "timezone": 'the IANA zone of local dates, e.g. "Europe/Brussels"',
    "market_share": "the national share of residents who subscribe, e.g. 0.4",
    "sampling_fraction": "1.0 for a real export, the world's --scale for a synthetic one",
    "roaming_share": "the holder's share of the country's inbound roaming visitors, e.g. 0.35",
}
SHARES = ("market_share", "sampling_fraction", "roaming_share")
"""Facts that are shares in (0, 1]; ``roaming_share`` is optional (inbound tourism needs it)."""


def read_metadata(*, path: Path) -> dict[str, Any]:
    """Read and check a delivery's ``metadata.json``.

    Args:
        path: The file.

    Returns:
        The facts, as written.

    Raises:
        InputDataError: If the file is missing, not a JSON object, or lacks or garbles a
            required key.
    """
    if not path.is_file():
        raise InputDataError(
            f"{path} does not exist; a dataset folder needs a metadata.json with "
            f"{', '.join(REQUIRED_METADATA)} (see {SCHEMA_DOC})"
        )
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputDataError(f"{path} is not readable JSON ({error}); fix the file") from None
    return check_metadata(metadata=document, source=str(path))


def check_metadata(
    *, metadata: Mapping[str, Any], source: str, period_required: bool = True
) -> dict[str, Any]:
    """Check the required holder facts.

    Args:
        metadata: The facts.
        source: Where they come from, for messages.
        period_required: Whether ``period`` must be present (not when it is given apart).

    Returns:
        A copy of the facts.

    Raises:
        InputDataError: Naming the key and what to write.
    """
    if not isinstance(metadata, Mapping):
        raise InputDataError(
            f"{source} must hold a JSON object with {', '.join(REQUIRED_METADATA)}"
        )
    required = [key for key in REQUIRED_METADATA if period_required or key != "period"]
    missing = [key for key in required if key not in metadata]
    if missing:
        key = missing[0]
        raise InputDataError(
            f"{source} lacks {', '.join(missing)}; add {key!r}: {_HINTS[key]} (see {SCHEMA_DOC})"
        )
    if "period" in metadata:
        period_of(metadata=metadata, source=source)
    timezone = metadata["timezone"]
    if not isinstance(timezone, str):
        raise InputDataError(f"{source}: 'timezone' must be a zone name such as 'Europe/Brussels'")
    try:
        zone(timezone)
    except InputDataError as error:
        raise InputDataError(f"{source}: {error}") from None
    for key in (key for key in SHARES if key in metadata):
        value = metadata[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
            raise InputDataError(
                f"{source}: {key!r} is {value!r}; it must be a number in (0, 1]: {_HINTS[key]}"
            )
    return dict(metadata)


def period_of(*, metadata: Mapping[str, Any], source: str) -> tuple[date, date]:
    """The delivery's period (local dates, end inclusive) from its metadata.

    Raises:
        InputDataError: If the period is missing, garbled or ends before it starts.
    """
    period = metadata.get("period")
    if not isinstance(period, Mapping) or not {"start", "end"} <= set(period):
        raise InputDataError(f"{source}: 'period' must be {_HINTS['period']}")
    try:
        start = date.fromisoformat(str(period["start"]))
        end = date.fromisoformat(str(period["end"]))
    except ValueError:
        raise InputDataError(
            f"{source}: period {dict(period)!r} is not two YYYY-MM-DD dates; fix 'period'"
        ) from None
    check_period(start=start, end=end, source=source)
    return start, end


def check_period(*, start: date, end: date, source: str) -> None:
    """Refuse a period that ends before it starts or lies before 1970.

    Raises:
        InputDataError: Naming the dates.
    """
    if end < start:
        raise InputDataError(
            f"{source}: the period ends ({end}) before it starts ({start}); swap the dates"
        )
    if start.year < 1970:
        raise InputDataError(f"{source}: the period starts in {start.year}; give the real dates")
