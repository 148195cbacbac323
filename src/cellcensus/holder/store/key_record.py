"""The store's record of its pseudonymisation keys: a fingerprint per key period, checked at ingest.

Another key gives every subscriber other pseudonyms, so days ingested with two keys inside one
key period look like two populations of devices. The store keeps, in ``keys.json``, the
fingerprint of the key of each key period it holds days of (never the key):

```json
{"key_periods": [{"valid_from": null, "fingerprint": "3f9c0a17d2e4b658"},
                 {"valid_from": "2026-07-01", "fingerprint": "a1d05e7c93b2f640"}]}
```

Each day of a delivery must be pseudonymised with the key whose fingerprint is in force on it
(the recorded period with the latest start on or before it). The one exception is a rotation
(`key_rotation.py`): a key period starting after every recorded one, and after every day the
store holds, is new and gets recorded. A store without the record (new, or written before it
existed) records the keys of its next ingest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from cellcensus.errors import CellcensusError
from cellcensus.holder.store.key_rotation import PeriodKey
from cellcensus.holder.store.layout import Store
from cellcensus.holder.store.pseudonym import key_fingerprint

RECORD_NAME = "keys.json"
"""The record's file in the store folder."""


@dataclass(frozen=True)
class KeyPeriod:
    """A key period the store holds days of.

    Attributes:
        valid_from: First local day of the period; None for the first key's period.
        fingerprint: `key_fingerprint` of the period's key.
    """

    valid_from: date | None
    fingerprint: str


def read_key_record(store: Store) -> list[KeyPeriod]:
    """The store's key periods in order of their start (empty without a record).

    Raises:
        CellcensusError: If the record is not the JSON this module writes.
    """
    path = store.root / RECORD_NAME
    if not path.is_file():
        return []
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        periods = [
            KeyPeriod(_day(entry["valid_from"]), str(entry["fingerprint"]))
            for entry in document["key_periods"]
        ]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CellcensusError(
            f"{path} is not a key record ({error}); restore it from the store's backup"
        ) from None
    return sorted(periods, key=_start)


def write_key_record(periods: list[KeyPeriod], *, path: Path) -> None:
    """Write the record (the ingest writes it in its staging folder, then moves it in)."""
    entries = [
        {
            "valid_from": None if period.valid_from is None else period.valid_from.isoformat(),
            "fingerprint": period.fingerprint,
        }
        for period in sorted(periods, key=_start)
    ]
    path.write_text(json.dumps({"key_periods": entries}, indent=2) + "\n", encoding="utf-8")


def check_key_file(*, key_file: Path, store: Store) -> None:
    """Refuse a missing key file for a store that already holds pseudonyms.

    A new key is made only for a new (or emptied) store: for any other, a missing file is a
    mistyped path or a lost key, and a new key would give its devices other pseudonyms.

    Raises:
        CellcensusError: Naming the file and what to do.
    """
    if key_file.expanduser().exists():
        return
    if not store.days() and not (store.root / RECORD_NAME).is_file():
        return
    raise CellcensusError(
        f"key file {key_file} does not exist, and store {store.root} was pseudonymised with "
        "another key; pass the store's key file with --key-file (a new key is made only for a "
        "new store)"
    )


def check_keys(
    *, store: Store, keys: list[PeriodKey], key_file: Path, start: date, end: date
) -> list[KeyPeriod]:
    """Refuse keys other than the store's for the days `start`-`end`; else the new record.

    Args:
        store: The store the delivery goes into.
        keys: The keys of the delivery's days, from `keys_for_period`.
        key_file: The key file they come from (named in the error).
        start: First local day of the delivery.
        end: Last local day of the delivery (inclusive).

    Returns:
        The store's key periods with those this ingest starts (a new store's or a rotation's).

    Raises:
        CellcensusError: If a day of the delivery would be pseudonymised with a key other
            than the one the store holds for it; nothing is written.
    """
    record = read_key_record(store)
    used = [KeyPeriod(key.valid_from, key_fingerprint(key.key)) for key in keys]
    if not record:
        return used
    stored = store.days()
    periods = {period.valid_from: period for period in record}
    day = start
    while day <= end:
        mine = _in_force(used, day) or used[0]  # the first key applies to `start`
        theirs = _in_force(record, day)
        other = theirs is not None and theirs.fingerprint != mine.fingerprint
        if other and not _new_rotation(mine, record=record, stored=stored):
            raise _other_key(store, key_file=key_file, day=day, stored=stored)
        periods.setdefault(mine.valid_from, mine)
        day += timedelta(days=1)
    return sorted(periods.values(), key=_start)


def _new_rotation(period: KeyPeriod, *, record: list[KeyPeriod], stored: list[date]) -> bool:
    """Whether `period` starts after every recorded period and every stored day."""
    begins = period.valid_from
    if begins is None:
        return False
    later = [
        other for other in record if other.valid_from is not None and other.valid_from >= begins
    ]
    return not later and not any(day >= begins for day in stored)


def _other_key(store: Store, *, key_file: Path, day: date, stored: list[date]) -> CellcensusError:
    after = f"after its last day, {stored[-1]}" if stored else "from the delivery's first day"
    return CellcensusError(
        f"key file {key_file} is not the key of store {store.root}: the store was "
        f"pseudonymised with another key for {day}, so its devices would look like new ones; "
        "pass the store's key file with --key-file, or, if that key is lost, start new "
        f"pseudonyms with `cellcensus store rotate-key --from DAY --store {store.root} "
        f"--key-file {key_file}` (DAY {after}) and ingest from DAY on"
    )


def _in_force(periods: list[KeyPeriod], day: date) -> KeyPeriod | None:
    """The period with the latest start on or before `day` (None before the first)."""
    started = [
        period for period in periods if period.valid_from is None or period.valid_from <= day
    ]
    return max(started, key=_start) if started else None


def _start(period: KeyPeriod) -> date:
    return period.valid_from or date.min


def _day(value: Any) -> date | None:
    return None if value is None else date.fromisoformat(str(value))
