"""Fuzzing: schemathesis against the service's own OpenAPI schema (bounded examples).

Every operation gets a few generated requests with a valid token of the role it is meant for;
no answer may be a 5xx, and every answer must match the schema (status, content type, body).
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from tiny_store import (  # type: ignore[import-not-found]
    PASSWORD,
    add_users,
    settings_for,
)

from cellcensus.holder.api import create_app

pytestmark = pytest.mark.slow
EXAMPLES = 4
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
ROLE_OF_TAG = {"steward": "steward", "audit": "auditor"}


def test_fuzz_every_operation(tiny_store, tmp_path):
    config = settings_for(tiny_store, tmp_path / "state", workers=0)
    add_users(config)
    app = create_app(config)
    with TestClient(app) as client:
        tokens = {
            name: client.post("/auth/token", json={"username": name, "password": PASSWORD}).json()[
                "access_token"
            ]
            for name in ("alice", "bob", "steward", "auditor")
        }
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        tags = operation.definition.raw.get("tags", [])
        user = next((ROLE_OF_TAG[tag] for tag in tags if tag in ROLE_OF_TAG), "alice")
        if operation.method.upper() == "PATCH" or operation.path.endswith("/conformance"):
            user = "steward"
        if operation.path == "/auth/logout":
            user = "bob"  # logging out revokes the token: not the one the other operations use
        headers = {"Authorization": f"Bearer {tokens[user]}"}
        failures.extend(fuzz(operation, headers))
    assert not failures, "\n".join(failures[:10])


def fuzz(operation, headers) -> list[str]:
    found: list[str] = []

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        if case.method.upper() == "PATCH" and "active" in str(case.body):
            return  # deactivating the fuzzing users would only test 401s
        try:
            case.call_and_validate(headers=headers, checks=CHECKS)
        except Exception as error:  # collect, so one run reports every operation
            found.append(f"{operation.method.upper()} {operation.path}: {error}"[:2000])

    run()
    return found
