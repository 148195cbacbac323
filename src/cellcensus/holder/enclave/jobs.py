"""The job table: every job's life from submission to release, one database row each.

A job moves ``queued -> running -> releasing -> released``, or stops at ``failed`` or
``rejected``; a release that needs a steward waits at ``awaiting_approval``. A release is
written in the same transaction that marks its job ``released``, so a crash can never leave
half a release: on restart a ``running`` job is re-queued (or failed after too many attempts)
and a ``releasing`` job, whose budget may already be charged, is failed and never released.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from cellcensus.errors import CellcensusError
from cellcensus.holder.enclave.audit import append_entry
from cellcensus.holder.enclave.state import State, jobs, now, releases


class JobStatus(StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    RELEASING = "releasing"
    AWAITING_APPROVAL = "awaiting_approval"
    RELEASED = "released"
    FAILED = "failed"
    REJECTED = "rejected"


ACTIVE = (
    JobStatus.QUEUED,
    JobStatus.RUNNING,
    JobStatus.RELEASING,
    JobStatus.AWAITING_APPROVAL,
)


@dataclass(frozen=True)
class Job:
    """One row of the job table."""

    id: str
    analyst: str
    project: str
    algorithm: str
    version: str
    code_hash: str
    level: str
    parameters: dict[str, Any]
    policy: dict[str, Any]
    request_hash: str
    status: JobStatus
    stage: str
    attempts: int
    epsilon: float
    delta: float
    release_id: str | None
    cached_from: str | None
    error: str | None
    decided_by: str | None
    decision_reason: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None

    @classmethod
    def from_row(cls, row: sa.Row[Any]) -> Job:
        """Build from a `jobs` row."""
        values = dict(row._mapping)
        values["status"] = JobStatus(values["status"])
        return cls(**values)


@dataclass(frozen=True)
class NewJob:
    """What a submission fixes about a job before it runs."""

    analyst: str
    project: str
    algorithm: str
    version: str
    code_hash: str
    level: str
    parameters: dict[str, Any]
    policy: dict[str, Any]
    epsilon: float
    delta: float

    def request_hash(self) -> str:
        """Identical requests (same analyst, project, code, parameters, policy) share it."""
        body = {
            "analyst": self.analyst,
            "project": self.project,
            "algorithm": self.algorithm,
            "version": self.version,
            "code_hash": self.code_hash,
            "level": self.level,
            "parameters": self.parameters,
            "policy": self.policy,
        }
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Submission:
    """The outcome of a submission: the job, and whether it reused earlier work."""

    job: Job
    cached: bool
    reused: bool


class JobBook:
    """Reads and moves jobs in the state database; every move is audited in its transaction."""

    def __init__(self, state: State) -> None:
        self.state = state

    def get(self, job_id: str) -> Job | None:
        """The job with id `job_id`, if any."""
        with self.state.read() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
        return None if row is None else Job.from_row(row)

    def list(
        self, *, analyst: str | None = None, status: JobStatus | None = None, limit: int = 100
    ) -> list[Job]:
        """Jobs, newest first, optionally of one analyst or status."""
        query = sa.select(jobs).order_by(jobs.c.created_at.desc()).limit(limit)
        if analyst is not None:
            query = query.where(jobs.c.analyst == analyst)
        if status is not None:
            query = query.where(jobs.c.status == status.value)
        with self.state.read() as conn:
            return [Job.from_row(row) for row in conn.execute(query)]

    def count_since(self, *, analyst: str, since: str) -> int:
        """Jobs `analyst` submitted since the ISO time `since` (for daily quotas)."""
        query = sa.select(sa.func.count()).where(
            (jobs.c.analyst == analyst) & (jobs.c.created_at >= since)
        )
        with self.state.read() as conn:
            return int(conn.execute(query).scalar() or 0)

    def reusable(self, request_hash: str) -> Job | None:
        """An identical job in flight or released, whose work a new request would reuse."""
        with self.state.read() as conn:
            return _latest(conn, request_hash, (*ACTIVE, JobStatus.RELEASED))

    def submit(self, new: NewJob) -> Submission:
        """Queue a job, or reuse an identical one in flight, or reuse its cached release."""
        request_hash = new.request_hash()
        with self.state.write() as conn:
            active = _latest(conn, request_hash, ACTIVE)
            if active is not None:
                return Submission(job=active, cached=False, reused=True)
            done = _latest(conn, request_hash, (JobStatus.RELEASED,))
            job_id = uuid.uuid4().hex
            row = _new_row(job_id, new, request_hash)
            if done is not None:
                row.update(_cached_fields(done))
            conn.execute(jobs.insert().values(**row))
            action = "job.cached" if done is not None else "job.submitted"
            _audit_job(conn, new.analyst, action, job_id, _summary(row))
            job = Job.from_row(conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).one())
        return Submission(job=job, cached=done is not None, reused=False)

    def claim_next(self) -> Job | None:
        """Mark the oldest queued job running and return it (None when the queue is empty)."""
        with self.state.read() as conn:
            row = conn.execute(
                sa.select(jobs.c.id)
                .where(jobs.c.status == JobStatus.QUEUED.value)
                .order_by(jobs.c.created_at)
                .limit(1)
            ).first()
        return None if row is None else self.claim(str(row.id))

    def claim(self, job_id: str) -> Job | None:
        """Mark queued job `job_id` running (None if someone else took it first)."""
        with self.state.write() as conn:
            changed = _move(
                conn, job_id, (JobStatus.QUEUED,), JobStatus.RUNNING,
                stage="starting", started_at=now(), attempts=jobs.c.attempts + 1,
            )
            if not changed:
                return None
            _audit_job(conn, "service", "job.started", job_id, {})
            return Job.from_row(conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).one())

    def set_stage(self, job_id: str, stage: str) -> None:
        """Record progress of a running job (not audited: it is not a decision)."""
        with self.state.write() as conn:
            conn.execute(
                jobs.update()
                .where((jobs.c.id == job_id) & (jobs.c.status == JobStatus.RUNNING.value))
                .values(stage=stage[:100])
            )

    def hold_for_approval(self, job_id: str, release_body: str) -> bool:
        """Store the checked output unreleased and queue it for the steward."""
        with self.state.write() as conn:
            if not _move(conn, job_id, (JobStatus.RUNNING,), JobStatus.AWAITING_APPROVAL,
                         stage="awaiting steward approval"):
                return False
            _insert_release(conn, job_id, release_body)
            _audit_job(conn, "service", "job.awaiting_approval", job_id, {})
        return True

    def begin_release(self, job_id: str, *, from_status: JobStatus, actor: str) -> bool:
        """Mark the job `releasing` (committed before any budget is charged)."""
        with self.state.write() as conn:
            moved = _move(conn, job_id, (from_status,), JobStatus.RELEASING, stage="releasing")
            if moved:
                _audit_job(conn, actor, "job.releasing", job_id, {})
            return moved

    def finish_release(
        self, job_id: str, *, release_body: str | None, actor: str, details: dict[str, Any]
    ) -> None:
        """Write the release (if not held already) and mark the job released, atomically."""
        with self.state.write() as conn:
            if release_body is not None:
                _insert_release(conn, job_id, release_body)
            moved = _move(
                conn, job_id, (JobStatus.RELEASING,), JobStatus.RELEASED,
                stage="released", finished_at=now(), release_id=job_id,
            )
            if not moved:
                raise CellcensusError(f"job {job_id} is no longer releasing; nothing released")
            _audit_job(conn, actor, "job.released", job_id, details)

    def fail(self, job_id: str, *, error: str, detail: str = "", actor: str = "service") -> bool:
        """Mark an unfinished job failed with a reason the analyst may read."""
        with self.state.write() as conn:
            moved = _move(
                conn, job_id, ACTIVE, JobStatus.FAILED,
                stage="failed", error=error[:2000], finished_at=now(),
            )
            if moved:
                _audit_job(conn, actor, "job.failed", job_id, {"error": error, "detail": detail})
            return moved

    def reject(self, job_id: str, *, steward: str, reason: str) -> bool:
        """The steward refuses a held release: it is never released."""
        with self.state.write() as conn:
            moved = _move(
                conn, job_id, (JobStatus.AWAITING_APPROVAL,), JobStatus.REJECTED,
                stage="rejected by steward", decided_by=steward, decision_reason=reason,
                finished_at=now(),
            )
            if moved:
                _audit_job(conn, steward, "job.rejected", job_id, {"reason": reason})
            return moved

    def record_approval(self, job_id: str, *, steward: str, reason: str) -> None:
        """Note who approved a held release and why (before it is released)."""
        with self.state.write() as conn:
            conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id)
                .values(decided_by=steward, decision_reason=reason)
            )
            _audit_job(conn, steward, "job.approved", job_id, {"reason": reason})

    def release_body(self, release_id: str) -> str | None:
        """The stored release JSON (wire format), if any."""
        with self.state.read() as conn:
            return conn.execute(
                sa.select(releases.c.body).where(releases.c.id == release_id)
            ).scalar()

    def recover(self, *, max_attempts: int) -> list[str]:
        """After a restart: re-queue or fail interrupted jobs; never release them."""
        touched = []
        with self.state.write() as conn:
            stuck = conn.execute(
                sa.select(jobs.c.id, jobs.c.status, jobs.c.attempts).where(
                    jobs.c.status.in_([JobStatus.RUNNING.value, JobStatus.RELEASING.value])
                )
            ).all()
            for row in stuck:
                _recover_one(conn, row, max_attempts=max_attempts)
                touched.append(str(row.id))
        return touched


def _recover_one(conn: sa.Connection, row: sa.Row[Any], *, max_attempts: int) -> None:
    if row.status == JobStatus.RUNNING.value and row.attempts < max_attempts:
        _move(conn, row.id, (JobStatus.RUNNING,), JobStatus.QUEUED, stage="re-queued after restart")
        _audit_job(conn, "service", "job.requeued", row.id, {"attempts": row.attempts})
        return
    reason = (
        "interrupted while releasing (service restarted); nothing was released"
        if row.status == JobStatus.RELEASING.value
        else f"interrupted {row.attempts} times (service restarted); not retried again"
    )
    _move(conn, row.id, (JobStatus(row.status),), JobStatus.FAILED, stage="failed",
          error=reason, finished_at=now())
    _audit_job(conn, "service", "job.failed", row.id, {"error": reason})


def _latest(conn: sa.Connection, request_hash: str, statuses: tuple[JobStatus, ...]) -> Job | None:
    row = conn.execute(
        sa.select(jobs)
        .where((jobs.c.request_hash == request_hash) & jobs.c.status.in_([s.value for s in statuses]))
        .order_by(jobs.c.created_at)
        .limit(1)
    ).first()
    return None if row is None else Job.from_row(row)


def _new_row(job_id: str, new: NewJob, request_hash: str) -> dict[str, Any]:
    return {
        "id": job_id,
        "analyst": new.analyst,
        "project": new.project,
        "algorithm": new.algorithm,
        "version": new.version,
        "code_hash": new.code_hash,
        "level": new.level,
        "parameters": new.parameters,
        "policy": new.policy,
        "request_hash": request_hash,
        "status": JobStatus.QUEUED.value,
        "stage": "queued",
        "attempts": 0,
        "epsilon": new.epsilon,
        "delta": new.delta,
        "created_at": now(),
    }


def _cached_fields(done: Job) -> dict[str, Any]:
    return {
        "status": JobStatus.RELEASED.value,
        "stage": "released (cached)",
        "release_id": done.release_id,
        "cached_from": done.id,
        "epsilon": 0.0,
        "delta": 0.0,
        "finished_at": now(),
    }


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("algorithm", "version", "code_hash", "level", "project", "parameters", "epsilon",
            "delta", "cached_from")
    return {key: row.get(key) for key in keys}


def _move(
    conn: sa.Connection,
    job_id: str,
    from_statuses: tuple[JobStatus, ...],
    to_status: JobStatus,
    **values: Any,
) -> bool:
    result = conn.execute(
        jobs.update()
        .where((jobs.c.id == job_id) & jobs.c.status.in_([s.value for s in from_statuses]))
        .values(status=to_status.value, **values)
    )
    return result.rowcount == 1


def _insert_release(conn: sa.Connection, release_id: str, body: str) -> None:
    conn.execute(
        releases.insert().values(
            id=release_id,
            request_hash=conn.execute(
                sa.select(jobs.c.request_hash).where(jobs.c.id == release_id)
            ).scalar_one(),
            body=body,
            sha256=hashlib.sha256(body.encode()).hexdigest(),
            created_at=now(),
        )
    )


def _audit_job(
    conn: sa.Connection, actor: str, action: str, job_id: str, details: dict[str, Any]
) -> None:
    append_entry(conn, actor=actor, action=action, target=f"job:{job_id}", details=details)
