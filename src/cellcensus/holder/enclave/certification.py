"""The certification workflow ("remote access"): analysts submit code, stewards certify it.

An analyst submits a Python module in the algorithm form; it is stored as ``draft`` with its
SHA-256. The steward runs the conformance suite on it inside the service (in a worker
subprocess); if it passes, the steward certifies that exact hash, and its manifest is recorded
(`manifests.RecordedManifest`). Jobs of a certified submission load the stored source only
after checking it still has the pinned hash, and only in a confined child of the worker
(`enclave.confined`): the worker protects the output with the recorded manifest, never with
the module's. Neither the service process nor the worker executes submitted code: the service
reads the name and version from the source's syntax tree.
"""

from __future__ import annotations

import ast
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from cellcensus.errors import CellcensusError
from cellcensus.holder.enclave.audit import append_entry
from cellcensus.holder.enclave.conformance import NAME_PATTERN, VERSION_PATTERN, source_hash
from cellcensus.holder.enclave.manifests import (
    BOUND_FOR_REFUSED,
    FINISH_REFUSED,
    RecordedManifest,
)
from cellcensus.holder.enclave.state import State, now, submissions


class SubmissionStatus(StrEnum):
    """Where a submitted module is in the workflow."""

    DRAFT = "draft"
    CONFORMANCE_PASSED = "conformance_passed"
    CONFORMANCE_FAILED = "conformance_failed"
    CERTIFIED = "certified"
    SUPERSEDED = "superseded"


@dataclass(frozen=True)
class AlgorithmSubmission:
    """A submitted module (its source is kept in the database, not shown here)."""

    id: str
    name: str
    version: str
    sha256: str
    status: SubmissionStatus
    report: dict[str, Any] | None
    submitted_by: str
    submitted_at: str
    certified_by: str | None
    certified_at: str | None

    @classmethod
    def from_row(cls, row: sa.Row[Any]) -> AlgorithmSubmission:
        """Build from a `submissions` row (ignores the source and manifest columns)."""
        values = {
            key: value for key, value in row._mapping.items() if key not in ("source", "manifest")
        }
        values["status"] = SubmissionStatus(values["status"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the API."""
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "status": self.status.value,
            "report": self.report,
            "submitted_by": self.submitted_by,
            "submitted_at": self.submitted_at,
            "certified_by": self.certified_by,
            "certified_at": self.certified_at,
        }


_VERSION_LENGTH = 32  # width of submissions.version and jobs.version: PostgreSQL enforces it


def declared_manifest(source: str) -> tuple[str, str]:
    """Name and version from the source's ``Manifest(name=..., version=...)`` literal.

    Raises:
        CellcensusError: a syntax error (with its line), no literal name and version, or a
            finish step or callable bound (`refuse_declared_code`).
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise CellcensusError(f"source: syntax error at line {error.lineno}: {error.msg}") from None
    except (RecursionError, MemoryError):  # how Python's parser refuses too deep a nesting
        raise CellcensusError(
            "source: expressions nest too deeply for Python's parser; split them into steps"
        ) from None
    refuse_declared_code(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _called_name(node.func) == "Manifest":
            literal = {
                keyword.arg: keyword.value.value
                for keyword in node.keywords
                if isinstance(keyword.value, ast.Constant) and isinstance(keyword.value.value, str)
            }
            if "name" in literal and "version" in literal:
                return _checked(str(literal["name"]), str(literal["version"]))
    raise CellcensusError(
        "source: no Manifest(name='...', version='...') with literal strings found; "
        "follow the algorithm form of holder/algorithms/usual_residence.py"
    )


def refuse_declared_code(tree: ast.AST) -> None:
    """Refuse an ``Algorithm(finish=...)`` or ``Manifest(bound_for=...)`` in the source.

    Certification refuses them too, from what the conformance run saw (`manifests`): this
    only says so before the steward's run, for what the source spells out.
    """
    refused = {
        ("Algorithm", "finish"): FINISH_REFUSED,
        ("Manifest", "bound_for"): BOUND_FOR_REFUSED,
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                reason = refused.get((_called_name(node.func), str(keyword.arg)))
                if reason is not None:
                    raise CellcensusError(f"source: {reason}")


def _called_name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else ""


def _checked(name: str, version: str) -> tuple[str, str]:
    if not NAME_PATTERN.match(name):
        raise CellcensusError(f"source: algorithm name {name[:70]!r} must be lowercase a-z0-9_")
    if not VERSION_PATTERN.match(version) or len(version) > _VERSION_LENGTH:
        raise CellcensusError(
            f"source: version {version[:40]!r} must be MAJOR.MINOR.PATCH of at most "
            f"{_VERSION_LENGTH} characters"
        )
    return name, version


class Submissions:
    """Submitted modules in the state database."""

    def __init__(self, state: State) -> None:
        self.state = state

    def submit(self, *, source: str, analyst: str, reserved: set[str]) -> AlgorithmSubmission:
        """Store `source` as a draft; `reserved` names (built-ins) cannot be taken."""
        name, version = declared_manifest(source)
        if name in reserved:
            raise CellcensusError(f"algorithm name {name!r} is a built-in; choose another name")
        submission_id = uuid.uuid4().hex
        digest = source_hash(source)
        row = {
            "id": submission_id,
            "name": name,
            "version": version,
            "sha256": digest,
            "source": source,
            "status": SubmissionStatus.DRAFT.value,
            "submitted_by": analyst,
            "submitted_at": now(),
        }
        with self.state.write() as conn:
            conn.execute(submissions.insert().values(**row))
            append_entry(
                conn,
                actor=analyst,
                action="algorithm.submitted",
                target=f"submission:{submission_id}",
                details={"name": name, "version": version, "sha256": digest},
            )
        return self.get(submission_id)

    def get(self, submission_id: str) -> AlgorithmSubmission:
        """One submission, or a clear error."""
        with self.state.read() as conn:
            row = conn.execute(
                sa.select(submissions).where(submissions.c.id == submission_id)
            ).first()
        if row is None:
            raise LookupError(f"no algorithm submission {submission_id!r}")
        return AlgorithmSubmission.from_row(row)

    def source(self, submission_id: str) -> str:
        """The stored source of a submission."""
        with self.state.read() as conn:
            return str(
                conn.execute(
                    sa.select(submissions.c.source).where(submissions.c.id == submission_id)
                ).scalar_one()
            )

    def count_since(self, *, analyst: str, since: str) -> int:
        """Submissions of `analyst` since the ISO time `since` (for daily quotas)."""
        query = sa.select(sa.func.count()).where(
            (submissions.c.submitted_by == analyst) & (submissions.c.submitted_at >= since)
        )
        with self.state.read() as conn:
            return int(conn.execute(query).scalar() or 0)

    def recent(self, *, submitted_by: str | None = None) -> list[AlgorithmSubmission]:
        """Submissions, newest first, optionally of one analyst."""
        query = sa.select(submissions).order_by(submissions.c.submitted_at.desc())
        if submitted_by is not None:
            query = query.where(submissions.c.submitted_by == submitted_by)
        with self.state.read() as conn:
            return [AlgorithmSubmission.from_row(row) for row in conn.execute(query)]

    def certified(self) -> list[tuple[AlgorithmSubmission, str]]:
        """Certified submissions with their sources."""
        query = sa.select(submissions).where(
            submissions.c.status == SubmissionStatus.CERTIFIED.value
        )
        with self.state.read() as conn:
            rows = conn.execute(query).all()
        return [(AlgorithmSubmission.from_row(row), str(row.source)) for row in rows]

    def record_conformance(
        self, submission_id: str, *, report: dict[str, Any], steward: str
    ) -> AlgorithmSubmission:
        """Store the conformance report; the status says whether it passed."""
        current = self.get(submission_id)
        if current.status in (SubmissionStatus.CERTIFIED, SubmissionStatus.SUPERSEDED):
            raise CellcensusError(f"submission {submission_id} is already {current.status}")
        passed = bool(report.get("passed")) and report.get("sha256") == current.sha256
        status = (
            SubmissionStatus.CONFORMANCE_PASSED if passed else SubmissionStatus.CONFORMANCE_FAILED
        )
        with self.state.write() as conn:
            conn.execute(
                submissions.update()
                .where(submissions.c.id == submission_id)
                .values(status=status.value, report=report)
            )
            append_entry(
                conn,
                actor=steward,
                action="algorithm.conformance",
                target=f"submission:{submission_id}",
                details={"passed": passed, "sha256": current.sha256},
            )
        return self.get(submission_id)

    def manifest(self, submission_id: str) -> RecordedManifest:
        """The manifest that protects the output of a certified submission's jobs.

        Submissions certified before manifests were recorded fall back on their conformance
        report's, checked the same way.
        """
        with self.state.read() as conn:
            row = conn.execute(
                sa.select(submissions).where(submissions.c.id == submission_id)
            ).one()
        described = row.manifest
        if described is None:
            described = (row.report or {}).get("manifest")
        return RecordedManifest.from_dict(described, name=row.name, version=row.version)

    def certify(self, submission_id: str, *, steward: str) -> AlgorithmSubmission:
        """Certify the exact hash that passed conformance; earlier versions are superseded.

        Its manifest, as the conformance run described it, is checked and recorded: jobs
        protect their output with it (`manifests.RecordedManifest`).
        """
        current = self.get(submission_id)
        if current.status is not SubmissionStatus.CONFORMANCE_PASSED:
            raise CellcensusError(
                f"submission {submission_id} is {current.status}; run conformance first "
                "(only a passed submission can be certified)"
            )
        recorded = RecordedManifest.from_dict(
            (current.report or {}).get("manifest"), name=current.name, version=current.version
        )
        with self.state.write() as conn:
            conn.execute(
                submissions.update()
                .where(
                    (submissions.c.name == current.name)
                    & (submissions.c.status == SubmissionStatus.CERTIFIED.value)
                )
                .values(status=SubmissionStatus.SUPERSEDED.value)
            )
            conn.execute(
                submissions.update()
                .where(submissions.c.id == submission_id)
                .values(
                    status=SubmissionStatus.CERTIFIED.value,
                    certified_by=steward,
                    certified_at=now(),
                    manifest=recorded.to_dict(),
                )
            )
            append_entry(
                conn,
                actor=steward,
                action="algorithm.certified",
                target=f"submission:{submission_id}",
                details={
                    "name": current.name,
                    "version": current.version,
                    "sha256": current.sha256,
                },
            )
        return self.get(submission_id)
