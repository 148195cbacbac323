"""`cellcensus run` refusals that name their cause and the command that removes it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cellcensus.holder.algorithms.commands import register

sys.path.insert(0, str(Path(__file__).parents[1] / "api"))

from tiny_store import build_store  # type: ignore[import-not-found]

app = typer.Typer()
register(app)
cli = CliRunner()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A fresh tiny store (its own job table and ledger): municipality and province only."""
    return Path(build_store(tmp_path / "store"))


def run(store: Path, out: Path, *options: str) -> tuple[int, str]:
    """Run usual_residence through the CLI; its exit code and output on one line."""
    result = cli.invoke(
        app, ["run", "usual_residence", "--store", str(store), "--out", str(out), *options]
    )
    return result.exit_code, " ".join(result.output.split())


def test_a_level_without_allocation_names_the_command_that_allocates_it(store, tmp_path):
    code, output = run(store, tmp_path / "x.csv", "--level", "arrondissement")
    assert code != 0
    assert "no arrondissement allocation" in output
    assert f"cellcensus store allocate --store {store} --level arrondissement --areas" in output
    assert "cellcensus ingest" not in output
    assert not (tmp_path / "x.csv").exists()
