"""Release policies set by the steward: disclosure rules, approval, certification levels.

The steward stores changes, not whole policies: an algorithm's own changes, else the ``*``
changes, applied to that algorithm's default (the disclosure layer's `policy_for`, or the
policy the enclave was built with), ``dp`` merged field by field. So a change of threshold
keeps the noise, and ``*`` keeps each algorithm's mechanism (Gaussian where one device counts
in many cells); only ``"dp": null`` removes noise, and says so. The disclosure layer enforces
its floors on every policy. Every change is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from cellcensus.errors import CellcensusError
from cellcensus.holder.algorithms import Certification
from cellcensus.holder.disclosure import DisclosurePolicy, policy_for
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
        return float(self.disclosure.epsilon)

    @property
    def delta(self) -> float:
        """Delta of approximate differential privacy (0 when pure or no noise)."""
        return float(self.disclosure.delta)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as stored and as shown on the API."""
        return {
            "disclosure": self.disclosure.to_dict(),
            "require_approval": self.require_approval,
            "allowed_certifications": list(self.allowed_certifications),
        }

    @classmethod
    def from_dict(
        cls, body: dict[str, Any], *, default: DisclosurePolicy | None = None
    ) -> ReleasePolicy:
        """Validate a policy, naming what is wrong.

        Args:
            body: A whole policy (a job's), or with `default` a steward's changes to it.
            default: The disclosure policy ``body["disclosure"]`` changes, ``dp`` merged
                field by field (None: `body` holds a whole policy).
        """
        allowed = tuple(body.get("allowed_certifications", [Certification.CERTIFIED.value]))
        known = {level.value for level in Certification}
        if not set(allowed) <= known:
            raise CellcensusError(
                f"allowed_certifications: unknown level in {list(allowed)}; use {sorted(known)}"
            )
        changes = body.get("disclosure", {})
        return cls(
            disclosure=disclosure_policy(changes)
            if default is None
            else default.override(changes, source="disclosure"),
            require_approval=bool(body.get("require_approval", False)),
            allowed_certifications=allowed,
        )


def disclosure_policy(values: dict[str, Any]) -> DisclosurePolicy:
    """A DisclosurePolicy from plain data, refusing unknown fields and broken floors by name."""
    return DisclosurePolicy.from_dict(values, source="disclosure")


class Policies:
    """The steward's policies in the state database."""

    def __init__(self, state: State, *, default: DisclosurePolicy | None = None) -> None:
        self.state = state
        self.override = default

    def default_for(self, algorithm: str) -> DisclosurePolicy:
        """The disclosure policy of `algorithm` before any change of the steward's."""
        return self.override or policy_for(algorithm=algorithm)

    def for_algorithm(self, algorithm: str) -> ReleasePolicy:
        """The policy that applies to `algorithm` now: its default with the stored changes."""
        with self.state.read() as conn:
            rows = dict(
                conn.execute(
                    sa.select(policies.c.algorithm, policies.c.body).where(
                        policies.c.algorithm.in_([algorithm, DEFAULT_KEY])
                    )
                ).all()
            )
        changes = rows.get(algorithm, rows.get(DEFAULT_KEY)) or {}
        return ReleasePolicy.from_dict(dict(changes), default=self.default_for(algorithm))

    def all(self) -> dict[str, dict[str, Any]]:
        """Every stored change by algorithm (``*``: for every algorithm without its own)."""
        with self.state.read() as conn:
            rows = conn.execute(sa.select(policies.c.algorithm, policies.c.body)).all()
        return {str(name): dict(body) for name, body in rows}

    def set(self, algorithm: str, body: dict[str, Any], *, steward: str) -> ReleasePolicy:
        """Replace the changes to `algorithm`'s policy (``*`` for all), audited.

        Returns:
            The policy that now applies to `algorithm` (for ``*``: to an algorithm without
            a default of its own).
        """
        # Refuses what breaks a floor.
        policy = ReleasePolicy.from_dict(body, default=self.default_for(algorithm))
        stored = {**policy.to_dict(), "disclosure": dict(body.get("disclosure", {}))}
        with self.state.write() as conn:
            conn.execute(policies.delete().where(policies.c.algorithm == algorithm))
            conn.execute(
                policies.insert().values(
                    algorithm=algorithm, body=stored, updated_by=steward, updated_at=now()
                )
            )
            append_entry(
                conn,
                actor=steward,
                action="policy.set",
                target=f"policy:{algorithm}",
                details=stored,
            )
        return policy
