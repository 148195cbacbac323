"""The code base stays lint-, format- and type-clean: checked with the tests, not beside them."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    executable = BIN / tool if (BIN / tool).exists() else shutil.which(tool)
    assert executable, f"{tool} is not installed (pip install -e '.[dev]')"
    return subprocess.run([str(executable), *args], cwd=ROOT, capture_output=True, text=True)


def test_ruff_lint_is_clean():
    result = run("ruff", "check", "src", "tests", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean():
    result = run("ruff", "format", "--check", "src", "tests", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_mypy_is_clean():
    result = run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


ONLY_XDIST = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}  # no other plugin: the workers start fast
GROUPED_SUITE = """
import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def accuracy_world():
    return None


def record(kind, i):
    folder = Path(os.environ["WORKERS_SEEN"])
    (folder / f"{kind}-{i}").write_text(os.environ.get("PYTEST_XDIST_WORKER", "none"))


"""
# Tests of the fixture and plain ones alternate, so that a scheduler ignoring the group would
# hand the fixture's tests to both workers.
GROUPED_SUITE += "".join(
    f"\n\ndef test_world_{i}(accuracy_world):\n    record('world', {i})\n"
    f"\n\ndef test_plain_{i}():\n    record('plain', {i})\n"
    for i in range(6)
)


def test_loadgroup_keeps_each_costly_fixture_on_one_worker(tmp_path):
    """The README's `-n 2 --dist loadgroup` with this suite's conftest: the tests of a costly
    shared fixture share one worker, the rest spread over both."""
    suite, seen = tmp_path / "suite", tmp_path / "seen"
    suite.mkdir()
    seen.mkdir()
    (suite / "pytest.ini").write_text("[pytest]\n")
    (suite / "test_grouped.py").write_text(GROUPED_SUITE)
    command = [sys.executable, "-m", "pytest", "-p", "xdist", "-p", "tests.conftest"]
    result = subprocess.run(
        [*command, "-q", "-n", "2", "--dist", "loadgroup", str(suite)],
        cwd=suite,
        env={**os.environ, "PYTHONPATH": str(ROOT), "WORKERS_SEEN": str(seen), **ONLY_XDIST},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    workers: dict[str, set[str]] = {}
    for path in seen.iterdir():
        workers.setdefault(path.name.split("-")[0], set()).add(path.read_text())
    assert len(workers["world"]) == 1, workers
    assert workers["world"] | workers["plain"] == {"gw0", "gw1"}, workers
