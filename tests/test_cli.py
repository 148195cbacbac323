"""The root command lists every layer's commands without importing the layers."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer import _click as click
from typer.testing import CliRunner

from cellcensus.cli import COMMANDS, FIRST_STEPS, app, layer_commands

LAYERS = sorted({module for module, _ in COMMANDS.values()})


@pytest.mark.parametrize("module", LAYERS)
def test_the_listed_commands_are_those_each_layer_registers_with_their_own_help(module):
    registered = layer_commands(module).commands
    listed = {name: line for name, (layer, line) in COMMANDS.items() if layer == module}
    assert set(registered) == set(listed)
    for name, command in registered.items():
        assert (command.help or "").strip().splitlines()[0] == listed[name], name


def test_listing_and_a_governance_command_load_no_engine():
    probe = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from cellcensus.cli import app\n"
        "for args in (['--help'], ['cases', '--country', 'Belgium']):\n"
        "    result = CliRunner().invoke(app, args)\n"
        "    assert result.exit_code == 0, result.output\n"
        "print(sorted({'pandas', 'ibis', 'duckdb', 'opendp', 'fastapi'} & set(sys.modules)))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"


def test_a_command_runs_through_its_layer_and_an_unknown_one_is_named():
    result = CliRunner().invoke(app, ["algorithms", "--json"])
    assert result.exit_code == 0 and '"usual_residence"' in result.output
    result = CliRunner().invoke(app, ["sotre"])
    assert (
        result.exit_code == 2 and "No such command 'sotre'. Did you mean 'store'?" in result.output
    )
    result = CliRunner().invoke(app, ["xyzzy"])
    assert result.exit_code == 2 and "No such command 'xyzzy'." in result.output
    assert "Did you mean" not in result.output


@pytest.mark.parametrize("module", LAYERS)
def test_a_flag_shows_no_value_type_and_an_option_shows_its_own(module):
    # A flag takes no value: `--help <bool>` would tell a reader to give it one.
    runner = CliRunner(env={"COLUMNS": "1000"})
    for path, command in _commands(layer_commands(module)):
        output = runner.invoke(app, [*path, "--help"]).output
        rows = {
            words[0]: words[1:]
            for line in output.splitlines()
            if (words := line.replace("│", " ").replace("*", " ").split())
        }
        for option in [*command.params, command.get_help_option(click.Context(command))]:
            name = option.opts[0]
            if name.startswith("--"):
                shown = " ".join(rows[name])
                shows_type = shown.startswith(option.metavar or "<")
                assert shows_type != getattr(option, "is_flag", False), (path, name, rows[name])


def _commands(group, path=()):
    """Every command under `group` with its argument path, subcommands included."""
    for name, command in group.commands.items():
        yield (*path, name), command
        if hasattr(command, "commands"):
            yield from _commands(command, (*path, name))


@pytest.mark.parametrize("module", LAYERS)
def test_every_option_help_is_shown_whole(module):
    # Rich reads "[...]" as markup: a help text holding brackets would lose them in --help.
    runner = CliRunner(env={"COLUMNS": "1000"})
    for path, command in _commands(layer_commands(module)):
        shown = " ".join(runner.invoke(app, [*path, "--help"]).output.replace("│", " ").split())
        for option in command.params:
            text = " ".join((getattr(option, "help", None) or "").split())
            assert text in shown, (path, option.name)


@pytest.mark.parametrize("module", LAYERS)
def test_no_help_is_cut_short_on_an_80_column_terminal(module):
    runner = CliRunner(env={"COLUMNS": "80"})
    for path, _ in _commands(layer_commands(module)):
        assert "…" not in runner.invoke(app, [*path, "--help"]).output, path


@pytest.mark.parametrize("module", LAYERS)
def test_no_help_shows_docstring_markup(module):
    # Rich prints a docstring's reStructuredText literals as they are: ``level=NAME``.
    runner = CliRunner(env={"COLUMNS": "1000"})
    for path, _ in _commands(layer_commands(module)):
        assert "``" not in runner.invoke(app, [*path, "--help"]).output, path


def test_a_logged_step_shows_its_time_and_not_the_source_line():
    from cellcensus.console import console

    with console.capture() as captured:
        console.log("Synthesising Belgium")
    shown = captured.get()
    assert re.match(r"\[\d\d:\d\d:\d\d\] Synthesising Belgium", shown)
    assert ".py:" not in shown


def _readme_commands() -> list[str]:
    """The commands the README's table of commands shows, each as written."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Commands", 1)[1].split("\n## ", 1)[0]
    table = "\n".join(line for line in section.splitlines() if line.startswith("|"))
    spans = re.findall(r"`((?:cellcensus |store )[^`]+)`", table)
    return [span if span.startswith("cellcensus ") else f"cellcensus {span}" for span in spans]


@pytest.mark.parametrize("written", _readme_commands())
def test_each_command_the_readme_shows_names_its_required_options(written):
    # Copied as written, a command without a required option fails with Click's usage error.
    name, *words = written.split()[1:]
    command = layer_commands(COMMANDS[name][0]).commands[name]
    for word in words:  # down to the subcommand written, if any (`store info`)
        if word not in getattr(command, "commands", {}):
            break
        command = command.commands[word]
    required = [p.opts[0] for p in command.params if p.required and p.param_type_name == "option"]
    missing = [option for option in required if option not in written]
    assert not missing, f"README shows `{written}` without {missing}"


def test_the_help_shows_the_first_steps():
    shown = " ".join(CliRunner(env={"COLUMNS": "1000"}).invoke(app, ["--help"]).output.split())
    for step in FIRST_STEPS:
        assert step in shown, step


@pytest.mark.slow
def test_the_first_steps_the_help_shows_run_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CELLCENSUS_KEY_FILE", str(tmp_path / "pseudonym.key"))
    for step in FIRST_STEPS[1:]:
        result = CliRunner().invoke(app, step.split()[1:])
        assert result.exit_code == 0, (step, result.output)
    residents = (tmp_path / "residents.csv").read_text().splitlines()
    assert residents[0].startswith("area_code,") and len(residents) == 1 + 589
    # The statistics office's step: the release's estimates, one row per municipality.
    estimates = (tmp_path / "estimates" / "estimates.csv").read_text().splitlines()
    assert estimates[0].startswith("area_code,area_name,") and len(estimates) == 1 + 589
    assert (tmp_path / "estimates" / "report.html").is_file()


ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _written_commands() -> list[tuple[str, str]]:
    """Every `cellcensus ...` command README.md and docs/ write: (document, command)."""
    found = []
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        blocks = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
        lines = [line.split(" #", 1)[0] for block in blocks for line in block.splitlines()]
        spans = re.findall(r"`([^`]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
        # `store summarise --rebuild`: a subcommand written without `cellcensus`
        spans = [f"cellcensus {span}" if _is_subcommand(span) else span for span in spans]
        for piece in lines + spans:
            for match in re.finditer(r"(?<![\w./-])cellcensus ([a-z].*)", piece, flags=re.S):
                if match.group(1).split()[0] in COMMANDS:
                    written = " ".join(match.group(0).split())
                    found.append((str(document.relative_to(ROOT)), written))
    return sorted(set(found))


def _is_subcommand(span: str) -> bool:
    name, *words = span.split() or [""]
    if name not in COMMANDS or not words:
        return False
    return words[0] in getattr(layer_commands(COMMANDS[name][0]).commands[name], "commands", {})


def _options(command) -> set[str]:
    return {name for param in command.params for name in (*param.opts, *param.secondary_opts)}


@pytest.mark.parametrize(("document", "written"), _written_commands())
def test_each_command_the_docs_write_names_options_it_takes(document, written):
    # A renamed option or subcommand leaves docs that no longer run as written.
    name, *words = written.split()[1:]
    command = layer_commands(COMMANDS[name][0]).commands[name]
    while words and words[0] in getattr(command, "commands", {}):
        command = command.commands[words.pop(0)]
    subcommands = list(getattr(command, "commands", {}).values())
    if subcommands and words and not words[0].startswith(("-", "[", ".")):
        pytest.fail(f"{document}: `{written}`: {command.name} has no subcommand {words[0]!r}")
    # `cellcensus users ... --store STORE`: an option every subcommand takes
    accepted = _options(command) | set.intersection(*map(_options, subcommands or [command]))
    options = re.findall(r"(?<![\w-])--[a-z][\w-]*", " ".join(words))
    unknown = sorted(set(options) - accepted - {"--help"})
    assert not unknown, f"{document}: `{written}` names {unknown}, which {command.name} lacks"


def test_the_docs_write_commands_to_check():
    written = [command for _, command in _written_commands()]
    assert len(written) > 50
    assert "cellcensus store purge --before DATE --store STORE" in written


def test_a_help_paragraph_wraps_at_the_terminal_not_at_the_docstring_lines():
    result = CliRunner().invoke(app, ["store", "allocate", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    # The docstring breaks this paragraph after "over the"; a wide terminal shows it whole.
    said = "Jobs then take the level (`cellcensus run --level NAME`); each cell's weights over"
    assert f"{said} the areas sum to 1." in result.output


def test_a_misspelt_name_is_refused_with_the_name_it_was_meant_to_be():
    result = CliRunner().invoke(app, ["algorithms", "usual_residense"])
    assert result.exit_code != 0
    assert "unknown algorithm 'usual_residense' (did you mean 'usual_residence'?)" in result.output
    result = CliRunner().invoke(app, ["algorithms", "census"])
    assert "unknown algorithm 'census'; known algorithms:" in result.output
