"""A steward's policy changes: what is not changed keeps the algorithm's default, noise first."""

from __future__ import annotations

from test_app import submit  # type: ignore[import-not-found]


def test_a_stricter_threshold_keeps_the_noise(service):
    steward, alice = service.auth("steward"), service.auth("alice")
    change = {"disclosure": {"min_count": 20}, "require_approval": True}
    answer = service.client.put("/policies/usual_residence", json=change, headers=steward)
    assert answer.status_code == 200, answer.text
    in_force = answer.json()["disclosure"]
    assert in_force["min_count"] == 20
    assert in_force["dp"]["epsilon"] > 0  # was null: the release went out without noise
    job = service.wait(submit(service, alice)["id"], alice)
    assert job["status"] == "awaiting_approval" and job["epsilon"] == in_force["dp"]["epsilon"]
    listed = service.client.get("/policies", headers=steward).json()["policies"]
    assert listed == [
        {
            "algorithm": "usual_residence",
            "disclosure": {"min_count": 20},  # the change, not a whole policy
            "require_approval": True,
            "allowed_certifications": ["certified"],
        }
    ]


def test_a_change_for_all_keeps_each_algorithms_mechanism(service):
    steward = service.auth("steward")
    change = {"disclosure": {"dp": {"epsilon": 0.25}}}
    assert service.client.put("/policies/*", json=change, headers=steward).status_code == 200
    hourly = service.client.get("/policies/present_population", headers=steward).json()
    assert hourly["disclosure"]["dp"]["epsilon"] == 0.25
    assert hourly["disclosure"]["dp"]["mechanism"] == "gaussian"  # was laplace, delta 0
    assert hourly["disclosure"]["dp"]["delta"] > 0
    residents = service.client.get("/policies/usual_residence", headers=steward).json()
    assert residents["disclosure"]["dp"]["mechanism"] == "laplace"


def test_only_an_explicit_null_removes_the_noise(service):
    steward = service.auth("steward")
    exact = {"disclosure": {"dp": None}}
    answer = service.client.put("/policies/usual_residence", json=exact, headers=steward)
    assert answer.status_code == 200 and answer.json()["disclosure"]["dp"] is None


def test_a_policy_for_an_unknown_algorithm_is_refused(service):
    steward = service.auth("steward")
    answer = service.client.put("/policies/usual_residnce", json={}, headers=steward)
    assert answer.status_code in (404, 422), answer.text
    assert "known algorithms: " in answer.json()["detail"]
    assert service.client.get("/policies", headers=steward).json()["policies"] == []
