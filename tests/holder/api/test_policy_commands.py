"""`cellcensus policies set` and `show`: the steward's policy file, as PUT /policies does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from tiny_store import build_store  # type: ignore[import-not-found]
from typer.testing import CliRunner

from cellcensus.holder.algorithms.commands import register as register_run
from cellcensus.holder.api.commands import register
from cellcensus.holder.enclave.audit import AuditLog
from cellcensus.holder.enclave.service import EnclaveService
from cellcensus.holder.enclave.state import open_state

FILE = """\
usual_residence:
  disclosure: {min_count: 20, dp: {epsilon: 0.25}}
"*":
  require_approval: true
"""


def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    register_run(app)
    return app


@pytest.fixture
def database(tmp_path: Path) -> str:
    """A state database of its own, so that the shared tiny store's is left as it was."""
    return f"sqlite:///{tmp_path / 'state.db'}"


def policies(store: Path, database: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli(), ["policies", *args, "--store", str(store), "--database-url", database]
    )
    return result.exit_code, result.output


def test_a_policy_file_changes_the_policies_in_force_and_is_audited(tiny_store, database, tmp_path):
    path = tmp_path / "policies.yaml"
    path.write_text(FILE)

    code, output = policies(tiny_store, database, "set", str(path))

    assert code == 0, output
    service = EnclaveService(store=tiny_store, state=open_state(database))
    residence = service.policies.for_algorithm("usual_residence")
    assert residence.disclosure.min_count == 20
    assert residence.disclosure.dp is not None
    assert residence.disclosure.dp.epsilon == 0.25
    assert residence.disclosure.dp.mechanism == "laplace"  # merged onto the default
    assert residence.require_approval is False  # its own changes replace those of *
    present = service.policies.for_algorithm("present_population")
    assert present.require_approval is True
    assert present.disclosure.dp is not None
    assert present.disclosure.dp.mechanism == "gaussian"  # * keeps each one's mechanism
    audited = [entry.action for entry in AuditLog(service.state).entries() if entry.actor == "cli"]
    assert audited.count("policy.set") == 2
    code, shown = policies(tiny_store, database, "show", "usual_residence")
    assert code == 0, shown
    assert "usual_residence (own changes): counts of 20 or fewer withheld" in shown
    assert "epsilon 0.25" in " ".join(shown.split())


def test_a_policy_file_may_be_json(tiny_store, database, tmp_path):
    path = tmp_path / "policies.json"
    path.write_text(json.dumps({"present_population": {"disclosure": {"rounding_base": 10}}}))

    code, output = policies(tiny_store, database, "set", str(path))

    assert code == 0, output
    state = open_state(database)
    policy = EnclaveService(store=tiny_store, state=state).policies.for_algorithm(
        "present_population"
    )
    assert policy.disclosure.rounding_base == 10


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (FILE + "usual_residense:\n  disclosure: {min_count: 20}\n", "usual_residense: unknown"),
        (FILE + "trips_od:\n  disclosure: {min_count: 3}\n", "trips_od: disclosure: min_count"),
        (FILE + "trips_od:\n  min_count: 30\n", "trips_od: min_count: Extra inputs"),
        ("- a list\n", "expected a mapping"),
    ],
    ids=["unknown_algorithm", "below_a_floor", "field_outside_disclosure", "not_a_mapping"],
)
def test_a_bad_policy_file_is_refused_by_name_and_changes_nothing(
    tiny_store, database, tmp_path, text, message
):
    path = tmp_path / "policies.yaml"
    path.write_text(text)

    code, output = policies(tiny_store, database, "set", str(path))

    assert code == 2
    said = " ".join(output.split())
    assert "policies.yaml" in said and message in said, said
    service = EnclaveService(store=tiny_store, state=open_state(database))
    assert service.policies.all() == {}  # not even the good entries before the bad one


def test_a_missing_policy_file_is_named(tiny_store, database, tmp_path):
    code, output = policies(tiny_store, database, "set", str(tmp_path / "missing.yaml"))
    assert code == 2
    assert "cannot read disclosure policies" in output and "missing.yaml" in output


def test_a_job_run_after_a_policy_file_is_released_under_it(tmp_path):
    store = Path(build_store(tmp_path / "store"))
    path = tmp_path / "policies.yaml"
    path.write_text(FILE)
    runner = CliRunner()
    changed = runner.invoke(cli(), ["policies", "set", str(path), "--store", str(store)])
    assert changed.exit_code == 0, changed.output
    out = tmp_path / "ur.csv"
    run = ["run", "usual_residence", "--store", str(store), "--level", "province", "--out"]

    result = runner.invoke(cli(), [*run, str(out)])

    assert result.exit_code == 0, result.output
    policy = json.loads(out.with_suffix(".provenance.json").read_text())["provenance"]["policy"]
    assert policy["min_count"] == 20
    assert policy["dp"]["epsilon"] == 0.25
