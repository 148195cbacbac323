from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cellcensus.world import commands


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    # The world's commands alone: the main CLI also imports layers still being built.
    application = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
    commands.register(application)

    @application.command()
    def version() -> None:  # a second command keeps `synth` a named subcommand
        """Print nothing."""

    return application


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["--scale", "-1"], "--scale -1.0: must be in (0, 1]"),
        (["--days", "0"], "--days 0: must be between 1 and 366"),
        (["--market-share", "2"], "--market-share 2.0: must be in (0, 1]"),
        (["--location-updates", "3"], "--location-updates 3: must be 0 (off) or 6-1440"),
    ],
)
def test_bad_parameters_give_a_one_line_error(
    app: typer.Typer, tmp_path: Path, arguments: list[str], named: str
) -> None:
    # Named as the user typed them (the option), not as the parameters are kept.
    result = CliRunner().invoke(app, ["synth", "--out", str(tmp_path / "w"), *arguments])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [f"error: {named}"]
    assert "Traceback" not in result.output


def test_out_pointing_at_a_file_gives_a_one_line_error(app: typer.Typer, tmp_path: Path) -> None:
    a_file = tmp_path / "events.csv"
    a_file.write_text("x")
    result = CliRunner().invoke(app, ["synth", "--out", str(a_file), "--scale", "0.001"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "is a file" in lines[0]


def test_synth_writes_a_world_and_prints_a_summary(app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "w"
    result = CliRunner().invoke(
        app, ["synth", "--out", str(out), "--scale", "0.001", "--days", "1", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    assert (out / "world.json").is_file()
    for word in ("persons", "devices", "sites", "events"):
        assert word in result.stdout


def test_synth_with_faults_and_report(app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "w"
    result = CliRunner().invoke(
        app,
        ["synth", "--out", str(out), "--scale", "0.0005", "--days", "1", "--faults",
         "duplicate=0.01", "--report", "--threads", "1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for words in ("faulty rows injected", "Realism", "M2M", "sites per km2"):
        assert words in result.stdout
    assert (out / "truth" / "faults.json").is_file()
    # A one-day world switches no site on or off, whatever site_change_share says.
    assert "0% of sites" in result.stdout


def test_bad_faults_give_a_one_line_error(app: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["synth", "--out", str(tmp_path / "w"), "--faults", "dupes=0.1"]
    )
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "dupes" in lines[0]


def test_threads_below_one_are_refused_naming_the_option(app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "w"
    result = CliRunner().invoke(app, ["synth", "--out", str(out), "--threads", "0"])
    assert result.exit_code == 2
    said = " ".join(result.output.replace("│", " ").split())
    assert "--threads" in said and "greater than or equal to 1" in said, said
    assert not out.exists()
