"""Fixtures of the service tests: a tiny store, an app over it, users and their tokens."""

from __future__ import annotations

import shutil
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


@pytest.fixture(scope="session")
def template_state(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state folder with the users and budgets, made once and copied for each test."""
    folder = tmp_path_factory.mktemp("template-state")
    add_users(settings_for(tiny_store, folder))
    return folder


@pytest.fixture
def backend() -> str:
    """The state database of `service` and `idle_service`: SQLite unless a test parametrizes
    it (``@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])``)."""
    return "sqlite"


@pytest.fixture
def service(
    tiny_store: Path, template_state: Path, tmp_path: Path, backend: str, request: Any
) -> Iterator[Service]:
    """The app with one worker: submitted jobs run."""
    settings = _settings(tiny_store, template_state, tmp_path, backend, request)
    yield from _service(settings)


@pytest.fixture
def idle_service(
    tiny_store: Path, template_state: Path, tmp_path: Path, backend: str, request: Any
) -> Iterator[Service]:
    """The app without workers: submitted jobs stay queued (for tests of refusals)."""
    settings = _settings(tiny_store, template_state, tmp_path, backend, request, workers=0)
    yield from _service(settings)


def _settings(
    tiny_store: Path,
    template_state: Path,
    tmp_path: Path,
    backend: str,
    request: Any,
    **changes: object,
) -> ServiceSettings:
    if backend == "sqlite":  # a copy of the template: users made once per session
        shutil.copytree(template_state, tmp_path / "state")
        copy: ServiceSettings = settings_for(tiny_store, tmp_path / "state", **changes)
        return copy
    url = str(request.getfixturevalue("postgres_url"))  # a fresh PostgreSQL database
    settings: ServiceSettings = settings_for(
        tiny_store, tmp_path / "state", database_url=url, **changes
    )
    add_users(settings)
    return settings


def _service(settings: ServiceSettings) -> Iterator[Service]:
    with TestClient(create_app(settings)) as client:
        yield Service(client=client, settings=settings)
