"""Key rotation: one pseudonymisation key per period of local days.

A new key makes new pseudonyms; old data keeps the pseudonyms of its key. The keys live beside
the key file, one 32-byte file each, so an existing single-key file keeps working unchanged:

```
pseudonym.key                    the first key: valid for every day before the first rotation
pseudonym.key.from-2026-01-01    valid from 2026-01-01 (local day) until the next rotation
pseudonym.key.from-2026-07-01    valid from 2026-07-01 on
```

A local day uses the key with the latest start on or before it, so re-ingesting an old day
gives it the pseudonyms it had. Rotations are only ever appended after the last one: inserting
a key before an existing rotation would split a period whose days already carry the old key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from cellcensus.errors import CellcensusError
from cellcensus.holder.store.pseudonym import (
    create_key,
    load_or_create_key,
    read_key,
    remove_killed_asides,
)

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class PeriodKey:
    """A pseudonymisation key and the first local day it applies to.

    Attributes:
        valid_from: First local day of the key's period; None for the first key, which holds
            for every day before the first rotation.
        path: The file the key was read from.
        key: The 32 secret bytes (left out of repr, so a log line cannot carry them).
    """

    valid_from: date | None
    path: Path
    key: bytes = field(repr=False)


def rotated_key_file(key_file: Path, *, valid_from: date) -> Path:
    """The file of the key that applies from the local day `valid_from` on."""
    return key_file.with_name(f"{key_file.name}.from-{valid_from.isoformat()}")


def rotation_days(key_file: Path) -> list[date]:
    """The start days of the rotated keys beside `key_file`, in order (file names only).

    Args:
        key_file: The first key's file; rotated keys sit beside it.

    Returns:
        Sorted start days; empty if the key was never rotated.
    """
    key_file = key_file.expanduser()
    if not key_file.parent.is_dir():
        return []
    days = []
    prefix = f"{key_file.name}.from-"
    for path in key_file.parent.iterdir():
        suffix = path.name[len(prefix) :]
        if path.name.startswith(prefix) and _DAY.fullmatch(suffix) and path.is_file():
            try:
                days.append(date.fromisoformat(suffix))
            except ValueError:
                continue  # not a real date: not a file this module wrote
    return sorted(days)


def keys_for_period(*, key_file: Path, start: date, end: date) -> list[PeriodKey]:
    """The keys that apply to some local day from `start` to `end`, in order of their start.

    The first key is created if missing (ingest first refuses that for a store that already
    holds pseudonyms: `key_record.check_key_file`); rotated keys are only read, never created
    here.

    Args:
        key_file: The first key's file.
        start: First local day of the delivery.
        end: Last local day of the delivery (inclusive).

    Returns:
        At least one key; the first applies to `start`.

    Raises:
        CellcensusError: If a key file is unreadable, of the wrong size or open to others.
    """
    key_file = key_file.expanduser()
    rotations = rotation_days(key_file)
    before_start = [day for day in rotations if day <= start]
    inside = [day for day in rotations if start < day <= end]
    if before_start:
        first_from = before_start[-1]
        first = rotated_key_file(key_file, valid_from=first_from)
        keys = [PeriodKey(first_from, first, read_key(key_file=first))]
    else:
        keys = [PeriodKey(None, key_file, load_or_create_key(key_file=key_file))]
    for day in inside:
        path = rotated_key_file(key_file, valid_from=day)
        keys.append(PeriodKey(day, path, read_key(key_file=path)))
    return keys


def rotate_key(*, key_file: Path, valid_from: date, stored_days: list[date]) -> Path:
    """Add a new random key that applies from the local day `valid_from` on.

    The first key is created too if it is missing, so that the days before `valid_from` have
    a fixed key. The new key is written with mode 0600 and never returned or shown. A rotation
    killed midway made its key whole or not at all; what it left aside is removed here.

    Args:
        key_file: The first key's file.
        valid_from: First local day of the new key.
        stored_days: Local days already in the store this key file serves.

    Returns:
        The new key's file.

    Raises:
        CellcensusError: If `valid_from` is not after the last rotation, or the store already
            holds days from `valid_from` on (they carry the current key's pseudonyms).
    """
    key_file = key_file.expanduser()
    remove_killed_asides(key_file)
    rotations = rotation_days(key_file)
    if rotations and valid_from <= rotations[-1]:
        raise CellcensusError(
            f"the key was already rotated from {rotations[-1]}; a new key must start after "
            "that day (rotations are only added at the end, so no period is split)"
        )
    later = [day for day in stored_days if day >= valid_from]
    if later:
        raise CellcensusError(
            f"the store already holds {len(later)} day(s) from {later[0]} on, pseudonymised with "
            f"the current key; rotate from a day after {stored_days[-1]} or purge those days"
        )
    load_or_create_key(key_file=key_file)
    path = rotated_key_file(key_file, valid_from=valid_from)
    create_key(key_file=path)
    read_key(key_file=path)  # check it is private and complete before anyone relies on it
    return path


def key_index_sql(*, local_date: str, keys: list[PeriodKey], start: date, end: date) -> str:
    """SQL for the index into `keys` of the key that applies to a row's local date.

    A row without a local date (no parsable timestamp), or one dated outside the period (it is
    quarantined), takes the key of the nearest day of the period, so its pseudonym is one that
    the period's stored rows use too.

    Args:
        local_date: A SQL expression of the row's local DATE (may be NULL).
        keys: From `keys_for_period` for `start`-`end`.
        start: First local day of the delivery.
        end: Last local day of the delivery.

    Returns:
        A SQL integer expression; the constant 0 when one key covers the whole period.
    """
    if len(keys) == 1:
        return "0"
    day = f"least(greatest(coalesce({local_date}, DATE '{start}'), DATE '{start}'), DATE '{end}')"
    branches = " ".join(
        f"WHEN {day} >= DATE '{key.valid_from}' THEN {index}"
        for index, key in reversed(list(enumerate(keys)))
        if index > 0
    )
    return f"(CASE {branches} ELSE 0 END)"
