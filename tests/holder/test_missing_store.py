"""A mistyped --store is refused with one line, and nothing is created in its place."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cellcensus.cli import app
from cellcensus.errors import CellcensusError
from cellcensus.holder.enclave import Enclave

COMMANDS = {
    "run": ["run", "usual_residence", "--out", "x.csv"],
    "serve": ["serve"],
    "users add": ["users", "add", "steward", "--role", "steward"],
    "users grant": ["users", "grant", "ana", "usual_residence:municipality:2011-03"],
    "users budget": ["users", "budget", "ana", "--epsilon", "1"],
    "users list": ["users", "list"],
    "users activate": ["users", "activate", "ana"],
    "audit verify": ["audit", "verify"],
    "store rotate-key": ["store", "rotate-key", "--from", "2030-01-01"],
    "store purge": ["store", "purge", "--before", "2011-03-01"],
}


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_a_command_on_a_missing_store_says_so_and_creates_nothing(tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "nope"
    env = {"CELLCENSUS_PASSWORD": "a long enough password", "COLUMNS": "200"}
    result = CliRunner().invoke(app, [*command, "--store", str(missing)], env=env)
    assert result.exit_code == 2, result.output
    assert f"store {missing} does not exist; give the store folder" in result.output
    assert not missing.exists()


SERVICE_COMMANDS = {name: COMMANDS[name] for name in ("serve", "users add", "users list")}


@pytest.mark.parametrize("command", SERVICE_COMMANDS.values(), ids=SERVICE_COMMANDS.keys())
def test_a_service_command_on_a_folder_that_is_no_store_says_so_and_creates_nothing(
    tmp_path, command
):
    folder = tmp_path / "documents"
    folder.mkdir()
    env = {"CELLCENSUS_PASSWORD": "a long enough password", "COLUMNS": "200"}
    result = CliRunner().invoke(app, [*command, "--store", str(folder)], env=env)
    assert result.exit_code == 2, result.output
    assert f"{folder} is not a store" in " ".join(result.output.split())
    assert list(folder.iterdir()) == []  # no enclave/state.db in someone's folder


def test_the_enclave_refuses_a_missing_store_before_creating_its_state(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(CellcensusError, match="does not exist"):
        Enclave(store=missing)
    assert not missing.exists()
