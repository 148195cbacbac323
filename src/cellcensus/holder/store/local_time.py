"""Local calendar date and wall-clock hour of UTC instants, as plain integer arithmetic in SQL.

The store keeps, beside each absolute timestamp, its local date and hour in the delivery's time
zone, so that algorithms never do time-zone maths. Asking DuckDB's ICU for the conversion of
every row is the slow way; instead the few UTC-offset changes that fall in the ingested period
(two DST switches a year) are found once here with `zoneinfo`, and each row only adds the offset
that applies to its epoch microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cellcensus.errors import InputDataError

MICROS_PER_SECOND = 1_000_000
MICROS_PER_HOUR = 3_600 * MICROS_PER_SECOND
MICROS_PER_DAY = 24 * MICROS_PER_HOUR

MARGIN = timedelta(days=2)
"""Offsets are exact from this long before the period to this long after it; rows further out
are outside the period whatever their offset (no zone is more than 14 hours from UTC)."""

_STEP = timedelta(minutes=15)


@dataclass(frozen=True)
class OffsetChange:
    """From `since_us` (epoch microseconds, UTC) on, local time is UTC plus `offset_us`."""

    since_us: int
    offset_us: int


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`.

    Raises:
        InputDataError: If `name` is not a known zone.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputDataError(
            f"timezone {name!r} is not an IANA time zone name; write it like 'Europe/Brussels'"
        ) from None


def offset_changes(*, timezone: str, start: date, end: date) -> list[OffsetChange]:
    """The UTC offsets of `timezone` from (`start` - 2 days) to (`end` + 2 days), in order.

    Args:
        timezone: An IANA zone name.
        start: First local day of the period.
        end: Last local day of the period (inclusive).

    Returns:
        The offset at the start of the window, then one entry per change inside it.
    """
    tz = zone(timezone)
    instant = datetime.combine(start, time(), UTC) - MARGIN
    stop = datetime.combine(end + timedelta(days=1), time(), UTC) + MARGIN
    current = _offset(instant, tz)
    changes = [OffsetChange(since_us=_epoch_us(instant), offset_us=current)]
    while instant < stop:
        following = instant + _STEP
        offset = _offset(following, tz)
        if offset != current:
            since = _first_instant_with(offset, after=instant, upto=following, tz=tz)
            changes.append(OffsetChange(since_us=_epoch_us(since), offset_us=offset))
            current = offset
        instant = following
    return changes


def local_micros_sql(*, epoch_us: str, changes: list[OffsetChange]) -> str:
    """SQL for local wall-clock microseconds since 1970 of the epoch-microsecond expression.

    Args:
        epoch_us: A SQL expression of UTC microseconds since 1970-01-01.
        changes: From `offset_changes`.

    Returns:
        ``epoch_us + offset`` with the offset picked by a CASE over the changes.
    """
    branches = " ".join(
        f"WHEN {epoch_us} >= {change.since_us} THEN {change.offset_us}"
        for change in reversed(changes[1:])
    )
    offset = (
        f"CASE {branches} ELSE {changes[0].offset_us} END"
        if branches
        else (str(changes[0].offset_us))
    )
    return f"({epoch_us} + {offset})"


def _offset(instant: datetime, tz: ZoneInfo) -> int:
    offset = instant.astimezone(tz).utcoffset()
    assert offset is not None  # a ZoneInfo always knows its offset
    return offset // timedelta(microseconds=1)


def _first_instant_with(offset: int, *, after: datetime, upto: datetime, tz: ZoneInfo) -> datetime:
    """Bisect to the second at which the offset becomes `offset` in (after, upto]."""
    low, high = after, upto
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        middle = middle.replace(microsecond=0)
        if middle <= low:
            break
        if _offset(middle, tz) == offset:
            high = middle
        else:
            low = middle
    return high


def _epoch_us(instant: datetime) -> int:
    return (instant - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
