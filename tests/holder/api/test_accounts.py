"""Users' own accounts: changing one's password, logging out, a steward's reset; hash strength."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tiny_store import PASSWORD, SCOPE  # type: ignore[import-not-found]

from cellcensus.holder.api import create_app
from cellcensus.holder.api.users import hash_password, verify_password
from cellcensus.holder.enclave.state import users
from cellcensus.nso.client import HttpClient, ServiceError

NEW = "a new passphrase for alice"
BOTH_BACKENDS = pytest.mark.parametrize("backend", ["sqlite", "postgresql"])


@pytest.fixture
def service(idle_service):
    """No workers: these tests run no job."""
    return idle_service


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def login(service, username, password):
    return service.client.post("/auth/token", json={"username": username, "password": password})


def audit_of(service):
    """The whole audit log, as the service stores it."""
    return service.client.app.state.context.service.audit.entries(limit=5000)


def change(service, token, current, new):
    body = {"current_password": current, "new_password": new}
    return service.client.post("/auth/password", json=body, headers=bearer(token))


@BOTH_BACKENDS
def test_a_user_changes_their_password_and_their_other_sessions_end(service):
    kept, other = service.token("alice"), service.token("alice")
    assert change(service, kept, PASSWORD, NEW).status_code == 204
    assert service.client.get("/me", headers=bearer(kept)).status_code == 200
    ended = service.client.get("/me", headers=bearer(other))
    assert ended.status_code == 401 and "revoked" in ended.json()["detail"]
    assert login(service, "alice", PASSWORD).status_code == 401
    assert login(service, "alice", NEW).status_code == 200
    assert service.client.get("/me", headers=service.auth("bob")).status_code == 200
    entries = audit_of(service)
    assert [e.actor for e in entries if e.action == "user.password_changed"] == ["alice"]
    assert not any(NEW in json.dumps(e.to_dict()) for e in entries)


def test_a_password_change_without_the_current_password_or_with_a_short_one_is_refused(service):
    token = service.token("alice")
    wrong = change(service, token, "not alice's password", NEW)
    assert wrong.status_code == 403 and "current password is wrong" in wrong.json()["detail"]
    short = change(service, token, PASSWORD, "too short")
    assert short.status_code == 422 and "new_password" in short.text
    assert login(service, "alice", PASSWORD).status_code == 200
    assert service.client.get("/me", headers=bearer(token)).status_code == 200
    failed = [e for e in audit_of(service) if e.action == "user.password_change_failed"]
    assert [e.actor for e in failed] == ["alice"]
    assert not any("not alice's password" in json.dumps(e.to_dict()) for e in audit_of(service))


def test_a_stolen_token_cannot_guess_the_password_faster_than_logins(service):
    settings = service.settings.with_(login_attempts_per_minute=3)
    with TestClient(create_app(settings)) as client:
        token = client.post("/auth/token", json={"username": "alice", "password": PASSWORD})
        headers = bearer(token.json()["access_token"])
        body = {"current_password": "guess number one", "new_password": NEW}
        answers = [client.post("/auth/password", json=body, headers=headers) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [403, 403, 429]
    assert "too many login attempts" in answers[-1].json()["detail"]


def test_logging_out_revokes_the_token_used_and_only_it(service):
    token, other = service.token("alice"), service.token("alice")
    assert service.client.post("/auth/logout", headers=bearer(token)).status_code == 204
    ended = service.client.get("/me", headers=bearer(token))
    assert ended.status_code == 401 and "revoked" in ended.json()["detail"]
    assert service.client.get("/me", headers=bearer(other)).status_code == 200
    assert service.client.post("/auth/logout").status_code == 401


def test_a_steward_sets_a_new_password_for_a_user_who_lost_theirs(service):
    alices = service.token("alice")
    steward = service.auth("steward")
    answer = service.client.put("/users/alice/password", json={"password": NEW}, headers=steward)
    assert answer.status_code == 204, answer.text
    assert service.client.get("/me", headers=bearer(alices)).status_code == 401
    assert login(service, "alice", PASSWORD).status_code == 401
    assert login(service, "alice", NEW).status_code == 200
    resets = [e for e in audit_of(service) if e.action == "user.password_reset"]
    assert [(e.actor, e.target) for e in resets] == [("steward", "user:alice")]


@BOTH_BACKENDS
def test_after_a_reset_the_user_chooses_a_password_before_anything_else(service):
    steward = service.auth("steward")
    service.client.put("/users/alice/password", json={"password": NEW}, headers=steward)
    assert service.client.get("/users/alice", headers=steward).json()["must_change_password"]
    answer = login(service, "alice", NEW).json()
    assert answer["must_change_password"] is True  # said at login, not learnt from a 403
    assert (answer["username"], answer["role"]) == ("alice", "analyst")
    token = answer["access_token"]
    refused = service.client.get("/me", headers=bearer(token))
    assert refused.status_code == 403
    assert "choose your own first (POST /auth/password" in refused.json()["detail"]
    assert change(service, token, NEW, "alice's own passphrase").status_code == 204
    assert service.client.get("/me", headers=bearer(token)).status_code == 200
    assert not service.client.get("/users/alice", headers=steward).json()["must_change_password"]
    again = login(service, "alice", "alice's own passphrase").json()
    assert again["must_change_password"] is False


def test_a_user_a_steward_adds_chooses_a_password_before_anything_else(service):
    steward = service.auth("steward")
    new = {"username": "carol", "role": "auditor", "password": NEW}
    created = service.client.post("/users", json=new, headers=steward)
    assert created.status_code == 201 and created.json()["must_change_password"] is True
    answer = login(service, "carol", NEW).json()
    assert answer["must_change_password"] is True
    token = answer["access_token"]
    assert service.client.get("/audit", headers=bearer(token)).status_code == 403
    assert change(service, token, NEW, "carol's own passphrase").status_code == 204
    assert service.client.get("/audit", headers=bearer(token)).status_code == 200
    # Users made as `cellcensus users add` makes them (the tests' alice) have no such duty.
    assert login(service, "alice", PASSWORD).json()["must_change_password"] is False


def test_every_role_asks_who_it_is_and_gets_what_applies_to_it(service):
    for name in ("steward", "auditor"):
        answer = service.client.get("/me", headers=service.auth(name))
        assert answer.status_code == 200, answer.text
        assert answer.json() == {
            "username": name,
            "role": name,
            "scopes": None,
            "budget": None,
            "quota": None,
        }
    alice = service.client.get("/me", headers=service.auth("alice")).json()
    assert (alice["username"], alice["role"]) == ("alice", "analyst")
    assert alice["scopes"] == [SCOPE]
    assert alice["budget"] == [{"project": "default", "epsilon_left": 2.0, "delta_left": 0.0}]
    assert alice["quota"]["jobs_today"] == 0
    # Answering every role opens nothing else: a steward still runs no job, an auditor
    # still sees no user, and a password a steward set still comes first.
    steward, auditor = service.auth("steward"), service.auth("auditor")
    assert service.client.get("/jobs/" + "0" * 32 + "/result", headers=steward).status_code == 403
    assert service.client.get("/users", headers=auditor).status_code == 403
    service.client.put("/users/auditor/password", json={"password": NEW}, headers=steward)
    token = login(service, "auditor", NEW).json()["access_token"]
    refused = service.client.get("/me", headers=bearer(token))
    assert refused.status_code == 403 and "choose your own first" in refused.json()["detail"]
    assert service.client.get("/me").status_code == 401


def test_the_python_client_says_a_steward_set_the_password_until_it_is_changed(service):
    steward = service.auth("steward")
    service.client.put("/users/alice/password", json={"password": NEW}, headers=steward)
    with HttpClient(
        base_url="http://testserver",
        username="alice",
        password=NEW,
        progress=False,
        transport=service.client._transport,
    ) as nso:
        nso.login()
        assert nso.must_change_password
        nso.change_password(NEW, "alice's own passphrase")
        assert not nso.must_change_password
        assert nso.me()["username"] == "alice"
        nso.login()
        assert not nso.must_change_password


def test_the_python_client_changes_the_password_and_logs_out(service):
    other = service.token("alice")
    with HttpClient(
        base_url="http://testserver",
        username="alice",
        password=PASSWORD,
        progress=False,
        transport=service.client._transport,  # the app in process, as TestClient calls it
    ) as nso:
        assert (nso.me()["username"], nso.me()["role"]) == ("alice", "analyst")
        with pytest.raises(ServiceError, match="current password is wrong"):
            nso.change_password("not alice's password", NEW)
        nso.change_password(PASSWORD, NEW)
        token = nso.login()  # with the new password
        nso.logout()
        assert service.client.get("/me", headers=bearer(token)).status_code == 401
    assert service.client.get("/me", headers=bearer(other)).status_code == 401


@pytest.mark.parametrize(
    ("who", "target", "password", "status", "detail"),
    [
        ("bob", "alice", NEW, 403, "needs the role steward"),
        ("steward", "nobody", NEW, 404, "no user 'nobody'"),
        ("steward", "steward", NEW, 409, "POST /auth/password"),
        ("steward", "alice", "too short", 422, "password"),
    ],
)
def test_a_password_reset_is_refused_to_others_than_stewards_and_of_oneself(
    service, who, target, password, status, detail
):
    answer = service.client.put(
        f"/users/{target}/password", json={"password": password}, headers=service.auth(who)
    )
    assert answer.status_code == status and detail in answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert login(service, target if target != "nobody" else "alice", PASSWORD).status_code == 200


def test_the_account_routes_are_documented(service):
    paths = service.client.get("/openapi.json").json()["paths"]
    assert {"403", "429"} <= set(paths["/auth/password"]["post"]["responses"])
    assert "401" in paths["/auth/logout"]["post"]["responses"]
    assert {"404", "409"} <= set(paths["/users/{username}/password"]["put"]["responses"])


# The OWASP Password Storage Cheat Sheet's equivalent minimum settings of scrypt (N, r, p).
OWASP_SCRYPT = {(2**17, 8, 1), (2**16, 8, 2), (2**15, 8, 3), (2**14, 8, 5), (2**13, 8, 10)}


def test_new_hashes_are_at_an_owasp_scrypt_setting(service_scrypt):
    _, n, r, p, salt, _ = hash_password(PASSWORD).split("$")
    assert (int(n), int(r), int(p)) in OWASP_SCRYPT and len(base64.b64decode(salt)) == 16


def old_hash(password):
    """A hash as earlier versions made them (N=2^14, r=8, p=1)."""
    salt = b"sixteen byte sal"
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    encoded = "$".join(base64.b64encode(part).decode() for part in (salt, digest))
    return f"scrypt$16384$8$1${encoded}"


@BOTH_BACKENDS
def test_an_old_hash_still_logs_in_and_is_replaced_by_a_strong_one(service, service_scrypt):
    state = service.client.app.state.context.service.state
    with state.write() as conn:
        conn.execute(
            users.update().where(users.c.username == "bob").values(password_hash=old_hash(PASSWORD))
        )
    assert login(service, "bob", "not bob's password").status_code == 401
    with state.read() as conn:
        before = conn.execute(sa.select(users.c.password_hash).where(users.c.username == "bob"))
        assert before.scalar_one() == old_hash(PASSWORD)  # a failed login changes nothing
    assert login(service, "bob", PASSWORD).status_code == 200
    with state.read() as conn:
        stored = conn.execute(
            sa.select(users.c.password_hash).where(users.c.username == "bob")
        ).scalar_one()
    assert stored.split("$")[1:4] == [str(service_scrypt[name]) for name in ("n", "r", "p")]
    assert verify_password(PASSWORD, stored)
    assert login(service, "bob", PASSWORD).status_code == 200
    rehashed = [e for e in audit_of(service) if e.action == "user.password_rehashed"]
    assert [e.actor for e in rehashed] == ["bob"]


def test_an_analyst_sees_only_the_projects_a_steward_gave_a_budget_in(service):
    steward = service.auth("steward")
    new = {"username": "carol", "role": "analyst", "password": PASSWORD}
    assert service.client.post("/users", json=new, headers=steward).status_code == 201
    token = login(service, "carol", PASSWORD).json()["access_token"]
    assert change(service, token, PASSWORD, "carol's own passphrase").status_code == 204
    token = login(service, "carol", "carol's own passphrase").json()["access_token"]

    before = service.client.get("/me", headers=bearer(token)).json()["budget"]
    grant = {"epsilon": 1, "delta": 0, "project": "census-2011"}
    assert service.client.put("/users/carol/budget", json=grant, headers=steward).is_success
    after = service.client.get("/me", headers=bearer(token)).json()["budget"]

    assert before == []  # no "default" project without a budget to spend in it
    assert after == [{"project": "census-2011", "epsilon_left": 1.0, "delta_left": 0.0}]
