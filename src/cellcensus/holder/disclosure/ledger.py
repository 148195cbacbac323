"""The privacy-loss ledger: a budget per analyst and project, charged before each release.

Every differentially private release spends privacy loss (epsilon, delta) that adds up over
releases (basic composition). The steward sets each analyst's budget per project; the enclave
charges a job *before* computing it, and the ledger refuses when the budget would be exceeded,
saying what is left. Charges are idempotent per job id, never refunded and never deleted, and
nothing in this API lets an analyst lower what has been spent.

Storage is plain SQLAlchemy Core on `ledger_metadata` (SQLite by default, or PostgreSQL; the
tests run on both). The check and the spending are one conditional UPDATE
(``spent + cost <= budget``) that the database serialises, so two concurrent releases cannot
overspend: SQLite lets one writer at a time; PostgreSQL locks the budget row for the first
UPDATE, and the second, once it gets the lock, re-evaluates its condition on the row the first
committed (READ COMMITTED), so it is refused if the rest no longer fits. No separate
``SELECT ... FOR UPDATE`` is needed because nothing is read before the write decides.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from cellcensus.errors import DisclosureError

ledger_metadata = sa.MetaData()
"""Tables of the ledger; create them with the service's other tables or let the ledger do it."""

_NAME = 200
ALL = "*"
"""Analyst and project of the store-wide budget's row: no user name is ``*``."""
TOLERANCE = 1e-9
"""Relative floating-point slack when comparing spent + cost with the budget (2.0 - 4 x 0.4
is 0.3999...): relative to the amounts compared, so that a budget of 0 admits no cost at all."""

privacy_budget = sa.Table(
    "privacy_budget",
    ledger_metadata,
    sa.Column("analyst", sa.String(_NAME), primary_key=True),
    sa.Column("project", sa.String(_NAME), primary_key=True),
    sa.Column("epsilon", sa.Double, nullable=False),
    sa.Column("delta", sa.Double, nullable=False),
    sa.Column("spent_epsilon", sa.Double, nullable=False),
    sa.Column("spent_delta", sa.Double, nullable=False),
    sa.Column("set_by", sa.String(_NAME), nullable=False),
    sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
)

privacy_budget_change = sa.Table(
    "privacy_budget_change",
    ledger_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("analyst", sa.String(_NAME), nullable=False),
    sa.Column("project", sa.String(_NAME), nullable=False),
    sa.Column("epsilon", sa.Double, nullable=False),
    sa.Column("delta", sa.Double, nullable=False),
    sa.Column("set_by", sa.String(_NAME), nullable=False),
    sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
)

privacy_charge = sa.Table(
    "privacy_charge",
    ledger_metadata,
    sa.Column("job_id", sa.String(_NAME), primary_key=True),
    sa.Column("analyst", sa.String(_NAME), nullable=False, index=True),
    sa.Column("project", sa.String(_NAME), nullable=False),
    sa.Column("epsilon", sa.Double, nullable=False),
    sa.Column("delta", sa.Double, nullable=False),
    sa.Column("charged_at", sa.DateTime(timezone=True), nullable=False),
)


class Role(StrEnum):
    """Who is calling: only a steward may set budgets."""

    STEWARD = "steward"
    ANALYST = "analyst"


@dataclass(frozen=True)
class Budget:
    """An amount of privacy loss (a total, or what is left of it)."""

    epsilon: float
    delta: float

    def covers(self, *, epsilon: float, delta: float) -> bool:
        """Whether this much left pays for a release of (epsilon, delta): the ledger's rule."""
        return _fits(epsilon, self.epsilon) and _fits(delta, self.delta)


def _fits(cost: float, left: float) -> bool:
    return cost <= left + TOLERANCE * (left + cost)


def amount_left(left: float, cost: float) -> str:
    """`left` with as many digits as it takes not to read as `cost` (a refusal must show it)."""
    if left >= cost:
        return f"{left:g}"
    for digits in range(4, 18):
        text = f"{left:.{digits}g}"
        if text != f"{cost:.{digits}g}":
            return text
    return repr(left)


@dataclass(frozen=True)
class Standing:
    """One budget the steward set: its analyst, project, total and what is left of it."""

    analyst: str
    project: str
    total: Budget
    left: Budget


@dataclass(frozen=True)
class Charge:
    """The receipt of privacy loss spent by one job; `protect` requires it for DP releases."""

    job_id: str
    analyst: str
    project: str
    epsilon: float
    delta: float
    charged_at: dt.datetime


class PrivacyLedger:
    """Budgets and charges of privacy loss, per analyst and project, in a database.

    Args:
        engine: SQLAlchemy engine; the ledger's tables are created if missing.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        ledger_metadata.create_all(engine)
        _keep_store_row(engine)

    @classmethod
    def at(cls, *, path: Path) -> PrivacyLedger:
        """A ledger in an SQLite file (created if missing), waiting up to 30 s on locks."""
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 30})
        return cls(engine)

    def set_budget(
        self,
        *,
        analyst: str,
        project: str,
        epsilon: float,
        delta: float = 0.0,
        by: str,
        role: Role,
    ) -> Budget:
        """Set the total privacy loss `analyst` may spend in `project` (steward only).

        What was spent stays spent: lowering a budget below it leaves nothing to spend.

        Args:
            analyst: Analyst the budget is for.
            project: Project the budget is for.
            epsilon: Total epsilon, >= 0.
            delta: Total delta, in [0, 1).
            by: Name of the steward, recorded with the change.
            role: Role of the caller; anything but `Role.STEWARD` is refused.

        Returns:
            What is left to spend under the new budget.

        Raises:
            DisclosureError: The caller is not a steward, or a value is out of range.
        """
        if role != Role.STEWARD:  # equality: a role given by name ("steward") counts too
            raise DisclosureError(
                f"only a data steward can set privacy budgets ({by!r} acts as {role})"
            )
        _check_names(analyst=analyst, project=project, by=by)
        _check_analyst(analyst)
        _check_loss(epsilon=epsilon, delta=delta, allow_zero=True)
        now = _now()
        values = {"epsilon": epsilon, "delta": delta, "set_by": by, "set_at": now}
        for attempt in range(2):  # a concurrent first budget of the same pair: retry once
            try:
                with self.engine.begin() as connection:
                    _upsert_budget(connection, analyst=analyst, project=project, values=values)
                    connection.execute(
                        sa.insert(privacy_budget_change).values(
                            analyst=analyst, project=project, **values
                        )
                    )
                break
            except sa.exc.IntegrityError:
                if attempt:
                    raise
        return self.remaining(analyst=analyst, project=project)

    def budget(self, *, analyst: str, project: str) -> Budget | None:
        """The total budget of `analyst` in `project`, or None if the steward set none."""
        with self.engine.connect() as connection:
            row = _budget_row(connection, analyst=analyst, project=project)
        return None if row is None else Budget(epsilon=row.epsilon, delta=row.delta)

    def projects(self, *, analyst: str) -> list[str]:
        """The projects in which the steward set `analyst` a budget, by name."""
        query = (
            sa.select(privacy_budget.c.project)
            .where(privacy_budget.c.analyst == analyst)
            .order_by(privacy_budget.c.project)
        )
        with self.engine.connect() as connection:
            return list(connection.execute(query).scalars())

    def remaining(self, *, analyst: str, project: str) -> Budget:
        """What `analyst` may still spend in `project` (zero if no budget is set)."""
        with self.engine.connect() as connection:
            row = _budget_row(connection, analyst=analyst, project=project)
        return Budget(epsilon=0.0, delta=0.0) if row is None else _left(row)

    def standings(self, *, analyst: str | None = None) -> list[Standing]:
        """Every analyst's budget (or `analyst`'s), by analyst then project: one query."""
        chosen = privacy_budget.c.analyst == analyst if analyst else privacy_budget.c.analyst != ALL
        query = (
            sa.select(privacy_budget)
            .where(chosen)
            .order_by(privacy_budget.c.analyst, privacy_budget.c.project)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            Standing(
                analyst=row.analyst,
                project=row.project,
                total=Budget(epsilon=row.epsilon, delta=row.delta),
                left=_left(row),
            )
            for row in rows
        ]

    def set_total(self, *, epsilon: float, delta: float = 0.0, by: str, role: Role) -> Standing:
        """Set the store-wide budget: what every analyst in every project spends together.

        Each analyst's budget composes their own releases; releases of several analysts are
        all of the same people, so their losses add up too (they may publish or pool them).
        It counts everything ever charged, before it was set too; what was spent stays.
        With none set, only the analysts' budgets hold.

        Returns:
            It, with what is left of it.

        Raises:
            DisclosureError: The caller is not a steward, or a value is out of range.
        """
        if role != Role.STEWARD:
            raise DisclosureError(
                f"only a data steward can set privacy budgets ({by!r} acts as {role})"
            )
        _check_names(by=by)
        _check_loss(epsilon=epsilon, delta=delta, allow_zero=True)
        values = {"epsilon": epsilon, "delta": delta, "set_by": by, "set_at": _now()}
        with self.engine.begin() as connection:
            # Its spent is every charge's already (`_keep_store_row`): only the totals change.
            _upsert_budget(connection, analyst=ALL, project=ALL, values=values)
            connection.execute(
                sa.insert(privacy_budget_change).values(analyst=ALL, project=ALL, **values)
            )
        total = self.total()
        assert total is not None  # just set, and finite (`_check_loss`)
        return total

    def total(self) -> Standing | None:
        """The store-wide budget and what is left of it, or None if none is set."""
        with self.engine.connect() as connection:
            row = _budget_row(connection, analyst=ALL, project=ALL)
        if row is None or math.isinf(row.epsilon):
            return None
        total = Budget(epsilon=row.epsilon, delta=row.delta)
        return Standing(analyst=ALL, project=ALL, total=total, left=_left(row))

    def charge(
        self, *, job_id: str, analyst: str, project: str, epsilon: float, delta: float = 0.0
    ) -> Charge:
        """Spend (epsilon, delta) for `job_id`, before the job is computed.

        Idempotent: charging a job id again returns the first charge and spends nothing.

        Returns:
            The receipt to pass to `protect`.

        Raises:
            DisclosureError: No budget is set, the analyst's or the store-wide budget would
                be exceeded (the message says what is left), or the job id was charged with
                other values.
        """
        _check_names(analyst=analyst, project=project, job_id=job_id)
        _check_analyst(analyst)
        _check_loss(epsilon=epsilon, delta=delta, allow_zero=False)
        request = Charge(
            job_id=job_id,
            analyst=analyst,
            project=project,
            epsilon=epsilon,
            delta=delta,
            charged_at=_now(),
        )
        previous = self._charge_of(job_id)
        if previous is not None:
            return _same_job(previous, request)
        try:
            with self.engine.begin() as connection:
                if not _spend(connection, request):
                    raise self._refusal(request)
                if not _spend_total(connection, request):
                    raise self._total_refusal(request)  # the analyst's spending rolls back
                connection.execute(sa.insert(privacy_charge).values(**_charge_values(request)))
        except sa.exc.IntegrityError:
            previous = self._charge_of(job_id)  # the same job was charged concurrently
            if previous is None:
                raise
            return _same_job(previous, request)
        return request

    def charges(self, *, analyst: str, project: str) -> list[Charge]:
        """Every charge of `analyst` in `project`, oldest first."""
        query = (
            sa.select(privacy_charge)
            .where(privacy_charge.c.analyst == analyst, privacy_charge.c.project == project)
            .order_by(privacy_charge.c.charged_at, privacy_charge.c.job_id)
        )
        with self.engine.connect() as connection:
            return [_charge_from(row) for row in connection.execute(query)]

    def _charge_of(self, job_id: str) -> Charge | None:
        query = sa.select(privacy_charge).where(privacy_charge.c.job_id == job_id)
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else _charge_from(row)

    def _total_refusal(self, request: Charge) -> DisclosureError:
        total = self.total()
        assert total is not None  # it refused the charge
        return DisclosureError(
            f"the store-wide privacy budget is exceeded: job {request.job_id} needs "
            f"epsilon={request.epsilon:g}, delta={request.delta:g} but only "
            f"epsilon={amount_left(total.left.epsilon, request.epsilon)}, "
            f"delta={amount_left(total.left.delta, request.delta)} is left of "
            f"epsilon={total.total.epsilon:g}, delta={total.total.delta:g} for all analysts "
            "and projects together; the job was not run (ask the data steward)"
        )

    def _refusal(self, request: Charge) -> DisclosureError:
        total = self.budget(analyst=request.analyst, project=request.project)
        where = f"analyst {request.analyst!r} in project {request.project!r}"
        if total is None:
            return DisclosureError(
                f"no privacy budget is set for {where}: ask the data steward to set one "
                f"(job {request.job_id} was not run)"
            )
        left = self.remaining(analyst=request.analyst, project=request.project)
        return DisclosureError(
            f"privacy budget exceeded for {where}: job {request.job_id} needs "
            f"epsilon={request.epsilon:g}, delta={request.delta:g} but only "
            f"epsilon={amount_left(left.epsilon, request.epsilon)}, "
            f"delta={amount_left(left.delta, request.delta)} is left of "
            f"epsilon={total.epsilon:g}, delta={total.delta:g}; the job was not run "
            "(ask the data steward for more budget)"
        )


def _spend_total(connection: sa.Connection, request: Charge) -> bool:
    """Add the charge to the store-wide row too; False if a total is set and it does not fit.

    Every charge counts there, set or not, so a total set later starts from all of them.
    """
    if _spend(connection, replace(request, analyst=ALL, project=ALL)):
        return True
    return _budget_row(connection, analyst=ALL, project=ALL) is None  # a ledger made before


def _keep_store_row(engine: sa.Engine) -> None:
    """Make the store-wide row (no total: infinite) where missing, from every charge so far.

    Once, when the tables are made (or first opened by this code): from then on every charge
    adds to it in its own transaction, which no later sum could miss.
    """
    with engine.connect() as connection:
        if _budget_row(connection, analyst=ALL, project=ALL) is not None:
            return
    sums = sa.select(
        sa.func.coalesce(sa.func.sum(privacy_charge.c.epsilon), 0.0),
        sa.func.coalesce(sa.func.sum(privacy_charge.c.delta), 0.0),
    )
    with contextlib.suppress(sa.exc.IntegrityError), engine.begin() as connection:
        spent_epsilon, spent_delta = connection.execute(sums).one()
        connection.execute(
            sa.insert(privacy_budget).values(
                analyst=ALL,
                project=ALL,
                epsilon=math.inf,
                delta=math.inf,
                spent_epsilon=float(spent_epsilon),
                spent_delta=float(spent_delta),
                set_by="ledger",
                set_at=_now(),
            )
        )


def _spend(connection: sa.Connection, request: Charge) -> bool:
    """Add the charge to the spent totals if it fits, atomically; False if it does not."""
    table = privacy_budget.c
    statement = (
        sa.update(privacy_budget)
        .where(
            table.analyst == request.analyst,
            table.project == request.project,
            table.spent_epsilon + request.epsilon
            <= table.epsilon + TOLERANCE * (table.epsilon + request.epsilon),
            table.spent_delta + request.delta
            <= table.delta + TOLERANCE * (table.delta + request.delta),
        )
        .values(
            spent_epsilon=table.spent_epsilon + request.epsilon,
            spent_delta=table.spent_delta + request.delta,
        )
    )
    return connection.execute(statement).rowcount == 1


def _upsert_budget(
    connection: sa.Connection, *, analyst: str, project: str, values: dict[str, Any]
) -> None:
    key = (privacy_budget.c.analyst == analyst) & (privacy_budget.c.project == project)
    if connection.execute(sa.update(privacy_budget).where(key).values(**values)).rowcount:
        return
    connection.execute(
        sa.insert(privacy_budget).values(
            analyst=analyst, project=project, spent_epsilon=0.0, spent_delta=0.0, **values
        )
    )


def _budget_row(connection: sa.Connection, *, analyst: str, project: str) -> Any:
    query = sa.select(privacy_budget).where(
        privacy_budget.c.analyst == analyst, privacy_budget.c.project == project
    )
    return connection.execute(query).first()


def _left(row: Any) -> Budget:
    return Budget(
        epsilon=max(0.0, row.epsilon - row.spent_epsilon),
        delta=max(0.0, row.delta - row.spent_delta),
    )


def _same_job(previous: Charge, request: Charge) -> Charge:
    same = (previous.analyst, previous.project, previous.epsilon, previous.delta) == (
        request.analyst,
        request.project,
        request.epsilon,
        request.delta,
    )
    if not same:
        raise DisclosureError(
            f"job {request.job_id} was already charged epsilon={previous.epsilon:g}, "
            f"delta={previous.delta:g} for analyst {previous.analyst!r} in project "
            f"{previous.project!r}; a job id cannot be charged twice with other values"
        )
    return previous


def _charge_values(charge: Charge) -> dict[str, Any]:
    return {
        "job_id": charge.job_id,
        "analyst": charge.analyst,
        "project": charge.project,
        "epsilon": charge.epsilon,
        "delta": charge.delta,
        "charged_at": charge.charged_at,
    }


def _charge_from(row: Any) -> Charge:
    charged_at = row.charged_at
    if charged_at.tzinfo is None:  # SQLite drops the zone; values are always written in UTC
        charged_at = charged_at.replace(tzinfo=dt.UTC)
    # PostgreSQL answers in the session's time zone (the server's TimeZone): same instant,
    # but the receipt always says UTC, whichever database holds the ledger.
    charged_at = charged_at.astimezone(dt.UTC)
    return Charge(
        job_id=row.job_id,
        analyst=row.analyst,
        project=row.project,
        epsilon=row.epsilon,
        delta=row.delta,
        charged_at=charged_at,
    )


def _check_analyst(analyst: str) -> None:
    if analyst == ALL:
        raise DisclosureError(
            f"{ALL!r} is the store-wide budget's name, no analyst's: set it with set_total "
            "(PUT /budgets/total, `cellcensus users total-budget`)"
        )


def _check_names(**names: str) -> None:
    for name, value in names.items():
        if not isinstance(value, str) or not value.strip() or len(value) > _NAME:
            raise DisclosureError(
                f"{name} must be a non-empty name of at most {_NAME} characters, got {value!r}"
            )


def _check_loss(*, epsilon: float, delta: float, allow_zero: bool) -> None:
    for name, value in (("epsilon", epsilon), ("delta", delta)):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
        ):
            raise DisclosureError(f"{name} must be a finite number >= 0, got {value!r}")
    if delta >= 1:
        raise DisclosureError(f"delta must be < 1, got {delta}")
    if not allow_zero and epsilon <= 0:
        raise DisclosureError(f"a charge must spend epsilon > 0, got {epsilon}")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
