"""Auditors' routes: read the audit log and check its hash chain."""

from __future__ import annotations

from fastapi import APIRouter, Query

from cellcensus.holder.api import schemas
from cellcensus.holder.api.deps import Context, Reader
from cellcensus.holder.api.problems import responses

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", response_model=schemas.AuditPage, responses=responses(401, 403, 422, 429))
def read_audit(
    ctx: Context,
    caller: Reader,
    after: int = Query(default=0, ge=0, le=2**53, description="Entries after this one."),
    limit: int = Query(default=500, ge=1, le=5000),
) -> schemas.AuditPage:
    """Audit entries in chain order, a page at a time, and where the chain ends."""
    entries = ctx.service.audit.entries(after=after, limit=limit)
    return schemas.AuditPage(
        entries=[schemas.AuditEntryOut(**entry.to_dict()) for entry in entries],
        next_after=entries[-1].seq if entries else after,
        head_seq=ctx.service.audit.head()[0],
    )


@router.get("/verify", response_model=schemas.AuditVerdictOut, responses=responses(401, 403, 429))
def verify_audit(ctx: Context, caller: Reader) -> schemas.AuditVerdictOut:
    """Recompute the hash chain and name the first bad entry, if any."""
    verdict = ctx.service.audit.verify()
    return schemas.AuditVerdictOut(
        ok=verdict.ok,
        entries=verdict.entries,
        first_bad=verdict.first_bad,
        reason=verdict.reason,
        head_seq=verdict.head[0],
        head_hash=verdict.head[1],
    )
