"""Jobs in the state database: caching, de-duplication, approval, recovery, budget."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from cellcensus.errors import CellcensusError, DisclosureError
from cellcensus.holder.enclave import Enclave, EnclaveService, JobRequest, JobStatus
from cellcensus.holder.enclave.state import open_state
from cellcensus.holder.enclave.worker import run_in_subprocess
from cellcensus.holder.store.device_days import summarise
from cellcensus.holder.store.layout import Store
from cellcensus.holder.store.retention import purge
from cellcensus.release import Release, published_period

REQUEST = JobRequest(algorithm="usual_residence", parameters={"min_nights": 2})


@pytest.fixture
def service(state, store):
    made = EnclaveService(store=store, state=state, limits=None)
    made.set_budget(analyst="alice", project="default", epsilon=2.0, delta=0.0, steward="s")
    return made


def json_list(value):
    """A JSON column as the driver returns it: text on SQLite, a list on PostgreSQL."""
    return json.loads(value) if isinstance(value, str) else value


def charges(state, job_id):
    with state.read() as conn:
        return conn.execute(
            sa.text("SELECT count(*) FROM privacy_charge WHERE job_id = :j"), {"j": job_id}
        ).scalar()


def test_identical_run_returns_the_cached_release_without_a_second_charge(service, state):
    first = service.run_inline(analyst="alice", request=REQUEST)
    left = service.budget_left(analyst="alice", project="default")
    second = service.run_inline(analyst="alice", request=REQUEST)
    assert second.provenance.job_id == first.provenance.job_id
    assert service.budget_left(analyst="alice", project="default") == left
    assert charges(state, first.provenance.job_id) == 1
    jobs = service.book.recent()
    assert [job.cached_from for job in jobs] == [first.provenance.job_id, None]


def test_identical_job_in_flight_is_reused(service):
    one = service.submit(analyst="alice", request=REQUEST)
    two = service.submit(analyst="alice", request=REQUEST)
    assert two.reused and two.job.id == one.job.id
    service.set_budget(analyst="bob", project="default", epsilon=1.0, delta=0.0, steward="s")
    other = service.submit(analyst="bob", request=REQUEST).job
    assert other.id != one.job.id and other.cached_from == one.job.id  # follows alice's
    assert service.book.claim_next().id == one.job.id
    assert service.book.claim_next() is None  # followers are never computed
    service.book.fail(one.job.id, error="boom")
    assert service.book.get(other.id).status is JobStatus.FAILED


def test_interrupted_job_is_requeued_then_failed_never_released(service):
    job = service.submit(analyst="alice", request=REQUEST).job
    for expected in (JobStatus.QUEUED, JobStatus.FAILED):
        assert service.book.claim_next().id == job.id
        assert service.recover() == [job.id]
        assert service.book.get(job.id).status is expected
    assert service.book.get(job.id).release_id is None
    with pytest.raises(CellcensusError, match="nothing is released"):
        service.release_of(service.book.get(job.id))


def test_a_job_that_fails_once_charged_stays_charged_and_releases_nothing(state, store, tmp_path):
    copy = shutil.copytree(store, tmp_path / "store")
    key = copy / "enclave" / "rounding.key"
    key.parent.mkdir(exist_ok=True)
    key.write_text("00" * 32)
    key.chmod(0o644)  # refused once the counts are computed: a failure after the charge
    service = EnclaveService(store=copy, state=state, limits=None)
    service.set_budget(analyst="alice", project="default", epsilon=2.0, delta=0.0, steward="s")
    with pytest.raises(CellcensusError, match="readable by others"):
        service.run_inline(analyst="alice", request=REQUEST)
    (job,) = service.book.recent()
    assert job.status is JobStatus.FAILED and job.release_id is None
    assert charges(state, job.id) == 1  # no refund: the failure came after the events were read
    # Where the holder keeps the store is for neither the analyst nor the auditor.
    (failed,) = [entry for entry in service.audit.entries() if entry.action == "job.failed"]
    for said in (job.error, failed.details["error"]):
        assert "STORE/enclave/rounding.key is readable by others" in said
        assert str(tmp_path) not in said
    assert service.budget_left(analyst="alice", project="default") == pytest.approx((1.6, 0.0))


def test_refused_requests_are_audited(service):
    with pytest.raises(CellcensusError, match="min_nights"):
        service.submit(analyst="alice", request=JobRequest("usual_residence", {"min_nights": 0}))
    with pytest.raises(CellcensusError, match="no province2"):
        service.submit(
            analyst="alice", request=JobRequest("usual_residence", {}, level="province2")
        )
    actions = [entry.action for entry in service.audit.entries()]
    assert actions.count("job.refused") == 2


def test_no_budget_is_refused_before_queueing(service):
    with pytest.raises(DisclosureError, match="budget"):
        service.submit(analyst="carol", request=REQUEST)
    assert service.book.recent(analyst="carol") == []


def test_a_refusal_for_budget_is_audited(service):
    service.set_budget(analyst="alice", project="default", epsilon=0.01, delta=0.0, steward="s")
    with pytest.raises(DisclosureError, match="budget") as refused:
        service.submit(analyst="alice", request=REQUEST)
    entry = service.audit.entries()[-1]
    assert (entry.actor, entry.action, entry.target) == (
        "alice",
        "job.refused",
        "algorithm:usual_residence",
    )
    # As the holder was told it, but for where the store is.
    assert entry.details["reason"] == str(refused.value).replace(str(service.store_root), "STORE")
    assert "--store STORE`" in entry.details["reason"]
    assert entry.details["project"] == "default"


def test_held_release_is_released_only_on_approval(service):
    service.policies.set(
        "*",
        {"disclosure": {"min_count": 15, "rounding_base": 5}, "require_approval": True},
        steward="s",
    )
    with pytest.raises(CellcensusError, match="held for the steward"):
        service.run_inline(analyst="alice", request=REQUEST)
    job = service.book.recent()[0]
    assert job.status is JobStatus.AWAITING_APPROVAL
    assert job.formats == ()  # held: nothing is served yet
    decided = service.decide(job.id, steward="s", approve=True, reason="checked")
    assert decided.status is JobStatus.RELEASED and decided.decided_by == "s"
    assert service.release_of(decided)
    assert decided.formats == ("json", "csv", "geojson", "parquet")


def test_formats_are_stored_with_a_release_and_listing_jobs_reads_no_release(service, state):
    service.run_inline(analyst="alice", request=REQUEST)
    service.run_inline(analyst="alice", request=JobRequest(algorithm="device_filter"))
    service.run_inline(analyst="alice", request=REQUEST)  # cached: shares the first release
    with state.read() as conn:
        stored = dict(conn.execute(sa.text("SELECT id, formats FROM releases")).all())
    assert len(stored) == 2
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        statements.append(statement)

    sa.event.listen(state.engine, "before_cursor_execute", record)
    try:
        listed = EnclaveService(store=service.store_root, state=state).book.recent()
    finally:
        sa.event.remove(state.engine, "before_cursor_execute", record)
    assert [job.formats for job in listed] == [
        ("json", "csv", "geojson", "parquet"),  # usual_residence (cached): by area
        ("json", "csv", "parquet"),  # device_filter: no area column, no GeoJSON
        ("json", "csv", "geojson", "parquet"),
    ]
    assert listed[0].cached_from == listed[2].id
    for job in listed:
        assert list(job.formats) == json_list(stored[job.release_id])
    assert statements and not any("releases.body" in text for text in statements)


def test_enclave_run_keeps_the_in_process_call(store, tmp_path):
    enclave = Enclave(store=store, state_url=f"sqlite:///{tmp_path / 'e.db'}")
    release = enclave.run(algorithm="usual_residence", parameters={}, analyst="demo")
    assert enclave.service.budget_left(analyst="demo", project="default")[0] < 2.0
    assert list(release.table.area_code) == ["11001", "11002", "21004"]
    assert release.published["market_share"] == 0.4
    with pytest.raises(CellcensusError, match="unknown algorithm"):
        enclave.run(algorithm="nope", parameters={}, analyst="demo")
    strict = Enclave(store=store, state_url=f"sqlite:///{tmp_path / 's.db'}", embedded_epsilon=None)
    with pytest.raises(DisclosureError, match="budget"):
        strict.run(algorithm="usual_residence", parameters={}, analyst="demo")


def test_release_with_several_keys_covers_their_whole_public_product(store, tmp_path):
    enclave = Enclave(store=store, state_url=f"sqlite:///{tmp_path / 'k.db'}")
    release = enclave.run(
        algorithm="present_population", parameters={"slot_minutes": 1440}, analyst="demo"
    )
    table = release.table
    assert list(table.columns[:3]) == ["local_date", "slot", "area_code"]
    assert len(table) == 7 * 1 * 3  # every date x slot x area, present or not
    assert table["slot"].dtype == "int64"


def test_names_wider_than_their_columns_are_refused_clearly(service, state):
    """PostgreSQL enforces column widths (SQLite does not): refuse before the database does."""
    long_project = JobRequest("usual_residence", {"min_nights": 2}, project="p" * 65)
    with pytest.raises(CellcensusError, match=r"project 'ppp.*at most 64 characters"):
        service.submit(analyst="alice", request=long_project)
    with pytest.raises(CellcensusError, match=r"analyst .*at most 64 characters"):
        service.submit(analyst="a" * 65, request=REQUEST)
    source = "Manifest(name='wide_version', version='1.0." + "9" * 40 + "')"
    with pytest.raises(CellcensusError, match="at most 32 characters"):
        service.submissions.submit(source=source, analyst="alice", reserved=set())
    assert [entry.actor for entry in service.audit.entries()][-1] == "a" * 64


def test_a_level_that_lost_its_allocation_before_the_run_tells_the_analyst_to_ask(store, tmp_path):
    # Checked again when the worker runs the job: its error reaches the analyst too.
    copy = Path(shutil.copytree(store, tmp_path / "store"))
    state = open_state(f"sqlite:///{tmp_path / 'state.db'}")
    service = EnclaveService(store=copy, state=state, reader="analyst")
    service.set_budget(analyst="alice", project="default", epsilon=2.0, delta=0.0, steward="s")
    job = service.submit(analyst="alice", request=REQUEST).job
    Store(copy).allocation_path("municipality").unlink()
    spec = service.worker_spec(job, charge=None)
    outcome = run_in_subprocess(spec, timeout_s=120.0, on_stage=lambda _stage: None)
    assert outcome.result is None and outcome.error is not None
    assert "ask the data holder to allocate the municipality level" in outcome.error
    assert "cellcensus store allocate" not in outcome.error
    state.engine.dispose()


def released_on_a_copy(state, store, tmp_path) -> tuple[Path, EnclaveService, Release]:
    """A copy of the store, a service on it, and REQUEST's release there."""
    copy = Path(shutil.copytree(store, tmp_path / "store"))
    service = EnclaveService(store=copy, state=state, limits=None)
    service.set_budget(analyst="alice", project="default", epsilon=2.0, delta=0.0, steward="s")
    return copy, service, service.run_inline(analyst="alice", request=REQUEST)


def test_a_job_without_dates_asked_again_of_other_stored_days_is_computed_again(
    state, store, tmp_path
):
    copy, service, first = released_on_a_copy(state, store, tmp_path)
    days = Store(copy).days()

    purge(store=copy, before=days[1])  # the store holds other days now: not the same question
    again = service.run_inline(analyst="alice", request=REQUEST)

    assert again.provenance.job_id != first.provenance.job_id
    assert published_period(again.published) == (days[1], days[-1])
    assert published_period(first.published) == (days[0], days[-1])
    assert service.book.recent()[0].cached_from is None


def test_a_job_asked_again_after_a_stored_day_was_delivered_anew_is_computed_again(
    state, store, tmp_path
):
    # A corrected delivery of days the store holds replaces them: the same days, other
    # events. The release of the events replaced is not the answer to the question now.
    copy, service, first = released_on_a_copy(state, store, tmp_path)
    held = Store(copy)
    day = held.days()[-1]
    events = pq.read_table(held.day_path(day))
    pq.write_table(events.slice(0, events.num_rows // 2), held.day_path(day))
    summarise(held)

    again = service.run_inline(analyst="alice", request=REQUEST)

    assert held.days() == Store(store).days()  # the same days
    assert again.provenance.job_id != first.provenance.job_id
    assert service.book.recent()[0].cached_from is None


def test_a_held_run_says_how_to_get_its_release_once_decided(service):
    # `cellcensus run` under require_approval: the holder learns that running the command
    # again after the steward's approval writes the release, at no further charge.
    service.policies.set("*", {"require_approval": True}, steward="s")
    with pytest.raises(CellcensusError) as held:
        service.run_inline(analyst="alice", request=REQUEST)
    job = service.book.recent()[0]
    for said in (str(held.value), _refusal(service)):
        assert f"POST /approvals/{job.id}" in said and "run it again" in said
    left = service.ledger.remaining(analyst="alice", project="default")
    service.decide(job.id, steward="s", approve=True, reason="checked")
    release = service.run_inline(analyst="alice", request=REQUEST)
    assert release.provenance.job_id == job.id
    assert service.ledger.remaining(analyst="alice", project="default") == left


def _refusal(service) -> str:
    with pytest.raises(CellcensusError) as again:
        service.run_inline(analyst="alice", request=REQUEST)
    return str(again.value)
