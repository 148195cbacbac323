"""Data retention: purge a store's events and quarantined rows older than a day.

A purge before DATE deletes

- every day partition ``events/date=D`` with D < DATE (whole folders: a day is kept or gone),
  and every device-day summary ``device_days/date=D`` with D < DATE;
- every quarantined row whose local day is before DATE, and every quarantined row of a
  delivery whose whole period ends before DATE (rows without a local day, such as malformed
  CSV lines, can only go with their delivery). A delivery's quarantine file is removed when
  nothing of it is left, otherwise rewritten without the purged rows.

Everything to delete is first moved aside inside the store (renames on one file system), then
the purge is appended to ``purges.jsonl`` (when, before which day, which days, rows deleted),
and only then are the moved files deleted. A failure before the record is written moves
everything back, so a purge either happens and is recorded, or leaves the store as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cellcensus.errors import CellcensusError
from cellcensus.holder.store.device_days import fresh
from cellcensus.holder.store.key_record import read_key_record
from cellcensus.holder.store.layout import Store, require_store_folder, row_count


@dataclass(frozen=True)
class PurgeRecord:
    """The account of one purge, as appended to ``purges.jsonl``.

    Attributes:
        purged_at: When the purge ran (UTC, ISO 8601).
        before: Days before this local day (ISO) were purged; the day itself is kept.
        days: The local days (ISO) whose event partitions were deleted.
        event_rows_deleted: Stored event rows deleted, all days together.
        event_rows_deleted_by_day: Stored event rows deleted per local day (ISO).
        quarantine_rows_deleted: Quarantined rows deleted, all deliveries together.
        quarantine_periods_removed: Quarantine partitions (``period=START_END``) deleted whole.
    """

    purged_at: str
    before: str
    days: list[str]
    event_rows_deleted: int
    event_rows_deleted_by_day: dict[str, int]
    quarantine_rows_deleted: int
    quarantine_periods_removed: list[str]

    def to_json_line(self) -> str:
        """The record as one line of JSON, newline included."""
        return json.dumps(asdict(self), sort_keys=True) + "\n"


@dataclass(frozen=True)
class _QuarantineCut:
    """What a purge does to one delivery's quarantine file."""

    partition: Path
    rows_deleted: int
    kept: pa.Table | None  # None: nothing is left, the partition goes


def purge(*, store: Path, before: date, dry_run: bool = False) -> PurgeRecord:
    """Delete the store's events and quarantined rows older than the local day `before`.

    Args:
        store: The store folder.
        before: First local day to keep.
        dry_run: Only count what would go; change nothing and record nothing.

    Returns:
        The account of the purge (also appended to ``purges.jsonl`` unless `dry_run`).

    Raises:
        CellcensusError: If `store` is not an existing store.
    """
    target = Store(store)
    _require_store(target)
    days = [day for day in target.days() if day < before]
    # Summaries go by their own dates: one whose day's events are already gone goes too.
    summaries = [day for day in target.device_day_days() if day < before]
    rows_by_day = {day.isoformat(): row_count(target.day_path(day)) for day in days}
    found = (_quarantine_cut(path, before) for path in target.quarantine_files())
    cuts = [cut for cut in found if cut is not None]
    record = PurgeRecord(
        purged_at=datetime.now(UTC).isoformat(timespec="seconds"),
        before=before.isoformat(),
        days=list(rows_by_day),
        event_rows_deleted=sum(rows_by_day.values()),
        event_rows_deleted_by_day=rows_by_day,
        quarantine_rows_deleted=sum(cut.rows_deleted for cut in cuts),
        quarantine_periods_removed=[cut.partition.name for cut in cuts if cut.kept is None],
    )
    if not dry_run:
        with _aside(target.root) as aside:
            folders = [target.day_path(day).parent for day in days]
            folders += [target.device_day_path(day).parent for day in summaries]
            _apply(store=target, folders=folders, cuts=cuts, record=record, aside=aside)
    return record


def _require_store(store: Store) -> None:
    """Refuse a path that is not a store, before anything is touched."""
    require_store_folder(store.root)
    if not store.metadata_path.is_file() and not store.events_dir.is_dir():
        raise CellcensusError(
            f"{store.root} is not a store (no metadata.json, no events/); give the store folder"
        )


def _quarantine_cut(path: Path, before: date) -> _QuarantineCut | None:
    """What to delete from one delivery's quarantine file; None if nothing."""
    table = pq.read_table(path)
    period_end = _period_end(path.parent.name)
    if period_end is not None and period_end < before:
        return _QuarantineCut(partition=path.parent, rows_deleted=table.num_rows, kept=None)
    local_date = table.column("local_date")
    older = pc.fill_null(pc.less(local_date, pa.scalar(before, local_date.type)), False)
    deleted = int(pc.sum(older).as_py() or 0)
    if not deleted:
        return None
    kept = table.filter(pc.invert(older))
    return _QuarantineCut(
        partition=path.parent, rows_deleted=deleted, kept=kept if kept.num_rows else None
    )


def _period_end(partition: str) -> date | None:
    """The last day of a ``period=START_END`` partition name; None if it is not one."""
    _, _, span = partition.partition("=")
    _, _, end = span.partition("_")
    try:
        return date.fromisoformat(end)
    except ValueError:
        return None


@contextlib.contextmanager
def _aside(root: Path) -> Iterator[Path]:
    """A folder inside the store for what is being purged; deleted at the end either way."""
    aside = root / f".purge-{uuid.uuid4().hex}"
    aside.mkdir()
    try:
        yield aside
    finally:
        shutil.rmtree(aside, ignore_errors=True)


def _apply(
    *,
    store: Store,
    folders: list[Path],
    cuts: list[_QuarantineCut],
    record: PurgeRecord,
    aside: Path,
) -> None:
    """Move the purged files aside, record the purge; on any failure move everything back."""
    moves: list[tuple[Path, Path]] = []

    def move(source: Path, destination: Path) -> None:
        destination.parent.mkdir(parents=True, exist_ok=True)
        source.rename(destination)
        moves.append((source, destination))

    # Rewritten quarantine files are written first, beside the rest, so no move can fail on
    # a half-written file.
    for cut in cuts:
        if cut.kept is not None:
            staged = aside / "kept" / cut.partition.name / "part-0.parquet"
            staged.parent.mkdir(parents=True)
            pq.write_table(cut.kept, staged, compression="zstd")
    try:
        for folder in folders:  # events/date=D and device_days/date=D
            move(folder, aside / folder.parent.name / folder.name)
        for cut in cuts:
            move(cut.partition, aside / "quarantine" / cut.partition.name)
            if cut.kept is not None:
                move(aside / "kept" / cut.partition.name, cut.partition)
        _append(store.purges_path, record.to_json_line())
    except BaseException:
        for source, destination in reversed(moves):
            destination.rename(source)
        raise


def _append(path: Path, line: str) -> None:
    """Append one line and make it durable before the purged files are deleted."""
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


def store_summary(store: Path) -> dict[str, Any]:
    """Days, rows, quarantine and purges of a store, from file footers and names only.

    Raises:
        CellcensusError: If `store` is not an existing store.
    """
    target = Store(store)
    _require_store(target)
    days = target.days()
    quarantine = {path.parent.name: row_count(path) for path in target.quarantine_files()}
    purges = target.purges()
    return {
        "days": [day.isoformat() for day in days],
        "event_rows": target.event_rows(),
        "device_days_fresh": fresh(target),
        "quarantine_rows_by_period": quarantine,
        "purges": len(purges),
        "last_purge": purges[-1] if purges else None,
        "key_periods": [
            {
                "valid_from": period.valid_from and period.valid_from.isoformat(),
                "fingerprint": period.fingerprint,
            }
            for period in read_key_record(target)
        ],
    }
