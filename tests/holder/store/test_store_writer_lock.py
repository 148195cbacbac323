"""One writer at a time on a store; a purge killed midway is finished by the next writer."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from deliveries import METADATA, USERS, event, snapshot, write_delivery  # type: ignore[import-not-found]
from typer.testing import CliRunner

from cellcensus.cli import app
from cellcensus.errors import CellcensusError
from cellcensus.holder.store import Store, ingest_dataset, ingestion, writer_lock
from cellcensus.holder.store.retention import purge
from cellcensus.holder.store.writer_lock import writing

runner = CliRunner()

CUTOFF = date(2011, 3, 24)
ROWS = [
    event(user=USERS[0], timestamp="2011-03-21T08:00:00Z"),
    event(user=USERS[1], timestamp="2011-03-22T08:00:00Z"),
    event(user=USERS[2], timestamp="2011-03-22T09:00:00Z"),
    event(user=USERS[0], timestamp="2011-03-24T08:00:00Z"),
    event(user=USERS[1], timestamp="2011-03-26T08:00:00Z"),
    event(user=USERS[0], timestamp="2011-03-22T10:00:00Z", kind="fax"),  # quarantined, 22nd
    event(user=USERS[0], timestamp="2011-03-26T10:00:00Z", kind="fax"),  # quarantined, 26th
]


def _store(tmp_path: Path) -> Store:
    dataset = write_delivery(tmp_path / "dataset", rows=ROWS)
    ingest_dataset(dataset=dataset, store=tmp_path / "store", key_file=tmp_path / "key")
    return Store(tmp_path / "store")


def _later_delivery(tmp_path: Path) -> Path:
    metadata = {**METADATA, "period": {"start": "2011-03-28", "end": "2011-03-29"}}
    rows = [event(user=USERS[2], timestamp="2011-03-28T08:00:00Z")]
    return Path(write_delivery(tmp_path / "later", rows=rows, metadata=metadata))


def test_a_purge_while_an_ingest_writes_is_refused_naming_the_store_and_the_ingest(
    tmp_path, monkeypatch
):
    store = _store(tmp_path)
    committing, release = threading.Event(), threading.Event()
    commit = ingestion._commit

    def paused_commit(**kwargs: object) -> None:
        committing.set()
        release.wait(timeout=60)
        commit(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ingestion, "_commit", paused_commit)
    dataset = _later_delivery(tmp_path)
    ingesting = threading.Thread(
        target=ingest_dataset,
        kwargs={"dataset": dataset, "store": store.root, "key_file": tmp_path / "key"},
    )
    ingesting.start()
    try:
        assert committing.wait(timeout=60)
        with pytest.raises(CellcensusError) as refused:
            purge(store=store.root, before=CUTOFF)
    finally:
        release.set()
        ingesting.join(timeout=60)
    message = str(refused.value)
    assert f"store {store.root} is locked by another writer (ingest, process" in message
    assert "run this purge when it has ended" in message
    assert store.purges() == []
    assert store.days() == [date(2011, 3, d) for d in (21, 22, 24, 26, 28)]


@pytest.mark.parametrize(
    "command",
    [
        ["store", "purge", "--before", "2011-03-24"],
        ["store", "rotate-key", "--from", "2011-04-01"],
        ["store", "summarise", "--rebuild"],
        ["store", "allocate", "--coverage", "voronoi", "--level", "voronoi"],
    ],
    ids=["purge", "rotate-key", "summarise", "allocate"],
)
def test_every_writer_is_refused_while_an_ingest_writes(tmp_path, monkeypatch, command):
    monkeypatch.setenv("CELLCENSUS_KEY_FILE", str(tmp_path / "key"))
    store = _store(tmp_path)
    dataset = _later_delivery(tmp_path)
    before = snapshot(store.root / "events")
    with _ingesting_in_another_process(dataset, store=store, key_file=tmp_path / "key"):
        result = runner.invoke(app, [*command, "--store", str(store.root)])
    assert result.exit_code == 2, result.output
    assert f"store {store.root} is locked by another writer (ingest, process" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert set(snapshot(store.root / "events")) == {*before, "date=2011-03-28/part-0.parquet"}
    assert store.purges() == []
    assert not list(tmp_path.glob("key.from-*"))


@contextlib.contextmanager
def _ingesting_in_another_process(dataset: Path, *, store: Store, key_file: Path) -> Iterator[None]:
    """An ingest in a subprocess, held just before it moves its days into place."""
    script = f"""
        import sys
        from pathlib import Path
        from cellcensus.holder.store import ingest_dataset, ingestion
        commit = ingestion._commit
        def held_commit(**kwargs):
            print("committing", flush=True)
            sys.stdin.read()
            commit(**kwargs)
        ingestion._commit = held_commit
        ingest_dataset(
            dataset=Path({str(dataset)!r}), store=Path({str(store.root)!r}),
            key_file=Path({str(key_file)!r}),
        )
    """
    ingesting = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert ingesting.stdout is not None
    try:
        assert ingesting.stdout.readline().strip() == "committing"
        yield
    finally:
        ingesting.communicate(timeout=120)
    assert ingesting.returncode == 0


# Each kill is a real SIGKILL of a purge in a subprocess, at a point reached on the way.
KILLS = {
    "between two moves": """
        rename = Path.rename
        def killing_rename(self, target):
            if self.parent.name == "events" and self.name == "date=2011-03-22":
                os.kill(os.getpid(), signal.SIGKILL)
            return rename(self, target)
        Path.rename = killing_rename
    """,
    "before the record": """
        open_ = Path.open
        def killing_open(self, mode="r", *args, **kwargs):
            if self.name == "purges.jsonl" and "a" in mode:
                os.kill(os.getpid(), signal.SIGKILL)
            return open_(self, mode, *args, **kwargs)
        Path.open = killing_open
    """,
    "after the summaries, before the events": """
        rename = Path.rename
        def killing_rename(self, target):
            if self.parent.name == "events":
                os.kill(os.getpid(), signal.SIGKILL)
            return rename(self, target)
        Path.rename = killing_rename
    """,
    "before the delete": """
        def killing_rmtree(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)
        shutil.rmtree = killing_rmtree
    """,
}


def _killed_purge(store: Store, kill: str, *, before: date = CUTOFF) -> None:
    script = textwrap.dedent(
        """
        import os, shutil, signal
        from datetime import date
        from pathlib import Path
        from cellcensus.holder.store.retention import purge
        """
    )
    script += textwrap.dedent(KILLS[kill])
    script += f"purge(store=Path({str(store.root)!r}), before=date.fromisoformat('{before}'))\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == -9, done.stderr
    assert list(store.root.glob(".purge-*")), "the kill left the purge unfinished"


def _next_ingest(tmp_path: Path, store: Store) -> None:
    ingest_dataset(dataset=_later_delivery(tmp_path), store=store.root, key_file=tmp_path / "key")


def _next_purge(tmp_path: Path, store: Store) -> None:
    purge(store=store.root, before=date(2011, 3, 10))  # deletes nothing itself


def _next_summarise(tmp_path: Path, store: Store) -> None:
    result = runner.invoke(app, ["store", "summarise", "--store", str(store.root)])
    assert result.exit_code == 0, result.output


WRITERS = {"ingest": _next_ingest, "purge": _next_purge, "summarise": _next_summarise}


@pytest.mark.parametrize("kill", list(KILLS))
@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_killed_purge_is_finished_and_recorded_by_the_next_writer(tmp_path, kill, writer):
    store = _store(tmp_path)
    _killed_purge(store, kill)

    WRITERS[writer](tmp_path, store)

    assert [day for day in store.days() if day < CUTOFF] == []
    assert date(2011, 3, 24) in store.days() and date(2011, 3, 26) in store.days()
    finished = [entry for entry in store.purges() if entry["before"] == "2011-03-24"]
    assert len(finished) == 1, "recorded exactly once"
    assert finished[0]["days"] == ["2011-03-21", "2011-03-22"]
    assert finished[0]["event_rows_deleted"] == 3
    assert finished[0]["quarantine_rows_deleted"] == 1
    if kill != "before the delete":  # there the purge recorded itself before it was killed
        assert finished[0]["finished_by"] == writer
        assert finished[0]["finished_at"] >= finished[0]["purged_at"]
    _nothing_of_the_purged_days_left(store)


def _nothing_of_the_purged_days_left(store: Store) -> None:
    """No file or folder anywhere in the store holds or names a day before the cutoff."""
    everything = list(store.root.rglob("*"))
    assert not [path for path in everything if path.name.startswith(".purge-")]
    assert not [path for path in everything if path.name in {"date=2011-03-21", "date=2011-03-22"}]
    for path in (path for path in everything if path.suffix == ".parquet"):
        table = pq.read_table(path)
        if "local_date" in table.column_names:
            local_date = table.column("local_date")
            older = pc.less(local_date, pa.scalar(CUTOFF, local_date.type))
            assert not pc.any(older).as_py(), f"{path} holds rows before {CUTOFF}"


def test_a_purge_that_fails_before_its_record_still_leaves_the_store_as_it_was(
    tmp_path, monkeypatch
):
    store = _store(tmp_path)
    files = snapshot(store.root)
    rename = Path.rename

    def failing_rename(self: Path, target: Path) -> object:
        if self.name == "date=2011-03-22" and self.parent.name == "events":
            raise OSError("disk gone")
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", failing_rename)
    with pytest.raises(OSError, match="disk gone"):
        purge(store=store.root, before=CUTOFF)
    monkeypatch.undo()
    assert snapshot(store.root) == files
    assert not list(store.root.glob(".purge-*"))
    _next_ingest(tmp_path, store)
    assert store.purges() == []  # a failed purge is undone, not finished later
    assert date(2011, 3, 21) in store.days()


def test_a_killed_purge_that_cannot_be_finished_stops_every_writer_until_it_can(tmp_path):
    store = _store(tmp_path)
    _killed_purge(store, "before the record")
    store.purges_path.mkdir()  # the record cannot be appended to a folder
    with pytest.raises(CellcensusError) as refused:
        _next_ingest(tmp_path, store)
    message = str(refused.value)
    assert f"store {store.root} holds a purge before 2011-03-24, started at" in message
    assert "process" in message and "intent.json" in message and "\n" not in message
    assert date(2011, 3, 28) not in store.days()

    store.purges_path.rmdir()
    _next_ingest(tmp_path, store)
    assert [entry["finished_by"] for entry in store.purges()] == ["ingest"]
    _nothing_of_the_purged_days_left(store)


def test_a_lock_file_removed_as_it_is_taken_is_not_the_lock_held(tmp_path, monkeypatch):
    store = _store(tmp_path)
    lock_path = store.root / writer_lock.LOCK_NAME
    flock = writer_lock.fcntl.flock
    calls = []

    def flock_as_the_holder_before_ends(descriptor: int, operation: int) -> None:
        flock(descriptor, operation)
        if not calls:  # the holder before removes the file just as it is locked here
            lock_path.unlink()
        calls.append(operation)

    monkeypatch.setattr(writer_lock.fcntl, "flock", flock_as_the_holder_before_ends)
    with writing(store, writer="purge"):
        assert len(calls) == 2  # locked again, on the file now in place
        assert lock_path.read_text().startswith("purge, process")
        monkeypatch.undo()
        with pytest.raises(writer_lock.StoreBusyError, match=r"another writer \(purge, process"):
            purge(store=store.root, before=CUTOFF)
    assert not lock_path.exists()


@pytest.mark.parametrize("kill", list(KILLS))
def test_a_purge_killed_anywhere_leaves_no_lost_day(tmp_path, kill):
    # A purge moves each summary before its day: a job never meets a summary without its
    # day file, which it would refuse as a day lost by hand.
    store = _store(tmp_path)
    _killed_purge(store, kill)
    assert store.lost_days() == []
    store.check_no_lost_days()


def test_a_killed_purge_of_every_day_is_finished_by_summarise(tmp_path):
    # Every day moved aside, the record not yet written: the store holds no day file, and
    # summarise finishes the purge (under its lock) before it says so.
    store = _store(tmp_path)
    _killed_purge(store, "before the record", before=date(2011, 3, 27))
    assert store.days() == []
    result = runner.invoke(app, ["store", "summarise", "--store", str(store.root)])
    assert not list(store.root.glob(".purge-*"))
    assert [entry["before"] for entry in store.purges()] == ["2011-03-27"]
    assert "holds no events" in result.output  # said once the purge is finished
