"""The worker pool: each job runs in its own subprocess, with a timeout and a memory limit.

``python -m cellcensus.holder.enclave.worker`` reads one spec (JSON) on stdin, limits its own
address space (``resource.setrlimit(RLIMIT_AS)``) and CPU time, and writes JSON lines on stdout:
``{"stage": ...}`` while it works, then ``{"release": ...}``, ``{"report": ...}`` or
``{"error": ...}``. It never touches the state database: only the service, after reading the
final line, can release anything. A worker killed or crashed mid-job therefore releases nothing.
"""

from __future__ import annotations

import contextlib
import json
import logging
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
from typing import IO, TYPE_CHECKING, Any

from cellcensus.errors import CellcensusError

log = logging.getLogger("cellcensus.enclave")

SUBMITTED_JOB_FAILED = (
    "the submitted algorithm failed; the steward can read the details in the audit log"
)
"""What an analyst reads when a job of submitted code fails (its message is not released)."""

if TYPE_CHECKING:
    from cellcensus.holder.enclave.jobs import Job
    from cellcensus.holder.enclave.service import EnclaveService


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


@dataclass(frozen=True)
class WorkerProcess:
    """A started worker subprocess, waiting for its spec on stdin."""

    process: subprocess.Popen[str]
    stderr: IO[str]


def start_worker() -> WorkerProcess:
    """Start a worker subprocess (it imports the catalogue, then waits for a spec)."""
    stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed with the outcome
    process = subprocess.Popen(
        [sys.executable, "-m", "cellcensus.holder.enclave.worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        start_new_session=True,
    )
    return WorkerProcess(process=process, stderr=stderr)


class WarmWorkers:
    """Keeps one worker started ahead, so a job does not wait for Python's imports."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready: WorkerProcess | None = None
        self._closed = False

    def take(self) -> WorkerProcess:
        """A started worker (the warm one if alive); start the next one in the background."""
        with self._lock:
            ready, self._ready = self._ready, None
        if ready is None or ready.process.poll() is not None:
            ready = start_worker()
        threading.Thread(target=self._refill, daemon=True).start()
        return ready

    def prepare(self) -> None:
        """Start the first worker ahead, in the background."""
        threading.Thread(target=self._refill, daemon=True).start()

    def _refill(self) -> None:
        with self._lock:
            if self._ready is None and not self._closed:
                self._ready = start_worker()

    def close(self) -> None:
        """Kill the worker kept ahead."""
        with self._lock:
            self._closed = True
            ready, self._ready = self._ready, None
        if ready is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(ready.process.pid, signal.SIGKILL)
            ready.process.wait()
            ready.stderr.close()


def run_in_subprocess(
    spec: dict[str, Any],
    *,
    timeout_s: float,
    on_stage: Callable[[str], None],
    on_start: Callable[[subprocess.Popen[str]], None] | None = None,
    warm: WarmWorkers | None = None,
) -> WorkerOutcome:
    """Run one spec in a worker process; kill it after `timeout_s` seconds."""
    worker = warm.take() if warm is not None else start_worker()
    process = worker.process
    with worker.stderr:
        if on_start is not None:
            on_start(process)
        final: dict[str, Any] = {}
        reader = threading.Thread(
            target=_read_lines, args=(process.stdout, on_stage, final), daemon=True
        )
        reader.start()
        assert process.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # killed already (service stopping)
            process.stdin.write(json.dumps(spec))
            process.stdin.close()
        timed_out = _wait(process, timeout_s)
        reader.join(timeout=5)
        worker.stderr.seek(0)
        detail = worker.stderr.read()[-4000:]
        return _outcome(final, process.returncode, timed_out, timeout_s, detail)


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
        return {"report": conformance_of(spec["source"], sha256=spec["sha256"])}
    return {"release": compute_job(spec).to_json()}


def compute_job(spec: dict[str, Any]) -> Any:
    """The protected release of one job spec."""
    from cellcensus.holder.algorithms import get_algorithm
    from cellcensus.holder.enclave.catalogue import builtin_code_hash
    from cellcensus.holder.enclave.compute import compute_release
    from cellcensus.holder.enclave.conformance import load_submitted
    from cellcensus.holder.enclave.policies import disclosure_policy
    from cellcensus.holder.enclave.service import charge_from_dict

    if spec["source"] is not None:
        algorithm = load_submitted(spec["source"], sha256=spec["code_hash"])
    else:
        algorithm = get_algorithm(spec["algorithm"])
        if builtin_code_hash(spec["algorithm"]) != spec["code_hash"]:
            raise CellcensusError(f"code of {spec['algorithm']} changed since submission")
    if algorithm.manifest.version != spec["version"]:
        raise CellcensusError(f"{spec['algorithm']} is no longer version {spec['version']}")
    charge = None if spec["charge"] is None else charge_from_dict(spec["charge"])
    return compute_release(
        store=spec["store"],
        algorithm=algorithm,
        parameters=spec["parameters"],
        level=spec["level"],
        policy=disclosure_policy(spec["policy"]["disclosure"]),
        engine=spec["engine"],
        job_id=spec["job_id"],
        charge=charge,
        progress=lambda stage: emit(stage=stage),
        memory_limit=f"{max(256, int(spec['memory_mb']) // 2)}MB",
    )


def conformance_of(source: str, *, sha256: str) -> dict[str, Any]:
    """Load a submitted module and run the conformance suite on it."""
    from cellcensus.holder.enclave.conformance import conformance_report, load_submitted

    emit(stage="loading module")
    algorithm = load_submitted(source, sha256=sha256)
    emit(stage="running conformance checks")
    return conformance_report(algorithm, sha256=sha256)


def main() -> int:
    """Entry point of the worker subprocess."""
    text = sys.stdin.read()
    if not text.strip():
        return 0  # a warm worker whose service went away
    spec = json.loads(text)
    limit_resources(memory_mb=int(spec["memory_mb"]), timeout_s=float(spec["timeout_s"]))
    try:
        emit(**execute(spec))
    except CellcensusError as error:
        if spec["kind"] == "job" and spec.get("source") is not None:
            # A submitted algorithm's own message could carry what it read in the store:
            # the analyst gets a fixed text, the steward the message (audit log).
            emit(error=SUBMITTED_JOB_FAILED, detail=str(error)[-4000:])
        else:
            emit(error=str(error))
        return 1
    except MemoryError:
        emit(error=f"the job exceeded its memory limit of {spec['memory_mb']} MiB")
        return 1
    except Exception:
        emit(
            error="internal error in the worker; the steward can read the details in the audit log",
            detail=traceback.format_exc()[-4000:],
        )
        return 1
    return 0


class WorkerPool:
    """Threads that hand queued jobs to worker subprocesses, a few at a time."""

    def __init__(
        self, service: EnclaveService, *, workers: int, warm: bool = True, poll_s: float = 0.5
    ) -> None:
        self.service = service
        self.workers = workers
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._running: set[subprocess.Popen[str]] = set()
        self._warm = WarmWorkers() if workers and warm else None

    def start(self) -> None:
        """Start the dispatch threads (none when `workers` is 0: jobs then stay queued)."""
        if self._warm is not None:
            self._warm.prepare()
        for number in range(self.workers):
            thread = threading.Thread(
                target=self._loop, name=f"cellcensus-worker-{number}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def wake(self) -> None:
        """A job was queued: look now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop taking jobs and kill running workers; their jobs are re-queued at next start."""
        self._stop.set()
        self._wake.set()
        if self._warm is not None:
            self._warm.close()
        for process in list(self._running):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                job = self.service.book.claim_next()
                if job is None:
                    self._wake.wait(self.poll_s)
                    self._wake.clear()
                    continue
                self.run_job(job)
            except Exception:  # a dispatch thread must outlive any one job
                log.exception("worker pool error")
                time.sleep(self.poll_s)

    def run_job(self, job: Job) -> None:
        """Charge, compute one claimed job in a subprocess, and report back to the service."""
        try:
            charge = self.service.charge(job)
            spec = self.service.worker_spec(job, charge=charge)
        except CellcensusError as error:
            self.service.book.fail(job.id, error=str(error))
            return
        started: list[subprocess.Popen[str]] = []

        def track(process: subprocess.Popen[str]) -> None:
            started.append(process)
            self._running.add(process)
            if self._stop.is_set():
                os.killpg(process.pid, signal.SIGKILL)

        outcome = run_in_subprocess(
            spec,
            timeout_s=self.service.limits.timeout_s,
            on_stage=lambda stage: self.service.book.set_stage(job.id, stage),
            on_start=track,
            warm=self._warm,
        )
        for process in started:
            self._running.discard(process)
        if self._stop.is_set():
            return  # shutting down: the job stays running and is re-queued at next start
        if outcome.result is None or "release" not in outcome.result:
            self.service.book.fail(
                job.id, error=outcome.error or "no release", detail=outcome.detail
            )
            return
        self.service.computed(job, outcome.result["release"])


if __name__ == "__main__":
    sys.exit(main())
