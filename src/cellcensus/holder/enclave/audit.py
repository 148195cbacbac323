"""The append-only, hash-chained audit log.

Each entry carries the hash of the previous one, and its own hash covers its sequence number,
time, actor, action, target, details and that previous hash. Editing, removing or reordering
any entry breaks the chain from that entry on; `verify` names the first bad one. Removing the
*last* entries leaves a shorter valid chain, so the current head (sequence and hash) is
published on the transparency log: anyone who kept it can check it with `verify(head=...)`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from cellcensus.holder.enclave.state import State, audit, now

GENESIS = "0" * 64
AUDIT_LOCK_KEY = 0x63656E73  # PostgreSQL advisory lock serialising appends ("cens")


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log."""

    seq: int
    at: str
    actor: str
    action: str
    target: str
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        """The entry as JSON-ready data."""
        return {
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "details": self.details,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True)
class AuditVerdict:
    """The outcome of checking the chain.

    Attributes:
        ok: Whether every entry checks.
        entries: Number of entries read.
        first_bad: Sequence number of the first entry that does not check, if any.
        reason: What is wrong with it (empty when ok).
        head: Sequence number and hash of the last entry ("0", genesis, when empty).
    """

    ok: bool
    entries: int
    first_bad: int | None
    reason: str
    head: tuple[int, str]


def entry_hash(
    *,
    seq: int,
    at: str,
    actor: str,
    action: str,
    target: str,
    details: dict[str, Any],
    prev_hash: str,
) -> str:
    """SHA-256 of the entry's canonical JSON (sorted keys, no spaces)."""
    body = {
        "seq": seq,
        "at": at,
        "actor": actor,
        "action": action,
        "target": target,
        "details": details,
        "prev_hash": prev_hash,
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class AuditLog:
    """Appends to and checks the audit chain kept in the state database."""

    def __init__(self, state: State) -> None:
        self.state = state

    def append(
        self, *, actor: str, action: str, target: str = "", details: dict[str, Any] | None = None
    ) -> AuditEntry:
        """Add one entry at the end of the chain (never updates or deletes)."""
        with self.state.write() as conn:
            return append_entry(
                conn, actor=actor, action=action, target=target, details=details or {}
            )

    def entries(self, *, after: int = 0, limit: int = 1000) -> list[AuditEntry]:
        """Entries with sequence number above `after`, oldest first."""
        query = sa.select(audit).where(audit.c.seq > after).order_by(audit.c.seq).limit(limit)
        with self.state.read() as conn:
            return [AuditEntry(**row._mapping) for row in conn.execute(query)]

    def head(self) -> tuple[int, str]:
        """Sequence number and hash of the last entry."""
        with self.state.read() as conn:
            return _head(conn)

    def verify(self, *, head: tuple[int, str] | None = None) -> AuditVerdict:
        """Check the whole chain, and that it still contains a published `head`."""
        with self.state.read() as conn:
            rows = conn.execute(sa.select(audit).order_by(audit.c.seq))
            verdict = check_chain(AuditEntry(**row._mapping) for row in rows)
        if verdict.ok and head is not None:
            return _check_head(verdict, head, self)
        return verdict


def append_entry(
    conn: sa.Connection, *, actor: str, action: str, target: str, details: dict[str, Any]
) -> AuditEntry:
    """Append inside an open write transaction (so it commits with the change it records).

    Two processes on one database (the service and a ``cellcensus users ...`` command, or two
    services) append one after the other instead of both reading the same head: on PostgreSQL
    the transaction first takes an advisory lock held until it ends; on SQLite a `State.write`
    transaction began with ``BEGIN IMMEDIATE``, so it already holds the write lock. This
    process's writes are also serialised by `State.write`'s lock.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(AUDIT_LOCK_KEY)))
    last_seq, last_hash = _head(conn)
    fields: dict[str, Any] = {
        "seq": last_seq + 1,
        "at": now(),
        "actor": actor,
        "action": action,
        "target": target,
        "details": json.loads(json.dumps(details, default=str)),
        "prev_hash": last_hash,
    }
    entry = AuditEntry(**fields, hash=entry_hash(**fields))
    conn.execute(audit.insert().values(**entry.to_dict()))
    return entry


def _head(conn: sa.Connection) -> tuple[int, str]:
    row = conn.execute(
        sa.select(audit.c.seq, audit.c.hash).order_by(audit.c.seq.desc()).limit(1)
    ).first()
    return (0, GENESIS) if row is None else (int(row.seq), str(row.hash))


def check_chain(entries: Any) -> AuditVerdict:
    """Walk entries in stored order and report the first one that breaks the chain."""
    expected_seq, prev_hash, count = 1, GENESIS, 0
    for entry in entries:
        count += 1
        reason = _entry_fault(entry, expected_seq=expected_seq, prev_hash=prev_hash)
        if reason:
            return AuditVerdict(False, count, entry.seq, reason, (entry.seq, entry.hash))
        expected_seq, prev_hash = entry.seq + 1, entry.hash
    return AuditVerdict(True, count, None, "", (expected_seq - 1, prev_hash))


def _entry_fault(entry: AuditEntry, *, expected_seq: int, prev_hash: str) -> str:
    if entry.seq != expected_seq:
        return f"expected entry {expected_seq} here, found entry {entry.seq} (removed or reordered)"
    if entry.prev_hash != prev_hash:
        return "its prev_hash does not match the previous entry's hash (entry before it changed)"
    recomputed = entry_hash(
        seq=entry.seq,
        at=entry.at,
        actor=entry.actor,
        action=entry.action,
        target=entry.target,
        details=entry.details,
        prev_hash=entry.prev_hash,
    )
    if recomputed != entry.hash:
        return "its content does not match its hash (edited)"
    return ""


def _check_head(verdict: AuditVerdict, head: tuple[int, str], log: AuditLog) -> AuditVerdict:
    seq, expected = head
    found = log.entries(after=seq - 1, limit=1)
    if not found or found[0].seq != seq:
        reason = f"published head entry {seq} is missing (log truncated)"
        return AuditVerdict(False, verdict.entries, seq, reason, verdict.head)
    if found[0].hash != expected:
        reason = f"entry {seq} does not match the published head hash"
        return AuditVerdict(False, verdict.entries, seq, reason, verdict.head)
    return verdict
