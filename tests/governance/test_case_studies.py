"""The case repository: every file valid, every link well formed, filters and commands."""

from __future__ import annotations

import io
import json
from pathlib import Path
from urllib.parse import urlparse

import jsonschema
import pytest
import typer
import yaml
from rich.console import Console
from typer.testing import CliRunner

from cellcensus.errors import CellcensusError
from cellcensus.governance import commands
from cellcensus.governance.cases import CaseStudy, filter_cases, load_cases
from cellcensus.governance.cases.repository import default_cases_directory
from cellcensus.governance.schemas import load_schema, schema_files
from cellcensus.governance.vocabulary import BUSINESS_MODELS

CASE_FILES = sorted(default_cases_directory().glob("*.yaml"))


@pytest.fixture(scope="module")
def case_validator() -> jsonschema.Draft202012Validator:
    path = next(path for path in schema_files() if path.name == "case.schema.yaml")
    return jsonschema.Draft202012Validator(load_schema(path))


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    application = typer.Typer()
    commands.register(application)
    return application


def test_at_least_fifteen_cases_across_models_and_sources(cases: list[CaseStudy]) -> None:
    assert len(cases) >= 15
    # No documented remote-access case was found yet; the other four models are all present.
    assert len({case.business_model for case in cases}) >= 4
    assert {case.business_model for case in cases} <= set(BUSINESS_MODELS)
    assert {"telecom", "card_transactions", "scanner"} <= {case.source_type for case in cases}


@pytest.mark.parametrize("path", CASE_FILES, ids=[path.stem for path in CASE_FILES])
def test_every_case_file_is_schema_valid(
    path: Path, case_validator: jsonschema.Draft202012Validator
) -> None:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    case_validator.validate(document)
    assert CaseStudy.model_validate(document).id == path.stem


@pytest.mark.parametrize("path", CASE_FILES, ids=[path.stem for path in CASE_FILES])
def test_every_source_link_is_well_formed(path: Path) -> None:
    case = CaseStudy.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    assert case.sources
    for source in case.sources:
        parts = urlparse(source.url)
        assert parts.scheme in {"http", "https"}, source.url
        assert "." in parts.netloc and " " not in source.url, source.url
        assert len(source.title) >= 5


def test_misnamed_or_invalid_case_file_is_named(tmp_path: Path) -> None:
    document = yaml.safe_load(CASE_FILES[0].read_text(encoding="utf-8"))
    (tmp_path / "wrong-name.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    with pytest.raises(CellcensusError, match=r"wrong-name.yaml: the file must be named"):
        load_cases(tmp_path)
    document["sources"] = [{"title": "A source", "url": "not a url"}]
    (tmp_path / "wrong-name.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    with pytest.raises(CellcensusError, match=r"wrong-name.yaml: at sources.0.url"):
        load_cases(tmp_path)


def test_filters(cases: list[CaseStudy]) -> None:
    nepal = filter_cases(cases, country="nepal")
    assert [case.id for case in nepal] == ["flowminder-ncell-nepal-earthquake"]
    ivory_coast = filter_cases(cases, country="Cote d'Ivoire")  # as typed without the accent
    assert [case.id for case in ivory_coast] == ["orange-d4d-cote-divoire"]
    moving = filter_cases(cases, model="moving-algorithms", source="telecom")
    assert "opal-senegal-colombia" in {case.id for case in moving}
    assert all(case.business_model == "moving_algorithms" for case in moving)
    with pytest.raises(CellcensusError, match=r"unknown business model 'barter'"):
        filter_cases(cases, model="barter")


def test_cases_json_returns_schema_valid_cases_with_sources(
    app: typer.Typer, case_validator: jsonschema.Draft202012Validator
) -> None:
    result = CliRunner().invoke(app, ["cases", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert len(listed) >= 15
    for case in listed:
        case_validator.validate(case)
        assert case["sources"]


def test_cases_table_and_filters_from_the_command_line(app: typer.Typer) -> None:
    runner = CliRunner()
    table = runner.invoke(app, ["cases", "--source", "telecom", "--country", "Ghana"])
    assert table.exit_code == 0 and "ghana-gss-vodafone-flowminder" in table.stdout
    listed = runner.invoke(app, ["cases", "--model", "trusted_third_party", "--json"])
    assert {c["business_model"] for c in json.loads(listed.stdout)} == {"trusted_third_party"}
    wrong = runner.invoke(app, ["cases", "--source", "pigeons"])
    assert wrong.exit_code == 2 and "unknown source 'pigeons'" in wrong.stderr


def test_cases_show(app: typer.Typer) -> None:
    runner = CliRunner()
    shown = runner.invoke(app, ["cases", "show", "eesti-pank-positium-travel-statistics"])
    assert shown.exit_code == 0
    assert "Positium" in shown.stdout and "https://www.eestipank.ee/" in shown.stdout
    missing = runner.invoke(app, ["cases", "show", "atlantis"])
    assert missing.exit_code == 2 and "no case study 'atlantis'" in missing.stderr


def test_cases_table_fits_80_columns_with_ids_countries_and_models_whole() -> None:
    cases = load_cases()
    terminal = Console(width=80, record=True, file=io.StringIO())
    terminal.print(commands._cases_table(cases))
    lines = terminal.export_text().splitlines()
    assert max(len(line) for line in lines) <= 80
    text = "\n".join(lines)
    for case in cases:  # whole words, the id above all: `cases show` takes it
        for word in (case.id, *case.countries, case.business_model, case.source_type):
            assert word in text, word


def test_cases_show_keeps_every_link_whole(app: typer.Typer, cases: list[CaseStudy]) -> None:
    case = next(case for case in cases if case.id == "ghana-gss-vodafone-flowminder")
    assert max(len(source.url) for source in case.sources) > 80  # longer than the terminal
    shown = CliRunner().invoke(app, ["cases", "show", case.id])
    assert shown.exit_code == 0
    for source in case.sources:
        assert f"<{source.url}>" in shown.stdout


def test_cases_count_one_and_none(app: typer.Typer) -> None:
    runner = CliRunner()
    one = runner.invoke(app, ["cases", "--country", "Belgium"])
    assert one.exit_code == 0 and one.stdout.splitlines()[0].strip() == "1 case study"
    none = runner.invoke(app, ["cases", "--country", "Atlantis"])
    assert none.exit_code == 0
    assert none.stdout.startswith("No case study matches these filters")
