"""POST /auth/token as an OAuth 2.0 token endpoint: the password grant (RFC 6749 section 4.3).

Standard OAuth 2.0 clients (R's httr2, authlib, requests-oauthlib, Swagger UI) send a form
(`application/x-www-form-urlencoded`) and read errors in the shape of RFC 6749 section 5.2;
the JSON body of the service's own clients answers as it always did.
"""

from __future__ import annotations

import json
import time

import jwt
import pytest
from fastapi.testclient import TestClient
from tiny_store import PASSWORD  # type: ignore[import-not-found]

from cellcensus.holder.api import create_app

FORM = "application/x-www-form-urlencoded"
GRANT = {"grant_type": "password", "username": "alice", "password": PASSWORD}


def form(client, body, content_type=FORM, **headers):
    return client.post(
        "/auth/token", content=body, headers={"Content-Type": content_type, **headers}
    )


def failed_logins(client):
    audit = client.app.state.context.service.audit
    return [entry for entry in audit.entries(limit=5000) if entry.action == "login.failed"]


def test_a_password_grant_answers_what_a_json_login_does_and_its_token_works(idle_service):
    client = idle_service.client
    answer = client.post("/auth/token", data=GRANT)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["cache-control"] == "no-store"  # RFC 6749 section 5.1
    assert answer.headers["pragma"] == "no-cache"
    token = answer.json()
    assert token["token_type"] == "bearer" and token["expires_in"] > 0
    assert token["username"] == "alice" and token["role"] == "analyst"
    json_login = client.post("/auth/token", json={"username": "alice", "password": PASSWORD})
    assert set(token) == set(json_login.json())
    assert json_login.headers["pragma"] == "no-cache"
    me = client.get("/me", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert me.status_code == 200 and me.json()["username"] == "alice"
    actions = [entry.action for entry in client.app.state.context.service.audit.entries()]
    assert actions.count("login") == 2


@pytest.mark.parametrize(
    "body", [{"data": GRANT}, {"json": {"username": "alice", "password": PASSWORD}}]
)
def test_expires_at_is_the_tokens_exp_in_unix_seconds_as_oauth_clients_read_it(idle_service, body):
    before = time.time()
    answer = idle_service.client.post("/auth/token", **body)
    assert answer.status_code == 200, answer.text
    token = json.loads(answer.text)
    assert type(token["expires_at"]) is int
    # authlib's OAuth2Token, requests-oauthlib and httr2 read it so: an ISO time fails here.
    expires_at = int(token["expires_at"])
    claims = jwt.decode(token["access_token"], options={"verify_signature": False})
    assert expires_at == claims["exp"]
    assert abs(expires_at - (before + token["expires_in"])) <= 2


def test_the_openapi_document_says_expires_at_is_in_unix_seconds(idle_service):
    spec = idle_service.client.get("/openapi.json").json()
    expires_at = spec["components"]["schemas"]["TokenResponse"]["properties"]["expires_at"]
    assert expires_at["type"] == "integer"
    assert "Unix seconds (UTC)" in expires_at["description"]


def test_what_oauth_clients_add_to_the_grant_is_ignored(idle_service):
    # httr2 sends client_id in the body, requests-oauthlib may send HTTP Basic client
    # credentials, Swagger UI an empty scope: the service has no registered clients.
    body = f"grant_type=password&username=alice&password={PASSWORD.replace(' ', '+')}"
    body += "&client_id=my-r-session&scope=&unknown=1"
    basic = {"Authorization": "Basic bXktY2xpZW50OnNlY3JldA=="}
    answer = form(idle_service.client, body, f"{FORM}; charset=UTF-8", **basic)
    assert answer.status_code == 200, answer.text
    assert answer.json()["username"] == "alice"


@pytest.mark.parametrize(
    ("body", "error", "description"),
    [
        ("username=alice&password=x", "invalid_request", "grant_type is missing"),
        ("grant_type=&username=alice&password=x", "invalid_request", "grant_type is missing"),
        (
            "grant_type=client_credentials&username=alice&password=x",
            "unsupported_grant_type",
            "'client_credentials' is not supported: send grant_type=password",
        ),
        ("grant_type=password&password=x", "invalid_request", "username is missing"),
        ("grant_type=password&username=alice", "invalid_request", "password is missing"),
        (
            "grant_type=password&username=alice&username=bob&password=x",
            "invalid_request",
            "username is sent more than once",
        ),
        (
            "grant_type=password&username=alice&password=x&scope=usual_residence:*:*",
            "invalid_scope",
            "a token carries every scope its user was granted",
        ),
        (
            f"grant_type=password&username={'a' * 65}&password=x",
            "invalid_request",
            "username: String should have at most 64 characters",
        ),
        ("grant_type=password&username=alice&password=%00", "invalid_request", "password: "),
        ("grant_type=password&username=alice&password=%FF", "invalid_request", "UTF-8"),
        ("", "invalid_request", "grant_type is missing"),
    ],
)
def test_a_grant_it_cannot_read_is_refused_as_rfc_6749_says(idle_service, body, error, description):
    client = idle_service.client
    answer = form(client, body)
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["cache-control"] == "no-store"
    refusal = answer.json()
    assert set(refusal) == {"error", "error_description"}
    assert refusal["error"] == error
    assert description in refusal["error_description"], refusal
    # Refused before any password is checked: no login attempt counted, nothing audited.
    assert client.app.state.context.login_limiter.count("client:testclient") == 0
    assert failed_logins(client) == []


def test_a_wrong_password_by_form_is_a_401_audited_as_by_json(idle_service):
    client = idle_service.client
    answer = client.post("/auth/token", data={**GRANT, "password": "not her password"})
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["www-authenticate"] == 'Bearer realm="cellcensus"'
    assert answer.json() == {
        "error": "invalid_grant",
        "error_description": "unknown user name or wrong password",
    }
    client.post("/auth/token", json={"username": "alice", "password": "not her password"})
    nobody = client.post("/auth/token", data={**GRANT, "username": "correcthorsebattery"})
    assert nobody.status_code == 401
    failed = failed_logins(client)
    assert [entry.actor for entry in failed] == ["alice", "alice", "?"]
    assert {entry.target for entry in failed} == {"client:testclient"}


def test_form_and_json_logins_share_the_login_limits(idle_service):
    settings = idle_service.settings.with_(login_attempts_per_minute=3)
    with TestClient(create_app(settings)) as client:
        wrong = {"username": "alice", "password": "Summer2011!!!"}
        answers = [
            client.post("/auth/token", data={**wrong, "grant_type": "password"}),
            client.post("/auth/token", json=wrong),
            client.post("/auth/token", data={**wrong, "grant_type": "password"}),
            client.post("/auth/token", data=GRANT),  # the right password, beyond the limit
            client.post("/auth/token", json={"username": "alice", "password": PASSWORD}),
        ]
        assert [answer.status_code for answer in answers] == [401, 401, 401, 429, 429]
        held = answers[3]
        assert held.headers["content-type"] == "application/problem+json"
        assert "too many login attempts" in held.json()["detail"]
        assert int(held.headers["Retry-After"]) >= 1
        # What an OAuth 2.0 client reads: the reason, not only the status.
        assert held.json()["error"] == "temporarily_unavailable"
        assert held.json()["error_description"] == held.json()["detail"]
        assert answers[1].json()["error"] == "invalid_grant"  # the JSON body's 401 as well
        assert len(failed_logins(client)) == 3  # refused attempts write nothing


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"username=alice&password=x", "text/plain"),
        (
            b"--b\r\nContent-Disposition: form-data; name=grant_type\r\n\r\npassword\r\n--b--\r\n",
            "multipart/form-data; boundary=b",
        ),
        (b"<login/>", "application/xml"),
    ],
)
def test_another_content_type_is_refused_naming_both_it_reads(idle_service, body, content_type):
    answer = form(idle_service.client, body, content_type)
    assert answer.status_code == 415
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["accept-post"] == f"application/json, {FORM}"
    detail = answer.json()["detail"]
    assert content_type.split(";")[0] in detail
    assert "a JSON object with username, password (Content-Type: application/json)" in detail
    assert f"grant_type=password, username, password (Content-Type: {FORM})" in detail


def test_a_grant_over_the_body_limit_is_refused_before_it_is_read(idle_service):
    client = idle_service.client
    padding = "x" * idle_service.settings.max_body_bytes
    answer = form(client, f"grant_type=password&username=alice&password={padding}")
    assert answer.status_code == 413
    refusal = answer.json()
    assert refusal["title"] == "Request too large"
    assert refusal["error"] == "invalid_request"
    assert refusal["error_description"] == refusal["detail"]
    assert "larger than" in refusal["detail"]
    # Elsewhere the same refusal is a plain problem document.
    elsewhere = client.post("/jobs", content=padding + "x", headers={"Content-Type": FORM})
    assert elsewhere.status_code == 413 and "error" not in elsewhere.json()


def test_the_openapi_document_describes_both_bodies_and_their_refusals(idle_service):
    spec = idle_service.client.get("/openapi.json").json()
    operation = spec["paths"]["/auth/token"]["post"]
    bodies = operation["requestBody"]["content"]
    assert bodies["application/json"]["schema"] == {"$ref": "#/components/schemas/LoginRequest"}
    grant = bodies[FORM]["schema"]
    assert set(grant["required"]) == {"grant_type", "username", "password"}
    assert grant["properties"]["grant_type"]["const"] == "password"
    answers = operation["responses"]
    oauth_error = {"$ref": "#/components/schemas/OAuthError"}
    assert answers["400"]["content"]["application/json"]["schema"] == oauth_error
    assert answers["401"]["content"]["application/json"]["schema"] == oauth_error
    problem = {"$ref": "#/components/schemas/Problem"}
    assert answers["401"]["content"]["application/problem+json"]["schema"] == problem
    assert answers["415"]["content"]["application/problem+json"]["schema"] == problem


def test_swagger_ui_can_log_in_by_the_password_flow(idle_service):
    spec = idle_service.client.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    flow = next(scheme for scheme in schemes.values() if scheme["type"] == "oauth2")
    assert flow["flows"]["password"]["tokenUrl"] == "auth/token"
    assert flow["flows"]["password"]["scopes"] == {}
    assert any(scheme["type"] == "http" for scheme in schemes.values())  # a token pasted
    me = spec["paths"]["/me"]["get"]["security"]
    assert sorted(name for option in me for name in option) == sorted(schemes)


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_a_page_of_another_site_cannot_make_a_browser_try_logins(idle_service, site):
    # A form is a request a page of any site may make a browser send, unasked and without
    # CORS (a JSON body is not): such a page inside the firewall must not try passwords,
    # spend the users' login limits or hash passwords for its author.
    client = idle_service.client
    answer = client.post("/auth/token", data=GRANT, headers={"Sec-Fetch-Site": site})
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"
    assert "another site" in answer.json()["error_description"]
    assert client.app.state.context.login_limiter.count("client:testclient") == 0
    same = client.post("/auth/token", data=GRANT, headers={"Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 200  # Swagger UI on /docs
