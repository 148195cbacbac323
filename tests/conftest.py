"""Suite-wide settings: each costly shared fixture built on one xdist worker."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from cellcensus.holder.engines import spill_folder

SHARED_ON_ONE_WORKER = ("accuracy_world", "demo_out", "operator_chain", "spark_from_plain_python")
"""Fixtures that take tens of seconds to build: each test that uses one joins that fixture's
xdist group, so `--dist loadgroup` builds it on one worker instead of on each."""


@pytest.hookimpl(tryfirst=True)  # before xdist sends the arguments to its workers
def pytest_configure(config: pytest.Config) -> None:
    """Give pytest the files and test ids of a command line grouped by folder.

    pytest 9.1 loses a nested folder's conftest fixtures for files named after a file of an
    enclosing folder (``api/a.py test_x.py api/b.py``: "fixture 'service' not found" in
    ``api/b.py``; pytest-dev/pytest#14964); sorting by path keeps each folder's files
    together, so any selection of files and ids finds its fixtures.
    """
    here = config.invocation_params.dir
    config.args[:] = sorted(config.args, key=lambda arg: (here / arg.split("::")[0]).parts)


JVM_OPTIONS = "-XX:TieredStopAtLevel=1"
"""The options of every JVM the tests start (Spark's, in-process or in a subprocess). Each does
little work on tiny data, while the optimising compiler would compile much of Spark's own code:
with the quick compiler alone, a session started for a few queries spends 40 % less CPU time,
the Spark tests' in-process session 7 % less. Results do not depend on the compiler."""


def pytest_sessionstart(session: pytest.Session) -> None:
    """Give the JVMs of this run `JVM_OPTIONS`, unless the environment gives its own."""
    os.environ.setdefault("JDK_JAVA_OPTIONS", JVM_OPTIONS)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups into the node ids
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Group the tests of each costly shared fixture so `pytest -n 2 --dist loadgroup` builds
    it once.

    The Spark tests are not grouped: on one worker they were the suite's longest chain (24 min
    against 16 spread over both, each worker then starting a JVM of its own).
    """
    for item in items:
        used = getattr(item, "fixturenames", ())
        group = next((name for name in SHARED_ON_ONE_WORKER if name in used), None)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Remove this process's DuckDB spill folder: pytest-xdist's workers end without running
    the exit handler that would (`engines.spill_folder`)."""
    if spill_folder.cache_info().currsize:
        shutil.rmtree(spill_folder(), ignore_errors=True)


@pytest.fixture(autouse=True)
def _holder_key_in_tmp(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never let a test create or read the user's real holder key."""
    key_dir = tmp_path_factory.getbasetemp() / "holder-key"
    monkeypatch.setenv("CELLCENSUS_KEY_FILE", str(key_dir / "pseudonym.key"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium through Playwright (the browser tests skip without them)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("needs a chromium binary on PATH")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()
