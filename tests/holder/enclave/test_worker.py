"""Worker subprocesses: a time limit and a memory limit, and nothing released on failure."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cellcensus.holder.enclave.conformance import source_hash
from cellcensus.holder.enclave.worker import (
    DETAIL_CHARS,
    MAX_STAGES,
    STAGE_CHARS,
    _close_pipes,
    run_conformance,
    run_in_subprocess,
    start_worker,
)
from cellcensus.holder.sandbox import landlock_abi

SPEC = {"kind": "conformance", "source": "x = 1\n", "sha256": "0" * 64}


def test_a_job_over_its_time_limit_is_killed(tmp_path):
    outcome = run_in_subprocess(
        {**SPEC, "memory_mb": 4096, "timeout_s": 60, "scratch": str(tmp_path)},
        timeout_s=0.2,
        on_stage=lambda _stage: None,
    )
    assert outcome.result is None and "time limit" in (outcome.error or "")


@pytest.mark.slow
def test_a_job_over_its_memory_limit_fails(tmp_path):
    outcome = run_in_subprocess(
        {**SPEC, "memory_mb": 64, "timeout_s": 60, "scratch": str(tmp_path)},
        timeout_s=60,
        on_stage=lambda _stage: None,
    )
    assert outcome.result is None and outcome.error


# Hostile submissions: the conformance run of untrusted code happens in a worker subprocess.
# Whatever the module does at import, the service gets a failed report, in bounded time, and
# nothing the module started survives. Limits are small so the tests are quick and cheap.
MEMORY_MB = 1536  # the worker's imports take about 1 GiB of address space
HOSTILE = {
    "loops": ("while True:\n    pass\n", "time limit of 8 s"),
    "allocates": (
        "blocks = []\nwhile True:\n    blocks.append(bytearray(50 * 1024 * 1024))\n",
        f"memory limit of {MEMORY_MB} MiB",
    ),
    "exits": ("import os\nos._exit(0)\n", "exited without a result"),
    "exits_failing": ("import os\nos._exit(3)\n", "died (exit code 3)"),
    "crashes": ("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n", "died"),
    "floods_stdout": (
        "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n",
        "more than 16 MiB of output",
    ),
    "forges_lines": (
        "import sys\nprint('[1, 2]')\nprint('{\"stage\": ' + '[' * 100000 + '}')\n"
        "print('not json')\nraise SystemExit(0)\n",
        "exited without a result",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("behaviour", sorted(HOSTILE))
def test_hostile_submission_fails_conformance_in_bounded_time(behaviour):
    source, expected = HOSTILE[behaviour]
    limit = 8 if behaviour == "loops" else 60  # a worker needs a few seconds to start
    started = time.monotonic()
    report = run_conformance(
        source, sha256=source_hash(source), memory_mb=MEMORY_MB, timeout_s=limit
    )
    elapsed = time.monotonic() - started
    assert report["passed"] is False and report["checks"] == []
    assert expected in report["error"], report
    assert elapsed < min(limit, 20) + 5, elapsed  # ended by its fault, not the time limit


@pytest.mark.slow
def test_stderr_flood_keeps_only_its_tail(tmp_path):
    source = "import sys\nwhile True:\n    sys.stderr.write('y' * 65536)\n"
    spec = {
        "kind": "conformance",
        "source": source,
        "sha256": source_hash(source),
        "scratch": str(tmp_path),
    }
    outcome = run_in_subprocess(
        {**spec, "memory_mb": MEMORY_MB, "timeout_s": 60}, timeout_s=8, on_stage=lambda _: None
    )
    assert outcome.result is None and "time limit" in (outcome.error or "")
    assert 0 < len(outcome.detail) <= DETAIL_CHARS and set(outcome.detail) == {"y"}


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie waiting for init to reap it is dead


@pytest.mark.slow
def test_processes_a_submission_starts_do_not_outlive_it(tmp_path):
    source = (
        "import os, time\n"
        "child = os.fork()\n"
        "if child == 0:\n"
        "    time.sleep(600)\n"
        "open(os.path.join(os.environ['TMPDIR'], 'child.pid'), 'w').write(str(child))\n"
        "os._exit(0)\n"
    )
    spec = {"kind": "conformance", "source": source, "sha256": source_hash(source)}
    started = time.monotonic()
    outcome = run_in_subprocess(
        {**spec, "memory_mb": MEMORY_MB, "timeout_s": 60, "scratch": str(tmp_path)},
        timeout_s=30,
        on_stage=lambda _: None,
    )
    assert "without a result" in (outcome.error or "")
    assert time.monotonic() - started < 20  # not held by the child keeping stdout open
    child = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


@pytest.mark.slow
def test_stage_messages_are_bounded_and_never_break_the_reader(tmp_path: Path) -> None:
    source = (
        "import json, sys\n"
        "for n in range(5000):\n"
        "    print(json.dumps({'stage': str(n) * 100}))\n"
        "raise SystemExit(0)\n"
    )
    spec = {
        "kind": "conformance",
        "source": source,
        "sha256": source_hash(source),
        "scratch": str(tmp_path),
    }
    stages: list[str] = []

    def record(stage: str) -> None:
        stages.append(stage)
        if len(stages) == 1:
            raise RuntimeError("database unavailable")  # the reader carries on

    outcome = run_in_subprocess(
        {**spec, "memory_mb": MEMORY_MB, "timeout_s": 60}, timeout_s=30, on_stage=record
    )
    assert "without a result" in (outcome.error or "")
    assert len(stages) == MAX_STAGES and max(len(stage) for stage in stages) == STAGE_CHARS


@pytest.mark.slow
@pytest.mark.skipif(landlock_abi() < 1, reason="the kernel has no Landlock: rlimits only")
def test_conformance_run_cannot_reach_the_store_the_state_or_the_network(tmp_path):
    secret = tmp_path / "state.db"  # stands for the store, the state database, the token key
    secret.write_text("s3cr3t")
    outside = tmp_path / "planted.txt"
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    # A datagram and a unix socket's path (as a local PostgreSQL's): Landlock rules neither.
    datagrams = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    datagrams.bind(("127.0.0.1", 0))
    datagrams.settimeout(0.5)
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(str(tmp_path / "s.sock"))
    unix.listen(1)
    source = (
        "import os, socket\n"
        "tries = {\n"
        f"    'read': lambda: open({str(secret)!r}).read(),\n"
        f"    'write': lambda: open({str(outside)!r}, 'w').write('x'),\n"
        f"    'connect': lambda: socket.create_connection(('127.0.0.1', {port}), timeout=5),\n"
        "    'udp': lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(\n"
        f"        b'leak', ('127.0.0.1', {datagrams.getsockname()[1]})),\n"
        "    'unix': lambda: socket.socket(socket.AF_UNIX).connect(\n"
        f"        {str(tmp_path / 's.sock')!r}),\n"
        "    'scratch': lambda: open(os.path.join(os.environ['TMPDIR'], 'f'), 'w').write('x'),\n"
        "}\n"
        "found = {}\n"
        "for name, attempt in tries.items():\n"
        "    try:\n"
        "        attempt()\n"
        "        found[name] = 'allowed'\n"
        "    except OSError as error:\n"
        "        found[name] = type(error).__name__\n"
        "raise RuntimeError(found)\n"
    )
    with listener, datagrams, unix:
        report = run_conformance(
            source, sha256=source_hash(source), memory_mb=MEMORY_MB, timeout_s=60
        )
        with pytest.raises(TimeoutError):
            datagrams.recv(10)  # nothing came
    expected = {
        "read": "PermissionError",
        "write": "PermissionError",
        "connect": "PermissionError",
        "udp": "PermissionError",
        "unix": "PermissionError",
        "scratch": "allowed",  # its private temporary folder
    }
    assert repr(expected) in report["error"], report
    assert not outside.exists()


@pytest.mark.slow
@pytest.mark.skipif(landlock_abi() < 1, reason="the kernel has no Landlock: rlimits only")
def test_every_thread_of_a_conformance_run_is_confined(tmp_path):
    # Landlock and seccomp bind the threads a process has when it confines itself and those
    # they start: a thread the imports started before would run a signal handler unconfined.
    source = (
        "import os, pathlib\n"
        "import numpy, pyarrow, polars, duckdb  # libraries that start threads\n"
        "tasks = pathlib.Path('/proc/self/task')\n"
        "modes = sorted({next(line.split()[1] for line in (task / 'status').read_text()"
        ".splitlines() if line.startswith('Seccomp:')) for task in tasks.iterdir()})\n"
        "raise RuntimeError(f'threads {len(list(tasks.iterdir()))} seccomp {modes}')\n"
    )
    report = run_conformance(source, sha256=source_hash(source), memory_mb=MEMORY_MB, timeout_s=60)
    threads, modes = re.search(r"threads (\d+) seccomp (\[.*?\])", report["error"]).groups()
    assert int(threads) > 1 and modes == "['2']", report["error"]  # 2: a filter on each


def test_a_process_of_several_threads_is_not_confined(tmp_path):
    code = (
        "import threading, time\n"
        "from cellcensus.holder.sandbox import confine\n"
        "threading.Thread(target=time.sleep, args=(5,), daemon=True).start()\n"
        f"confine({str(tmp_path)!r})\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "cannot confine a process of 2 threads" in done.stderr


@pytest.mark.slow
def test_a_passing_report_says_which_sandbox_applied(tmp_path):
    module = Path(__file__).parents[1] / "api" / "test_certification.py"
    source = module.read_text().split("MODULE = '''")[1].split("'''")[0]
    report = run_conformance(source, sha256=source_hash(source), memory_mb=4096, timeout_s=120)
    assert report["passed"] is True, report
    expected = f"landlock ABI {landlock_abi()}, no sockets" if landlock_abi() >= 1 else "none"
    assert report["sandbox"] == expected


@pytest.mark.parametrize("timeout_s", [0.2, 60.0], ids=["killed", "ended"])
def test_a_worker_spills_in_a_private_folder_removed_when_it_ends(tmp_path, timeout_s):
    # DuckDB spills a job's intermediate tables (pseudonymised rows) beneath its working
    # folder: a worker working in the service's folder would leave them there, readable by
    # whoever reads that folder, outside the store and its retention, when it is killed.
    import stat

    import duckdb

    spill = duckdb.connect().execute("SELECT current_setting('temp_directory')").fetchall()
    assert spill == [(".tmp",)]  # relative: beneath the working folder
    seen: dict[str, object] = {}

    def look(process):
        folder = Path(f"/proc/{process.pid}/cwd").readlink()
        seen["folder"] = folder
        seen["mode"] = stat.S_IMODE(folder.stat().st_mode)

    outcome = run_in_subprocess(
        {**SPEC, "memory_mb": 4096, "timeout_s": 60, "scratch": str(tmp_path)},
        timeout_s=timeout_s,
        on_stage=lambda _stage: None,
        on_start=look,
    )
    assert outcome.result is not None or outcome.error
    folder = Path(str(seen["folder"]))
    assert folder != Path.cwd() and Path.cwd() not in folder.parents
    assert seen["mode"] == 0o700
    assert not folder.exists()


def test_a_warm_worker_whose_service_went_away_removes_its_folder(tmp_path):
    """A service that ends without discarding its warm worker (killed, say) closes the
    worker's stdin by ending: the worker then removes its private folder itself."""
    ready = start_worker()
    assert Path(ready.folder).is_dir()
    _close_pipes(ready.process)  # what the service's end does to the pipes
    assert ready.process.wait(timeout=60) == 0
    assert not Path(ready.folder).exists()


def test_a_worker_run_by_hand_leaves_its_folder_alone(tmp_path):
    folder = tmp_path / "cellcensus-worker-by-hand"
    folder.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "cellcensus.holder.enclave.worker"],
        input="",
        cwd=folder,
        env=os.environ | {"TMPDIR": str(tmp_path)},
        timeout=60,
        check=True,
    )
    assert done.returncode == 0
    assert folder.is_dir()
