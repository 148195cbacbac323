"""Shared fixtures of the governance tests: the shipped tree, cases and worked examples."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cellcensus.governance.assessment import (
    Answers,
    DecisionTree,
    load_answers,
    load_decision_tree,
)
from cellcensus.governance.cases import CaseStudy, load_cases

EXAMPLES = Path(__file__).parents[2] / "src/cellcensus/governance/assessment/examples"


@pytest.fixture(scope="session")
def tree() -> DecisionTree:
    return load_decision_tree()


@pytest.fixture(scope="session")
def cases() -> list[CaseStudy]:
    return load_cases()


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return EXAMPLES


@pytest.fixture(scope="session")
def example(tree: DecisionTree) -> Callable[[str], Answers]:
    """Load one of the shipped worked examples by name."""

    def load(name: str) -> Answers:
        return load_answers(EXAMPLES / f"{name}.yaml", tree)

    return load
