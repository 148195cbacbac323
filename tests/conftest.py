"""Suite-wide settings: one xdist worker per Spark session and per costly shared fixture."""

from __future__ import annotations

import pytest

SHARED_ON_ONE_WORKER = ("accuracy_world", "demo_out")
"""Fixtures that take tens of seconds to build: each test that uses one joins that fixture's
xdist group, so `--dist loadgroup` builds it on one worker instead of on each."""


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups into the node ids
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Group Spark tests so `pytest -n 2 --dist loadgroup` starts Spark on one worker only,
    and the tests of each costly shared fixture so it is built once."""
    for item in items:
        group = xdist_group(item)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))


def xdist_group(item: pytest.Item) -> str | None:
    """The one group of `item`: Spark first (a second JVM costs more than a second fixture)."""
    if item.get_closest_marker("spark"):
        return "spark"
    used = getattr(item, "fixturenames", ())
    return next((name for name in SHARED_ON_ONE_WORKER if name in used), None)


@pytest.fixture(autouse=True)
def _holder_key_in_tmp(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never let a test create or read the user's real holder key."""
    key_dir = tmp_path_factory.getbasetemp() / "holder-key"
    monkeypatch.setenv("CELLCENSUS_KEY_FILE", str(key_dir / "pseudonym.key"))
