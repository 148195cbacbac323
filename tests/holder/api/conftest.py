"""Fixtures of the service tests: a tiny store, an app over it, users and their tokens."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))

from tiny_store import (  # type: ignore[import-not-found]
    PASSWORD,
    add_users,
    build_store,
    settings_for,
)

from cellcensus.holder.api import ServiceSettings, create_app


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(build_store(tmp_path_factory.mktemp("store")))


@dataclass
class Service:
    """A running in-process app and helpers to call it as a user."""

    client: TestClient
    settings: ServiceSettings

    def token(self, username: str) -> str:
        answer = self.client.post("/auth/token", json={"username": username, "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])

    def auth(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(username)}"}

    def wait(self, job_id: str, headers: dict[str, str], timeout: float = 90.0) -> dict[str, Any]:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.client.get(f"/jobs/{job_id}", headers=headers).json()
            if job["status"] not in ("queued", "running"):
                return dict(job)
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} did not finish: {job}")


@pytest.fixture
def service(tiny_store: Path, tmp_path: Path) -> Iterator[Service]:
    settings = settings_for(tiny_store, tmp_path / "state")
    add_users(settings)
    with TestClient(create_app(settings)) as client:
        yield Service(client=client, settings=settings)
