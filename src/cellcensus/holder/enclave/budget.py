"""The enclave's view of the privacy-loss ledger (`holder.disclosure.ledger`).

The service talks to the ledger only through `Ledger`, the interface of
`cellcensus.holder.disclosure.ledger.PrivacyLedger`. Until that module is installed the
service uses `InterimLedger`, a minimal ledger with the same interface, so that budgets and
charges are enforced from the start.
"""

from __future__ import annotations

from typing import Any, Protocol

import sqlalchemy as sa

from cellcensus.errors import DisclosureError
from cellcensus.holder.enclave.state import now

interim_metadata = sa.MetaData()

interim_budgets = sa.Table(
    "interim_budgets",
    interim_metadata,
    sa.Column("analyst", sa.String(64), primary_key=True),
    sa.Column("project", sa.String(64), primary_key=True),
    sa.Column("epsilon", sa.Float, nullable=False),
    sa.Column("delta", sa.Float, nullable=False),
)

interim_charges = sa.Table(
    "interim_charges",
    interim_metadata,
    sa.Column("job_id", sa.String(64), primary_key=True),
    sa.Column("analyst", sa.String(64), nullable=False),
    sa.Column("project", sa.String(64), nullable=False),
    sa.Column("epsilon", sa.Float, nullable=False),
    sa.Column("delta", sa.Float, nullable=False),
    sa.Column("at", sa.String(40), nullable=False),
)


class Ledger(Protocol):
    """What the enclave needs of a privacy-loss ledger."""

    def set_budget(self, *, analyst: str, project: str, epsilon: float, delta: float) -> Any:
        """Set the total budget of an analyst's project."""
        ...

    def remaining(self, *, analyst: str, project: str) -> Any:
        """Budget left: a number (epsilon), a pair, or an object with epsilon and delta."""
        ...

    def charge(
        self, *, job_id: str, analyst: str, project: str, epsilon: float, delta: float
    ) -> Any:
        """Spend budget for one release; raise DisclosureError when it would overspend."""
        ...


def open_ledger(engine: sa.Engine) -> Ledger:
    """The real ledger when installed, else the interim one, on the state database."""
    try:
        from cellcensus.holder.disclosure.ledger import PrivacyLedger
    except ImportError:
        return InterimLedger(engine)
    ledger: Ledger = PrivacyLedger(engine)
    return ledger


def budget_left(ledger: Ledger, *, analyst: str, project: str) -> tuple[float, float]:
    """(epsilon, delta) left, whatever shape the ledger answers in."""
    left = ledger.remaining(analyst=analyst, project=project)
    if isinstance(left, int | float):
        return float(left), 0.0
    if isinstance(left, tuple | list):
        return float(left[0]), float(left[1]) if len(left) > 1 else 0.0
    return float(left.epsilon), float(getattr(left, "delta", 0.0))


class InterimLedger:
    """A minimal ledger: one budget per analyst and project, one charge per job."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        interim_metadata.create_all(engine, checkfirst=True)

    def set_budget(self, *, analyst: str, project: str, epsilon: float, delta: float) -> None:
        """Set the total budget of an analyst's project."""
        with self.engine.begin() as conn:
            conn.execute(
                interim_budgets.delete().where(
                    (interim_budgets.c.analyst == analyst) & (interim_budgets.c.project == project)
                )
            )
            conn.execute(
                interim_budgets.insert().values(
                    analyst=analyst, project=project, epsilon=epsilon, delta=delta
                )
            )

    def remaining(self, *, analyst: str, project: str) -> tuple[float, float]:
        """Budget left (epsilon, delta); no budget set means none left."""
        with self.engine.connect() as conn:
            return _left(conn, analyst, project)

    def charge(
        self, *, job_id: str, analyst: str, project: str, epsilon: float, delta: float
    ) -> None:
        """Spend budget once for `job_id`, or raise DisclosureError."""
        with self.engine.begin() as conn:
            seen = conn.execute(
                sa.select(interim_charges.c.job_id).where(interim_charges.c.job_id == job_id)
            ).first()
            if seen is not None:
                raise DisclosureError(f"job {job_id} was already charged")
            left_epsilon, left_delta = _left(conn, analyst, project)
            if epsilon > left_epsilon + 1e-12 or delta > left_delta + 1e-15:
                raise DisclosureError(
                    f"privacy budget of {analyst}/{project} exhausted: epsilon {epsilon} asked, "
                    f"{left_epsilon:.4g} left; ask the steward for more"
                )
            conn.execute(
                interim_charges.insert().values(
                    job_id=job_id, analyst=analyst, project=project, epsilon=epsilon,
                    delta=delta, at=now(),
                )
            )


def _left(conn: sa.Connection, analyst: str, project: str) -> tuple[float, float]:
    mine = (interim_budgets.c.analyst == analyst) & (interim_budgets.c.project == project)
    budget = conn.execute(sa.select(interim_budgets).where(mine)).first()
    if budget is None:
        return 0.0, 0.0
    spent = conn.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(interim_charges.c.epsilon), 0.0),
            sa.func.coalesce(sa.func.sum(interim_charges.c.delta), 0.0),
        ).where((interim_charges.c.analyst == analyst) & (interim_charges.c.project == project))
    ).one()
    return float(budget.epsilon) - float(spent[0]), float(budget.delta) - float(spent[1])
