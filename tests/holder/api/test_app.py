"""The service in process (TestClient): jobs, formats, caching, approvals, governance."""

from __future__ import annotations

import io
import json

import pyarrow.parquet as pq
import pytest

from cellcensus.release import Release

JOB = {"algorithm": "usual_residence", "parameters": {"min_nights": 2}}

# The tests that touch most of the state (users, tokens, jobs, ledger, audit) run on both
# backends; "postgresql" starts a private server (tests/holder/conftest.py).
BOTH_BACKENDS = pytest.mark.parametrize("backend", ["sqlite", "postgresql"])


def submit(service, headers, body=None):
    answer = service.client.post("/jobs", json=body or JOB, headers=headers)
    assert answer.status_code == 202, answer.text
    assert answer.headers["location"] == f"/jobs/{answer.json()['id']}"
    return answer.json()


def test_health_and_openapi(idle_service):
    service = idle_service
    assert service.client.get("/health").json()["status"] == "ok"
    spec = service.client.get("/openapi.json").json()
    assert "/jobs" in spec["paths"] and "Problem" in spec["components"]["schemas"]


def test_the_bare_address_lists_entry_points_that_answer(idle_service):
    index = idle_service.client.get("/")
    assert index.status_code == 200
    links = index.json()["links"]
    assert {"health", "transparency_page", "openapi"} <= set(links)
    for name, path in links.items():
        answer = idle_service.client.request("POST" if name == "login" else "GET", path, json={})
        assert answer.status_code != 404, (name, path)


def test_a_browser_opening_the_bare_address_lands_on_the_portal(idle_service):
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    opened = idle_service.client.get("/", headers={"Accept": browser}, follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"] == "portal/"
    landed = idle_service.client.get("/", headers={"Accept": browser})
    assert landed.status_code == 200 and "text/html" in landed.headers["content-type"]
    for accept in ("application/json", "*/*", "application/json, text/html"):
        answer = idle_service.client.get("/", headers={"Accept": accept})
        assert answer.json()["links"]["portal"] == "/portal/", accept


@BOTH_BACKENDS
def test_job_runs_and_result_comes_in_every_format(service):
    headers = service.auth("alice")
    job = submit(service, headers)
    done = service.wait(job["id"], headers)
    assert done["status"] == "released", done
    assert done["links"]["result"] == f"/jobs/{job['id']}/result"
    url = done["links"]["result"]
    release = Release.from_json(service.client.get(url, headers=headers).text)
    assert list(release.table.area_code) == ["11001", "11002", "21004"]
    assert release.provenance.job_id == job["id"]
    csv = service.client.get(url, params={"format": "csv"}, headers=headers)
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0].startswith("area_code,device_count")
    assert json.loads(csv.headers["cellcensus-provenance"])["algorithm"] == "usual_residence"
    geo = service.client.get(url, headers={**headers, "Accept": "application/geo+json"}).json()
    assert geo["type"] == "FeatureCollection" and len(geo["features"]) == 3
    parquet = service.client.get(url, params={"format": "parquet"}, headers=headers)
    table = pq.read_table(io.BytesIO(parquet.content))
    assert b"cellcensus.provenance" in table.schema.metadata


@BOTH_BACKENDS
def test_identical_request_reuses_release_without_spending_budget(service):
    headers = service.auth("alice")
    first = service.wait(submit(service, headers)["id"], headers)
    left = service.client.get("/me", headers=headers).json()["budget"][0]["epsilon_left"]
    second = submit(service, headers)
    assert second["status"] == "released" and second["cached_from"] == first["id"]
    assert second["epsilon"] == 0.0
    again = service.client.get("/me", headers=headers).json()["budget"][0]["epsilon_left"]
    assert again == left < 2.0
    body_1 = service.client.get(f"/jobs/{first['id']}/result", headers=headers).text
    body_2 = service.client.get(f"/jobs/{second['id']}/result", headers=headers).text
    assert body_1 == body_2
    bob = service.auth("bob")  # another analyst asking the identical question shares it
    third = submit(service, bob)
    assert third["status"] == "released" and third["cached_from"] == first["id"]
    body_3 = service.client.get(f"/jobs/{third['id']}/result", headers=bob).json()
    assert body_3["provenance"]["job_id"] == first["id"]


def test_result_before_release_is_a_conflict_problem(service):
    headers = service.auth("alice")
    steward = service.auth("steward")
    policy = {"disclosure": {"min_count": 15, "rounding_base": 5}, "require_approval": True}
    assert service.client.put("/policies/*", json=policy, headers=steward).status_code == 200
    job = submit(service, headers)
    held = service.wait(job["id"], headers)
    assert held["status"] == "awaiting_approval"
    answer = service.client.get(f"/jobs/{job['id']}/result", headers=headers)
    assert answer.status_code == 409
    assert answer.headers["content-type"] == "application/problem+json"
    assert "awaiting_approval" in answer.json()["detail"]


@BOTH_BACKENDS
def test_steward_approves_or_rejects_held_releases(service):
    alice, bob, steward = (service.auth(name) for name in ("alice", "bob", "steward"))
    policy = {"disclosure": {"min_count": 15, "rounding_base": 5}, "require_approval": True}
    service.client.put("/policies/usual_residence", json=policy, headers=steward)
    kept = service.wait(submit(service, alice)["id"], alice)
    other = {**JOB, "parameters": {"min_nights": 3}}
    dropped = service.wait(submit(service, bob, other)["id"], bob)
    queue = service.client.get("/approvals", headers=steward).json()["approvals"]
    assert {item["job"]["id"] for item in queue} == {kept["id"], dropped["id"]}
    assert all(len(item["release"]["table"]) == 3 for item in queue)
    decide = service.client.post
    ok = decide(
        f"/approvals/{kept['id']}", json={"approve": True, "reason": "fine"}, headers=steward
    )
    assert ok.json()["status"] == "released"
    no = decide(
        f"/approvals/{dropped['id']}",
        json={"approve": False, "reason": "too fine"},
        headers=steward,
    )
    assert no.json()["status"] == "rejected"
    assert service.client.get(f"/jobs/{kept['id']}/result", headers=alice).status_code == 200
    assert service.client.get(f"/jobs/{dropped['id']}/result", headers=bob).status_code == 409
    again = decide(
        f"/approvals/{kept['id']}", json={"approve": True, "reason": "x"}, headers=steward
    )
    assert again.status_code == 409


def test_a_rejected_job_tells_its_analyst_why_and_that_nothing_will_come(service):
    alice, steward = service.auth("alice"), service.auth("steward")
    policy = {"require_approval": True}
    service.client.put("/policies/usual_residence", json=policy, headers=steward)
    held = service.wait(submit(service, alice)["id"], alice)
    answer = service.client.get(f"/jobs/{held['id']}/result", headers=alice)
    assert answer.status_code == 409 and "poll" in answer.json()["detail"]  # not yet
    reason = "the smallest areas could identify a household"
    decision = {"approve": False, "reason": reason}
    service.client.post(f"/approvals/{held['id']}", json=decision, headers=steward)
    job = service.client.get(f"/jobs/{held['id']}", headers=alice).json()
    assert job["status"] == "rejected" and reason in job["error"]
    answer = service.client.get(f"/jobs/{held['id']}/result", headers=alice)
    assert answer.status_code == 409
    detail = answer.json()["detail"]
    assert reason in detail and "never" in detail and "poll" not in detail


@BOTH_BACKENDS
def test_budget_exhausted_is_refused_with_what_is_left(idle_service):
    service = idle_service
    headers = service.auth("alice")
    steward = service.auth("steward")
    answer = service.client.put("/users/alice/budget", json={"epsilon": 0.1}, headers=steward)
    assert answer.json()["epsilon_left"] == pytest.approx(0.1)
    refused = service.client.post("/jobs", json=JOB, headers=headers)
    assert refused.status_code == 403
    assert "budget" in refused.json()["detail"]
    audit = service.client.get("/audit", headers=service.auth("auditor")).json()["entries"]
    recorded = [entry for entry in audit if entry["action"] == "job.refused"]
    assert [entry["details"]["reason"] for entry in recorded] == [refused.json()["detail"]]


def test_me_lists_every_project_with_a_budget_before_any_job(idle_service):
    service = idle_service
    steward = service.auth("steward")
    grant = {"epsilon": 2, "delta": 1e-5, "project": "census-2011"}
    answer = service.client.put("/users/alice/budget", json=grant, headers=steward)
    assert answer.status_code == 200, answer.text
    budget = service.client.get("/me", headers=service.auth("alice")).json()["budget"]
    assert [item["project"] for item in budget] == ["census-2011", "default"]
    assert budget[0]["epsilon_left"] == pytest.approx(2.0)
    assert budget[0]["delta_left"] == pytest.approx(1e-5)
    others = service.client.get("/me", headers=service.auth("bob")).json()["budget"]
    assert [item["project"] for item in others] == ["default"]


def test_a_steward_reads_each_analysts_budgets_total_and_left(service):
    steward = service.auth("steward")
    grant = {"epsilon": 2, "delta": 1e-5, "project": "census-2011"}
    assert service.client.put("/users/alice/budget", json=grant, headers=steward).is_success
    before = service.client.get("/users/alice/budget", headers=steward).json()["budgets"]
    alice = service.auth("alice")
    job = service.wait(submit(service, alice)["id"], alice)
    after = service.client.get("/users/alice/budget", headers=steward).json()["budgets"]
    assert [item["project"] for item in after] == ["census-2011", "default"]
    census, default = after
    assert census == {
        "project": "census-2011",
        "epsilon_total": 2.0,
        "delta_total": 1e-5,
        "epsilon_left": 2.0,
        "delta_left": 1e-5,
    }
    # The job spent its epsilon in the default project: the total stays, the rest falls.
    assert default["epsilon_total"] == before[1]["epsilon_total"] > 0
    spent = default["epsilon_total"] - default["epsilon_left"]
    assert spent == pytest.approx(job["epsilon"]) and spent > 0
    me = service.client.get("/me", headers=alice).json()["budget"]
    assert [item["epsilon_left"] for item in me] == [item["epsilon_left"] for item in after]
    # Every analyst's at once: the same figures, by analyst then project.
    every = service.client.get("/budgets", headers=steward).json()["budgets"]
    assert [(item["analyst"], item["project"]) for item in every] == [
        ("alice", "census-2011"),
        ("alice", "default"),
        ("bob", "default"),
    ]
    assert [{**item, "analyst": None} for item in every[:2]] == [
        {**item, "analyst": None} for item in after
    ]
    bob = service.client.get("/users/bob/budget", headers=steward).json()["budgets"]
    assert {key: every[2][key] for key in bob[0]} == bob[0]


def test_a_store_wide_budget_counts_every_analyst_and_refuses_beyond_it(service):
    steward, alice = service.auth("steward"), service.auth("alice")
    unset = service.client.get("/budgets/total", headers=steward)
    assert unset.status_code == 404 and "no store-wide privacy budget" in unset.json()["detail"]
    first = service.wait(submit(service, alice)["id"], alice)
    assert first["status"] == "released" and first["epsilon"] > 0
    cap = {"epsilon": 1.5 * first["epsilon"]}
    total = service.client.put("/budgets/total", json=cap, headers=steward).json()
    # The release before it counts: half a release is left, for all analysts together.
    assert total["epsilon_total"] == pytest.approx(cap["epsilon"])
    assert total["epsilon_left"] == pytest.approx(0.5 * first["epsilon"])
    assert service.client.get("/budgets/total", headers=steward).json() == total
    bob = service.auth("bob")
    body = {**JOB, "parameters": {"min_nights": 3}}
    refused = service.client.post("/jobs", json=body, headers=bob)
    assert refused.status_code == 403
    assert refused.json()["detail"].startswith("the store-wide privacy budget is exhausted")
    # Bob's own budget is untouched; the audit log has the steward's setting.
    assert service.client.get("/me", headers=bob).json()["budget"][0]["epsilon_left"] > 0
    audit = service.client.get("/audit", headers=service.auth("auditor")).json()["entries"]
    assert [e["details"] for e in audit if e["action"] == "budget.total_set"] == [
        {"epsilon": cap["epsilon"], "delta": 0.0}
    ]
    for who in (alice, bob, service.auth("auditor")):
        assert service.client.put("/budgets/total", json=cap, headers=who).status_code == 403


def test_budgets_are_read_by_stewards_only_and_of_analysts_only(service):
    steward = service.auth("steward")
    alice = service.auth("alice")
    refused = service.client.get("/users/alice/budget", headers=alice)
    assert refused.status_code == 403
    assert service.client.get("/budgets", headers=alice).status_code == 403
    assert service.client.get("/budgets", headers=service.auth("auditor")).status_code == 403
    own = service.client.get("/users/steward/budget", headers=steward)
    assert own.status_code == 422 and "budgets are for analysts" in own.json()["detail"]
    nobody = service.client.get("/users/nobody/budget", headers=steward)
    assert nobody.status_code == 404 and "nobody" in nobody.json()["detail"]


@BOTH_BACKENDS
def test_released_job_is_on_the_transparency_log_and_in_the_audit_chain(service):
    headers = service.auth("alice")
    job = service.wait(submit(service, headers)["id"], headers)
    public = service.client.get("/transparency").json()
    entry = next(item for item in public["jobs"] if item["job_id"] == job["id"])
    assert entry["analyst"] == "alice" and entry["epsilon"] > 0
    assert entry["outcome"] == "released"
    text = json.dumps(public)
    assert "device_count" not in text and "11001" not in text
    page = service.client.get("/transparency/page")
    assert "usual_residence" in page.text and "<table>" in page.text
    auditor = service.auth("auditor")
    entries = service.client.get("/audit", headers=auditor).json()["entries"]
    actions = {entry["action"] for entry in entries}
    assert {"login", "token.issued", "job.submitted", "budget.charged", "job.released"} <= actions
    verdict = service.client.get("/audit/verify", headers=auditor).json()
    assert verdict["ok"] and verdict["first_bad"] is None
    # Each page says where the chain ends: the newest two entries are after head_seq - 2.
    first = service.client.get("/audit?limit=1", headers=auditor).json()
    assert len(first["entries"]) == 1 and first["head_seq"] == verdict["head_seq"]
    newest = service.client.get(f"/audit?after={verdict['head_seq'] - 2}", headers=auditor).json()
    assert [entry["hash"] for entry in newest["entries"]][-1] == verdict["head_hash"]
    assert newest["next_after"] == newest["head_seq"] == verdict["head_seq"]
    assert service.client.get("/audit", headers=headers).status_code == 403


@BOTH_BACKENDS
def test_steward_manages_users_and_scopes(idle_service):
    service = idle_service
    steward = service.auth("steward")
    created = service.client.post(
        "/users",
        headers=steward,
        json={"username": "carol", "role": "analyst", "password": "a long password!"},
    )
    assert created.status_code == 201
    scopes = ["usual_residence:province:*"]
    answer = service.client.put("/users/carol/scopes", json={"scopes": scopes}, headers=steward)
    assert answer.json()["scopes"] == scopes
    bad = service.client.put("/users/carol/scopes", json={"scopes": ["all"]}, headers=steward)
    assert bad.status_code == 422 and "ALGORITHM:LEVEL:PERIOD" in bad.json()["detail"]
    off = service.client.patch("/users/carol", json={"active": False}, headers=steward)
    assert off.json()["active"] is False


@BOTH_BACKENDS
def test_the_last_active_steward_cannot_be_deactivated(idle_service):
    service = idle_service
    steward = service.auth("steward")
    refused = service.client.patch("/users/steward", json={"active": False}, headers=steward)
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert "steward is the only active steward" in refused.json()["detail"]
    assert service.client.get("/users/steward", headers=steward).json()["active"] is True
    second = {"username": "carol", "role": "steward", "password": "a long password!"}
    assert service.client.post("/users", json=second, headers=steward).status_code == 201
    off = service.client.patch("/users/steward", json={"active": False}, headers=steward)
    assert off.status_code == 200 and off.json()["active"] is False


@BOTH_BACKENDS
def test_deactivated_user_token_stops_working(idle_service):
    service = idle_service
    alice = service.auth("alice")
    steward = service.auth("steward")
    assert service.client.get("/me", headers=alice).status_code == 200
    service.client.patch("/users/alice", json={"active": False}, headers=steward)
    assert service.client.get("/me", headers=alice).status_code == 401


@BOTH_BACKENDS
def test_quota_of_jobs_per_day(idle_service):
    service = idle_service
    steward = service.auth("steward")
    service.client.patch("/users/alice", json={"jobs_per_day": 1}, headers=steward)
    alice = service.auth("alice")
    submit(service, alice)
    answer = service.client.post(
        "/jobs", json={**JOB, "parameters": {"min_nights": 3}}, headers=alice
    )
    assert answer.status_code == 429 and "retry-after" in answer.headers
    assert service.client.get("/me", headers=alice).json()["quota"]["jobs_per_day"] == 1


def test_a_quota_of_no_jobs_is_shown_as_it_is_enforced(idle_service):
    service = idle_service
    steward = service.auth("steward")
    service.client.patch("/users/alice", json={"jobs_per_day": 0}, headers=steward)
    alice = service.auth("alice")
    quota = service.client.get("/me", headers=alice).json()["quota"]
    assert (quota["jobs_per_day"], quota["jobs_today"]) == (0, 0)  # not the service's default
    assert service.client.post("/jobs", json=JOB, headers=alice).status_code == 429


def test_rate_limit_per_minute(idle_service):
    service = idle_service
    steward = service.auth("steward")
    service.client.patch("/users/alice", json={"requests_per_minute": 3}, headers=steward)
    alice = service.auth("alice")
    codes = [service.client.get("/me", headers=alice).status_code for _ in range(5)]
    assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]


def test_request_body_size_is_limited(idle_service):
    service = idle_service
    alice = service.auth("alice")
    big = {"source": "x" * (service.settings.max_body_bytes + 10)}
    answer = service.client.post("/algorithms/submissions", json=big, headers=alice)
    assert answer.status_code == 413
    assert answer.json()["title"] == "Request too large"


def test_errors_are_problem_documents(idle_service):
    service = idle_service
    answer = service.client.post("/auth/token", json={"username": "x"})
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["status"] == 422 and "password" in body["detail"]
    wrong = service.client.post("/auth/token", json={"username": "alice", "password": "nope"})
    assert wrong.status_code == 401 and wrong.json()["title"] == "Not authenticated"


def test_an_unknown_path_or_method_says_where_to_look(idle_service):
    nowhere = idle_service.client.get("/nowhere")
    assert nowhere.status_code == 404
    assert nowhere.headers["content-type"] == "application/problem+json"
    assert nowhere.json()["detail"] == (
        "the service has no /nowhere: GET / lists its entry points, GET /openapi.json every route"
    )
    wrong = idle_service.client.delete("/jobs", headers=idle_service.auth("alice"))
    assert wrong.status_code == 405 and wrong.headers["allow"]
    allowed = wrong.headers["allow"]
    assert wrong.json()["detail"] == f"/jobs does not take DELETE: it takes {allowed}"
    # A route's own 404 keeps its words.
    job = idle_service.client.get("/jobs/" + "0" * 32, headers=idle_service.auth("alice"))
    assert job.status_code == 404 and "of yours" in job.json()["detail"]


@pytest.mark.parametrize(
    ("body", "content_type", "refusal"),
    [
        (b'{"username": "alice", "pass', "application/json", "is not valid JSON (at character 22"),
        (b"[1, 2]", "application/json", "the body is not a JSON object"),
        (b"", "application/json", "the body is empty"),
    ],
)
def test_a_body_that_is_not_a_json_object_says_so(idle_service, body, content_type, refusal):
    answer = idle_service.client.post(
        "/auth/token", content=body, headers={"Content-Type": content_type}
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    detail = answer.json()["detail"]
    assert detail.startswith("the body") and refusal in detail, detail
    assert "send a JSON object with username, password" in detail
    assert [error["field"] for error in answer.json()["errors"]] == ["body"]


def test_a_form_where_a_json_object_is_read_says_so(idle_service):
    headers = {**idle_service.auth("alice"), "Content-Type": "application/x-www-form-urlencoded"}
    answer = idle_service.client.post("/jobs", content=b"algorithm=x", headers=headers)
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith(
        "the body is application/x-www-form-urlencoded, not JSON: send a JSON object with algorithm"
    )


def test_a_truncated_job_names_the_fields_of_a_job(idle_service):
    headers = {**idle_service.auth("alice"), "Content-Type": "application/json"}
    answer = idle_service.client.post("/jobs", content=b'{"algorithm": ', headers=headers)
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith(
        "the body is not valid JSON (at character 14: expecting value): send a JSON object "
        "with algorithm and optionally parameters, level, project"
    )


def test_catalogue_lists_algorithms_with_schemas_and_levels(idle_service):
    service = idle_service
    catalogue = service.client.get("/algorithms").json()
    names = {item["name"] for item in catalogue["algorithms"]}
    assert "usual_residence" in names
    assert catalogue["levels"] == ["municipality", "province"]
    one = service.client.get("/algorithms/usual_residence").json()
    assert "min_nights" in json.dumps(one["parameters_schema"])


def test_budget_left_is_shown_without_float_dust(idle_service):
    service = idle_service
    steward = service.auth("steward")
    grant = {"epsilon": 1.0, "project": "census-2011"}
    assert service.client.put("/users/alice/budget", json=grant, headers=steward).is_success
    ledger = service.client.app.state.context.service.ledger
    for number in (1, 2):
        ledger.charge(job_id=f"{number:032x}", analyst="alice", project="census-2011", epsilon=0.4)
    assert 1.0 - 0.4 - 0.4 != 0.2  # what the sum of the charges leaves in floating point
    budget = service.client.get("/me", headers=service.auth("alice")).json()["budget"]
    assert budget[0] == {"project": "census-2011", "epsilon_left": 0.2, "delta_left": 0.0}
