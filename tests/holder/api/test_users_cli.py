"""`cellcensus users`: grants and budgets refuse what names nothing that exists; (de)activation."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from tiny_store import PASSWORD  # type: ignore[import-not-found]
from typer.testing import CliRunner

from cellcensus.holder.api.commands import register
from cellcensus.holder.api.tokens import TokenIssuer, is_revoked
from cellcensus.holder.api.users import Role, Users
from cellcensus.holder.enclave.service import EnclaveService
from cellcensus.holder.enclave.state import open_state

KEPT = "usual_residence:municipality:*"


@pytest.fixture
def users_cli(tiny_store: Path, tmp_path: Path):
    """Run `cellcensus users ...` on the tiny store with a fresh state; alice holds KEPT."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    state = open_state(url)
    users = Users(state)
    users.add(username="alice", role=Role.ANALYST, password=PASSWORD, actor="test")
    users.add(username="steward", role=Role.STEWARD, password=PASSWORD, actor="test")
    users.set_scopes("alice", [KEPT], actor="test")
    app = typer.Typer()
    register(app)

    def invoke(*args: str) -> tuple[int, str]:
        where = ["--store", str(tiny_store), "--database-url", url]
        result = CliRunner().invoke(app, ["users", *args, *where])
        return result.exit_code, " ".join(result.output.split())

    yield invoke, users
    state.engine.dispose()


def test_users_list_shows_each_scope_whole_on_an_80_column_terminal(users_cli):
    invoke, _ = users_cli
    scope = "usual_residence:municipality:2011-03-01..2011-03-31"
    assert invoke("grant", "alice", scope)[0] == 0
    code, output = invoke("list")
    assert code == 0 and "alice" in output
    assert "…" not in output
    assert "2011-03-31" in output.replace("│", " ").replace(" ", "")


def test_users_list_says_yes_or_no_in_every_column_of_a_flag(users_cli):
    invoke, users = users_cli
    assert invoke("deactivate", "alice")[0] == 0
    users.reset_password("steward", PASSWORD, actor="test")  # must change it at next login
    code, output = invoke("list")
    cells = output.replace("│", " ").split()
    assert code == 0 and "True" not in cells and "False" not in cells
    alice, steward = cells.index("alice"), cells.index("steward")
    assert cells[alice + 2 : alice + 3] == ["no"] and cells[alice + 4 :][:1] == ["no"]
    assert cells[steward + 2 : steward + 3] == ["yes"] and cells[steward + 3 :][:1] == ["yes"]


def test_a_misspelt_algorithm_is_refused_and_the_scopes_kept(users_cli):
    invoke, users = users_cli
    code, output = invoke("grant", "alice", "usual_residnce:municipality:*")
    assert code != 0
    assert "unknown algorithm 'usual_residnce'" in output and "usual_residence" in output
    assert users.get("alice").scopes == (KEPT,)


def test_an_unknown_level_is_refused_and_a_named_one_not_allocated_is_granted_with_a_warning(
    users_cli,
):
    invoke, users = users_cli
    code, output = invoke("grant", "alice", "usual_residence:municipalty:*")
    assert code != 0 and "unknown area level 'municipalty'" in output
    assert users.get("alice").scopes == (KEPT,)
    code, output = invoke("grant", "alice", "usual_residence:arrondissement:*", "*:province:*")
    assert code == 0, output
    assert "warning" in output and "no arrondissement allocation yet" in output
    assert "province allocation" not in output  # the tiny store has one
    assert users.get("alice").scopes == ("*:province:*", "usual_residence:arrondissement:*")


def test_a_budget_for_nobody_or_for_a_steward_is_refused(users_cli):
    invoke, _ = users_cli
    code, output = invoke("budget", "nobody", "--epsilon", "1", "--project", "p")
    assert code != 0 and "no user 'nobody'" in output
    code, output = invoke("budget", "steward", "--epsilon", "1")
    assert code != 0 and "budgets are for analysts" in output
    code, output = invoke("budget", "alice", "--epsilon", "1", "--project", "p")
    assert code == 0 and "alice/p: epsilon 1 left" in output


def test_the_budget_of_a_command_line_analyst_who_is_no_user_can_be_raised(
    users_cli, tiny_store, tmp_path
):
    # `cellcensus run` (analyst "holder" by default) gives its analyst a budget of its own;
    # when it runs out, the refusal names `users budget holder`, which must work.
    invoke, users = users_cli
    url = f"sqlite:///{tmp_path / 'state.db'}"
    service = EnclaveService(store=tiny_store, state=open_state(url))
    service.set_budget(analyst="holder", project="default", epsilon=2, delta=0, steward="holder")

    code, output = invoke("budget", "holder", "--epsilon", "3")

    assert code == 0, output
    assert "holder/default: epsilon 3 left" in output
    assert users.get("holder") is None  # no user is made of it


def test_the_store_wide_budget_is_set_at_the_command_line_counting_what_was_spent(
    users_cli, tiny_store, tmp_path
):
    invoke, _ = users_cli
    service = EnclaveService(
        store=tiny_store, state=open_state(f"sqlite:///{tmp_path / 'state.db'}")
    )
    service.set_budget(analyst="alice", project="default", epsilon=2, delta=0, steward="s")
    service.ledger.charge(job_id="earlier", analyst="alice", project="default", epsilon=0.5)

    code, output = invoke("total-budget", "--epsilon", "1.5")

    assert code == 0, output
    assert "all analysts together: epsilon 1 left of 1.5" in output
    total = service.total_budget()
    assert total is not None and total.left.epsilon == pytest.approx(1.0)
    code, output = invoke("total-budget", "--epsilon", "-1")
    assert code != 0 and "epsilon" in output and "Traceback" not in output


@pytest.mark.parametrize(
    ("scope", "refusal"),
    [
        ("usual_residence:municipality:2011-13-01..2011-03-31", "2011-13-01 is not a date"),
        ("usual_residence:municipality:2011-03-31..2011-03-01", "starts (2011-03-31) after"),
    ],
)
def test_a_scope_with_a_bad_period_is_refused_without_a_traceback(users_cli, scope, refusal):
    invoke, users = users_cli
    code, output = invoke("grant", "alice", scope)
    assert code == 2, output
    assert refusal in output and "ALGORITHM:LEVEL:YYYY-MM-DD..YYYY-MM-DD" in output
    assert "Traceback" not in output
    assert users.get("alice").scopes == (KEPT,)


def test_the_last_active_steward_is_kept_and_a_deactivated_user_activated_again(users_cli):
    invoke, users = users_cli
    code, output = invoke("deactivate", "steward")
    assert code == 2 and "steward is the only active steward" in output
    assert users.get("steward").active
    issuer = TokenIssuer(key=b"k" * 32, issuer="i", audience="a", minutes=5)
    _, claims = issuer.issue(users.require("alice"), state=users.state)
    code, output = invoke("deactivate", "alice")
    assert code == 0 and "alice: inactive analyst, 1 token(s) revoked" in output
    assert not users.get("alice").active and is_revoked(users.state, claims.jti, username="alice")
    code, output = invoke("activate", "alice")
    assert code == 0 and "alice: active analyst" in output
    assert users.get("alice").active
    code, output = invoke("activate", "nobody")
    assert code == 2 and "no user 'nobody'" in output


def test_a_new_password_for_a_user_who_lost_theirs_revokes_its_tokens(users_cli, monkeypatch):
    invoke, users = users_cli
    issuer = TokenIssuer(key=b"k" * 32, issuer="i", audience="a", minutes=5)
    _, claims = issuer.issue(users.require("alice"), state=users.state)
    monkeypatch.setenv("CELLCENSUS_PASSWORD", "a new passphrase for alice")
    code, output = invoke("password", "alice")
    assert code == 0 and "alice: new password set, 1 token(s) revoked" in output, output
    assert "must choose their own" in output
    assert users.require("alice").must_change_password
    assert is_revoked(users.state, claims.jti, username="alice")
    assert users.authenticate("alice", PASSWORD) is None
    assert users.authenticate("alice", "a new passphrase for alice") is not None
    monkeypatch.setenv("CELLCENSUS_PASSWORD", "short")
    code, output = invoke("password", "alice")
    assert code == 2 and "Traceback" not in output
    assert "the password from $CELLCENSUS_PASSWORD has 5 characters" in output
    assert "at least 12" in output
    code, output = invoke("password", "nobody")
    assert code != 0 and "no user 'nobody'" in output


def test_a_password_prompt_without_input_says_where_a_password_can_come_from(
    users_cli, monkeypatch
):
    # In a script, the prompt meets the end of its input: that is no password, said so.
    monkeypatch.delenv("CELLCENSUS_PASSWORD", raising=False)
    invoke, users = users_cli
    code, output = invoke("add", "bob")
    assert code == 2, output
    assert "no password given" in output and "--password-file" in output
    assert "CELLCENSUS_PASSWORD" in output and users.get("bob") is None


def test_grant_says_which_scopes_it_took_away(users_cli):
    # `grant` replaces the scopes: a steward adding one must see that the others went.
    invoke, users = users_cli
    added = "present_population:*:*"
    code, output = invoke("grant", "alice", added)
    assert code == 0 and users.get("alice").scopes == (added,)
    assert f"no longer: {KEPT}" in output and "name every scope to keep" in output
    code, output = invoke("grant", "alice", added, KEPT)
    assert code == 0 and "no longer" not in output
    assert set(users.get("alice").scopes) == {added, KEPT}
