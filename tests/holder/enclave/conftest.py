"""Fixtures of the enclave tests: a fresh state database per test, on SQLite and PostgreSQL."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "api"))

from tiny_store import build_store  # type: ignore[import-not-found]

from cellcensus.holder.enclave.state import State, open_state


@pytest.fixture
def state(state_url: str) -> Iterator[State]:
    """The migrated state database; each test using it runs on both backends."""
    opened = open_state(state_url)
    yield opened
    opened.engine.dispose()


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(build_store(tmp_path_factory.mktemp("enclave-store")))
