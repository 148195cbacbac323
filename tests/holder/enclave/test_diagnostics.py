"""A failed job's detail: kept in the steward's diagnostics, committed to by the audit log.

A traceback or a stderr tail may quote what the job read; the audit log is read by auditors
and can never be purged, so its ``job.failed`` entry holds only a salted hash of the detail.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from cellcensus.holder.enclave import EnclaveService, JobRequest
from cellcensus.holder.enclave.diagnostics import committed
from cellcensus.holder.enclave.state import now
from cellcensus.holder.enclave.worker import INTERNAL_ERROR

FAKE = "ps-7f3a9c01d2e4"  # stands for a pseudonym that a traceback quotes


@pytest.fixture
def service(state, store):
    made = EnclaveService(store=store, state=state)
    made.set_budget(analyst="alice", project="default", epsilon=2.0, delta=0.0, steward="s")
    return made


def failed_job(service: EnclaveService, detail: str, *, min_nights: int = 2) -> str:
    """A job claimed and failed with `detail`, as a worker's failure is recorded."""
    request = JobRequest(algorithm="usual_residence", parameters={"min_nights": min_nights})
    job = service.submit(analyst="alice", request=request).job
    assert service.book.claim(job.id) is not None
    assert service.book.fail(job.id, error=INTERNAL_ERROR, detail=detail)
    return job.id


def failed_entry(service: EnclaveService, job_id: str):
    (entry,) = [
        entry
        for entry in service.audit.entries()
        if entry.action == "job.failed" and entry.target == f"job:{job_id}"
    ]
    return entry


def test_a_failed_jobs_detail_is_in_the_diagnostics_not_the_audit_log(service, state):
    job_id = failed_job(service, f"Traceback (most recent call last):\nKeyError: '{FAKE}'")
    chain = json.dumps([entry.to_dict() for entry in service.audit.entries()])
    assert FAKE not in chain
    entry = failed_entry(service, job_id)
    assert entry.details["error"] == INTERNAL_ERROR  # what the analyst reads too
    found = service.diagnostics.get(job_id)
    assert found is not None and FAKE in found.detail
    assert found.matches(entry.details["detail_sha256"])
    assert committed(state, job_id) == entry.details["detail_sha256"]
    assert service.audit.verify().ok


def test_the_audit_entry_does_not_confirm_a_guessed_detail(service):
    # A module that prints only a value: an unsalted hash would let auditors test guesses.
    first, second = failed_job(service, FAKE), failed_job(service, FAKE, min_nights=3)
    digests = {failed_entry(service, job).details["detail_sha256"] for job in (first, second)}
    assert hashlib.sha256(FAKE.encode()).hexdigest() not in digests
    assert len(digests) == 2


def test_a_failure_without_detail_has_no_diagnostics(service):
    job = service.submit(analyst="alice", request=JobRequest(algorithm="usual_residence")).job
    service.book.fail(job.id, error="the store has no such level")
    assert failed_entry(service, job.id).details == {"error": "the store has no such level"}
    assert service.diagnostics.get(job.id) is None


def test_a_purge_deletes_the_diagnostics_of_jobs_started_before_it(service):
    job_id = failed_job(service, FAKE)
    started = service.book.get(job_id).started_at
    assert service.diagnostics.purge(started_before=started) == 0  # started not before it
    assert service.diagnostics.purge(started_before=now(), dry_run=True) == 1
    assert service.diagnostics.get(job_id) is not None
    assert service.diagnostics.purge(started_before=now()) == 1
    assert service.diagnostics.get(job_id) is None
    assert service.audit.verify().ok  # the entry stays, committing to what is gone
