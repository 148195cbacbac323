"""The worker pool: each job runs in its own subprocess, with a timeout and a memory limit.

``python -m cellcensus.holder.enclave.worker`` reads one spec (JSON) on stdin, limits its own
address space (``resource.setrlimit(RLIMIT_AS)``) and CPU time, and writes JSON lines on stdout:
``{"stage": ...}`` while it works, then ``{"release": ...}``, ``{"report": ...}`` or
``{"error": ...}``. It never touches the state database: only the service, after reading the
final line, can release anything. A worker killed or crashed mid-job therefore releases nothing.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from cellcensus.errors import CellcensusError


@dataclass(frozen=True)
class WorkerOutcome:
    """What a worker subprocess ended with.

    Attributes:
        result: The final message (``release`` or ``report``) when it succeeded.
        error: A message the analyst may read when it failed.
        detail: Internals for the audit log (traceback, stderr), never shown to analysts.
    """

    result: dict[str, Any] | None
    error: str | None
    detail: str = ""


def run_in_subprocess(
    spec: dict[str, Any], *, timeout_s: float, on_stage: Callable[[str], None]
) -> WorkerOutcome:
    """Run one spec in a fresh worker process; kill it after `timeout_s` seconds."""
    with tempfile.TemporaryFile(mode="w+") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "cellcensus.holder.enclave.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
        final: dict[str, Any] = {}
        reader = threading.Thread(
            target=_read_lines, args=(process.stdout, on_stage, final), daemon=True
        )
        reader.start()
        assert process.stdin is not None
        process.stdin.write(json.dumps(spec))
        process.stdin.close()
        timed_out = _wait(process, timeout_s)
        reader.join(timeout=5)
        stderr.seek(0)
        return _outcome(final, process.returncode, timed_out, timeout_s, stderr.read()[-4000:])


def _wait(process: subprocess.Popen[str], timeout_s: float) -> bool:
    try:
        process.wait(timeout=timeout_s)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return True


def _read_lines(
    stream: IO[str] | None, on_stage: Callable[[str], None], final: dict[str, Any]
) -> None:
    assert stream is not None
    for line in stream:
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "stage" in message:
            on_stage(str(message["stage"]))
        else:
            final.update(message)


def _outcome(
    final: dict[str, Any], returncode: int, timed_out: bool, timeout_s: float, stderr: str
) -> WorkerOutcome:
    if timed_out:
        return WorkerOutcome(None, f"the job exceeded its time limit of {timeout_s:g} s", stderr)
    if "error" in final:
        return WorkerOutcome(None, str(final["error"]), str(final.get("detail", "")) + stderr)
    if returncode == 0 and ("release" in final or "report" in final):
        return WorkerOutcome(final, None, stderr)
    reason = f"the worker died (exit code {returncode})"
    if returncode == -signal.SIGKILL or returncode == -signal.SIGSEGV:
        reason += "; it may have exceeded its memory limit"
    return WorkerOutcome(None, reason, stderr)


def limit_resources(*, memory_mb: int, timeout_s: float) -> None:
    """Cap this process's address space and CPU time (POSIX rlimits)."""
    memory = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    seconds = int(timeout_s) + 5
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 5))
    signal.alarm(seconds)  # a worker orphaned by a killed service still ends on its own


def emit(**message: Any) -> None:
    """Write one protocol line to stdout."""
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def execute(spec: dict[str, Any]) -> dict[str, Any]:
    """Compute what `spec` asks for in this process (called inside the worker)."""
    if spec["kind"] == "conformance":
        return {"report": conformance_report(spec["source"], sha256=spec["sha256"])}
    return {"release": compute_job(spec).to_json()}


def compute_job(spec: dict[str, Any]) -> Any:
    """The protected release of one job spec."""
    from cellcensus.holder.algorithms import get_algorithm
    from cellcensus.holder.enclave.catalogue import builtin_code_hash
    from cellcensus.holder.enclave.compute import compute_release
    from cellcensus.holder.enclave.conformance import load_submitted
    from cellcensus.holder.enclave.policies import disclosure_policy

    if spec["source"] is not None:
        algorithm = load_submitted(spec["source"], sha256=spec["code_hash"])
    else:
        algorithm = get_algorithm(spec["algorithm"])
        if builtin_code_hash(spec["algorithm"]) != spec["code_hash"]:
            raise CellcensusError(f"code of {spec['algorithm']} changed since submission")
    if algorithm.manifest.version != spec["version"]:
        raise CellcensusError(f"{spec['algorithm']} is no longer version {spec['version']}")
    return compute_release(
        store=spec["store"],
        algorithm=algorithm,
        parameters=spec["parameters"],
        level=spec["level"],
        policy=disclosure_policy(spec["policy"]["disclosure"]),
        engine=spec["engine"],
        job_id=spec["job_id"],
        progress=lambda stage: emit(stage=stage),
        memory_limit=f"{max(256, int(spec['memory_mb']) // 2)}MB",
    )


def conformance_report(source: str, *, sha256: str) -> dict[str, Any]:
    """Load a submitted module and run the conformance suite on it."""
    from cellcensus.holder.enclave.conformance import (
        check_algorithm,
        load_submitted,
        manifest_summary,
    )

    emit(stage="loading module")
    algorithm = load_submitted(source, sha256=sha256)
    emit(stage="running conformance checks")
    checks = check_algorithm(algorithm)
    return {
        "sha256": sha256,
        "passed": all(check.passed for check in checks),
        "checks": [vars(check) for check in checks],
        "manifest": manifest_summary(algorithm),
    }


def main() -> int:
    """Entry point of the worker subprocess."""
    spec = json.loads(sys.stdin.read())
    limit_resources(memory_mb=int(spec["memory_mb"]), timeout_s=float(spec["timeout_s"]))
    try:
        emit(**execute(spec))
    except CellcensusError as error:
        emit(error=str(error))
        return 1
    except MemoryError:
        emit(error=f"the job exceeded its memory limit of {spec['memory_mb']} MiB")
        return 1
    except Exception:
        emit(error="internal error in the worker; the steward can read the details in the "
             "audit log", detail=traceback.format_exc()[-4000:])
        return 1
    return 0


class WorkerPool:
    """Threads that hand queued jobs to worker subprocesses, a few at a time."""

    def __init__(self, service: Any, *, workers: int, poll_s: float = 0.5) -> None:
        self.service = service
        self.workers = workers
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the dispatch threads (none when `workers` is 0: jobs then stay queued)."""
        for number in range(self.workers):
            thread = threading.Thread(target=self._loop, name=f"cellcensus-worker-{number}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def wake(self) -> None:
        """A job was queued: look now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop taking jobs; running subprocesses are left to their own limits."""
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def _loop(self) -> None:
        while not self._stop.is_set():
            job = self.service.book.claim_next()
            if job is None:
                self._wake.wait(self.poll_s)
                self._wake.clear()
                continue
            self.run_job(job)

    def run_job(self, job: Any) -> None:
        """Compute one claimed job in a subprocess and report the outcome to the service."""
        try:
            spec = self.service.worker_spec(job)
        except CellcensusError as error:
            self.service.book.fail(job.id, error=str(error))
            return
        outcome = run_in_subprocess(
            spec,
            timeout_s=self.service.limits.timeout_s,
            on_stage=lambda stage: self.service.book.set_stage(job.id, stage),
        )
        if outcome.result is None or "release" not in outcome.result:
            self.service.book.fail(job.id, error=outcome.error or "no release", detail=outcome.detail)
            return
        self.service.computed(job, outcome.result["release"])


if __name__ == "__main__":
    sys.exit(main())
