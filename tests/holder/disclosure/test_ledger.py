import datetime as dt
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateTable

from cellcensus.errors import DisclosureError
from cellcensus.holder.disclosure import Budget, PrivacyLedger, Role, ledger_metadata


@pytest.fixture
def path(tmp_path):
    return tmp_path / "ledger.sqlite"


@pytest.fixture
def url(state_url, path):
    """Where the ledger lives: an SQLite file or a fresh PostgreSQL database (both run)."""
    return f"sqlite:///{path}" if state_url.startswith("sqlite") else state_url


def open_ledger(url: str, path: Path) -> PrivacyLedger:
    """A ledger with its own engine, as another process would open it."""
    if url.startswith("sqlite"):
        return PrivacyLedger.at(path=path)
    return PrivacyLedger(sa.create_engine(url))


@pytest.fixture
def ledger(url, path):
    ledger = open_ledger(url, path)
    ledger.set_budget(analyst="ana", project="census", epsilon=1.0, by="sam", role=Role.STEWARD)
    yield ledger
    ledger.engine.dispose()


def test_only_a_steward_sets_budgets(ledger):
    with pytest.raises(DisclosureError, match="only a data steward"):
        ledger.set_budget(
            analyst="ana", project="census", epsilon=100.0, by="ana", role=Role.ANALYST
        )
    assert ledger.budget(analyst="ana", project="census").epsilon == 1.0


def test_standings_give_each_budget_and_what_is_left_as_one_at_a_time_does(ledger):
    steward = {"by": "sam", "role": Role.STEWARD}
    ledger.set_budget(analyst="bob", project="census", epsilon=2.0, delta=1e-6, **steward)
    ledger.set_budget(analyst="ana", project="atlas", epsilon=0.5, **steward)
    ledger.charge(job_id="a", analyst="ana", project="census", epsilon=0.25)
    ledger.charge(job_id="b", analyst="bob", project="census", epsilon=1.5, delta=4e-7)
    standings = ledger.standings()
    pairs = [(standing.analyst, standing.project) for standing in standings]
    assert pairs == [("ana", "atlas"), ("ana", "census"), ("bob", "census")]
    for standing in standings:
        asked = {"analyst": standing.analyst, "project": standing.project}
        assert standing.total == ledger.budget(**asked)
        assert standing.left == ledger.remaining(**asked)
    assert standings[2].left == Budget(epsilon=0.5, delta=pytest.approx(6e-7))
    assert ledger.standings(analyst="bob") == standings[2:]
    assert ledger.standings(analyst="eve") == []


def test_a_store_wide_budget_caps_all_analysts_together_and_counts_what_was_spent(ledger):
    steward = {"by": "sam", "role": Role.STEWARD}
    ledger.set_budget(analyst="bob", project="atlas", epsilon=2.0, **steward)
    ledger.charge(job_id="a", analyst="ana", project="census", epsilon=0.5)
    assert ledger.total() is None  # none set: the analysts' budgets alone hold
    left = ledger.set_total(epsilon=1.0, **steward).left
    assert left.epsilon == pytest.approx(0.5)  # what was charged before it counts
    ledger.charge(job_id="b", analyst="bob", project="atlas", epsilon=0.4)
    with pytest.raises(
        DisclosureError,
        match=r"store-wide privacy budget is exceeded.*only "
        r"epsilon=0\.1, delta=0 is left of epsilon=1, .*all analysts",
    ):
        ledger.charge(job_id="c", analyst="bob", project="atlas", epsilon=0.2)
    # The refused job spent nothing: neither bob's budget nor the store-wide one moved.
    assert ledger.remaining(analyst="bob", project="atlas").epsilon == pytest.approx(1.6)
    assert [charge.job_id for charge in ledger.charges(analyst="bob", project="atlas")] == ["b"]
    total = ledger.total()
    assert total is not None and total.left.epsilon == pytest.approx(0.1)
    # Raised, what was spent stays spent; and it is not one of the analysts' budgets.
    assert ledger.set_total(epsilon=1.5, **steward).left.epsilon == pytest.approx(0.6)
    ledger.charge(job_id="c", analyst="bob", project="atlas", epsilon=0.2)
    assert {standing.analyst for standing in ledger.standings()} == {"ana", "bob"}
    with pytest.raises(DisclosureError, match="only a data steward"):
        ledger.set_total(epsilon=9.0, by="ana", role=Role.ANALYST)


def test_the_store_wide_row_counts_every_charge_even_one_beside_the_first_total(url, path):
    """Charges add to the store-wide row whether or not a total is set, so one made by
    another process while the steward sets the first total cannot be missed; a ledger of
    an older release gets the row from its charges when first opened."""
    service, steward_cli = open_ledger(url, path), open_ledger(url, path)
    steward = {"by": "sam", "role": Role.STEWARD}
    service.set_budget(analyst="ana", project="p", epsilon=10.0, **steward)
    service.charge(job_id="j1", analyst="ana", project="p", epsilon=1.0)

    @sa.event.listens_for(steward_cli.engine, "before_cursor_execute")
    def beside(conn, cursor, statement, *_):  # the service charges as the total is set
        if statement.startswith("UPDATE privacy_budget") and not beside.fired:
            beside.fired = True
            service.charge(job_id="j2", analyst="ana", project="p", epsilon=2.0)

    beside.fired = False
    steward_cli.set_total(epsilon=3.5, **steward)
    total = steward_cli.total()
    assert beside.fired and total is not None and total.left.epsilon == pytest.approx(0.5)
    with service.engine.begin() as connection:  # as a ledger made before the row existed
        connection.execute(
            sa.delete(ledger_metadata.tables["privacy_budget"]).where(
                ledger_metadata.tables["privacy_budget"].c.analyst == "*"
            )
        )
    reopened = open_ledger(url, path)
    assert reopened.total() is None  # no total: the one set before went with the row
    reopened.set_total(epsilon=3.5, **steward)
    assert reopened.total().left.epsilon == pytest.approx(0.5)  # the 3.0 charged counted
    with pytest.raises(DisclosureError, match="store-wide budget's name"):
        reopened.set_budget(analyst="*", project="*", epsilon=99.0, **steward)
    for ledger in (service, steward_cli, reopened):
        ledger.engine.dispose()


def test_a_role_given_by_name_is_the_role(ledger):
    with pytest.raises(DisclosureError, match="'ana' acts as analyst"):
        ledger.set_budget(analyst="ana", project="census", epsilon=9.0, by="ana", role="analyst")
    ledger.set_budget(analyst="ana", project="census", epsilon=2.0, by="sam", role="steward")
    assert ledger.budget(analyst="ana", project="census").epsilon == 2.0


def test_budget_is_spent_over_several_releases_then_refused_saying_what_is_left(ledger):
    for job in range(3):
        ledger.charge(job_id=f"job-{job}", analyst="ana", project="census", epsilon=0.3)
    assert ledger.remaining(analyst="ana", project="census").epsilon == pytest.approx(0.1)
    with pytest.raises(DisclosureError, match=r"needs epsilon=0.3.*only epsilon=0.1.*left"):
        ledger.charge(job_id="job-3", analyst="ana", project="census", epsilon=0.3)
    assert [charge.job_id for charge in ledger.charges(analyst="ana", project="census")] == [
        "job-0",
        "job-1",
        "job-2",
    ]


def test_exact_budget_can_be_spent_despite_floating_point(ledger):
    for job in range(10):
        ledger.charge(job_id=f"job-{job}", analyst="ana", project="census", epsilon=0.1)
    assert ledger.remaining(analyst="ana", project="census").epsilon == pytest.approx(0.0)


def test_a_budget_of_zero_admits_no_loss_however_small(ledger):
    # The budget of the fixture has delta 0: a Gaussian release at a tiny delta (policies
    # allow any delta in (0, 1e-6]) must not slip through the floating-point slack.
    with pytest.raises(DisclosureError, match="delta=0 is left"):
        ledger.charge(job_id="job-1", analyst="ana", project="census", epsilon=0.1, delta=1e-10)
    ledger.set_budget(analyst="bo", project="census", epsilon=0.0, by="sam", role=Role.STEWARD)
    with pytest.raises(DisclosureError, match="epsilon=0, delta=0 is left"):
        ledger.charge(job_id="job-2", analyst="bo", project="census", epsilon=1e-10)
    assert ledger.remaining(analyst="ana", project="census") == Budget(epsilon=1.0, delta=0.0)
    assert not Budget(epsilon=1.0, delta=0.0).covers(epsilon=0.1, delta=1e-10)


def test_charge_is_idempotent_per_job(ledger):
    first = ledger.charge(job_id="job-1", analyst="ana", project="census", epsilon=0.4)
    again = ledger.charge(job_id="job-1", analyst="ana", project="census", epsilon=0.4)
    assert again == first
    assert again.charged_at.tzinfo is dt.UTC  # whatever the database server's time zone
    assert ledger.remaining(analyst="ana", project="census").epsilon == pytest.approx(0.6)
    with pytest.raises(DisclosureError, match="cannot be charged twice with other values"):
        ledger.charge(job_id="job-1", analyst="ana", project="census", epsilon=0.1)


def test_no_budget_means_refusal(ledger):
    with pytest.raises(DisclosureError, match=r"no privacy budget is set.*'bob'"):
        ledger.charge(job_id="job-1", analyst="bob", project="census", epsilon=0.1)
    with pytest.raises(DisclosureError, match="no privacy budget"):
        ledger.charge(job_id="job-2", analyst="ana", project="other", epsilon=0.1)


def test_budgets_are_per_analyst_and_project(ledger):
    ledger.set_budget(analyst="ana", project="tourism", epsilon=2.0, by="sam", role=Role.STEWARD)
    ledger.charge(job_id="job-1", analyst="ana", project="tourism", epsilon=1.5)
    assert ledger.remaining(analyst="ana", project="census").epsilon == 1.0
    assert ledger.remaining(analyst="ana", project="tourism").epsilon == pytest.approx(0.5)


def test_ledger_survives_a_restart(ledger, url):
    ledger.charge(job_id="job-1", analyst="ana", project="census", epsilon=0.75)
    ledger.engine.dispose()
    reopened = PrivacyLedger(sa.create_engine(url))
    assert reopened.remaining(analyst="ana", project="census").epsilon == pytest.approx(0.25)
    with pytest.raises(DisclosureError, match="exceeded"):
        reopened.charge(job_id="job-2", analyst="ana", project="census", epsilon=0.5)
    assert reopened.charge(job_id="job-1", analyst="ana", project="census", epsilon=0.75)


def test_steward_raising_a_budget_keeps_what_was_spent(ledger):
    ledger.charge(job_id="job-1", analyst="ana", project="census", epsilon=0.75)
    left = ledger.set_budget(
        analyst="ana", project="census", epsilon=2.0, by="sam", role=Role.STEWARD
    )
    assert left.epsilon == pytest.approx(1.25)
    lowered = ledger.set_budget(
        analyst="ana", project="census", epsilon=0.5, by="sam", role=Role.STEWARD
    )
    assert lowered.epsilon == 0.0


def test_budget_changes_are_recorded(ledger):
    ledger.set_budget(analyst="ana", project="census", epsilon=3.0, by="kim", role=Role.STEWARD)
    table = ledger_metadata.tables["privacy_budget_change"]
    with ledger.engine.connect() as connection:
        rows = connection.execute(sa.select(table.c.epsilon, table.c.set_by)).all()
    assert [tuple(row) for row in rows] == [(1.0, "sam"), (3.0, "kim")]


def test_concurrent_releases_cannot_overspend(ledger: PrivacyLedger, url: str, path: Path) -> None:
    ledger.set_budget(analyst="ana", project="census", epsilon=0.5, by="sam", role=Role.STEWARD)
    start = threading.Barrier(4)
    outcomes: list[str] = []

    def release(job: int) -> None:
        own = open_ledger(url, path)  # one engine per "process"
        start.wait()
        try:
            own.charge(job_id=f"job-{job}", analyst="ana", project="census", epsilon=0.3)
            outcomes.append("charged")
        except DisclosureError:
            outcomes.append("refused")
        finally:
            own.engine.dispose()

    threads = [threading.Thread(target=release, args=(job,)) for job in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["charged", "refused", "refused", "refused"]
    assert ledger.remaining(analyst="ana", project="census").epsilon == pytest.approx(0.2)


def test_concurrent_charges_of_one_job_spend_once(ledger, url, path):
    start = threading.Barrier(3)

    def release() -> None:
        own = open_ledger(url, path)
        start.wait()
        try:
            own.charge(job_id="job-1", analyst="ana", project="census", epsilon=0.3)
        finally:
            own.engine.dispose()

    threads = [threading.Thread(target=release) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert ledger.remaining(analyst="ana", project="census").epsilon == pytest.approx(0.7)


def test_many_concurrent_releases_spend_exactly_the_budget(ledger, url, path):
    """Eight "processes" race for five releases' worth of budget, several rounds."""

    def release(job: str, project: str, start: threading.Barrier, outcomes: list[str]) -> None:
        own = open_ledger(url, path)
        start.wait()
        try:
            own.charge(job_id=job, analyst="ana", project=project, epsilon=0.1)
            outcomes.append("charged")
        except DisclosureError:
            outcomes.append("refused")
        finally:
            own.engine.dispose()

    for round_ in range(3):
        project = f"round-{round_}"
        ledger.set_budget(analyst="ana", project=project, epsilon=0.5, by="sam", role=Role.STEWARD)
        start = threading.Barrier(8)
        outcomes: list[str] = []
        threads = [
            threading.Thread(target=release, args=(f"{project}-{job}", project, start, outcomes))
            for job in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert outcomes.count("charged") == 5 and outcomes.count("refused") == 3
        left = ledger.remaining(analyst="ana", project=project).epsilon
        assert left == pytest.approx(0.0)


@pytest.mark.parametrize(
    "fields",
    [{"epsilon": -1.0}, {"epsilon": float("inf")}, {"epsilon": 0.0}, {"delta": 1.0}],
)
def test_bad_charges_are_refused(ledger, fields):
    values = {"epsilon": 0.1, "delta": 0.0, **fields}
    with pytest.raises(DisclosureError):
        ledger.charge(job_id="job-1", analyst="ana", project="census", **values)


def test_tables_are_on_the_exported_metadata_and_portable_to_postgresql():
    assert set(ledger_metadata.tables) == {
        "privacy_budget",
        "privacy_budget_change",
        "privacy_charge",
    }
    for table in ledger_metadata.sorted_tables:
        ddl = str(CreateTable(table).compile(dialect=postgresql.dialect()))
        assert "CREATE TABLE" in ddl


def test_ledger_tables_create_beside_other_service_tables(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'service.sqlite'}")
    service = sa.MetaData()
    sa.Table("job", service, sa.Column("job_id", sa.String(64), primary_key=True))
    service.create_all(engine)
    ledger_metadata.create_all(engine)
    ledger = PrivacyLedger(engine)
    ledger.set_budget(analyst="ana", project="p", epsilon=1.0, by="sam", role=Role.STEWARD)
    assert set(sa.inspect(engine).get_table_names()) >= {"job", "privacy_charge"}
