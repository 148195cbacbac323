"""A purge's intent: what it will remove, made durable before anything is moved.

A purge moves what it deletes into ``STORE/.purge-ID/`` (renames on one file system), records
itself in ``purges.jsonl`` and only then deletes that folder. Before the first move it writes
``STORE/.purge-ID/intent.json``:

```json
{"record": {... the line for purges.jsonl ...},
 "moves": [["events/date=2011-03-21", ".purge-ID/events/date=2011-03-21"], ...],
 "started_by": "holder on host, process 4242"}
```

Every move is a rename that can be redone or undone from the folders in place, so a purge
killed at any point after its intent is finished by the next writer of the store: the moves
not yet made are made, the record is appended (once: a record already there is not repeated)
with when and by which writer it was finished, and the folder is deleted.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cellcensus.errors import CellcensusError
from cellcensus.holder.store.layout import Store

INTENT_NAME = "intent.json"
"""The intent's file inside a purge's folder."""

_UNFINISHED_INTENT = f".{INTENT_NAME}.tmp"
KEPT = "kept"
"""Sub-folder of a purge's folder for the rewritten quarantine files (written before the
intent; the intent moves them into place)."""


@dataclass(frozen=True)
class PurgeIntent:
    """What one purge will do, as written to ``intent.json``.

    Attributes:
        record: The purge's line for ``purges.jsonl`` (cut-off day, days, rows, when).
        moves: (source, destination) folders relative to the store, in the order made.
        started_by: The user, machine and process that started the purge.
    """

    record: dict[str, Any]
    moves: list[tuple[str, str]]
    started_by: str

    def write(self, aside: Path) -> None:
        """Write the intent into the purge's folder and make it durable."""
        unfinished = aside / _UNFINISHED_INTENT
        unfinished.write_text(json.dumps(asdict(self), sort_keys=True), encoding="utf-8")
        sync(unfinished)
        unfinished.rename(aside / INTENT_NAME)
        sync(aside)
        sync(aside.parent)  # the purge's folder itself, created just before

    @classmethod
    def read(cls, aside: Path) -> PurgeIntent:
        """The intent written into the purge's folder `aside`."""
        document = json.loads((aside / INTENT_NAME).read_text(encoding="utf-8"))
        moves = [(source, destination) for source, destination in document["moves"]]
        return cls(record=document["record"], moves=moves, started_by=document["started_by"])


def started_by() -> str:
    """Who starts a purge now: user, machine and process."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        user = f"uid {os.getuid()}"
    return f"{user} on {socket.gethostname()}, process {os.getpid()}"


def carry_out(store: Store, aside: Path, intent: PurgeIntent) -> None:
    """Write the intent, make the moves, record the purge, delete what was moved.

    A failure before the record is appended moves everything back (the store is as it was);
    a kill leaves the intent for the next writer to finish the purge.
    """
    intent.write(aside)
    try:
        _move_forward(store, intent)
        _record(store, intent.record)
    except BaseException:
        _move_back(store, intent)
        _remove(aside)
        raise
    _remove(aside)


def leftover_purges(store: Store) -> dict[str, str]:
    """Each purge folder left in `store` (a purge was killed) and what becomes of it."""
    fates = {}
    for aside in sorted(store.root.glob(".purge-*")):
        if (aside / INTENT_NAME).is_file():
            fates[aside.name] = "interrupted: the next writer finishes it"
        elif _before_any_move(aside):
            fates[aside.name] = "left before any move: the next writer removes it"
        else:
            fates[aside.name] = (
                "holds files but no intent (a purge from before intents were written): "
                "look for its days in purges.jsonl; delete it if they are there, otherwise "
                "move them back"
            )
    return fates


def _before_any_move(aside: Path) -> bool:
    """Whether a purge folder without an intent holds only what precedes the first move."""
    return {path.name for path in aside.iterdir()} <= {KEPT, _UNFINISHED_INTENT}


def finish_interrupted_purges(store: Store, *, writer: str) -> None:
    """Finish every purge of `store` that was killed after writing its intent.

    A purge's folder without an intent was left before any move (it holds only rewritten
    quarantine files) and is deleted. One holding other files without an intent predates
    intents: nothing says whether its purge was recorded, so it is left for the operator.

    Raises:
        CellcensusError: If an interrupted purge cannot be finished, naming its folder.
    """
    for aside in sorted(store.root.glob(".purge-*")):
        if (aside / INTENT_NAME).is_file():
            _finish(store, aside, writer=writer)
        elif _before_any_move(aside):
            shutil.rmtree(aside)


def _finish(store: Store, aside: Path, *, writer: str) -> None:
    intent = PurgeIntent.read(aside)
    finished = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        _move_forward(store, intent)
        _record(store, intent.record, finished_at=finished, finished_by=writer)
    except OSError as error:
        raise CellcensusError(
            f"store {store.root} holds a purge before {intent.record['before']}, started at "
            f"{intent.record['purged_at']} by {intent.started_by}, that was interrupted and "
            f"cannot be finished ({error}); fix that and run a writer again (its intent: "
            f"{aside / INTENT_NAME})"
        ) from error
    _remove(aside)


def _move_forward(store: Store, intent: PurgeIntent) -> None:
    for source, destination in intent.moves:
        _move(store.root / source, store.root / destination)


def _move_back(store: Store, intent: PurgeIntent) -> None:
    for source, destination in reversed(intent.moves):
        _move(store.root / destination, store.root / source)


def _move(source: Path, destination: Path) -> None:
    """Rename `source` to `destination` unless that was done (or there is nothing to move)."""
    if destination.exists() or not source.exists():
        return
    destination.parent.mkdir(parents=True, exist_ok=True)
    source.rename(destination)


def _record(store: Store, record: dict[str, Any], **finished: str) -> None:
    """Append the purge's record durably, unless the purge appended it before it was killed.

    `finished` says when and by which writer an interrupted purge was finished.
    """
    if any(record.items() <= entry.items() for entry in store.purges()):
        return
    with store.purges_path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({**record, **finished}, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _remove(aside: Path) -> None:
    """Delete a purge's folder, its intent last: a kill before then leaves it to be finished."""
    for path in aside.iterdir():
        if path.name != INTENT_NAME:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    (aside / INTENT_NAME).unlink(missing_ok=True)
    aside.rmdir()


def sync(path: Path) -> None:
    """Flush a file's or a folder's entries to disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
