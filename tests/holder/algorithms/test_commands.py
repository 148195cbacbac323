import io
import json
import sys
from pathlib import Path

import pandas as pd
import pytest
import typer
from pydantic import BaseModel, Field
from rich.console import Console
from typer.testing import CliRunner

from cellcensus.console import console
from cellcensus.errors import CellcensusError
from cellcensus.holder.algorithms import registered_algorithms
from cellcensus.holder.algorithms.commands import (
    _catalogue_table,
    parameter_rows,
    parameters_table,
    parse_parameters,
    register,
)
from cellcensus.holder.algorithms.registry import get_algorithm
from cellcensus.holder.algorithms.usual_environment import MAX_OTHER_PLACES

sys.path.insert(0, str(Path(__file__).parents[1] / "api"))

from tiny_store import build_store  # type: ignore[import-not-found]

app = typer.Typer()
register(app)
cli = CliRunner()


def test_algorithms_lists_the_catalogue():
    result = cli.invoke(app, ["algorithms"])
    assert result.exit_code == 0, result.output
    for name in registered_algorithms():
        assert name in result.output


def test_algorithms_name_lists_its_parameters_as_run_takes_them():
    result = cli.invoke(app, ["algorithms", "usual_residence"])
    assert result.exit_code == 0, result.output
    assert "filters.min_days" in result.output  # nested, by the dotted name --param takes
    rows = {
        row[0]: row for row in parameter_rows(get_algorithm("usual_residence").manifest.parameters)
    }
    assert rows["min_nights"][1:4] == ("int", "2", ">= 1, <= 366")
    assert rows["rule"][1].split(" | ")[:2] == ["most_distinct_nights", "most_night_activity"]
    assert rows["filters.m2m_behaviour"][2] == "true"
    assert rows["filters.min_events"][3] == ">= 1, <= 1000000"
    assert rows["home_ps_share"][3] == "> 0, <= 1"
    assert rows["start"][1:3] == ("date or none", "")
    unknown = cli.invoke(app, ["algorithms", "usual_residnce"])
    assert unknown.exit_code == 2
    assert "known algorithms: device_filter" in unknown.output


def test_a_text_parameters_pattern_shows_in_the_table_as_in_the_json_schema(monkeypatch):
    manifest = get_algorithm("device_filter").manifest
    schema = manifest.parameters.model_json_schema()
    filters = schema["$defs"]["DeviceFilterParameters"]["properties"]["m2m_tacs"]
    pattern, most = filters["items"]["pattern"], filters["maxItems"]
    assert pattern == "^[0-9]{8}$"
    rows = {row[0]: row for row in parameter_rows(manifest.parameters)}
    assert rows["filters.m2m_tacs"][3] == f"at most {most} items, each matching {pattern}"
    countries = get_algorithm("inbound_tourism").manifest.parameters.model_fields["countries"]
    assert [
        row[3]
        for row in parameter_rows(get_algorithm("inbound_tourism").manifest.parameters)
        if row[0] == "countries"
    ] == [f"at most {countries.metadata[0].max_length} items, each >= 200, <= 799"]
    # The console is made at import, so COLUMNS at invoke would not widen it.
    monkeypatch.setattr(console, "_width", 200)
    result = cli.invoke(app, ["algorithms", "device_filter"])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "filters.m2m_tacs" in line)
    assert f"each matching {pattern}" in row  # printed whole: its brackets are not markup


def test_patterns_and_lengths_of_texts_show_as_given():
    class Codes(BaseModel):
        country: str = Field(default="be", pattern="^[a-z]{2}$", description="[b]old[/b] stays")
        label: str = Field(default="x", min_length=1, max_length=40)

    rows = {row[0]: row for row in parameter_rows(Codes)}
    assert rows["country"][3] == "matching ^[a-z]{2}$"
    assert rows["label"][3] == "at least 1 character, at most 40 characters"
    wide = Console(width=200, record=True, file=io.StringIO())
    wide.print(parameters_table("codes", Codes))
    shown = wide.export_text()
    assert "matching ^[a-z]{2}$" in shown  # not taken for markup
    assert "[b]old[/b] stays" in shown


def test_algorithms_json_has_keys_bounds_and_schemas():
    result = cli.invoke(app, ["algorithms", "--json"])
    assert result.exit_code == 0, result.output
    described = {entry["name"]: entry for entry in json.loads(result.output)}
    assert set(described) == set(registered_algorithms())
    flows = described["home_work_flows"]
    assert [key["name"] for key in flows["keys"]] == ["home_area", "work_area"]
    assert flows["contribution_bound"] == 1.0
    assert "min_work_days" in flows["parameters"]["properties"]
    # The declared bound holds at the most permissive parameters; the defaults' is tighter.
    places, manifest = described["usual_environment"], get_algorithm("usual_environment").manifest
    widest = manifest.bound(manifest.parse({"max_other_places": MAX_OTHER_PLACES}))
    assert places["contribution_bound_at_defaults"] == 2 + 3  # home, work and 3 other places
    assert widest == places["contribution_bound"] == 2 + MAX_OTHER_PLACES
    assert described["internal_migration"]["contribution_bound_at_defaults"] is None  # no dates


def test_algorithms_table_gives_the_bound_at_the_defaults_and_at_most():
    wide = Console(width=200, record=True, file=io.StringIO())
    wide.print(_catalogue_table(registered_algorithms()))
    shown = wide.export_text()
    row = next(line for line in shown.splitlines() if "usual_environment" in line)
    manifest = get_algorithm("usual_environment").manifest
    assert f"{manifest.default_bound():g} ({manifest.contribution_bound:g} at most)" in row
    assert "at the most permissive ones" in " ".join(shown.split())


def test_parameters_parse_as_json_with_nested_names():
    parsed = parse_parameters(
        [
            "min_nights=3",
            "rule=multi_mno",
            "filters.min_days=2",
            'filters.m2m_tacs=["35000001"]',
            "start=2011-03-07",
        ]
    )
    assert parsed == {
        "min_nights": 3,
        "rule": "multi_mno",
        "start": "2011-03-07",
        "filters": {"min_days": 2, "m2m_tacs": ["35000001"]},
    }
    with pytest.raises(CellcensusError, match="NAME=VALUE"):
        parse_parameters(["min_nights"])


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_store(tmp_path_factory.mktemp("store"))


def test_run_writes_the_release(store, tmp_path):
    out = tmp_path / "homes.csv"
    result = cli.invoke(
        app,
        [
            "run",
            "usual_residence",
            "--store",
            str(store),
            "--param",
            "min_nights=2",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out, dtype={"area_code": str})
    assert list(table.columns)[:2] == ["area_code", "device_count"]
    assert table.device_count.sum() > 0


def test_run_refuses_a_bad_parameter_by_name(store, tmp_path):
    result = cli.invoke(
        app,
        [
            "run",
            "usual_residence",
            "--store",
            str(store),
            "--param",
            "min_nights=0",
            "--out",
            str(tmp_path / "x.csv"),
        ],
    )
    assert result.exit_code == 2
    assert "min_nights" in result.output
    assert not (tmp_path / "x.csv").exists()


def test_run_writes_a_csv_release_with_its_provenance_beside_it(store, tmp_path):
    out = tmp_path / "releases" / "homes.csv"
    run = ["run", "usual_residence", "--store", str(store), "--param", "min_nights=2"]
    result = cli.invoke(app, [*run, "--out", str(out)])
    assert result.exit_code == 0, result.output
    sidecar = tmp_path / "releases" / "homes.provenance.json"
    assert sidecar.is_file(), sorted(path.name for path in out.parent.iterdir())
    document = json.loads(sidecar.read_text())
    provenance = document["provenance"]
    assert provenance["algorithm"] == "usual_residence"
    assert provenance["version"] == registered_algorithms()["usual_residence"].manifest.version
    assert provenance["parameters"]["min_nights"] == 2
    assert provenance["policy"]["dp"]["epsilon"] > 0  # the privacy loss this release spent
    assert provenance["policy"]["min_count"] >= 10
    assert provenance["created_at"] and provenance["engine"] == "duckdb"
    assert len(provenance["job_id"]) == 32 and provenance["job_id"] in result.output
    assert document["published"]["market_share"] == 0.4
    # The same release as JSON carries the same provenance in the document.
    again = tmp_path / "homes.json"
    result = cli.invoke(app, [*run, "--out", str(again)])
    assert result.exit_code == 0, result.output
    assert json.loads(again.read_text())["provenance"] == provenance
    assert not (tmp_path / "homes.provenance.json").exists()  # JSON needs no sidecar


def test_run_says_when_it_reuses_an_identical_release_computed_on_another_engine(store, tmp_path):
    run = ["run", "usual_residence", "--store", str(store), "--param", "min_nights=4"]
    first = cli.invoke(app, [*run, "--out", str(tmp_path / "duckdb.json")])
    assert first.exit_code == 0, first.output
    assert "reused" not in first.output
    job_id = json.loads((tmp_path / "duckdb.json").read_text())["provenance"]["job_id"]
    # The engine is not part of a request: Spark never starts, and the CLI says so.
    again = cli.invoke(app, [*run, "--engine", "spark", "--out", str(tmp_path / "spark.json")])
    assert again.exit_code == 0, again.output
    said = " ".join(again.output.split())
    assert f"reused the release of job {job_id} (computed on duckdb on" in said
    assert "nothing was computed" in said
    assert "spark did not run" in said
    assert json.loads((tmp_path / "spark.json").read_text())["provenance"]["engine"] == "duckdb"


@pytest.mark.parametrize(
    ("algorithm", "params"),
    [
        ("usual_residence", []),
        ("present_population", ["--param", "slot_minutes=60"]),
        ("home_work_flows", []),  # suppressed counts: missing, not NaN floats
    ],
)
def test_a_release_reads_back_the_same_from_its_csv_and_its_json(
    store, tmp_path, algorithm, params
):
    from cellcensus.release import Release

    run = ["run", algorithm, "--store", str(store), *params]
    for suffix in (".json", ".csv"):
        result = cli.invoke(app, [*run, "--out", str(tmp_path / f"release{suffix}")])
        assert result.exit_code == 0, result.output
    from_json = Release.read(tmp_path / "release.json")
    from_csv = Release.read(tmp_path / "release.csv")
    pd.testing.assert_frame_equal(from_csv.table, from_json.table)
    assert from_csv.provenance == from_json.provenance
    assert from_csv.published == from_json.published


def test_run_help_names_the_spark_settings():
    result = cli.invoke(app, ["run", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.replace("│", " ").split())
    names = (
        "SPARK_MASTER",
        "SPARK_DRIVER_MEMORY",
        "SPARK_EXECUTOR_MEMORY",
        "SPARK_SHUFFLE_PARTITIONS",
    )
    for name in names:
        assert name in said


@pytest.mark.parametrize(
    ("pair", "named", "listed"),
    [
        ("min_nigths=3", "'min_nigths'", "min_nights"),
        ("filters.min_dayz=3", "'filters.min_dayz'", "filters.min_days"),
    ],
)
def test_run_names_an_unknown_parameter_and_lists_the_known_ones(tmp_path, pair, named, listed):
    # A misspelt name is refused before any store is opened, with the names to choose from.
    out = tmp_path / "x.csv"
    args = ["run", "usual_residence", "--store", str(tmp_path / "store"), "--out", str(out)]
    result = cli.invoke(app, [*args, "--param", pair])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"no parameter {named}" in result.output and listed in result.output


@pytest.mark.parametrize(
    ("algorithm", "pairs", "said"),
    [
        ("usual_residence", ["start=2011-03-09", "end=2011-03-07"], "start 2011-03-09 is after"),
        (
            "present_population",
            ["max_carry_minutes=1440", "max_backfill_minutes=60"],
            "max_carry_minutes (1440) and max_backfill_minutes (60) reach 25 slots",
        ),
    ],
)
def test_run_states_a_rule_between_parameters_without_a_parameter_of_no_name(
    tmp_path, algorithm, pairs, said
):
    # A rule over several parameters has no one parameter to name: the message is the rule.
    args = ["run", algorithm, "--store", str(tmp_path / "store"), "--out", str(tmp_path / "x.csv")]
    result = cli.invoke(app, [*args, *(part for pair in pairs for part in ("--param", pair))])
    assert result.exit_code == 2 and "Traceback" not in result.output
    said_in_one_line = " ".join(result.output.split())
    assert f"error: {algorithm}: {said}" in said_in_one_line
    assert "parameter 'parameters'" not in said_in_one_line
    assert "Value error" not in said_in_one_line


def test_run_help_names_the_levels_and_the_grid_level_as_allocated():
    from cellcensus.holder.geo.allocation import GRID_LEVEL

    result = cli.invoke(app, ["run", "--help"], env={"COLUMNS": "200"})
    said = " ".join(result.output.replace("│", " ").split())
    assert f"{GRID_LEVEL} (`cellcensus store allocate --grid`)" in said
    assert "municipality (allocated at ingest)" in said


def test_the_catalogue_hides_nothing_on_an_80_column_terminal():
    result = cli.invoke(app, ["algorithms"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    cells = {cell.strip() for line in result.output.splitlines() for cell in line.split("│")}
    # Every key, certification level and bound unit whole on a line of a cell.
    for algorithm in registered_algorithms().values():
        manifest = algorithm.manifest
        assert set(manifest.key_names) <= cells, manifest.name
        assert str(manifest.certification) in cells
    assert "local_date/slot" in cells  # the unit of present_population's bound


def test_a_parameter_without_default_is_listed_as_required():
    rows = {
        row[0]: row
        for row in parameter_rows(get_algorithm("internal_migration").manifest.parameters)
    }
    assert rows["before_start"][2] == "required"
    assert not any("PydanticUndefined" in cell for row in rows.values() for cell in row)


@pytest.mark.parametrize("name", sorted(registered_algorithms()))
def test_an_algorithms_parameters_hide_nothing_on_an_80_column_terminal(name):
    result = cli.invoke(app, ["algorithms", name], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "…" not in result.output


def test_run_says_a_tac_given_as_a_number_must_be_quoted(tmp_path):
    # 01234567 as a number is 1234567: refusing it beats matching the wrong handsets.
    args = ["run", "usual_residence", "--store", str(tmp_path / "store"), "--out", "x.csv"]
    result = cli.invoke(app, [*args, "--param", "filters.m2m_tacs=[35000001]"])
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "Traceback" not in said
    assert "parameter 'filters.m2m_tacs.0': a TAC is 8 digits written as a string" in said
    assert '("01234567")' in said and "Value error" not in said
