"""`cellcensus assess --answers`: Markdown, HTML and JSON reports, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

import typer
import yaml
from typer.testing import CliRunner

from cellcensus.governance import commands
from cellcensus.governance.assessment import Assessment, DecisionTree, assess, load_answers
from cellcensus.governance.assessment.svg import quadrant_chart


def _app() -> typer.Typer:
    app = typer.Typer()
    commands.register(app)
    return app


def test_assess_with_answers_writes_three_reports_and_the_answers(
    examples_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report"
    result = CliRunner().invoke(
        _app(),
        ["assess", "--answers", str(examples_dir / "commercial_resale.yaml"), "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "Low public value, high risk" in result.stdout
    assert sorted(path.name for path in out.iterdir()) == [
        "answers.yaml",
        "assessment.html",
        "assessment.json",
        "assessment.md",
    ]
    restored = Assessment.model_validate(json.loads((out / "assessment.json").read_text()))
    assert restored.quadrant.id == "do_not_share"
    markdown = (out / "assessment.md").read_text(encoding="utf-8")
    for heading in (
        "## Recommended business model: In-house production by the company",
        "## Risks along the value chain",
        "### Using",
        "## Safeguards called for",
        "## Actions",
        "## Closest case studies",
        "## Answers",
    ):
        assert heading in markdown
    assert "1. **Data stewards" in markdown
    html = (out / "assessment.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    svg = html[html.index("<svg") : html.index("</svg>") + len("</svg>")]
    assert ElementTree.fromstring(svg).tag.endswith("svg")
    assert "Operator and data broker" in html and "cellcensus cases show" in html


def test_invalid_answers_file_is_one_line_naming_the_question(
    examples_dir: Path, tmp_path: Path
) -> None:
    text = (examples_dir / "belgium_residents.yaml").read_text(encoding="utf-8")
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace("urgency: months", "urgency: yesterday"), encoding="utf-8")
    result = CliRunner().invoke(
        _app(), ["assess", "--answers", str(broken), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 2
    assert "question 'urgency'" in result.stderr and "'yesterday' is not an answer" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_out_that_is_a_file_is_refused_before_any_question(
    examples_dir: Path, tmp_path: Path
) -> None:
    taken = tmp_path / "notes.txt"
    taken.write_text("kept", encoding="utf-8")
    answers = ["--answers", str(examples_dir / "belgium_residents.yaml")]
    for route in (answers, []):  # the answers file, and the interview (no input given)
        result = CliRunner().invoke(_app(), ["assess", *route, "--out", str(taken)], input="")
        assert result.exit_code == 2, result.output
        assert "is a file; give a directory" in result.stderr
        assert "Name of the data use" not in result.stdout
    assert taken.read_text(encoding="utf-8") == "kept"


def test_reports_that_cannot_be_written_are_one_line(examples_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "blocked").write_text("", encoding="utf-8")
    out = tmp_path / "blocked" / "report"  # its parent is a file: no directory can be made
    result = CliRunner().invoke(
        _app(),
        ["assess", "--answers", str(examples_dir / "belgium_residents.yaml"), "--out", str(out)],
    )
    assert result.exit_code == 2
    assert f"{out}: cannot write the reports" in result.stderr
    assert not isinstance(result.exception, OSError)


def test_error_shows_a_bracketed_path_as_given(tmp_path: Path) -> None:
    missing = tmp_path / "[draft] answers.yaml"
    result = CliRunner().invoke(_app(), ["assess", "--answers", str(missing)])
    assert result.exit_code == 2
    assert f"{missing}: no such file" in result.stderr


def test_summary_prints_a_bracketed_title_as_written(examples_dir: Path, tmp_path: Path) -> None:
    text = (examples_dir / "belgium_residents.yaml").read_text(encoding="utf-8")
    answers = tmp_path / "answers.yaml"
    answers.write_text(
        text.replace("title: Statistics office", "title: Pilot [phase 2] of the statistics office"),
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        _app(), ["assess", "--answers", str(answers), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    assert "Pilot [phase 2] of the statistics office" in result.stdout


def test_quadrant_dot_never_covers_a_corner_label(examples_dir: Path, tree: DecisionTree) -> None:
    base = assess(tree, load_answers(examples_dir / "belgium_residents.yaml", tree), [])
    for benefit, risk in [(0, 0), (7, 73), (100, 100), (0, 100), (100, 0), (97, 3)]:
        scores = {"benefit_score": benefit, "risk_score": risk}
        svg = ElementTree.fromstring(quadrant_chart(base.model_copy(update=scores)))
        dot = next(el for el in svg.iter() if el.tag.endswith("circle"))
        top, bottom = float(dot.get("cy", "")) - 8, float(dot.get("cy", "")) + 8
        corners = [el for el in svg.iter() if "value," in (el.text or "")]
        assert len(corners) == 4
        for label in corners:  # a label's glyphs span its font size above the baseline
            baseline = float(label.get("y", ""))
            glyphs_top = baseline - float(label.get("font-size", ""))
            assert bottom < glyphs_top or top > baseline, label.text


def test_the_reports_folder_keeps_the_answers_of_its_reports(examples_dir: Path, tmp_path: Path):
    out = tmp_path / "out"
    for name in ("disaster_response", "belgium_residents"):  # a later run into one folder
        result = CliRunner().invoke(
            _app(), ["assess", "--answers", str(examples_dir / f"{name}.yaml"), "--out", str(out)]
        )
        assert result.exit_code == 0, result.output
    saved = yaml.safe_load((out / "answers.yaml").read_text(encoding="utf-8"))
    expected = yaml.safe_load((examples_dir / "belgium_residents.yaml").read_text("utf-8"))
    assert saved["title"] == expected["title"]
    assert json.loads((out / "assessment.json").read_text("utf-8"))["title"] == expected["title"]
    mine = out / "answers.yaml"  # replayed in place: the file read is left as written
    mine.write_text("# my notes\n" + mine.read_text("utf-8"), encoding="utf-8")
    result = CliRunner().invoke(_app(), ["assess", "--answers", str(mine), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert mine.read_text("utf-8").startswith("# my notes")


def test_the_saved_answers_replay_to_the_same_assessment(examples_dir: Path, tmp_path: Path):
    first, replay = tmp_path / "first", tmp_path / "replay"
    source = examples_dir / "belgium_residents.yaml"
    for answers, out in ((source, first), (first / "answers.yaml", replay)):
        result = CliRunner().invoke(
            _app(), ["assess", "--answers", str(answers), "--out", str(out)]
        )
        assert result.exit_code == 0, result.output
    original = json.loads((first / "assessment.json").read_text("utf-8"))
    replayed = json.loads((replay / "assessment.json").read_text("utf-8"))
    assert original["description"].startswith("The statistics office wants")
    assert replayed == original
