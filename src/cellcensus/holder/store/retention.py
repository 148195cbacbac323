"""Data retention: purge a store's events and quarantined rows older than a day.

A purge before DATE deletes

- every day partition ``events/date=D`` with D < DATE (whole folders: a day is kept or gone),
  and every device-day summary ``device_days/date=D`` with D < DATE;
- every quarantined row whose local day is before DATE, and every quarantined row of a
  delivery whose whole period ends before DATE (rows without a local day, such as malformed
  CSV lines, can only go with their delivery). A delivery's quarantine file is removed when
  nothing of it is left, otherwise rewritten without the purged rows.

A purge holds the store's writer lock (`writer_lock.py`). It writes its intent (the record,
the moves) durably first (`purge_intent.py`), then moves everything to delete aside inside the
store (renames on one file system), appends the purge to ``purges.jsonl`` (when, before which
day, which days, rows deleted), and only then deletes the moved files. A failure before the
record is written moves everything back; a purge killed after its intent is finished, and
recorded, by the next writer of the store. So a purge is either done and recorded, or leaves
the store as it was.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cellcensus.holder.store.device_days import (
    fresh,
    keeps_positions,
    positions_of_one_network,
)
from cellcensus.holder.store.key_record import read_key_record
from cellcensus.holder.store.layout import Store, require_store, row_count
from cellcensus.holder.store.purge_intent import (
    KEPT,
    PurgeIntent,
    carry_out,
    leftover_purges,
    started_by,
    sync,
)
from cellcensus.holder.store.writer_lock import writing


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
    require_store(target.root)
    if dry_run:
        return _plan(target, before).record
    with writing(target, writer="purge"):
        plan = _plan(target, before)
        aside = target.root / f".purge-{uuid.uuid4().hex}"
        aside.mkdir()
        try:
            intent = _intent(target, aside, plan)
        except BaseException:
            shutil.rmtree(aside)
            raise
        carry_out(target, aside, intent)
    return plan.record


@dataclass(frozen=True)
class _Plan:
    """What a purge deletes: its record, whole folders, and cuts of quarantine files."""

    record: PurgeRecord
    folders: list[Path]
    cuts: list[_QuarantineCut]


def _plan(store: Store, before: date) -> _Plan:
    """What a purge before `before` deletes, from the store as it is now."""
    days = [day for day in store.days() if day < before]
    # Summaries go by their own dates: one whose day's events are already gone goes too.
    summaries = [day for day in store.device_day_days() if day < before]
    rows_by_day = {day.isoformat(): row_count(store.day_path(day)) for day in days}
    found = (_quarantine_cut(path, before) for path in store.quarantine_files())
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
    # Summaries first: a summary whose day is gone is what jobs refuse as a lost day, so a
    # purge that is killed, or that a job meets, never shows one.
    folders = [store.device_day_path(day).parent for day in summaries]
    folders += [store.day_path(day).parent for day in days]
    return _Plan(record=record, folders=folders, cuts=cuts)


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


def _intent(store: Store, aside: Path, plan: _Plan) -> PurgeIntent:
    """The purge's moves into `aside`; rewritten quarantine files are written there first.

    They are written, and made durable, before the intent: the intent then only moves
    complete files, and a kill before it leaves nothing but copies.
    """
    moves = [(folder, aside / folder.parent.name / folder.name) for folder in plan.folders]
    for cut in plan.cuts:
        moves.append((cut.partition, aside / "quarantine" / cut.partition.name))
        if cut.kept is not None:
            staged = aside / KEPT / cut.partition.name
            staged.mkdir(parents=True)
            pq.write_table(cut.kept, staged / "part-0.parquet", compression="zstd")
            sync(staged / "part-0.parquet")
            moves.append((staged, cut.partition))
    relative = [(str(s.relative_to(store.root)), str(d.relative_to(store.root))) for s, d in moves]
    return PurgeIntent(record=asdict(plan.record), moves=relative, started_by=started_by())


def store_summary(store: Path) -> dict[str, Any]:
    """Days, rows, quarantine and purges of a store, from file footers and names only.

    Raises:
        CellcensusError: If `store` is not an existing store.
    """
    target = Store(store)
    require_store(target.root)
    days = target.days()
    quarantine = {path.parent.name: row_count(path) for path in target.quarantine_files()}
    purges = target.purges()
    summaries_fresh = fresh(target)
    return {
        "days": [day.isoformat() for day in days],
        "event_rows": target.event_rows(),
        "device_days_fresh": summaries_fresh,
        "hourly_positions": keeps_positions(target),
        # The rule `open_tables` applies for present_population.
        "hourly_positions_read": summaries_fresh and positions_of_one_network(target),
        "lost_days": [day.isoformat() for day in target.lost_days()],
        "quarantine_rows_by_period": quarantine,
        "purges": len(purges),
        "last_purge": purges[-1] if purges else None,
        "purge_folders": leftover_purges(target),
        "key_periods": [
            {
                "valid_from": period.valid_from and period.valid_from.isoformat(),
                "fingerprint": period.fingerprint,
            }
            for period in read_key_record(target)
        ],
    }
