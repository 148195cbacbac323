"""The store's writer lock: one writer at a time, and what a killed writer left is dealt with.

Every command that writes into a store (ingest, purge, key rotation, summarise, allocate)
holds ``flock`` on ``STORE/.writer.lock`` while it works; another is refused at once with one
line naming the store and the writer that holds it (written into the lock file). On taking the
lock, a writer first deals with what a killed writer left:

- an ingest's staging folders (``.staging-*``), whose spill files may hold raw identifiers,
  are removed;
- a purge's folders (``.purge-*``) are finished from the intent the purge wrote before it
  moved anything (`purge_intent.py`), and the purge recorded.

The lock file goes when the writer ends, so a store at rest holds none.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from cellcensus.errors import CellcensusError
from cellcensus.holder.store.layout import Store, require_store_folder
from cellcensus.holder.store.purge_intent import finish_interrupted_purges

LOCK_NAME = ".writer.lock"
"""File every writer of a store locks (``flock``)."""


class StoreBusyError(CellcensusError):
    """Another writer holds the store's lock."""


@contextlib.contextmanager
def writing(store: Store, *, writer: str) -> Iterator[None]:
    """Hold the store's writer lock, after finishing or removing what killed writers left.

    Args:
        store: An existing store folder.
        writer: What is about to write, as a message names it (``"ingest"``, ``"purge"``).

    Raises:
        StoreBusyError: If another writer holds the lock, naming it and the store.
        CellcensusError: If the folder is missing, or an interrupted purge cannot be finished.
    """
    require_store_folder(store.root)
    with _lock(store.root / LOCK_NAME, store=store, writer=writer):
        for left in store.root.glob(".staging-*"):
            shutil.rmtree(left, ignore_errors=True)
        finish_interrupted_purges(store, writer=writer)
        yield


@contextlib.contextmanager
def _lock(path: Path, *, store: Store, writer: str) -> Iterator[None]:
    """Hold ``flock`` on `path`, with this writer written in it; the file goes at the end."""
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise StoreBusyError(
                f"store {store.root} is locked by another writer{_holder(path)}; run this "
                f"{writer} when it has ended"
            ) from None
        if _still_in_place(path, descriptor):
            break
        # The holder before removed the file as we opened it: our lock is on a file no
        # other writer will find, so take the lock of the file in place instead.
        os.close(descriptor)
    try:
        started = datetime.now(UTC).isoformat(timespec="seconds")
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{writer}, process {os.getpid()}, since {started}".encode())
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(descriptor)


def _still_in_place(path: Path, descriptor: int) -> bool:
    """Whether `descriptor` is still the file at `path` (not one removed since it was opened)."""
    try:
        return path.stat().st_ino == os.fstat(descriptor).st_ino
    except FileNotFoundError:
        return False


def _holder(path: Path) -> str:
    """`` (WRITER, process PID, since TIME)`` as the lock file names it; empty if not yet."""
    with contextlib.suppress(OSError, UnicodeDecodeError):
        named = path.read_text(encoding="utf-8").strip()
        return f" ({named})" if named else ""
    return ""
