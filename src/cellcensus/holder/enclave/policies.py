"""Release policies set by the steward: disclosure rules, approval, certification levels.

One policy per algorithm, falling back to the ``*`` policy, falling back to the service's
default. Every change is audited.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import sqlalchemy as sa

from cellcensus.errors import CellcensusError
from cellcensus.holder.algorithms import Certification
from cellcensus.holder.disclosure import DisclosurePolicy
from cellcensus.holder.enclave.audit import append_entry
from cellcensus.holder.enclave.state import State, now, policies

DEFAULT_KEY = "*"


@dataclass(frozen=True)
class ReleasePolicy:
    """What a release of one algorithm must go through.

    Attributes:
        disclosure: Thresholds, rounding and noise applied to every table.
        require_approval: Hold each release for the steward's approval (output checking).
        allowed_certifications: Certification levels analysts may run.
    """

    disclosure: DisclosurePolicy
    require_approval: bool = False
    allowed_certifications: tuple[str, ...] = (Certification.CERTIFIED.value,)

    @property
    def epsilon(self) -> float:
        """Privacy loss one release costs (0 when the policy adds no noise)."""
        return float(getattr(self.disclosure, "epsilon", 0.0) or 0.0)

    @property
    def delta(self) -> float:
        """Delta of approximate differential privacy (0 when pure or no noise)."""
        return float(getattr(self.disclosure, "delta", 0.0) or 0.0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as stored and as shown on the API."""
        return {
            "disclosure": self.disclosure.to_dict(),
            "require_approval": self.require_approval,
            "allowed_certifications": list(self.allowed_certifications),
        }

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> ReleasePolicy:
        """Validate a stored or submitted policy, naming what is wrong."""
        allowed = tuple(body.get("allowed_certifications", [Certification.CERTIFIED.value]))
        known = {level.value for level in Certification}
        if not set(allowed) <= known:
            raise CellcensusError(
                f"allowed_certifications: unknown level in {list(allowed)}; use {sorted(known)}"
            )
        return cls(
            disclosure=disclosure_policy(body.get("disclosure", {})),
            require_approval=bool(body.get("require_approval", False)),
            allowed_certifications=allowed,
        )


def disclosure_policy(values: dict[str, Any]) -> DisclosurePolicy:
    """A DisclosurePolicy from a dict, refusing unknown fields by name."""
    names = {field.name for field in fields(DisclosurePolicy)}
    unknown = set(values) - names
    if unknown:
        raise CellcensusError(
            f"disclosure: unknown field(s) {sorted(unknown)}; known: {sorted(names)}"
        )
    try:
        return DisclosurePolicy(**values)
    except TypeError as error:
        raise CellcensusError(f"disclosure: {error}") from None


class Policies:
    """The steward's policies in the state database."""

    def __init__(self, state: State, *, default: DisclosurePolicy | None = None) -> None:
        self.state = state
        self.default = ReleasePolicy(disclosure=default or DisclosurePolicy())

    def for_algorithm(self, algorithm: str) -> ReleasePolicy:
        """The policy that applies to `algorithm` now."""
        with self.state.read() as conn:
            rows = dict(
                conn.execute(
                    sa.select(policies.c.algorithm, policies.c.body).where(
                        policies.c.algorithm.in_([algorithm, DEFAULT_KEY])
                    )
                ).all()
            )
        body = rows.get(algorithm, rows.get(DEFAULT_KEY))
        return self.default if body is None else ReleasePolicy.from_dict(body)

    def all(self) -> dict[str, dict[str, Any]]:
        """Every stored policy by algorithm (``*`` is the default)."""
        with self.state.read() as conn:
            rows = conn.execute(sa.select(policies.c.algorithm, policies.c.body)).all()
        stored = {str(name): dict(body) for name, body in rows}
        stored.setdefault(DEFAULT_KEY, self.default.to_dict())
        return stored

    def set(self, algorithm: str, body: dict[str, Any], *, steward: str) -> ReleasePolicy:
        """Replace the policy of `algorithm` (``*`` for all), audited."""
        policy = ReleasePolicy.from_dict(body)
        stored = policy.to_dict()
        with self.state.write() as conn:
            conn.execute(policies.delete().where(policies.c.algorithm == algorithm))
            conn.execute(
                policies.insert().values(
                    algorithm=algorithm, body=stored, updated_by=steward, updated_at=now()
                )
            )
            append_entry(
                conn, actor=steward, action="policy.set", target=f"policy:{algorithm}",
                details=stored,
            )
        return policy
