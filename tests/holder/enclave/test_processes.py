"""Several OS processes on one state database: audit appends and migrations stay serialised.

Each process is a fresh Python interpreter (`subprocess`), so nothing is shared but the
database: not the in-process write lock, not the connection pool. They all wait on a "go"
file, created once every one of them is ready, so their work really overlaps.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from cellcensus.holder.enclave.audit import AuditLog
from cellcensus.holder.enclave.state import MIGRATIONS, open_state, schema_migrations

pytestmark = pytest.mark.slow  # interpreters importing the service, a few seconds each
PROCESSES = 3
APPENDS = 30

WAIT_FOR_GO = """
import sys, time
from pathlib import Path
folder = Path(sys.argv[1])
(folder / f"ready-{sys.argv[2]}").touch()
while not (folder / "go").exists():
    time.sleep(0.002)
"""

APPEND = (
    """
import sys
from cellcensus.holder.enclave.audit import AuditLog
from cellcensus.holder.enclave.state import open_state
state = open_state(sys.argv[3])
"""
    + WAIT_FOR_GO
    + """
log = AuditLog(state)
for index in range(int(sys.argv[4])):
    log.append(actor=f"process-{sys.argv[2]}", action="test.append", target=str(index))
"""
)

MIGRATE = (
    """
import sys
from cellcensus.holder.enclave.state import open_state
"""
    + WAIT_FOR_GO
    + """
open_state(sys.argv[3]).engine.dispose()
"""
)


def run_together(script: str, folder: Path, *args: str) -> list[subprocess.CompletedProcess[str]]:
    """Start `PROCESSES` interpreters on `script`, release them at once, wait for them all."""
    folder.mkdir(exist_ok=True)
    started = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(folder), str(number), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for number in range(PROCESSES)
    ]
    deadline = time.monotonic() + 120
    while len(list(folder.glob("ready-*"))) < PROCESSES:
        crashed = [process for process in started if process.poll() not in (None, 0)]
        assert not crashed and time.monotonic() < deadline, [p.communicate() for p in crashed]
        time.sleep(0.01)
    (folder / "go").touch()
    finished = []
    for process in started:
        stdout, stderr = process.communicate(timeout=120)
        finished.append(
            subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
        )
    return finished


def test_audit_appends_from_several_processes_make_one_chain(state_url, tmp_path):
    open_state(state_url).engine.dispose()  # migrated before, so the processes only append
    done = run_together(APPEND, tmp_path / "sync", state_url, str(APPENDS))
    assert [run.returncode for run in done] == [0] * PROCESSES, [run.stderr[-2000:] for run in done]
    state = open_state(state_url)
    log = AuditLog(state)
    verdict = log.verify()
    assert verdict.ok and verdict.entries == PROCESSES * APPENDS, verdict
    entries = log.entries(limit=10_000)
    for number in range(PROCESSES):  # every append is there, each process's in its order
        mine = [entry.target for entry in entries if entry.actor == f"process-{number}"]
        assert mine == [str(index) for index in range(APPENDS)]
    state.engine.dispose()


def test_services_starting_at_once_migrate_once(state_url, tmp_path):
    done = run_together(MIGRATE, tmp_path / "sync", state_url)
    assert [run.returncode for run in done] == [0] * PROCESSES, [run.stderr[-2000:] for run in done]
    state = open_state(state_url)
    with state.read() as conn:
        versions = conn.execute(sa.select(schema_migrations.c.version)).scalars().all()
    assert sorted(versions) == [number for number, _, _ in MIGRATIONS]
    state.engine.dispose()
