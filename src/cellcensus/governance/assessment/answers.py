"""Answers to the decision tree: read from a YAML file or collected by the interactive flow.

An answers file looks like::

    tree_version: "1.1.0"
    title: Statistics office and operator - usual residents per municipality
    country: Belgium
    answers:
      purpose: official_statistics
      public_value: [sdg_indicator, timeliness]

A question left out (or answered `null`) counts as skipped. Mistakes are reported in one line
that names the file and the question.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cellcensus.errors import CellcensusError
from cellcensus.governance.assessment.tree import DecisionTree, Question
from cellcensus.governance.loading import read_yaml

TOP_LEVEL_KEYS = ("tree_version", "title", "country", "description", "answers")


@dataclass(frozen=True)
class Answers:
    """What was answered to each question of a decision tree.

    Attributes:
        tree_version: Version of the tree the answers were written for.
        title: Name of the assessed data use.
        chosen: Option ids chosen, per answered question.
        country: Country of the data use, if given (used to find close case studies).
        description: Free text describing the data use.
    """

    tree_version: str
    title: str
    chosen: Mapping[str, tuple[str, ...]]
    country: str | None = None
    description: str = ""
    skipped: tuple[str, ...] = field(default=())

    def counted_options(self, question: Question) -> tuple[str, ...]:
        """The options that count for a question: those chosen, or its `skip_as` if skipped."""
        if question.id in self.chosen:
            return self.chosen[question.id]
        return tuple(question.skip_as)


def load_answers(path: Path, tree: DecisionTree) -> Answers:
    """Read and check an answers file against a decision tree.

    Args:
        path: The answers file (YAML).
        tree: The decision tree the answers are for.

    Returns:
        The answers.

    Raises:
        CellcensusError: The file is unreadable or an answer is wrong; the message names the
            file and the question.
    """
    document = read_yaml(path)
    try:
        return parse_answers(document, tree)
    except CellcensusError as error:
        raise CellcensusError(f"{path}: {error}") from None


def parse_answers(document: Any, tree: DecisionTree) -> Answers:
    """Check a parsed answers document against a decision tree.

    Args:
        document: The parsed YAML.
        tree: The decision tree the answers are for.

    Returns:
        The answers.

    Raises:
        CellcensusError: An answer is wrong (the message names the question).
    """
    if not isinstance(document, dict):
        raise CellcensusError("expected a mapping with 'answers:' at the top level")
    unknown = [key for key in document if key not in TOP_LEVEL_KEYS]
    if unknown:
        raise CellcensusError(f"unknown key '{unknown[0]}'; allowed: {', '.join(TOP_LEVEL_KEYS)}")
    version = str(document.get("tree_version", tree.tree_version))
    _check_version(version, tree)
    raw_answers = document.get("answers") or {}
    if not isinstance(raw_answers, dict):
        raise CellcensusError("'answers' must map question ids to answers")
    chosen = _check_answers(raw_answers, tree)
    return Answers(
        tree_version=version,
        title=str(document.get("title") or "Untitled data use"),
        chosen=chosen,
        country=_optional_text(document.get("country")),
        description=str(document.get("description") or ""),
        skipped=tuple(q.id for q in tree.questions if q.id not in chosen),
    )


def _check_version(version: str, tree: DecisionTree) -> None:
    if version.split(".")[0] != tree.major_version:
        raise CellcensusError(
            f"written for decision tree {version}, but this is tree {tree.tree_version}; "
            "update the answers to the current questions"
        )


def _check_answers(raw: dict[Any, Any], tree: DecisionTree) -> dict[str, tuple[str, ...]]:
    known = [question.id for question in tree.questions]
    chosen: dict[str, tuple[str, ...]] = {}
    for key, value in raw.items():
        if key not in known:
            raise CellcensusError(f"'{key}' is not a question of decision tree {tree.tree_version}")
        if value is not None:
            chosen[str(key)] = check_answer(tree.question(str(key)), value)
    for question in tree.questions:
        if question.required and question.id not in chosen:
            raise CellcensusError(
                f"question '{question.id}' ({question.text}) must be answered; "
                f"choose from {', '.join(question.option_ids)}"
            )
    return chosen


def check_answer(question: Question, value: Any) -> tuple[str, ...]:
    """Check one answer: known option ids, one for a single question, no repeats.

    Args:
        question: The question answered.
        value: An option id, or a list of them for a multiple-answer question.

    Returns:
        The chosen option ids.

    Raises:
        CellcensusError: The answer does not fit the question (the message names it).
    """
    where = f"question '{question.id}' ({question.text})"
    values = value if isinstance(value, list) else [value]
    if question.kind == "single" and len(values) != 1:
        raise CellcensusError(f"{where} takes one answer, got {len(values)}")
    if not values:
        raise CellcensusError(f"{where} has an empty list; leave it out to skip it")
    for item in values:
        if not isinstance(item, str) or item not in question.option_ids:
            raise CellcensusError(
                f"{where}: '{item}' is not an answer; choose from {', '.join(question.option_ids)}"
            )
    if len(set(values)) != len(values):
        raise CellcensusError(f"{where} lists the same answer twice")
    exclusive = [item for item in values if question.option(item).exclusive]
    if exclusive and len(values) > 1:
        raise CellcensusError(f"{where}: '{exclusive[0]}' cannot be combined with other answers")
    return tuple(values)


def _optional_text(value: Any) -> str | None:
    return None if value is None else str(value)


def answers_to_yaml(answers: Answers, tree: DecisionTree) -> str:
    """Write answers as an answers file that `cellcensus assess --answers` reads back.

    Args:
        answers: The answers.
        tree: The tree they answer, for the order of the questions.

    Returns:
        YAML text.
    """
    document: dict[str, Any] = {"tree_version": tree.tree_version, "title": answers.title}
    if answers.country:
        document["country"] = answers.country
    if answers.description:  # the reports show it: a replay must too
        document["description"] = answers.description
    document["answers"] = {
        question.id: _answer_value(question, answers.chosen[question.id])
        for question in tree.questions
        if question.id in answers.chosen
    }
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def _answer_value(question: Question, options: tuple[str, ...]) -> str | list[str]:
    return options[0] if question.kind == "single" else list(options)
