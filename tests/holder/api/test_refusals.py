"""POST /jobs refuses what the store cannot serve before anything is charged, as the CLI does."""

from __future__ import annotations

import pytest

POSTERIOR = {"algorithm": "usual_residence", "parameters": {"spatial_estimator": "posterior"}}
LATE = {"algorithm": "usual_residence", "parameters": {"start": "2011-03-20"}}
PROVINCE_POSTERIOR = {**POSTERIOR, "level": "province"}


@pytest.mark.parametrize(
    ("body", "refusal"),
    [
        (
            POSTERIOR,
            "needs the store's tile footprint of its current cells (made again after "
            "an ingest that changes the cells): ask the data holder to make it",
        ),
        (LATE, "holds none of the days in store"),
        (PROVINCE_POSTERIOR, "only supports the municipality level"),
    ],
)
def test_a_job_the_store_cannot_serve_is_refused_at_no_cost(service, body, refusal):
    headers = service.auth("bob")  # scopes usual_residence at any level and period
    for _ in range(2):
        answer = service.client.post("/jobs", json=body, headers=headers)
        assert answer.status_code == 422, answer.text
        assert refusal in answer.json()["detail"]
    me = service.client.get("/me", headers=headers).json()
    assert me["budget"][0]["epsilon_left"] == pytest.approx(2.0)
    assert service.client.get("/jobs", headers=headers).json()["jobs"] == []
    audit = service.client.get("/audit", headers=service.auth("auditor")).json()["entries"]
    refused = [entry for entry in audit if entry["action"] == "job.refused"]
    assert len(refused) == 2 and refusal in refused[0]["details"]["reason"]


def test_scopes_naming_no_algorithm_or_level_are_refused(idle_service):
    steward = idle_service.auth("steward")
    put = idle_service.client.put
    for scope, refusal in (
        ("usual_residnce:municipality:*", "unknown algorithm 'usual_residnce'"),
        ("usual_residence:municipalty:*", "unknown area level 'municipalty'"),
    ):
        answer = put("/users/bob/scopes", json={"scopes": [scope]}, headers=steward)
        assert answer.status_code == 422 and refusal in answer.json()["detail"]
    kept = idle_service.client.get("/users/bob", headers=steward).json()["scopes"]
    assert kept == ["usual_residence:*:*"]
    ahead = put("/users/bob/scopes", json={"scopes": ["*:region:*"]}, headers=steward)
    assert ahead.status_code == 200 and ahead.json()["scopes"] == ["*:region:*"]


@pytest.mark.parametrize(
    ("period", "refusal"),
    [
        ("2011-13-01..2011-03-31", "2011-13-01 is not a date (month must be in 1..12)"),
        ("2011-03-31..2011-03-01", "the period starts (2011-03-31) after it ends (2011-03-01)"),
    ],
)
def test_a_scope_with_a_bad_period_is_a_problem_document(idle_service, period, refusal):
    steward = idle_service.auth("steward")
    scope = f"usual_residence:municipality:{period}"
    answer = idle_service.client.put(
        "/users/alice/scopes", json={"scopes": [scope]}, headers=steward
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    detail = answer.json()["detail"]
    assert refusal in detail and scope in detail
    assert "ALGORITHM:LEVEL:YYYY-MM-DD..YYYY-MM-DD" in detail


@pytest.mark.parametrize(
    ("level", "advice"),
    [
        ("arrondissement", "(ask the data holder to allocate the arrondissement level)"),
        ("grid", "the INSPIRE 1 km grid's level is inspire_1km; for areas of your own, ask"),
    ],
)
def test_a_level_without_allocation_tells_the_analyst_to_ask_the_holder(
    idle_service, level, advice
):
    # The holder's command line names `cellcensus store allocate` (tests/holder/algorithms/
    # test_run_refusals.py); an analyst of the service cannot run it.
    body = {"algorithm": "usual_residence", "level": level}
    answer = idle_service.client.post("/jobs", json=body, headers=idle_service.auth("bob"))
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert f"no {level} allocation in store STORE" in detail and advice in detail
    assert "cellcensus" not in detail
