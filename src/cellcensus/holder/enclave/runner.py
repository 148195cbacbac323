"""Run an algorithm as a recorded job and release only what the disclosure policy allows.

The embedded default: `Enclave.run` submits the job to the same job table, ledger and audit
log as the HTTP service (`EnclaveService`), and computes it in this process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from cellcensus.holder.disclosure import DisclosurePolicy
from cellcensus.holder.enclave.compute import PUBLISHED_FACTS, compute_release, open_tables
from cellcensus.holder.enclave.service import DEFAULT_PROJECT, EnclaveService, JobRequest
from cellcensus.holder.enclave.state import default_state_url, open_state, users
from cellcensus.holder.engines import Engine
from cellcensus.holder.store.layout import require_store_folder
from cellcensus.release import Release

__all__ = ["PUBLISHED_FACTS", "Enclave", "compute_release", "open_tables"]

EMBEDDED_EPSILON = 2.0
"""Budget the embedded enclave grants an analyst without one (see `Enclave`)."""
EMBEDDED_DELTA = 1e-5
"""Delta granted with it: ten Gaussian releases at the largest delta a policy may spend."""


class Enclave:
    """The holder's runner: one store, a job table, a disclosure policy per release.

    Args:
        store: The holder's store folder.
        policy: Disclosure policy of every algorithm (default: the disclosure layer's policy
            of each algorithm; a steward's stored policy overrides either).
        engine: Where algorithms run: ``duckdb`` or ``spark``.
        state_url: SQLAlchemy URL of the state database (default: SQLite in the store).
        embedded_epsilon: Privacy budget granted, by the holder acting as its own steward, to
            an analyst who has none when it first runs a job (embedded use: one process
            plays both parties). None grants nothing: budgets must be set explicitly, as
            the HTTP service requires.
    """

    def __init__(
        self,
        *,
        store: Path,
        policy: DisclosurePolicy | None = None,
        engine: Engine = "duckdb",
        state_url: str | None = None,
        embedded_epsilon: float | None = EMBEDDED_EPSILON,
    ) -> None:
        require_store_folder(Path(store))  # before the state database is created inside it
        self.service = EnclaveService(
            store=Path(store),
            state=open_state(state_url or default_state_url(Path(store))),
            engine=engine,
            default_policy=policy,
        )
        self.store = self.service.store
        self.engine: Engine = engine
        self.policy = policy
        self.embedded_epsilon = embedded_epsilon

    def grant_budget(
        self, *, analyst: str, epsilon: float, delta: float = 0.0, project: str = DEFAULT_PROJECT
    ) -> None:
        """Set an analyst's privacy budget, acting as the holder's steward (embedded use)."""
        self.service.set_budget(
            analyst=analyst, project=project, epsilon=epsilon, delta=delta, steward="holder"
        )

    def run(
        self,
        *,
        algorithm: str,
        parameters: dict[str, Any],
        analyst: str,
        level: str = "municipality",
    ) -> Release:
        """Run `algorithm` for `analyst` and return the protected release.

        An identical earlier request returns its release again, without running or charging
        anything.

        Raises:
            CellcensusError: unknown or uncertified algorithm, or bad parameters; the job is
                recorded as refused or failed and nothing is released.
        """
        request = JobRequest(algorithm=algorithm, parameters=parameters, level=level)
        ledger = self.service.ledger
        # A user of the service gets budgets from the steward only: granting one here would
        # give them privacy loss to spend over HTTP that nobody set.
        if (
            self.embedded_epsilon
            and ledger.budget(analyst=analyst, project=request.project) is None
            and not self._is_service_user(analyst)
        ):
            self.grant_budget(
                analyst=analyst,
                epsilon=self.embedded_epsilon,
                delta=EMBEDDED_DELTA,
                project=request.project,
            )
        return self.service.run_inline(analyst=analyst, request=request)

    def _is_service_user(self, name: str) -> bool:
        with self.service.state.read() as conn:
            found = conn.execute(sa.select(users.c.username).where(users.c.username == name))
            return found.first() is not None
