"""A failed job's diagnostics: a worker's traceback or the tail of a submitted module's stderr.

They may quote what the job read in the store (a pseudonym, a cell id, a row value), and a
submitted module can print such values on purpose. The audit log is read by auditors and,
append-only, can never be purged, so the detail is kept here, in a table only the steward
reads (``GET /jobs/{id}/diagnostics``, ``cellcensus audit diagnostics``), and the
``job.failed`` entry holds only ``detail_sha256``: SHA-256 of a random salt followed by the
detail. The chain thus commits to the detail without holding it, and without the salt (kept
here) nobody can test a guess of a short detail against the entry.

``cellcensus store purge`` deletes the diagnostics of every job that started before it: a job
may have read any stored day (a submitted module reads every day file, whatever its period).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from cellcensus.holder.enclave.state import State, audit, job_diagnostics, jobs, now


@dataclass(frozen=True)
class Diagnostics:
    """One failed job's detail and what its audit entry commits to."""

    job_id: str
    recorded_at: str
    detail: str
    salt: str
    sha256: str

    def matches(self, committed: object) -> bool:
        """Whether `committed` (an entry's ``detail_sha256``) is this detail's commitment."""
        return committed == commitment(self.salt, self.detail) == self.sha256


def commitment(salt: str, detail: str) -> str:
    """SHA-256 of the salt's bytes followed by the detail's UTF-8."""
    return hashlib.sha256(bytes.fromhex(salt) + detail.encode()).hexdigest()


def record(conn: sa.Connection, job_id: str, detail: str) -> str:
    """Store a failed job's detail in the open transaction; return its commitment."""
    salt = secrets.token_hex(32)
    digest = commitment(salt, detail)
    conn.execute(
        job_diagnostics.insert().values(
            job_id=job_id, recorded_at=now(), detail=detail, salt=salt, sha256=digest
        )
    )
    return digest


class JobDiagnostics:
    """Reads and purges the diagnostics table (the steward's side only)."""

    def __init__(self, state: State) -> None:
        self.state = state

    def get(self, job_id: str) -> Diagnostics | None:
        """The diagnostics of job `job_id`; None if it has none (or they were purged)."""
        query = sa.select(job_diagnostics).where(job_diagnostics.c.job_id == job_id)
        with self.state.read() as conn:
            row = conn.execute(query).first()
        return None if row is None else Diagnostics(**row._mapping)

    def purge(self, *, started_before: str, dry_run: bool = False) -> int:
        """Delete (or only count) the diagnostics of jobs started before an ISO UTC time."""
        older = sa.select(jobs.c.id).where(
            jobs.c.started_at.is_(None) | (jobs.c.started_at < started_before)
        )
        chosen = job_diagnostics.c.job_id.in_(older)
        if dry_run:
            with self.state.read() as conn:
                query = sa.select(sa.func.count()).select_from(job_diagnostics).where(chosen)
                return int(conn.execute(query).scalar() or 0)
        with self.state.write() as conn:
            if conn.dialect.name == "sqlite":
                # Zero the deleted rows' bytes: otherwise they stay in the file's free pages.
                conn.exec_driver_sql("PRAGMA secure_delete=ON")
            deleted = int(conn.execute(job_diagnostics.delete().where(chosen)).rowcount)
        _checkpoint(self.state)
        return deleted


def _checkpoint(state: State) -> None:
    """On SQLite, copy the WAL into the file and empty it: it holds the rows' old pages too.

    Best effort: pages a reader still uses stay in the WAL until its next checkpoint.
    """
    if state.engine.dialect.name == "sqlite":
        with state.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def committed(state: State, job_id: str) -> str | None:
    """The ``detail_sha256`` of job `job_id`'s ``job.failed`` audit entry, if any."""
    query = sa.select(audit.c.details).where(
        (audit.c.target == f"job:{job_id}") & (audit.c.action == "job.failed")
    )
    with state.read() as conn:
        details = conn.execute(query.order_by(audit.c.seq.desc()).limit(1)).scalar()
    return None if details is None else details.get("detail_sha256")
