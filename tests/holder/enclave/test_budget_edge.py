"""The service's early budget check and the ledger agree at the edge of a budget."""

from __future__ import annotations

import re

import pytest

from cellcensus.errors import DisclosureError
from cellcensus.holder.enclave import EnclaveService, JobRequest, JobStatus


@pytest.fixture
def service(state, store):
    return EnclaveService(store=store, state=state)


def spend(service: EnclaveService, times: int, epsilon: float) -> None:
    """Charge `times` earlier releases of `epsilon` to alice (as if they had run)."""
    for number in range(times):
        service.ledger.charge(
            job_id=f"earlier-{number}", analyst="alice", project="default", epsilon=epsilon
        )


def request(min_nights: int) -> JobRequest:
    return JobRequest(algorithm="usual_residence", parameters={"min_nights": min_nights})


def test_the_release_that_spends_exactly_the_rest_is_queued_and_charged(service):
    service.set_budget(analyst="alice", project="default", epsilon=2.0, delta=0.0, steward="s")
    cost = service.prepare(analyst="alice", request=request(1)).epsilon
    times = round(2.0 / cost) - 1
    spend(service, times, cost)  # 2.0 - 4 x 0.4 is 0.3999...: the rest is exactly one release
    job = service.submit(analyst="alice", request=request(2)).job
    assert job.status is JobStatus.QUEUED
    claimed = service.book.claim(job.id)
    assert claimed is not None and service.charge(claimed) is not None
    assert service.budget_left(analyst="alice", project="default")[0] == pytest.approx(0.0)


def test_a_refusal_never_reads_as_if_the_cost_were_left(service):
    cost = service.prepare(analyst="alice", request=request(1)).epsilon
    service.set_budget(
        analyst="alice", project="default", epsilon=2 * cost - 1e-6, delta=0.0, steward="s"
    )
    spend(service, 1, cost)
    with pytest.raises(DisclosureError, match="exhausted") as refused:
        service.submit(analyst="alice", request=request(2))
    message = str(refused.value)
    assert f"epsilon {cost:g}, delta 0; epsilon {cost - 1e-6:.7g}" in message
    assert f"{cost:g} left" not in message
    assert service.book.recent(analyst="alice") == []
    # The command it names grants what this release needs, and no more than that.
    command = re.search(r"`cellcensus users budget alice (.*?)`", message)
    assert command is not None
    options = dict(re.findall(r"--(\w+) (\S+)", command.group(1)))
    assert options["project"] == "default" and float(options["delta"]) == 0.0
    assert options["store"] == str(service.store_root)  # without it, it fails as given
    service.set_budget(
        analyst="alice",
        project="default",
        epsilon=float(options["epsilon"]),
        delta=0.0,
        steward="s",
    )
    job = service.submit(analyst="alice", request=request(2)).job
    claimed = service.book.claim(job.id)
    assert claimed is not None and service.charge(claimed) is not None
    assert service.budget_left(analyst="alice", project="default")[0] < 1e-6


GAUSSIAN = JobRequest(algorithm="present_population", project="census-2011")


def test_a_project_without_budget_names_the_projects_that_have_one(service):
    with pytest.raises(DisclosureError) as refused:
        service.submit(analyst="alice", request=GAUSSIAN)
    assert str(refused.value).startswith(
        "no privacy budget for project 'census-2011', nor in any other project: ask the steward"
    )
    # The holder pastes the command as it is; auditors read where the store is as STORE.
    assert f"--epsilon E --delta D --store {service.store_root}`" in str(refused.value)
    (audited,) = [entry for entry in service.audit.entries() if entry.action == "job.refused"]
    assert "--epsilon E --delta D --store STORE`" in audited.details["reason"]
    service.set_budget(analyst="alice", project="default", epsilon=2.0, delta=0.0, steward="s")
    with pytest.raises(DisclosureError) as refused:
        service.submit(analyst="alice", request=GAUSSIAN)
    assert "no privacy budget for project 'census-2011'; you have budgets in: default" in str(
        refused.value
    )


def test_a_budget_without_delta_says_the_release_needs_delta_and_how_to_grant_it(service):
    service.set_budget(analyst="alice", project="census-2011", epsilon=2, delta=0, steward="s")
    cost = service.prepare(analyst="alice", request=GAUSSIAN)
    with pytest.raises(DisclosureError) as refused:
        service.submit(analyst="alice", request=GAUSSIAN)
    message = str(refused.value)
    assert "exhausted" not in message
    assert f"this release needs delta {cost.delta:g}" in message
    command = (
        f"cellcensus users budget alice --project census-2011 --epsilon 2 --delta {cost.delta:g}"
    )
    assert f"{command} --store {service.store_root}`" in message
    service.set_budget(  # what the message says to run
        analyst="alice", project="census-2011", epsilon=2, delta=cost.delta, steward="s"
    )
    assert service.submit(analyst="alice", request=GAUSSIAN).job.status is JobStatus.QUEUED
