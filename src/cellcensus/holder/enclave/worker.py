"""The worker pool: each job runs in its own subprocess, with a timeout and a memory limit.

``python -m cellcensus.holder.enclave.worker`` reads one spec (JSON) on stdin, limits its own
address space (``resource.setrlimit(RLIMIT_AS)``) and CPU time (a job on Spark starts Spark's JVM
first, outside those limits: its heap bounds it), and writes JSON lines on stdout:
``{"stage": ...}`` while it works, then ``{"release": ...}``, ``{"report": ...}`` or
``{"error": ...}``. It never touches the state database: only the service, after reading the
final line, can release anything. A worker killed or crashed mid-job therefore releases nothing.

A job of submitted code is computed in a confined child of its worker (`enclave.confined`):
the worker, which protects the release, never executes submitted code.

The same workers run the conformance suite on submitted (untrusted) code, so the service side
trusts nothing about a worker's behaviour: it reads at most `MAX_OUTPUT_CHARS` of stdout (then
kills the worker), keeps only the tail of stderr (a pipe, never a file that could fill the
disk), ignores malformed lines, honours at most `MAX_STAGES` stage messages, and when the worker
ends (or is killed at its time limit) kills its whole process group, so nothing it started
outlives it.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from cellcensus.errors import CellcensusError
from cellcensus.holder.engines import start
from cellcensus.holder.sandbox import limit_resources

log = logging.getLogger("cellcensus.enclave")

SUBMITTED_JOB_FAILED = (
    "the submitted algorithm failed; the steward can read the details in the job's diagnostics"
)
"""What an analyst reads when a job of submitted code fails (its message is not released)."""
INTERNAL_ERROR = (
    "internal error in the worker; the steward can read the details in the job's diagnostics"
)
"""What an analyst reads of a job that failed on anything but a `CellcensusError`: an engine's
own message may quote what it read."""

MAX_OUTPUT_CHARS = 256 * 1024 * 1024
"""Most a worker may write on stdout (stages and result, in characters); beyond, it is killed."""
MAX_STAGES = 1000
"""Stage messages honoured per worker (each is a database write); later ones are ignored."""
STAGE_CHARS = 100  # width of jobs.stage
DETAIL_CHARS = 4000  # characters of a failure's detail (traceback, stderr tail) kept
CONFORMANCE_OUTPUT_CHARS = 16 * 1024 * 1024
"""Most a conformance run may write on stdout (a report is a few KiB)."""
_CHUNK = 1 << 20

if TYPE_CHECKING:
    from cellcensus.holder.enclave.jobs import Job
    from cellcensus.holder.enclave.service import EnclaveService


@dataclass(frozen=True)
class WorkerOutcome:
    """What a worker subprocess ended with.

    Attributes:
        result: The final message (``release`` or ``report``) when it succeeded.
        error: A message the analyst may read when it failed.
        detail: Internals (traceback, stderr) for the steward's job diagnostics, never shown
            to analysts nor kept in the audit log.
    """

    result: dict[str, Any] | None
    error: str | None
    detail: str = ""


@dataclass(frozen=True)
class WorkerProcess:
    """A started worker subprocess, waiting for its spec on stdin.

    Attributes:
        process: The subprocess.
        folder: Its working folder, private to the service's user (mode 0700): DuckDB
            spills the job's intermediate tables (pseudonymised rows) beneath it (``.tmp``),
            so not in the service's own working folder, readable by others and left behind
            by a killed worker. Removed once the worker has ended (`discard`).
    """

    process: subprocess.Popen[str]
    folder: str

    def discard(self) -> None:
        """Remove the worker's folder, and what it spilled there (the worker has ended)."""
        shutil.rmtree(self.folder, ignore_errors=True)


# The service's own variables (its settings, the JWT key, a steward's password) and libpq's
# (a database password): a worker reads its spec on stdin and has no database, and submitted
# code that runs beneath it could read its environment.
SERVICE_ONLY_ENVIRONMENT = ("CELLCENSUS_", "PG")


def worker_environment() -> dict[str, str]:
    """The service's environment without what only the service may know."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(SERVICE_ONLY_ENVIRONMENT)
    }


WORKER_FOLDER_PREFIX = "cellcensus-worker-"
WORKER_MODULE = "cellcensus.holder.enclave.worker"
UNTRUSTED_MODULE = "cellcensus.holder.untrusted"


def start_worker(module: str = WORKER_MODULE) -> WorkerProcess:
    """Start a worker subprocess (it imports the catalogue, then waits for a spec).

    `module` is run instead for submitted code (`UNTRUSTED_MODULE`: it confines itself
    before it imports anything that starts threads).

    It leads a new session (and process group), so killing the group kills whatever it
    started too. It works in a private folder of its own (`WorkerProcess.folder`), which is
    its temporary folder too (``TMPDIR``): DuckDB's spill folder (`engines.spill_folder`)
    goes with it when the worker is killed before it could remove it.
    """
    folder = tempfile.mkdtemp(prefix=WORKER_FOLDER_PREFIX)
    process = subprocess.Popen(
        [sys.executable, "-m", module],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
        env=worker_environment() | {"TMPDIR": folder},
        cwd=folder,
    )
    return WorkerProcess(process=process, folder=folder)


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
            if ready is not None:
                ready.discard()
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
            _close_pipes(ready.process)
            ready.discard()


def run_in_subprocess(
    spec: dict[str, Any],
    *,
    timeout_s: float,
    on_stage: Callable[[str], None],
    on_start: Callable[[subprocess.Popen[str]], None] | None = None,
    warm: WarmWorkers | None = None,
    max_output_chars: int = MAX_OUTPUT_CHARS,
) -> WorkerOutcome:
    """Run one spec in a worker process; kill it after `timeout_s` seconds.

    Whatever the worker does (loops, exhausts its memory, exits at once, floods its output,
    forks), this returns an outcome within about `timeout_s` seconds, and the worker and
    everything it started are gone.
    """
    if spec.get("kind") == "conformance":  # submitted code: a process that confines itself
        worker = start_worker(UNTRUSTED_MODULE)
    else:
        worker = warm.take() if warm is not None else start_worker()
    process = worker.process
    if on_start is not None:
        on_start(process)
    output = _Output(limit=max_output_chars)
    reader = threading.Thread(target=_read_lines, args=(process, on_stage, output), daemon=True)
    errors: collections.deque[str] = collections.deque(maxlen=DETAIL_CHARS // _STDERR_BLOCK + 1)
    drain = threading.Thread(target=_read_tail, args=(process.stderr, errors), daemon=True)
    reader.start()
    drain.start()
    assert process.stdin is not None
    with contextlib.suppress(BrokenPipeError, OSError):  # killed already (service stopping)
        process.stdin.write(json.dumps(spec))
        process.stdin.close()
    timed_out = _wait(process, timeout_s)
    reader.join(timeout=5)
    drain.join(timeout=5)
    _close_pipes(process)
    worker.discard()
    detail = "".join(errors)[-DETAIL_CHARS:]
    what = "the conformance run" if spec.get("kind") == "conformance" else "the job"
    if output.overflow:
        limit_mb = max_output_chars / (1024 * 1024)
        return WorkerOutcome(None, f"{what} wrote more than {limit_mb:g} MiB of output", detail)
    return _outcome(output.final, process.returncode, timed_out, timeout_s, detail, what=what)


def run_conformance(
    source: str, *, sha256: str, memory_mb: int, timeout_s: float
) -> dict[str, Any]:
    """The conformance report of a submitted module, computed in a worker subprocess.

    The module is untrusted: it runs only in the worker, under its time and memory limits.
    Whatever it does (loops, exhausts memory, exits or crashes the interpreter, floods its
    output, forks), the result is a report; one the worker could not produce says why in
    ``error`` and has ``passed`` false.
    """
    with tempfile.TemporaryDirectory(prefix="cellcensus-conformance-") as scratch:
        spec = {
            "kind": "conformance",
            "source": source,
            "sha256": sha256,
            "memory_mb": memory_mb,
            "timeout_s": timeout_s,
            "scratch": scratch,
        }
        outcome = run_in_subprocess(
            spec,
            timeout_s=timeout_s,
            on_stage=lambda _stage: None,
            max_output_chars=CONFORMANCE_OUTPUT_CHARS,
        )
    report = outcome.result.get("report") if outcome.result else None
    if isinstance(report, dict):
        return report
    if outcome.detail:
        log.info("conformance run of %s failed: %s", sha256[:12], outcome.detail[-1000:])
    error = outcome.error or "the conformance run sent no report"
    return {"sha256": sha256, "passed": False, "error": error, "checks": []}


def _wait(process: subprocess.Popen[str], timeout_s: float) -> bool:
    """Wait for the worker to end (killing it at `timeout_s`), then kill its process group.

    The worker is waited for without being reaped, so its process-group id cannot be reused
    by an unrelated process before the group (anything the worker forked and left running)
    is killed. Returns whether it timed out.
    """
    timed_out = not _ended(process.pid, time.monotonic() + timeout_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return timed_out


def _ended(pid: int, deadline: float) -> bool:
    """Whether child `pid` ended before `deadline` (left unreaped, a zombie)."""
    delay = 0.0005
    while True:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
        except ChildProcessError:
            return True  # reaped already
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(delay, left))
        delay = min(delay * 2, 0.05)


def _close_pipes(process: subprocess.Popen[str]) -> None:
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


@dataclass
class _Output:
    """What the reader thread collected from a worker's stdout."""

    limit: int
    final: dict[str, Any] = field(default_factory=dict)
    stages: int = 0
    overflow: bool = False


def _read_lines(
    process: subprocess.Popen[str], on_stage: Callable[[str], None], output: _Output
) -> None:
    """Read protocol lines in bounded chunks; kill the worker once it writes too much."""
    stream = process.stdout
    assert stream is not None
    total, parts = 0, []
    with contextlib.suppress(OSError, ValueError):  # pipe closed under us
        while chunk := stream.readline(_CHUNK):
            total += len(chunk)
            if total > output.limit:
                output.overflow = True
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                return
            parts.append(chunk)
            if chunk.endswith("\n"):
                _take("".join(parts), on_stage, output)
                parts = []
    if parts:
        _take("".join(parts), on_stage, output)


def _take(line: str, on_stage: Callable[[str], None], output: _Output) -> None:
    try:
        message = json.loads(line)
    except (ValueError, RecursionError):
        return
    if not isinstance(message, dict):
        return
    if "stage" not in message:
        output.final.update(message)
        return
    if output.stages >= MAX_STAGES:
        return
    output.stages += 1
    try:
        on_stage(str(message["stage"])[:STAGE_CHARS])
    except Exception:  # the reader must keep draining the pipe
        log.exception("could not record a worker's stage")


_STDERR_BLOCK = 1024


def _read_tail(stream: IO[str] | None, tail: collections.deque[str]) -> None:
    """Drain a worker's stderr, keeping only its last blocks."""
    assert stream is not None
    with contextlib.suppress(OSError, ValueError):
        while block := stream.read(_STDERR_BLOCK):
            tail.append(block)


def _outcome(
    final: dict[str, Any],
    returncode: int,
    timed_out: bool,
    timeout_s: float,
    stderr: str,
    *,
    what: str = "the job",
) -> WorkerOutcome:
    if timed_out:
        return WorkerOutcome(None, f"{what} exceeded its time limit of {timeout_s:g} s", stderr)
    if "error" in final:
        return WorkerOutcome(None, str(final["error"]), str(final.get("detail", "")) + stderr)
    if returncode == 0 and ("release" in final or "report" in final):
        return WorkerOutcome(final, None, stderr)
    if returncode == 0:
        return WorkerOutcome(None, f"the worker of {what} exited without a result", stderr)
    reason = f"the worker of {what} died (exit code {returncode})"
    if returncode == -signal.SIGKILL or returncode == -signal.SIGSEGV:
        reason += "; it may have exceeded its memory limit"
    return WorkerOutcome(None, reason, stderr)


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
    from cellcensus.holder.enclave.policies import disclosure_policy
    from cellcensus.holder.enclave.service import charge_from_dict

    if spec["source"] is not None:
        return compute_submitted_job(spec)
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
        reader=spec["reader"],
    )


def compute_submitted_job(spec: dict[str, Any]) -> Any:
    """The protected release of a job of submitted code, which never runs in this process.

    Its module runs in a confined child that hands back only its exact output
    (`confined.exact_output`); this process checks that table against the manifest recorded
    at certification and protects it, so the module can neither change the protection nor
    write this worker's result line.
    """
    from cellcensus.holder.enclave.compute import compute_submitted_release
    from cellcensus.holder.enclave.confined import exact_output
    from cellcensus.holder.enclave.conformance import source_hash
    from cellcensus.holder.enclave.manifests import RecordedManifest
    from cellcensus.holder.enclave.policies import disclosure_policy
    from cellcensus.holder.enclave.service import charge_from_dict

    if source_hash(spec["source"]) != spec["code_hash"]:
        raise CellcensusError("submitted source does not match its pinned SHA-256; refused")
    manifest = RecordedManifest.from_dict(
        spec["manifest"], name=spec["algorithm"], version=spec["version"]
    )

    def exact() -> Any:
        return exact_output(
            source=spec["source"],
            sha256=spec["code_hash"],
            store=Path(spec["store"]),
            level=spec["level"],
            parameters=spec["parameters"],
            memory_mb=int(spec["memory_mb"]),
            timeout_s=float(spec["timeout_s"]),
        )

    charge = None if spec["charge"] is None else charge_from_dict(spec["charge"])
    return compute_submitted_release(
        store=spec["store"],
        manifest=manifest,
        exact=exact,
        parameters=spec["parameters"],
        level=spec["level"],
        policy=disclosure_policy(spec["policy"]["disclosure"]),
        job_id=spec["job_id"],
        charge=charge,
        progress=lambda stage: emit(stage=stage),
        reader=spec["reader"],
    )


def conformance_of(source: str, *, sha256: str) -> dict[str, Any]:
    """Load a submitted module and run the conformance suite on it."""
    from cellcensus.holder.enclave.conformance import conformance_report, load_submitted

    emit(stage="loading module")
    algorithm = load_submitted(source, sha256=sha256)
    emit(stage="running conformance checks")
    return conformance_report(algorithm, sha256=sha256)


def main() -> int:
    """Entry point of the worker subprocess (a conformance run's is `holder.untrusted`)."""
    text = sys.stdin.read()
    if not text.strip():
        _remove_own_folder()  # a warm worker whose service went away without discarding it
        return 0
    spec = json.loads(text)
    if spec.get("kind") == "conformance":
        emit(error=f"submitted code runs in {UNTRUSTED_MODULE}, which confines itself first")
        return 1
    return guarded(spec, lambda: _run(spec))


def _run(spec: dict[str, Any]) -> None:
    if runs_on_spark(spec):
        # Before the limits, which the JVM would inherit: it reserves its whole heap
        # (spark.driver.memory) and more as address space at start, and spends CPU time on
        # many threads. Its heap bounds it, and the job's wall-clock limit still ends it.
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        start("spark")
    limit_resources(memory_mb=int(spec["memory_mb"]), timeout_s=float(spec["timeout_s"]))
    emit(**execute(spec))


def conformance_main(spec: dict[str, Any], sandbox: str) -> int:
    """The conformance run, in the process `holder.untrusted` confined as `sandbox` says."""

    def run() -> None:
        result = execute(spec)
        result["report"]["sandbox"] = sandbox
        emit(**result)

    return guarded(spec, run)


def guarded(spec: dict[str, Any], work: Callable[[], None]) -> int:
    """Run `work`; say any failure as the protocol's error line; the exit code."""
    try:
        work()
    except CellcensusError as error:
        if spec["kind"] == "job" and spec.get("source") is not None:
            # A submitted algorithm's own message could carry what it read in the store:
            # the analyst gets a fixed text, the steward the message (job diagnostics).
            emit(error=SUBMITTED_JOB_FAILED, detail=str(error)[-DETAIL_CHARS:])
        else:
            emit(error=str(error))
        return 1
    except MemoryError:
        emit(error=_over_memory(spec))
        return 1
    except Exception as error:
        if type(error).__name__ == "OutOfMemoryException":  # DuckDB's, under RLIMIT_AS
            emit(error=_over_memory(spec), detail=str(error)[-DETAIL_CHARS:])
            return 1
        emit(error=INTERNAL_ERROR, detail=traceback.format_exc()[-DETAIL_CHARS:])
        return 1
    return 0


def _remove_own_folder() -> None:
    """Remove the private folder `start_worker` made this worker work in, if it is that one.

    Only then: run by hand from another folder, a worker leaves it alone.
    """
    folder = Path.cwd()
    if folder.name.startswith(WORKER_FOLDER_PREFIX) and os.environ.get("TMPDIR") == str(folder):
        shutil.rmtree(folder, ignore_errors=True)


def runs_on_spark(spec: dict[str, Any]) -> bool:
    """Whether `spec` is a job of the built-in catalogue on Spark (submitted code: DuckDB)."""
    return spec["kind"] == "job" and spec["engine"] == "spark" and spec["source"] is None


def _over_memory(spec: dict[str, Any]) -> str:
    what = "the conformance run" if spec["kind"] == "conformance" else "the job"
    return f"{what} exceeded its memory limit of {spec['memory_mb']} MiB"


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
        """Charge, compute one claimed job in a subprocess, and report back to the service.

        The charge stands whatever happens next: a failure once the events are read may
        depend on the data. What the store's layout cannot serve was refused at submission.
        """
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
