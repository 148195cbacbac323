"""Suite-wide settings: keep every Spark test on one xdist worker (one JVM, started once)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Group Spark tests so `pytest -n 2 --dist loadgroup` starts Spark on one worker only."""
    for item in items:
        if item.get_closest_marker("spark"):
            item.add_marker(pytest.mark.xdist_group("spark"))


@pytest.fixture(autouse=True)
def _holder_key_in_tmp(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never let a test create or read the user's real holder key."""
    key_dir = tmp_path_factory.getbasetemp() / "holder-key"
    monkeypatch.setenv("CELLCENSUS_KEY_FILE", str(key_dir / "pseudonym.key"))
