"""The benchmark harness refuses, before any work, a run whose baselines are not installed."""

import importlib.util

import pytest
from benchmarks.harness import check_installed


def test_a_run_needing_a_package_not_installed_says_which_extra_to_install(monkeypatch):
    check_installed(["floor", "certified", "polars"], ["duckdb"])  # dev installs Polars
    missing = {"polars", "pyspark"}
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name in missing else find_spec(name)
    )
    check_installed(["floor", "certified", "pandas"], ["duckdb"])  # needs neither
    with pytest.raises(
        SystemExit, match=r"polars, pyspark not installed: .*-e '\.\[bench,spark\]'"
    ):
        check_installed(["floor", "polars"], ["duckdb", "spark"])
