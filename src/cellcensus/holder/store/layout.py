"""The holder's store: one folder with a fixed layout, and readers for its parts.

```
STORE/events/date=YYYY-MM-DD/part-0.parquet   pseudonymised events of one local day, sorted
                                              by device_id, timestamp
STORE/cells.parquet                           the network topology, all versions, typed
STORE/metadata.json                           holder facts of the last delivery
STORE/allocation/LEVEL.parquet                cell_id, area_code, weight, overlap_km2 of
                                              each version of a cell (valid_from, valid_to),
                                              and the digest of the cells it was made from
STORE/device_days/date=YYYY-MM-DD/part-0.parquet  one row per device and home network of
                                              that day: what the device filter needs
                                              (see `device_days.py`)
STORE/quarantine/period=START_END/part-0.parquet   rejected rows of that delivery, with reason
STORE/ingest_report.json                      the account of the last ingest
STORE/purges.jsonl                            append-only record of retention purges, one
                                              JSON object a line (see `retention.py`)
STORE/keys.json                               fingerprint of the pseudonymisation key of each
                                              key period (see `key_record.py`)
```
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import stat
import urllib.parse
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cellcensus.errors import CellcensusError
from cellcensus.holder.store.report import IngestReport

CELLS_DIGEST_KEY = b"cellcensus.cells_digest"
"""Key of the Parquet metadata naming the cells a file was made from (allocations, footprint)."""

LEVEL_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
"""An area level names a file, so it is a short lowercase identifier."""

EVENT_COLUMNS: tuple[str, ...] = (
    "device_id",
    "timestamp",
    "local_date",
    "local_hour",
    "cell_id",
    "event_type",
    "mcc",
    "mnc",
    "tac",
)
"""The columns of a stored day file, in order."""

CELL_COLUMNS: tuple[str, ...] = (
    "cell_id",
    "site_id",
    "latitude",
    "longitude",
    "azimuth_deg",
    "beam_width_deg",
    "range_m",
    "technology",
    "valid_from",
    "valid_to",
)
"""The columns of ``cells.parquet``, in order."""

RAW_IDENTIFIER = "user_id"
"""The subscriber id column of a delivery's events (docs/schema.md); a store keeps its
keyed pseudonym, ``device_id``, instead."""

_DAY_FOLDER = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")


class Store:
    """A holder's store folder: the paths of its parts and readers for them.

    Args:
        root: The store folder (it need not exist yet).
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Store) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    @property
    def events_dir(self) -> Path:
        """Folder of the day partitions (``date=YYYY-MM-DD/part-0.parquet``)."""
        return self.root / "events"

    @property
    def cells_path(self) -> Path:
        """The typed cells table, all versions."""
        return self.root / "cells.parquet"

    @property
    def metadata_path(self) -> Path:
        """The holder facts copied from the delivery's ``metadata.json``."""
        return self.root / "metadata.json"

    @property
    def quarantine_dir(self) -> Path:
        """Folder of rejected rows, one ``period=START_END`` partition per delivery."""
        return self.root / "quarantine"

    @property
    def report_path(self) -> Path:
        """The account of the last ingest."""
        return self.root / "ingest_report.json"

    @property
    def purges_path(self) -> Path:
        """The append-only record of retention purges (JSON lines)."""
        return self.root / "purges.jsonl"

    def purges(self) -> list[dict[str, Any]]:
        """Every purge recorded in this store, oldest first (empty if none)."""
        if not self.purges_path.is_file():
            return []
        lines = self.purges_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def quarantine_files(self) -> list[Path]:
        """The quarantine file of every delivery, in order of the partition name."""
        return sorted(self.quarantine_dir.glob("period=*/part-0.parquet"))

    @property
    def allocation_dir(self) -> Path:
        """Folder of the cell -> area allocations, one file per area level."""
        return self.root / "allocation"

    def allocation_path(self, level: str = "municipality") -> Path:
        """The allocation of cells to the areas of `level`.

        Args:
            level: Area level, a lowercase identifier such as ``municipality`` or ``grid_1km``.

        Raises:
            CellcensusError: If `level` is not a lowercase identifier.
        """
        if not LEVEL_PATTERN.match(level):
            raise CellcensusError(
                f"area level {level[:40]!r} is not a level name (lowercase letters, digits, _)"
            )
        return self.allocation_dir / f"{level}.parquet"

    def cells_digest(self) -> str:
        """A digest of the cells table's rows: an allocation records the one it was made from."""
        self._require(self.cells_path)
        rows = pq.read_table(self.cells_path).sort_by("cell_id")  # stable: versions keep order
        rows = rows.replace_schema_metadata(None).combine_chunks()
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, rows.schema) as stream:  # Arrow's own bytes: fast, exact
            stream.write_table(rows)
        return hashlib.sha256(sink.getvalue()).hexdigest()[:16]

    def made_from_other_cells(self, path: Path) -> bool:
        """Whether the Parquet file at `path` records other cells than the store's now.

        A later ingest replaces ``cells.parquet`` (new, moved or retired cells): what was made
        from the cells before (an allocation, the tile footprint) no longer covers the
        network. A file without a record (written before the record existed, or by hand) is
        taken as current.
        """
        made_from = (pq.read_schema(path).metadata or {}).get(CELLS_DIGEST_KEY)
        return made_from is not None and made_from.decode() != self.cells_digest()

    def area_levels(self) -> list[str]:
        """The area levels the store has an allocation for (e.g. ``municipality``)."""
        if not self.allocation_dir.is_dir():
            return []
        paths = self.allocation_dir.glob("*.parquet")
        return sorted(path.stem for path in paths if LEVEL_PATTERN.match(path.stem))

    def allocation_made_from_other_cells(self, level: str) -> bool:
        """Whether the allocation of `level` records other cells than the store's now."""
        return self.made_from_other_cells(self.allocation_path(level))

    def day_path(self, day: date) -> Path:
        """The events file of one local day."""
        return self.events_dir / f"date={day.isoformat()}" / "part-0.parquet"

    @property
    def device_days_dir(self) -> Path:
        """Folder of the device-day summaries (``date=YYYY-MM-DD/part-0.parquet``)."""
        return self.root / "device_days"

    def device_day_path(self, day: date) -> Path:
        """The device-day summary of one local day."""
        return self.device_days_dir / f"date={day.isoformat()}" / "part-0.parquet"

    def device_day_days(self) -> list[date]:
        """The local days that have a device-day summary, in order."""
        return _partition_days(self.device_days_dir)

    def quarantine_path(self, *, start: date, end: date) -> Path:
        """The quarantine file of the delivery for the period `start`-`end`."""
        return (
            self.quarantine_dir
            / f"period={start.isoformat()}_{end.isoformat()}"
            / ("part-0.parquet")
        )

    def days(self) -> list[date]:
        """The local days that hold events, in order."""
        return list(self.day_files())

    def day_files(self) -> dict[date, os.stat_result]:
        """The local days that hold events, in order, each with its events file's status.

        One listing of the events folder and one ``stat`` of each day's file: the days of
        `days`, and what tells a day's file from another delivery's (its size and time of
        change), for whoever needs both.
        """
        return _partition_files(self.events_dir)

    def lost_days(self, days: Iterable[date] | None = None) -> list[date]:
        """Days whose events file is gone while their device-day summary is still there.

        Every writer of the store moves a day's summary before its events, and both (an
        ingest's commit, a purge, killed or not), so a summary without its day file means the
        file was removed or moved by hand: a job would count the period without that day.
        `days` are the stored days if the caller listed them already (`days`).
        """
        stored = set(self.days() if days is None else days)
        return [day for day in self.device_day_days() if day not in stored]

    def holds_raw_events(self) -> bool:
        """Whether the first day file has raw subscriber ids: a delivery's, not a store's.

        A dataset folder has a store's layout (events/date=.../, cells.parquet,
        metadata.json); only its events' columns tell it apart.
        """
        days = self.days()
        if not days:
            return False
        try:
            names = pq.read_schema(self.day_path(days[0])).names
        except (OSError, pa.ArrowException):
            return False  # an unreadable day file is named by whatever reads it
        return RAW_IDENTIFIER in names and "device_id" not in names

    def check_no_lost_days(self, days: Iterable[date] | None = None) -> None:
        """Refuse a store that lost a day's events (`lost_days`), naming the days."""
        lost = self.lost_days(days)
        if not lost:
            return
        files = ", ".join(str(self.day_path(day).relative_to(self.root)) for day in lost[:3])
        more = f" and {len(lost) - 3} more" if len(lost) > 3 else ""
        raise CellcensusError(
            f"the store {self.root} has lost the events of {len(lost)} day(s): {files}{more} "
            "is missing while the day's device-day summary is there. Restore the file from a "
            "backup or ingest again the delivery that holds the day; a job would count the "
            "period without it"
        )

    def event_rows(self) -> int:
        """The number of stored events, from the day files' Parquet footers (no rows read).

        Raises:
            CellcensusError: A day file that is not readable Parquet (`unreadable`).
        """
        total = 0
        for path in self.event_files():
            try:
                total += row_count(path)
            except (pa.ArrowException, OSError) as error:
                raise self.unreadable(path) from error
        return total

    def file_named_in(self, message: str) -> Path | None:
        """The store's Parquet file that an engine's error `message` names, if it names one.

        DuckDB names a file by the path it was given, Spark by its ``file://`` URI.
        """
        text = unquote(message)
        for root in dict.fromkeys([str(self.root.absolute()), str(self.root)]):
            found = re.search(re.escape(root) + r"/([^\s'\"]+?\.parquet)", text)
            if found:
                return self.root / found.group(1)
        return None

    def unreadable(self, path: Path) -> CellcensusError:
        """The error for a file of the store that cannot be read: named within the store."""
        return CellcensusError(
            f"the store's file {path.relative_to(self.root)} could not be read (damaged, cut "
            "short or not Parquet); the holder must restore it from a backup or rebuild it "
            "(a day's files: ingest again the delivery that holds the day)"
        )

    def read_failed(self, path: Path) -> CellcensusError:
        """The error for an engine that failed to read `path`, a file of the store.

        It says what the file is now: gone, damaged (`unreadable`), a day file without its
        columns, or readable (replaced while the job read it, by an ingest's commit).
        """
        name = path.relative_to(self.root)
        if not path.exists():
            return CellcensusError(
                f"the store's file {name} is gone: it was removed while the job read it (a "
                "purge) or by hand; if by hand, the holder must restore it from a backup"
            )
        try:
            columns = pq.read_schema(path).names
        except (pa.ArrowException, OSError):
            return self.unreadable(path)
        lacking = [c for c in EVENT_COLUMNS if c not in columns] if self.is_day_file(path) else []
        if lacking:  # written over by hand: the job would fail again
            return CellcensusError(
                f"the store's file {name} lacks the day file column(s) {', '.join(lacking)}; "
                "the holder must restore it from a backup or ingest again the delivery that "
                "holds the day"
            )
        return CellcensusError(
            f"the store's file {name} changed while the job read it (a writer of the store, "
            "such as an ingest, replaced it); nothing was released: submit the job again"
        )

    def is_day_file(self, path: Path) -> bool:
        """Whether `path` is the events file of a day (`day_path`)."""
        return path.parent.parent == self.events_dir and bool(_DAY_FOLDER.match(path.parent.name))

    def event_files(self, *, days: Iterable[date] | None = None) -> list[Path]:
        """The day files, all of them or those of `days` that exist, in day order."""
        wanted = set(days) if days is not None else None
        return [self.day_path(day) for day in self.days() if wanted is None or day in wanted]

    def metadata(self) -> dict[str, Any]:
        """The holder facts of the last delivery (period, timezone, market_share, ...).

        Raises:
            CellcensusError: If nothing was ingested into this store yet.
        """
        self._require(self.metadata_path)
        document: dict[str, Any] = json.loads(self.metadata_path.read_text(encoding="utf-8"))
        return document

    def read_events(self, *, days: Iterable[date] | None = None) -> pd.DataFrame:
        """Stored events of `days` (default: all) as a DataFrame; for small stores and tests."""
        files = self.event_files(days=days)
        if not files:
            return pd.DataFrame({column: [] for column in EVENT_COLUMNS})
        return pd.concat([_read(path) for path in files], ignore_index=True)

    def read_cells(self) -> pd.DataFrame:
        """The cells table (all versions)."""
        self._require(self.cells_path)
        return _read(self.cells_path)

    def read_allocation(self, level: str = "municipality") -> pd.DataFrame:
        """The allocation of `level`: weights of each cell version over areas."""
        path = self.allocation_path(level)
        self._require(path, what=f"a {level} allocation")
        return _read(path)

    def read_quarantine(self) -> pd.DataFrame:
        """Every quarantined row of every delivery, with its reason."""
        files = self.quarantine_files()
        if not files:
            return pd.DataFrame({"reason": []})
        return pd.concat([_read(path) for path in files], ignore_index=True)

    def ingest_report(self) -> IngestReport:
        """The account of the last ingest into this store."""
        self._require(self.report_path)
        return IngestReport.from_json(self.report_path.read_text(encoding="utf-8"))

    def _require(self, path: Path, *, what: str | None = None) -> None:
        if not path.is_file():
            raise CellcensusError(
                f"store {self.root} has no {what or path.name}; "
                "run `cellcensus ingest --store` on it first"
            )


def require_store_folder(root: Path) -> None:
    """Refuse a store folder that does not exist, before anything is created in or beside it.

    Raises:
        CellcensusError: Naming the folder (a mistyped --store would otherwise be created).
    """
    if not root.exists():
        raise CellcensusError(f"store {root} does not exist; give the store folder")
    if not root.is_dir():
        raise CellcensusError(f"store {root} is a file; give the store folder")


def require_store(root: Path) -> None:
    """Refuse a folder that no ingest has made a store, saying how to make one.

    Raises:
        CellcensusError: Naming the folder, what a store is and the command that makes one.
    """
    require_store_folder(root)
    store = Store(root)
    if not store.metadata_path.is_file() and not store.events_dir.is_dir():
        raise CellcensusError(
            f"{root} is not a store (no metadata.json, no events/): a store is the folder "
            "`cellcensus ingest` fills with a delivery's pseudonymised events and cells; "
            f"make one with `cellcensus ingest --dataset DELIVERY --store {root}`"
        )
    check_not_delivery(root)


def check_not_delivery(root: Path) -> None:
    """Refuse a delivery given as a store: its jobs, summaries or purges would read raw ids.

    Raises:
        CellcensusError: Naming the folder and the command that makes a store of it.
    """
    if Store(root).holds_raw_events():
        raise CellcensusError(
            f"{root} is a delivery, not a store (its events hold raw {RAW_IDENTIFIER}s): "
            f"ingest it with `cellcensus ingest --dataset {root} --store STORE` and give that "
            "store"
        )


def _partition_days(folder: Path) -> list[date]:
    """The days of the ``date=YYYY-MM-DD/part-0.parquet`` partitions in `folder`, in order."""
    return list(_partition_files(folder))


def _partition_files(folder: Path) -> dict[date, os.stat_result]:
    """`_partition_days` with each day's file's status, from one ``stat`` of it."""
    if not folder.is_dir():
        return {}
    found = {}
    for partition in folder.iterdir():
        match = _DAY_FOLDER.match(partition.name)
        if not match:
            continue
        try:
            status = (partition / "part-0.parquet").stat()
        except (OSError, ValueError):  # no such file: as `Path.is_file` answers False
            continue
        if stat.S_ISREG(status.st_mode):
            found[date.fromisoformat(match.group(1))] = status
    return dict(sorted(found.items()))


def row_count(path: Path) -> int:
    """Rows of a Parquet file, from its footer (nothing else is read)."""
    return int(pq.ParquetFile(path).metadata.num_rows)


def _read(path: Path) -> pd.DataFrame:
    """One Parquet file as a DataFrame (without partition columns from its folder name)."""
    frame: pd.DataFrame = pq.read_table(path).to_pandas()
    return frame


def without_store_path(text: str, store: Path) -> str:
    """`text` with the store's location on the holder's disk written ``STORE``.

    Messages meant for the holder's command line name the store's folder; where the holder
    keeps its data is not for the clients of the service to learn.
    """
    spellings = {str(store.absolute()), str(store.resolve())}
    # Spark and Hadoop write paths as URIs: a space or a non-ASCII letter percent-encoded.
    spellings |= {urllib.parse.quote(spelling) for spelling in spellings}
    # A command quotes it for the shell (`'/data/o'"'"'brien'`).
    spellings |= {shlex.quote(spelling) for spelling in spellings}
    if len(store.parts) > 1:  # a relative path of one word would replace ordinary words
        spellings.add(str(store))
    for spelling in sorted(spellings, key=len, reverse=True):
        text = text.replace(spelling, "STORE")
    return text
