"""Security: every forged, expired, misdirected or out-of-scope request is refused, no leaks."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
from urllib.parse import quote

import httpx
import jwt
import pytest
from fastapi.testclient import TestClient
from tiny_store import PASSWORD  # type: ignore[import-not-found]

from cellcensus.holder.api import create_app
from cellcensus.holder.api.limits import RateLimiter
from cellcensus.holder.api.settings import signing_key

JOB = {"algorithm": "usual_residence", "parameters": {"min_nights": 2}}

# The tests that touch most of the state (users, tokens, jobs, ledger, audit) run on both
# backends; "postgresql" starts a private server (tests/holder/conftest.py).
BOTH_BACKENDS = pytest.mark.parametrize("backend", ["sqlite", "postgresql"])


@pytest.fixture
def service(idle_service):
    """No workers: these tests are about refusals, accepted jobs need not run."""
    return idle_service


def claims(service, **changes):
    now = dt.datetime.now(dt.UTC)
    body = {
        "iss": service.settings.issuer,
        "aud": service.settings.audience,
        "sub": "alice",
        "role": "analyst",
        "scopes": ["*:*:*"],
        "iat": now,
        "nbf": now,
        "exp": now + dt.timedelta(minutes=5),
        "jti": "0" * 32,
    }
    body.update(changes)
    return body


def forged(service, *, key=None, **changes):
    return jwt.encode(claims(service, **changes), key or signing_key(service.settings), "HS256")


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def refused(answer, status):
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    text = answer.text
    assert "device_count" not in text and "Traceback" not in text
    return answer.json()["detail"]


def test_no_token_is_refused(service):
    detail = refused(service.client.post("/jobs", json=JOB), 401)
    assert "Bearer" in detail
    assert refused(service.client.get("/me", headers={"Authorization": "Basic eDp5"}), 401)


def test_expired_token_is_refused(service):
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    token = forged(service, iat=past, nbf=past, exp=past + dt.timedelta(minutes=5))
    detail = refused(service.client.get("/me", headers=bearer(token)), 401)
    assert "expired" in detail
    assert detail.endswith("log in again for a new one (POST /auth/token)"), detail


def test_token_not_yet_valid_is_refused(service):
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    token = forged(service, nbf=later, exp=later + dt.timedelta(minutes=5))
    assert "not valid yet" in refused(service.client.get("/me", headers=bearer(token)), 401)


def test_wrong_audience_and_issuer_are_refused(service):
    for change, word in (({"aud": "another-api"}, "audience"), ({"iss": "mallory"}, "issuer")):
        token = forged(service, **change)
        assert word in refused(service.client.get("/me", headers=bearer(token)), 401)


def test_alg_none_is_refused(service):
    def part(data):
        text = json.dumps(data, default=lambda value: int(value.timestamp())).encode()
        return base64.urlsafe_b64encode(text).rstrip(b"=").decode()

    token = part({"alg": "none", "typ": "JWT"}) + "." + part(claims(service)) + "."
    assert refused(service.client.get("/me", headers=bearer(token)), 401) == (
        "the access token is invalid; log in again for a new one (POST /auth/token)"
    )


@pytest.mark.parametrize("token", ["abc.def.ghi", "not-a-token"])
def test_a_made_up_token_says_how_to_get_a_real_one(service, token):
    detail = refused(service.client.get("/me", headers=bearer(token)), 401)
    assert detail.startswith("the access token is invalid") and "POST /auth/token" in detail


def test_a_token_for_another_audience_issuer_or_later_says_how_to_get_one(service):
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    for change in (
        {"aud": "another-api"},
        {"iss": "mallory"},
        {"nbf": later, "exp": later + dt.timedelta(minutes=5)},
    ):
        detail = refused(service.client.get("/me", headers=bearer(forged(service, **change))), 401)
        assert detail.endswith("log in again for a new one (POST /auth/token)"), detail


def test_token_signed_with_another_key_is_refused(service):
    token = forged(service, key=b"k" * 48)
    assert refused(service.client.get("/me", headers=bearer(token)), 401)


@BOTH_BACKENDS
def test_validly_signed_token_unknown_to_the_service_is_refused(service):
    # Right key, but never issued (jti unknown): a leaked key alone does not make tokens.
    assert "revoked" in refused(service.client.get("/me", headers=bearer(forged(service))), 401)


def test_a_leaked_key_and_ones_own_token_id_make_no_token_for_another_user(service):
    own = jwt.decode(service.token("alice"), options={"verify_signature": False})
    as_steward = forged(service, sub="steward", role="steward", jti=own["jti"])
    assert "revoked" in refused(service.client.get("/users", headers=bearer(as_steward)), 401)


def test_tampered_role_claim_is_refused(service):
    token = service.token("alice")
    header, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=="))
    data["role"] = "steward"
    changed = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    answer = service.client.get("/users", headers=bearer(f"{header}.{changed}.{signature}"))
    refused(answer, 401)


def test_scope_for_another_algorithm_a_finer_level_or_period_is_refused(service):
    steward = service.auth("steward")
    service.client.put(
        "/users/alice/scopes",
        headers=steward,
        json={"scopes": ["usual_residence:province:2011-03-08..2011-03-13"]},
    )
    alice = service.auth("alice")
    cases = [
        {"algorithm": "present_population", "parameters": {}, "level": "province"},
        {"algorithm": "usual_residence", "parameters": {}, "level": "municipality"},
        {
            "algorithm": "usual_residence",
            "parameters": {"start": "2011-03-07"},
            "level": "province",
        },
    ]
    for body in cases:
        detail = refused(service.client.post("/jobs", json=body, headers=alice), 403)
        assert "scopes do not allow" in detail
    # An algorithm out of scope is refused as such, before its parameters are judged: an
    # analyst learns nothing of what it takes, and is not sent to mend them for nothing.
    wrong = {"algorithm": "home_work_flows", "parameters": {"min_work_days": 99}, "level": "x"}
    detail = refused(service.client.post("/jobs", json=wrong, headers=alice), 403)
    assert detail.startswith("your scopes do not allow home_work_flows:x:*")
    ok = {
        "algorithm": "usual_residence",
        "level": "province",
        "parameters": {"start": "2011-03-08", "end": "2011-03-13"},
    }
    assert service.client.post("/jobs", json=ok, headers=alice).status_code == 202


@BOTH_BACKENDS
def test_roles_are_enforced(service):
    alice, auditor, steward = (service.auth(name) for name in ("alice", "auditor", "steward"))
    assert "role steward" in refused(service.client.get("/users", headers=alice), 403)
    assert refused(service.client.get("/audit", headers=alice), 403)
    assert refused(service.client.post("/jobs", json=JOB, headers=auditor), 403)
    assert refused(service.client.post("/jobs", json=JOB, headers=steward), 403)
    assert refused(
        service.client.put("/users/alice/budget", json={"epsilon": 99}, headers=alice), 403
    )


@BOTH_BACKENDS
def test_another_analysts_job_is_not_found(service):
    alice, bob = service.auth("alice"), service.auth("bob")
    job = service.client.post("/jobs", json=JOB, headers=alice).json()
    for path in (f"/jobs/{job['id']}", f"/jobs/{job['id']}/result"):
        detail = refused(service.client.get(path, headers=bob), 404)
        assert "alice" not in detail
    assert all(
        item["id"] != job["id"] for item in service.client.get("/jobs", headers=bob).json()["jobs"]
    )


INJECTIONS = [
    "' OR '1'='1",
    "1; DROP TABLE jobs; --",
    "../../etc/passwd",
    "..%2F..%2Fetc",
    "\x00",
    "municipality/../../x",
    "$(touch /tmp/pwned)",
    "<script>alert(1)</script>",
    "a" * 5000,
]


def test_injection_in_every_parameter_is_refused(service):
    alice = service.auth("alice")
    for value in INJECTIONS:
        check_injection(service, alice, value)
    tables = service.client.get("/transparency").json()["jobs"]
    assert tables == []


def check_injection(service, alice, value):
    bodies = [
        {**JOB, "algorithm": value},
        {**JOB, "level": value},
        {**JOB, "project": value},
        {**JOB, "parameters": {"min_nights": value}},
        {**JOB, "parameters": {"rule": value}},
        {**JOB, "parameters": {"start": value}},
        {**JOB, "parameters": {value[:100]: 1}},
        {**JOB, "parameters": {"filters": {"home_mcc": value}}},
    ]
    for body in bodies:
        answer = service.client.post("/jobs", json=body, headers=alice)
        refused(answer, 422)
    quoted = quote(value, safe="")
    for path in (f"/jobs/{quoted}", f"/jobs/{quoted}/result", f"/algorithms/submissions/{quoted}"):
        answer = service.client.get(path, headers=alice)
        assert answer.status_code in (404, 422), (path, answer.status_code)
    answer = service.client.get(
        "/jobs/" + "a" * 32 + "/result", params={"format": value}, headers=alice
    )
    refused(answer, 422)


@pytest.fixture
def strict_logins(service):
    """A second app over the same state, allowing 5 login attempts per client a minute."""
    settings = service.settings.with_(login_attempts_per_client_per_minute=5)
    with TestClient(create_app(settings)) as client:
        yield client


def test_one_client_cannot_spray_a_password_over_many_user_names(strict_logins):
    guesses = [
        strict_logins.post("/auth/token", json={"username": name, "password": "Summer2011!!!"})
        for name in ("alice", "bob", "carol", "dave", "erin", "frank", "grace")
    ]
    assert [answer.status_code for answer in guesses] == [401] * 5 + [429] * 2
    assert "too many login attempts" in refused(guesses[-1], 429)
    assert int(guesses[-1].headers["Retry-After"]) >= 1
    audit = strict_logins.app.state.context.service.audit
    failed = [entry for entry in audit.entries(limit=5000) if entry.action == "login.failed"]
    assert len(failed) == 5  # refused attempts write nothing


def test_one_password_guessed_from_many_addresses_is_held_per_user_name(service):
    settings = service.settings.with_(login_attempts_per_user_per_minute=4)
    app = create_app(settings)
    guess = {"username": "alice", "password": "Summer2011!!!"}
    with TestClient(app, client=("203.0.113.1", 50000)) as first:
        # A client of its own per guess: each stays far below its own limits.
        clients = [TestClient(app, client=(f"203.0.113.{n}", 50000)) for n in range(2, 7)]
        answers = [client.post("/auth/token", json=guess) for client in [first, *clients]]
        assert [answer.status_code for answer in answers] == [401] * 4 + [429] * 2
        assert "too many login attempts" in refused(answers[-1], 429)
        other = TestClient(app, client=("203.0.113.9", 50000))
        bob = other.post("/auth/token", json={"username": "bob", "password": PASSWORD})
        assert bob.status_code == 200  # other users' logins are not held


def test_made_up_tokens_count_against_the_clients_rate(service):
    settings = service.settings.with_(requests_per_minute=5)
    app = create_app(settings)
    with TestClient(app, client=("203.0.113.1", 50000)) as client:
        made_up = forged(service, key="not the service's key, long enough to sign with")
        tries = [bearer(made_up), bearer("not.a.token"), {}, bearer(made_up), {}, bearer(made_up)]
        answers = [client.get("/jobs", headers=headers) for headers in tries]
        assert [answer.status_code for answer in answers] == [401] * 5 + [429]
        assert "requests per minute" in refused(answers[-1], 429)
        token = client.post("/auth/token", json={"username": "alice", "password": PASSWORD})
        alice = bearer(token.json()["access_token"])
        assert client.get("/jobs", headers=alice).status_code == 200  # her own rate
        other = TestClient(app, client=("203.0.113.2", 50000))
        assert other.get("/jobs", headers=bearer(made_up)).status_code == 401


def test_login_limits_forget_user_names_no_longer_tried():
    limiter = RateLimiter(window_s=0.05)
    for number in range(1000):  # names an attacker makes up, each tried once
        limiter.allow(f"user:made-up-{number}@203.0.113.9", limit=10)
    time.sleep(0.1)
    limiter.allow("user:alice@198.51.100.7", limit=10)
    assert len(limiter) == 1


def test_a_failed_login_records_no_user_name_nobody_has(service):
    typed = "correcthorsebatterystaple"  # a password typed in the user name's field
    service.client.post("/auth/token", json={"username": typed, "password": "anything at all"})
    service.client.post("/auth/token", json={"username": "alice", "password": "not her password"})
    entries = service.client.get(
        "/audit", params={"limit": 5000}, headers=service.auth("auditor")
    ).json()["entries"]
    assert [entry["actor"] for entry in entries if entry["action"] == "login.failed"] == [
        "?",
        "alice",
    ]
    assert typed not in json.dumps(entries)


@pytest.mark.parametrize("expression", ["-" * 100_000 + "1", "1+" * 90_000 + "1"])
def test_a_submission_nesting_too_deep_for_the_parser_is_refused(service, expression):
    source = f"VALUE = {expression}\n"
    answer = service.client.post(
        "/algorithms/submissions", json={"source": source}, headers=service.auth("alice")
    )
    assert "nest too deeply" in refused(answer, 422)


def test_answers_to_analysts_do_not_name_the_stores_folder(service):
    store = str(service.settings.store.resolve())
    bob = service.auth("bob")  # usual_residence at any level
    refusal = service.client.post(
        "/jobs", json={**JOB, "level": "region"}, headers=bob
    )  # no region allocation: the message names the store that lacks it
    assert "no region allocation in store STORE" in refused(refusal, 422)
    assert store not in refusal.text
    job = service.client.post("/jobs", json=JOB, headers=bob).json()
    book = service.client.app.state.context.service.book
    book.fail(job["id"], error=f"no events in store {store}/events for 2011-03-09")
    shown = service.client.get(f"/jobs/{job['id']}", headers=bob).json()
    assert shown["error"] == "no events in store STORE/events for 2011-03-09"


def test_algorithm_submissions_per_analyst_and_day_are_limited(service):
    settings = service.settings.with_(submissions_per_day=2)
    source = 'from x import Manifest\nManifest(name="first_cell", version="0.1.{}")\n'
    with TestClient(create_app(settings)) as client:
        alice = {"Authorization": f"Bearer {service.token('alice')}"}
        answers = [
            client.post("/algorithms/submissions", json={"source": source.format(n)}, headers=alice)
            for n in range(3)
        ]
        assert [answer.status_code for answer in answers] == [201, 201, 429]
        assert "daily quota of 2 algorithm submissions" in refused(answers[-1], 429)
        assert int(answers[-1].headers["Retry-After"]) >= 1
        assert len(client.get("/algorithms/submissions", headers=alice).json()["submissions"]) == 2


def test_requests_without_a_token_are_limited_per_client(service):
    settings = service.settings.with_(requests_per_minute=3)
    with TestClient(create_app(settings)) as client:
        paths = ["/transparency", "/transparency/page", "/algorithms", "/algorithms/x"]
        statuses = [client.get(path).status_code for path in paths]
        assert statuses == [200, 200, 200, 429]
        assert "requests per minute" in refused(client.get("/transparency"), 429)
        assert client.get("/health").status_code == 200  # monitoring is not held back


def test_pages_that_run_a_cdns_scripts_are_off_unless_asked_for(service):
    assert service.client.get("/docs").status_code == 404
    assert service.client.get("/redoc").status_code == 404
    assert service.client.get("/openapi.json").json()["info"]["title"]
    with TestClient(create_app(service.settings.with_(interactive_docs=True))) as client:
        assert "cdn.jsdelivr.net" in client.get("/docs").text


def test_the_access_log_keeps_no_secret_a_client_put_in_the_url(tiny_store, tmp_path):
    # uvicorn logs each request's path with its query: a password or token sent there by
    # mistake would stay in the server's log.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = {
        **os.environ,
        "CELLCENSUS_DATABASE_URL": f"sqlite:///{tmp_path / 'state.db'}",
        "CELLCENSUS_JWT_KEY_FILE": str(tmp_path / "jwt.key"),
        "CELLCENSUS_WORKERS": "0",
    }
    command = [sys.executable, "-m", "cellcensus.holder.api", "serve", "--store", str(tiny_store)]
    server = subprocess.Popen(
        [*command, "--port", str(port)],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(300):
                with contextlib.suppress(httpx.TransportError):
                    if client.get("/health").status_code == 200:
                        break
                time.sleep(0.1)
            client.post(
                "/auth/token?username=alice&password=hunter2-in-the-url",
                json={"username": "alice", "password": "not the one"},
            )
            client.get("/transparency?limit=5&access_token=token-in-the-url")
            client.get("/transparency?secret-alone-in-the-url")
    finally:
        server.terminate()
        log, _ = server.communicate(timeout=30)
    assert '"GET /transparency?limit=5&... HTTP/1.1" 200' in log, log
    assert '"POST /auth/token?...&... HTTP/1.1" 401' in log, log
    assert "in-the-url" not in log
