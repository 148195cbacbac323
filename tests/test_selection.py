"""Any selection of test files finds its fixtures, whatever their order on the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_files_of_a_folder_named_around_a_file_of_its_parent_find_their_fixtures() -> None:
    # Files of api/ on both sides of a file of tests/: on its own, pytest 9.1 loses
    # api/conftest.py (its fixtures and parametrisation) for the last one (tests/conftest.py).
    selection = [
        "tests/holder/api/test_serve_address.py",
        "tests/test_notation.py",
        "tests/holder/api/test_app.py::test_health_and_openapi",
    ]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--setup-plan", *selection],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    planned = [line for line in result.stdout.splitlines() if "test_health_and_openapi" in line]
    assert planned and "idle_service" in planned[0], result.stdout[-3000:]
