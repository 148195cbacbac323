"""Answers files: mistakes are reported in one line that names the question."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cellcensus.errors import CellcensusError
from cellcensus.governance.assessment import DecisionTree, load_answers


def _write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "answers.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


EXAMPLES = Path(__file__).parents[2] / "src/cellcensus/governance/assessment/examples"


EXAMPLES = Path(__file__).parents[2] / "src/cellcensus/governance/assessment/examples"


def _belgium() -> dict[str, object]:
    document = yaml.safe_load((EXAMPLES / "belgium_residents.yaml").read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


@pytest.mark.parametrize(
    ("question", "value", "message"),
    [
        ("personal_data", "secret", r"question 'personal_data' .*'secret' is not an answer"),
        ("purpose", ["official_statistics", "research"], r"question 'purpose' .*takes one answer"),
        ("public_value", ["timeliness", "timeliness"], r"'public_value' .*same answer twice"),
        ("public_value", [], r"'public_value' .*empty list"),
        ("public_value", ["none", "timeliness"], r"'none' cannot be combined"),
        ("sensitivity", 3, r"question 'sensitivity' .*'3' is not an answer"),
        ("hurry", "days", r"'hurry' is not a question of decision tree"),
    ],
)
def test_wrong_answer_names_the_question(
    tree: DecisionTree, tmp_path: Path, question: str, value: object, message: str
) -> None:
    document = _belgium()
    answers = document["answers"]
    assert isinstance(answers, dict)
    answers[question] = value
    with pytest.raises(CellcensusError, match=message) as raised:
        load_answers(_write(tmp_path, document), tree)
    assert str(raised.value).startswith(str(tmp_path / "answers.yaml"))
    assert "\n" not in str(raised.value)


def test_missing_required_answer_names_the_question(tree: DecisionTree, tmp_path: Path) -> None:
    document = _belgium()
    answers = document["answers"]
    assert isinstance(answers, dict)
    del answers["holder_capacity"]
    expected = r"question 'holder_capacity' .*must be answered; choose from can_host_certified, "
    with pytest.raises(CellcensusError, match=expected):
        load_answers(_write(tmp_path, document), tree)


def test_answers_for_another_major_version_are_refused(tree: DecisionTree, tmp_path: Path) -> None:
    document = {**_belgium(), "tree_version": "2.0.0"}
    with pytest.raises(CellcensusError, match=r"written for decision tree 2.0.0"):
        load_answers(_write(tmp_path, document), tree)


def test_unknown_top_level_key_and_bad_shapes(tree: DecisionTree, tmp_path: Path) -> None:
    with pytest.raises(CellcensusError, match=r"unknown key 'answer'"):
        load_answers(_write(tmp_path, {"answer": {}}), tree)
    with pytest.raises(CellcensusError, match=r"expected a mapping"):
        load_answers(_write(tmp_path, ["purpose"]), tree)
    with pytest.raises(CellcensusError, match=r"no such file"):
        load_answers(tmp_path / "absent.yaml", tree)
