"""The enclave as a service: submissions, releases, approvals and recovery over the job table.

`EnclaveService` is what both the in-process runner (`Enclave.run`) and the HTTP API use. It
never runs analyst-facing code itself in the API process: the API hands queued jobs to the
worker pool (`holder.enclave.worker`), which computes in subprocesses and reports back here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
import shlex
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cellcensus.errors import CellcensusError, DisclosureError
from cellcensus.holder.algorithms import Algorithm, get_algorithm
from cellcensus.holder.disclosure import Charge, DisclosurePolicy, PrivacyLedger
from cellcensus.holder.disclosure import Role as LedgerRole
from cellcensus.holder.disclosure.ledger import Budget, Standing, amount_left
from cellcensus.holder.enclave.audit import AuditLog, append_entry
from cellcensus.holder.enclave.catalogue import Catalogue, CatalogueEntry
from cellcensus.holder.enclave.certification import Submissions
from cellcensus.holder.enclave.compute import (
    Reader,
    check_job,
    compute_release,
    job_period,
)
from cellcensus.holder.enclave.diagnostics import JobDiagnostics
from cellcensus.holder.enclave.jobs import Job, JobBook, JobStatus, NewJob, Submission
from cellcensus.holder.enclave.policies import Policies, ReleasePolicy, disclosure_policy
from cellcensus.holder.enclave.state import State
from cellcensus.holder.engines import Engine, start
from cellcensus.holder.store import Store
from cellcensus.holder.store.layout import without_store_path
from cellcensus.notation import date_runs
from cellcensus.release import Release

DEFAULT_PROJECT = "default"
ACCOUNT_LENGTH = 64  # width of jobs.analyst and jobs.project (PostgreSQL enforces it)


def _check_account(*, analyst: str, project: str) -> None:
    """Refuse an empty or over-long analyst or project name, naming it."""
    for name, value in (("analyst", analyst), ("project", project)):
        if not value.strip() or len(value) > ACCOUNT_LENGTH:
            raise CellcensusError(
                f"{name} {value[:70]!r} must be a non-empty name of at most "
                f"{ACCOUNT_LENGTH} characters"
            )


@dataclass(frozen=True)
class JobRequest:
    """What an analyst asks for.

    Attributes:
        algorithm: Catalogue name.
        parameters: The algorithm's parameters (validated against its manifest).
        level: Area level of the release (an allocation of the store).
        project: Budget and quota account the job is charged to.
    """

    algorithm: str
    parameters: dict[str, Any] = field(default_factory=dict)
    level: str = "municipality"
    project: str = DEFAULT_PROJECT


@dataclass(frozen=True)
class ServiceLimits:
    """Resource limits of each job's worker.

    Attributes:
        timeout_s: Wall-clock seconds before a job is killed and failed.
        memory_mb: Address-space limit of the worker process (MiB); on Spark, not of the
            JVM it starts first.
        max_attempts: Runs a job gets when the service restarts under it.
    """

    timeout_s: float = 600.0
    memory_mb: int = 4096
    max_attempts: int = 2


class EnclaveService:
    """Jobs, releases, policies, certification and audit over one store and one database.

    Its refusals speak to `reader`: the holder (its command line, the default) or an analyst
    of the HTTP service, who cannot run the holder's commands.
    """

    def __init__(
        self,
        *,
        store: Path,
        state: State,
        engine: Engine = "duckdb",
        default_policy: DisclosurePolicy | None = None,
        limits: ServiceLimits | None = None,
        reader: Reader = "holder",
    ) -> None:
        self.store_root = Path(store)
        self.reader: Reader = reader
        self.state = state
        self.engine: Engine = engine
        self.limits = limits or ServiceLimits()
        self.audit = AuditLog(state)
        self.book = JobBook(state, store=self.store_root)
        self.diagnostics = JobDiagnostics(state)
        self.policies = Policies(state, default=default_policy)
        self.submissions = Submissions(state)
        self.catalogue = Catalogue(self.submissions)
        with state.lock:
            self.ledger = PrivacyLedger(state.engine)

    @property
    def store(self) -> Store:
        """The store the jobs run on."""
        return Store(self.store_root)

    def levels(self) -> list[str]:
        """Area levels with an allocation in the store."""
        return self.store.area_levels()

    def set_budget(
        self, *, analyst: str, project: str, epsilon: float, delta: float, steward: str
    ) -> tuple[float, float]:
        """Set an analyst's project budget (audited); return what is left of it."""
        with self.state.lock:
            left = self.ledger.set_budget(
                analyst=analyst,
                project=project,
                epsilon=epsilon,
                delta=delta,
                by=steward,
                role=LedgerRole.STEWARD,
            )
        with self.state.write() as conn:
            append_entry(
                conn,
                actor=steward,
                action="budget.set",
                target=f"user:{analyst}",
                details={"project": project, "epsilon": epsilon, "delta": delta},
            )
        return left.epsilon, left.delta

    def set_total_budget(self, *, epsilon: float, delta: float, steward: str) -> Standing:
        """Set the store-wide budget of all analysts together (audited); return it."""
        with self.state.lock:
            total = self.ledger.set_total(
                epsilon=epsilon, delta=delta, by=steward, role=LedgerRole.STEWARD
            )
        with self.state.write() as conn:
            append_entry(
                conn,
                actor=steward,
                action="budget.total_set",
                target="store",
                details={"epsilon": epsilon, "delta": delta},
            )
        return total

    def total_budget(self) -> Standing | None:
        """The store-wide budget with what is left of it, None where none is set."""
        return self.ledger.total()

    def budget_left(self, *, analyst: str, project: str) -> tuple[float, float]:
        """(epsilon, delta) `analyst` may still spend in `project`."""
        left = self.ledger.remaining(analyst=analyst, project=project)
        return left.epsilon, left.delta

    def budget_standings(self, *, analyst: str | None = None) -> list[Standing]:
        """Every budget a steward set (or `analyst`'s, spent or not), with what is left."""
        return self.ledger.standings(analyst=analyst)

    def charge(self, job: Job) -> Charge | None:
        """Charge a job's privacy loss before it is computed (idempotent per job id).

        Raises:
            DisclosureError: no budget set, or not enough left.
        """
        if job.epsilon <= 0:
            return None
        with self.state.lock:
            receipt = self.ledger.charge(
                job_id=job.id,
                analyst=job.analyst,
                project=job.project,
                epsilon=job.epsilon,
                delta=job.delta,
            )
        self.audit.append(
            actor="service",
            action="budget.charged",
            target=f"job:{job.id}",
            details={
                "epsilon": receipt.epsilon,
                "delta": receipt.delta,
                "project": job.project,
                "analyst": job.analyst,
            },
        )
        return receipt

    def prepare(self, *, analyst: str, request: JobRequest) -> NewJob:
        """Validate a request into a job: algorithm allowed, parameters valid, store able.

        The store's layout is checked here (`compute.check_job`), before any charge, so a job
        it cannot serve is refused at no cost. The store's days are listed once, each day's
        file looked at once (`Store.day_files`), for the checks, the period and the request.
        """
        _check_account(analyst=analyst, project=request.project)
        entry = self.catalogue.get(request.algorithm)
        policy = self.policies.for_algorithm(entry.name)
        if entry.certification not in policy.allowed_certifications:
            raise CellcensusError(
                f"algorithm {entry.name!r} is {entry.certification}, not certified; only "
                f"{', '.join(policy.allowed_certifications)} algorithms may run"
            )
        parameters = self.catalogue.normalize(entry, request.parameters)
        store = self.store
        files = store.day_files()
        days = list(files)
        check_job(
            store,
            _built_in(entry),
            parameters=parameters,
            level=request.level,
            reader=self.reader,
            days=days,
        )
        start, end = job_period(store, parameters, days=days)
        return NewJob(
            analyst=analyst,
            project=request.project,
            algorithm=entry.name,
            version=entry.version,
            code_hash=entry.code_hash,
            level=request.level,
            parameters=parameters,
            policy=policy.to_dict(),
            epsilon=policy.epsilon,
            delta=policy.delta,
            period=(start, end),
            days=days_read({day: files[day] for day in days if start <= day <= end}),
        )

    def submit(self, *, analyst: str, request: JobRequest) -> Submission:
        """Validate and queue a job (or reuse an identical one); refusals are audited."""
        try:
            new = self.prepare(analyst=analyst, request=request)
        except CellcensusError as error:
            self.audit_refusal(analyst=analyst, algorithm=request.algorithm, reason=str(error))
            raise
        return self.enqueue(new)

    def audit_refusal(self, *, analyst: str, algorithm: str, reason: str, **details: str) -> None:
        """Record a refused submission as ``job.refused``, with why.

        As an analyst is told it: where the holder keeps the store is not for auditors.
        """
        said = without_store_path(reason, self.store_root)
        self.audit.append(
            actor=analyst[:ACCOUNT_LENGTH],
            action="job.refused",
            target=f"algorithm:{algorithm[:64]}",
            details={"reason": said[:500], **details},
        )

    @property
    def _store_word(self) -> str:
        """The store in a command: as the holder can paste it, or STORE for an analyst."""
        return shlex.quote(str(self.store_root)) if self.reader == "holder" else "STORE"

    def enqueue(self, new: NewJob) -> Submission:
        """Queue a prepared job, refusing early (audited) when its budget is already spent.

        Both the CLI (`submit`) and the API (after its scope and quota checks) come here, so
        a refusal for budget is recorded whichever way the job was asked for.
        """
        if new.epsilon > 0 and self.book.reusable(new.request_hash()) is None:
            refusal = self._early_refusal(new)
            if refusal is not None:
                self.audit_refusal(
                    analyst=new.analyst,
                    algorithm=new.algorithm,
                    reason=str(refusal),
                    level=new.level,
                    project=new.project,
                )
                raise refusal
        return self.book.submit(new)

    def _early_refusal(self, new: NewJob) -> DisclosureError | None:
        """Why the analyst's budget, or the store-wide one, cannot pay for `new` (else None)."""
        left = self.ledger.remaining(analyst=new.analyst, project=new.project)
        if not left.covers(epsilon=new.epsilon, delta=new.delta):
            return self._budget_refusal(new, left)
        total = self.ledger.total()
        if total is None or total.left.covers(epsilon=new.epsilon, delta=new.delta):
            return None
        return DisclosureError(
            f"the store-wide privacy budget is exhausted: this release costs epsilon "
            f"{new.epsilon:g}, delta {new.delta:g}; epsilon "
            f"{amount_left(total.left.epsilon, new.epsilon)}, delta "
            f"{amount_left(total.left.delta, new.delta)} left of epsilon "
            f"{total.total.epsilon:g}, delta {total.total.delta:g} for all analysts together "
            "(releases of several analysts are of the same people); only the steward can "
            "raise it (PUT /budgets/total)"
        )

    def _budget_refusal(self, new: NewJob, left: Budget) -> DisclosureError:
        """Why `left` does not pay for `new`, and what the analyst or the steward can do."""
        total = self.ledger.budget(analyst=new.analyst, project=new.project)
        if total is None:
            return self._no_budget(new)
        # A budget set again replaces the totals, spent stays spent: name totals that pay.
        delta = max(total.delta, total.delta - left.delta + new.delta)
        if left.covers(epsilon=new.epsilon, delta=0.0):  # the ledger's rule, epsilon alone
            # Only delta is short: typically a budget set without --delta (it defaults to 0)
            # and a release with Gaussian noise, which needs some.
            return DisclosureError(
                f"this release needs delta {new.delta:g} and project {new.project!r} has "
                f"delta {amount_left(left.delta, new.delta)} left of {total.delta:g} (epsilon "
                f"is enough); the steward grants delta with `cellcensus users budget "
                f"{new.analyst} --project {new.project} --epsilon {total.epsilon:g} "
                f"--delta {delta:g} --store {self._store_word}` "
                f"(or PUT /users/{new.analyst}/budget)"
            )
        # Up to a millionth, rounded up: printed shorter, it must still pay.
        epsilon = math.ceil((total.epsilon - left.epsilon + new.epsilon) * 1e6 - 1e-6) / 1e6
        return DisclosureError(
            f"privacy budget of project {new.project!r} exhausted: this release costs "
            f"epsilon {new.epsilon:g}, delta {new.delta:g}; "
            f"epsilon {amount_left(left.epsilon, new.epsilon)}, "
            f"delta {amount_left(left.delta, new.delta)} left; the steward grants more with "
            f"`cellcensus users budget {new.analyst} --project {new.project} --epsilon "
            f"{epsilon:g} --delta {delta:g} --store {self._store_word}` "
            f"(or PUT /users/{new.analyst}/budget)"
        )

    def _no_budget(self, new: NewJob) -> DisclosureError:
        """The refusal of a job in a project where the analyst has no budget at all."""
        others = self.ledger.projects(analyst=new.analyst)
        if others:
            return DisclosureError(
                f"no privacy budget for project {new.project!r}; you have budgets in: "
                f"{', '.join(others)} (submit to one of them, or ask the steward for a "
                f"budget in {new.project!r})"
            )
        return DisclosureError(
            f"no privacy budget for project {new.project!r}, nor in any other project: ask "
            f"the steward for one (`cellcensus users budget {new.analyst} --project "
            f"{new.project} --epsilon E --delta D --store {self._store_word}`)"
        )

    def worker_spec(self, job: Job, *, charge: Charge | None) -> dict[str, Any]:
        """Everything a worker subprocess needs to compute `job` (no database access)."""
        entry = self.catalogue.get(job.algorithm)
        if (entry.version, entry.code_hash) != (job.version, job.code_hash):
            raise CellcensusError(
                f"algorithm {job.algorithm} changed since the job was submitted "
                f"(now {entry.version}); resubmit"
            )
        source = manifest = None
        if entry.submission_id is not None:
            source = self.submissions.source(entry.submission_id)
            manifest = self.submissions.manifest(entry.submission_id).to_dict()
        return {
            "kind": "job",
            "job_id": job.id,
            "store": str(self.store_root.absolute()),  # the worker works in another folder
            "engine": self.engine,
            "algorithm": job.algorithm,
            "version": job.version,
            "code_hash": job.code_hash,
            "source": source,
            "manifest": manifest,
            "level": job.level,
            "parameters": job.parameters,
            "policy": job.policy,
            "charge": None if charge is None else _charge_dict(charge),
            "memory_mb": self.limits.memory_mb,
            "timeout_s": self.limits.timeout_s,
            "reader": self.reader,
        }

    def computed(self, job: Job, release_body: str) -> None:
        """A worker produced `job`'s checked output: release it or hold it for the steward."""
        if job.policy.get("require_approval"):
            self.book.hold_for_approval(job.id, release_body)
            return
        self._release(job, body=release_body, from_status=JobStatus.RUNNING, actor="service")

    def decide(self, job_id: str, *, steward: str, approve: bool, reason: str) -> Job:
        """The steward approves (releases) or rejects a held release."""
        job = self.book.get(job_id)
        if job is None or job.status is not JobStatus.AWAITING_APPROVAL:
            raise CellcensusError(f"job {job_id} is not awaiting approval")
        if approve:
            self._release(
                job,
                body=None,
                from_status=JobStatus.AWAITING_APPROVAL,
                actor=steward,
                reason=reason,
            )
        else:
            self.book.reject(job_id, steward=steward, reason=reason)
        found = self.book.get(job_id)
        assert found is not None
        return found

    def _release(
        self, job: Job, *, body: str | None, from_status: JobStatus, actor: str, reason: str = ""
    ) -> None:
        """Write the release and mark the job released, in one transaction."""
        text = body if body is not None else self.book.release_body(job.id)
        if text is None:
            raise CellcensusError(f"job {job.id} has no computed output to release")
        release = Release.from_json(text)
        details = {
            "epsilon": job.epsilon,
            "delta": job.delta,
            "n_keys": len(release.table),
            "n_suppressed": release.n_suppressed,
            "reason": reason,
        }
        self.book.finish_release(
            job.id,
            release_body=body,
            from_status=from_status,
            actor=actor,
            details=details,
            decision_reason=reason or None,
        )

    def release_of(self, job: Job) -> str:
        """The released JSON of a released job (cached jobs share the original's)."""
        if job.status is not JobStatus.RELEASED or job.release_id is None:
            raise CellcensusError(f"job {job.id} is {job.status.value}; nothing is released")
        body = self.book.release_body(job.release_id)
        if body is None:
            raise CellcensusError(f"release of job {job.id} is missing from the archive")
        return body

    def recover(self) -> list[str]:
        """After a restart: re-queue or fail jobs that were interrupted."""
        return self.book.recover(max_attempts=self.limits.max_attempts)

    def run_inline(self, *, analyst: str, request: JobRequest) -> Release:
        """Submit and compute in this process (the embedded default), recording everything.

        Raises:
            CellcensusError: refused request, failed computation, or a release held for
                the steward's approval.
        """
        submission = self.submit(analyst=analyst, request=request)
        job = submission.job
        if job.status is JobStatus.RELEASED:
            return Release.from_json(self.release_of(job))
        if job.cached_from is not None:
            raise CellcensusError(
                f"an identical job {job.cached_from} is in progress; its release will be yours"
            )
        claimed = self.book.claim(job.id)
        if claimed is None:
            if job.status is JobStatus.AWAITING_APPROVAL:
                raise CellcensusError(_held(job.id, identical=True))
            raise CellcensusError(f"an identical job {job.id} is already {job.status.value}")
        # Charged before the events are read and never refunded: what fails from here on
        # may depend on the data (what the store's layout refuses was refused in `prepare`,
        # an engine that cannot start is refused here).
        try:
            start(self.engine)
            charge = self.charge(claimed)
        except Exception as error:
            self.book.fail(claimed.id, error=str(error))
            raise
        release = self._compute_inline(claimed, charge)
        self.computed(claimed, release.to_json())
        return self._released_or_raise(claimed.id, release)

    def _compute_inline(self, job: Job, charge: Charge | None) -> Release:
        entry = self.catalogue.get(job.algorithm)
        if entry.submission_id is not None:
            return self._compute_in_worker(job, charge)
        try:
            return compute_release(
                store=self.store_root,
                algorithm=self.catalogue.load(entry),
                parameters=job.parameters,
                level=job.level,
                policy=disclosure_policy(job.policy["disclosure"]),
                engine=self.engine,
                job_id=job.id,
                charge=charge,
                progress=lambda stage: self.book.set_stage(job.id, stage),
                reader=self.reader,
            )
        except CellcensusError as error:
            self.book.fail(job.id, error=str(error))
            raise
        except Exception:
            # An engine's own message may quote what it read: the analyst gets the worker's
            # fixed text, the steward the traceback (job diagnostics, not the audit log).
            from cellcensus.holder.enclave.worker import DETAIL_CHARS, INTERNAL_ERROR

            self.book.fail(
                job.id, error=INTERNAL_ERROR, detail=traceback.format_exc()[-DETAIL_CHARS:]
            )
            raise

    def _compute_in_worker(self, job: Job, charge: Charge | None) -> Release:
        """Compute a job of submitted code in a worker subprocess, as the pool does.

        Submitted code never runs in this process (nor in the worker: `enclave.confined`).
        """
        # Imported here: the package imports this module, and `python -m ...worker` must
        # find the worker not yet imported.
        from cellcensus.holder.enclave.worker import run_in_subprocess

        try:
            spec = self.worker_spec(job, charge=charge)
        except CellcensusError as error:
            self.book.fail(job.id, error=str(error))
            raise
        outcome = run_in_subprocess(
            spec,
            timeout_s=self.limits.timeout_s,
            on_stage=lambda stage: self.book.set_stage(job.id, stage),
        )
        if outcome.result is None or "release" not in outcome.result:
            reason = outcome.error or "no release"
            self.book.fail(job.id, error=reason, detail=outcome.detail)
            raise CellcensusError(reason)
        return Release.from_json(outcome.result["release"])

    def _released_or_raise(self, job_id: str, release: Release) -> Release:
        final = self.book.get(job_id)
        assert final is not None
        if final.status is JobStatus.RELEASED:
            return release
        if final.status is JobStatus.AWAITING_APPROVAL:
            raise CellcensusError(_held(job_id, identical=False))
        raise CellcensusError(f"job {job_id} {final.status.value}: {final.error}")


def _held(job_id: str, *, identical: bool) -> str:
    """What the holder of a release held for approval does to get it."""
    which = "an identical job" if identical else "job"
    return (
        f"{which} {job_id} is held for the steward's approval (the policy requires it): a "
        f"steward decides in the service's portal (/portal/) or with POST /approvals/{job_id}; "
        "once approved, run it again to write the release, at no further privacy cost"
    )


def _built_in(entry: CatalogueEntry) -> Algorithm | None:
    """The code of a built-in entry; None for a submission (its code runs in workers only)."""
    return get_algorithm(entry.name) if entry.submission_id is None else None


def policy_of(job: Job) -> ReleasePolicy:
    """The release policy recorded with `job`."""
    return ReleasePolicy.from_dict(job.policy)


def _charge_dict(charge: Charge) -> dict[str, Any]:
    return {
        "job_id": charge.job_id,
        "analyst": charge.analyst,
        "project": charge.project,
        "epsilon": charge.epsilon,
        "delta": charge.delta,
        "charged_at": charge.charged_at.isoformat(),
    }


def charge_from_dict(values: dict[str, Any]) -> Charge:
    """The ledger receipt a worker receives in its spec."""
    return Charge(**{**values, "charged_at": dt.datetime.fromisoformat(values["charged_at"])})


def days_read(files: Mapping[dt.date, os.stat_result]) -> str:
    """The stored days a job reads, as runs, and which file each one's events are in now.

    `files` are those days' files' status, in order (`Store.day_files`). A delivery of days
    the store holds replaces their files: the same days, other events. Each file is known by
    its size and time of change, read from the file system only (a damaged file fails its job
    when read, naming it, as before).
    """
    known = ";".join(
        f"{day}:{status.st_size}:{status.st_mtime_ns}" for day, status in files.items()
    )
    return f"{date_runs(list(files))} ({hashlib.sha256(known.encode()).hexdigest()[:16]})"
