"""The job table: every job's life from submission to release, one database row each.

A job moves ``queued -> running -> released``, or stops at ``failed`` or ``rejected``; a
release that needs a steward waits at ``awaiting_approval``. A release is written in the same
transaction that marks its job ``released``, so a crash can never leave half a release: on
restart a ``running`` job is re-queued (or failed after too many attempts). Its privacy loss
was charged before it was computed, idempotently per job id, so a re-run spends nothing more.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from cellcensus.errors import CellcensusError
from cellcensus.holder.enclave.audit import append_entry
from cellcensus.holder.enclave.diagnostics import record
from cellcensus.holder.enclave.release_formats import release_formats
from cellcensus.holder.enclave.state import State, jobs, now, releases
from cellcensus.holder.store.layout import without_store_path


class JobStatus(StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    AWAITING_APPROVAL = "awaiting_approval"
    RELEASED = "released"
    FAILED = "failed"
    REJECTED = "rejected"


FINISHED = (JobStatus.RELEASED, JobStatus.FAILED, JobStatus.REJECTED)

ACTIVE = (
    JobStatus.QUEUED,
    JobStatus.RUNNING,
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
    formats: tuple[str, ...] = ()
    """The formats its release is served in (`release_formats`), stored with the release when
    it was made; empty until the job is released."""

    @classmethod
    def from_row(cls, row: sa.Row[Any]) -> Job:
        """Build from a row of `_select_jobs` (a `jobs` row and its release's formats)."""
        values = dict(row._mapping)
        values["status"] = JobStatus(values["status"])
        released = values["status"] is JobStatus.RELEASED
        values["formats"] = tuple(values.get("formats") or ()) if released else ()
        return cls(**values)


def _select_jobs() -> sa.Select[Any]:
    """Jobs with the formats of their release (none before it is theirs), no release body."""
    return sa.select(jobs, releases.c.formats).select_from(
        jobs.outerjoin(releases, jobs.c.release_id == releases.c.id)
    )


MAX_ERROR_CHARS = 2000
"""The most of a failure's or a rejection's reason a job keeps as its `Job.error`."""


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
    period: tuple[dt.date, dt.date]
    """The first and last day it reads (`compute.job_period`), which scopes are judged by."""
    days: str = ""

    def request_hash(self) -> str:
        """Identical requests (same code, parameters, level, policy and days read) share it.

        Neither the analyst nor the project is part of it: a release, once out, is shared
        with whoever asks the identical question. Computing it again would draw fresh noise,
        and two noisy answers to one question leak more than one. The stored days the job
        reads (`days`: as runs, and which file holds each day, `service.days_read`) are: a
        job without dates asked again after a new delivery asks of more days, and must not
        be served the release of fewer; nor one of days a delivery replaced since.
        """
        body = {
            "algorithm": self.algorithm,
            "version": self.version,
            "code_hash": self.code_hash,
            "level": self.level,
            "parameters": self.parameters,
            "policy": self.policy,
            "days": self.days,
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

    def __init__(self, state: State, *, store: Path, cache_size: int = 1024) -> None:
        """Jobs in `state`; a failure's reason names the `store`'s folder ``STORE``."""
        self.state = state
        self.store = store
        self.cache_size = cache_size
        # Finished jobs and releases never change: fetching a cached result needs no query.
        self._finished: dict[str, Job] = {}
        self._bodies: dict[str, str] = {}

    def get(self, job_id: str) -> Job | None:
        """The job with id `job_id`, if any."""
        if job_id in self._finished:
            return self._finished[job_id]
        with self.state.read() as conn:
            row = conn.execute(_select_jobs().where(jobs.c.id == job_id)).first()
        if row is None:
            return None
        job = Job.from_row(row)
        if job.status in FINISHED:
            _remember(self._finished, job_id, job, self.cache_size)
        return job

    def recent(
        self,
        *,
        analyst: str | None = None,
        status: JobStatus | None = None,
        limit: int = 100,
        before: Job | None = None,
    ) -> list[Job]:
        """Jobs, newest first, optionally of one analyst or status, and submitted `before` one.

        Newest first is by submission time, then by id (descending) between jobs submitted
        in the same microsecond: a total order, so pages that follow one another from their
        last job (`before`) neither repeat nor skip a job, whatever is submitted meanwhile.
        """
        query = _select_jobs().order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit)
        if before is not None:
            query = query.where(
                (jobs.c.created_at < before.created_at)
                | ((jobs.c.created_at == before.created_at) & (jobs.c.id < before.id))
            )
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
        """Queue a job, or reuse identical work: in flight (followed) or released (cached).

        The same analyst's identical job in flight is returned as is. Another analyst's
        becomes the leader of a new *follower* job, released together with it.
        """
        request_hash = new.request_hash()
        with self.state.write() as conn:
            mine = _latest(conn, request_hash, ACTIVE, analyst=new.analyst)
            if mine is not None:
                return Submission(job=mine, cached=False, reused=True)
            leader = _latest(conn, request_hash, ACTIVE, leaders_only=True)
            done = _latest(conn, request_hash, (JobStatus.RELEASED,))
            job_id = uuid.uuid4().hex
            row = _new_row(job_id, new, request_hash)
            if done is not None:
                row.update(_cached_fields(done))
            elif leader is not None:
                row.update(_follower_fields(leader))
            conn.execute(jobs.insert().values(**row))
            action = "job.submitted" if row["cached_from"] is None else "job.cached"
            _audit_job(conn, new.analyst, action, job_id, _summary(row))
            job = Job.from_row(conn.execute(_select_jobs().where(jobs.c.id == job_id)).one())
        return Submission(job=job, cached=done is not None, reused=leader is not None)

    def claim_next(self) -> Job | None:
        """Mark the oldest queued job running and return it (None when the queue is empty)."""
        with self.state.read() as conn:
            row = conn.execute(
                sa.select(jobs.c.id)
                .where((jobs.c.status == JobStatus.QUEUED.value) & jobs.c.cached_from.is_(None))
                .order_by(jobs.c.created_at)
                .limit(1)
            ).first()
        return None if row is None else self.claim(str(row.id))

    def claim(self, job_id: str) -> Job | None:
        """Mark queued job `job_id` running (None if someone else took it first)."""
        with self.state.write() as conn:
            changed = _move(
                conn,
                job_id,
                (JobStatus.QUEUED,),
                JobStatus.RUNNING,
                stage="starting",
                started_at=now(),
                attempts=jobs.c.attempts + 1,
            )
            if not changed:
                return None
            _audit_job(conn, "service", "job.started", job_id, {})
            return Job.from_row(conn.execute(_select_jobs().where(jobs.c.id == job_id)).one())

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
            if not _move(
                conn,
                job_id,
                (JobStatus.RUNNING,),
                JobStatus.AWAITING_APPROVAL,
                stage="awaiting steward approval",
            ):
                return False
            _insert_release(conn, job_id, release_body)
            _audit_job(conn, "service", "job.awaiting_approval", job_id, {})
        return True

    def finish_release(
        self,
        job_id: str,
        *,
        release_body: str | None,
        from_status: JobStatus,
        actor: str,
        details: dict[str, Any],
        decision_reason: str | None = None,
    ) -> None:
        """Write the release (if not held already) and mark the job released, atomically."""
        decided = (
            {"decided_by": actor, "decision_reason": decision_reason} if decision_reason else {}
        )
        with self.state.write() as conn:
            moved = _move(
                conn,
                job_id,
                (from_status,),
                JobStatus.RELEASED,
                stage="released",
                finished_at=now(),
                release_id=job_id,
                **decided,
            )
            if not moved:
                raise CellcensusError(
                    f"job {job_id} is no longer {from_status.value}; not released"
                )
            if release_body is not None:
                _insert_release(conn, job_id, release_body)
            _audit_job(conn, actor, "job.released", job_id, details)
            _settle_followers(
                conn,
                job_id,
                JobStatus.RELEASED,
                release_id=job_id,
                stage="released (identical job)",
            )

    def fail(self, job_id: str, *, error: str, detail: str = "", actor: str = "service") -> bool:
        """Mark an unfinished job failed with a reason the analyst may read.

        `detail` (a traceback, a stderr tail) goes to the steward's diagnostics, not the audit.
        Where the holder keeps the store is not for analysts or auditors: the reason, recorded
        in the job and its audit entry, says ``STORE``.
        """
        error = without_store_path(error, self.store)
        with self.state.write() as conn:
            moved = _move(
                conn,
                job_id,
                ACTIVE,
                JobStatus.FAILED,
                stage="failed",
                error=error[:MAX_ERROR_CHARS],
                finished_at=now(),
            )
            if moved:
                _audit_job(conn, actor, "job.failed", job_id, _failure(conn, job_id, error, detail))
                _settle_followers(
                    conn,
                    job_id,
                    JobStatus.FAILED,
                    stage="failed",
                    error=f"identical job {job_id} failed: {error}"[:MAX_ERROR_CHARS],
                )
            return moved

    def reject(self, job_id: str, *, steward: str, reason: str) -> bool:
        """The steward refuses a held release: it is never released.

        The reason becomes the job's error: its analyst was charged and reads why.
        """
        error = f"the data steward rejected the release: {reason}"[:MAX_ERROR_CHARS]
        with self.state.write() as conn:
            moved = _move(
                conn,
                job_id,
                (JobStatus.AWAITING_APPROVAL,),
                JobStatus.REJECTED,
                stage="rejected by steward",
                decided_by=steward,
                decision_reason=reason,
                error=error,
                finished_at=now(),
            )
            if moved:
                _audit_job(conn, steward, "job.rejected", job_id, {"reason": reason})
                _settle_followers(
                    conn,
                    job_id,
                    JobStatus.REJECTED,
                    stage="rejected by steward",
                    decision_reason=reason,
                    error=error,
                )
            return moved

    def release_body(self, release_id: str) -> str | None:
        """The stored release JSON (wire format), if any."""
        if release_id in self._bodies:
            return self._bodies[release_id]
        with self.state.read() as conn:
            body = conn.execute(
                sa.select(releases.c.body).where(releases.c.id == release_id)
            ).scalar()
        if body is not None:
            _remember(self._bodies, release_id, str(body), self.cache_size)
        return None if body is None else str(body)

    def recover(self, *, max_attempts: int) -> list[str]:
        """After a restart: re-queue or fail interrupted jobs; never release them."""
        touched = []
        with self.state.write() as conn:
            stuck = conn.execute(
                sa.select(jobs.c.id, jobs.c.status, jobs.c.attempts).where(
                    jobs.c.status == JobStatus.RUNNING.value
                )
            ).all()
            for row in stuck:
                _recover_one(conn, row, max_attempts=max_attempts)
                touched.append(str(row.id))
        return touched


def _remember(cache: dict[str, Any], key: str, value: Any, size: int) -> None:
    if len(cache) >= size:
        cache.pop(next(iter(cache)))  # oldest first (dicts keep insertion order)
    cache[key] = value


def _failure(conn: sa.Connection, job_id: str, error: str, detail: str) -> dict[str, Any]:
    """A ``job.failed`` entry's details: the analyst's reason and a commitment to `detail`."""
    if not detail:
        return {"error": error}
    return {"error": error, "detail_sha256": record(conn, job_id, detail)}


def _recover_one(conn: sa.Connection, row: Any, *, max_attempts: int) -> None:
    if row.attempts < max_attempts:
        _move(conn, row.id, (JobStatus.RUNNING,), JobStatus.QUEUED, stage="re-queued after restart")
        _audit_job(conn, "service", "job.requeued", row.id, {"attempts": row.attempts})
        return
    reason = f"interrupted {row.attempts} times (service restarted); not retried again"
    _move(
        conn,
        row.id,
        (JobStatus.RUNNING,),
        JobStatus.FAILED,
        stage="failed",
        error=reason,
        finished_at=now(),
    )
    _audit_job(conn, "service", "job.failed", row.id, {"error": reason})


def _latest(
    conn: sa.Connection,
    request_hash: str,
    statuses: tuple[JobStatus, ...],
    *,
    analyst: str | None = None,
    leaders_only: bool = False,
) -> Job | None:
    query = _select_jobs().where(
        (jobs.c.request_hash == request_hash) & jobs.c.status.in_([s.value for s in statuses])
    )
    if analyst is not None:
        query = query.where(jobs.c.analyst == analyst)
    if leaders_only:
        query = query.where(jobs.c.cached_from.is_(None))
    row = conn.execute(query.order_by(jobs.c.created_at).limit(1)).first()
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
        "cached_from": None,
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


def _follower_fields(leader: Job) -> dict[str, Any]:
    return {
        "stage": f"waiting for identical job {leader.id}",
        "cached_from": leader.id,
        "epsilon": 0.0,
        "delta": 0.0,
    }


def _settle_followers(
    conn: sa.Connection, leader_id: str, status: JobStatus, **values: Any
) -> None:
    """Followers of a job end as it ends: released with its release, or failed with it."""
    followers = conn.execute(
        sa.select(jobs.c.id, jobs.c.analyst).where(
            (jobs.c.cached_from == leader_id) & (jobs.c.status == JobStatus.QUEUED.value)
        )
    ).all()
    for follower in followers:
        _move(conn, follower.id, (JobStatus.QUEUED,), status, finished_at=now(), **values)
        _audit_job(conn, "service", f"job.{status.value}", follower.id, {"leader": leader_id})


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "algorithm",
        "version",
        "code_hash",
        "level",
        "project",
        "parameters",
        "epsilon",
        "delta",
        "cached_from",
    )
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
            formats=release_formats(body),
        )
    )


def _audit_job(
    conn: sa.Connection, actor: str, action: str, job_id: str, details: dict[str, Any]
) -> None:
    append_entry(conn, actor=actor, action=action, target=f"job:{job_id}", details=details)
