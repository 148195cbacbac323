"""The decision tree: questions, answers, weights and rules, read from a versioned YAML file.

The tree lives in `decision_tree.yaml` beside this module so that a data steward can change
questions, weights and rules without touching code. The pydantic models below are the schema
(shipped as `decision_tree.schema.yaml`); `check_references` adds the cross-references a JSON
Schema cannot express (a rule names a question that exists, an option raises a known risk...).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cellcensus.governance.loading import read_yaml, validate_file
from cellcensus.governance.vocabulary import (
    BUSINESS_MODELS,
    BusinessModelId,
    Motivation,
    SourceType,
    StatisticalDomain,
    ValueChainStage,
)

IDENTIFIER = r"^[a-z][a-z0-9_]*$"
URL = r"^https?://[^\s/$.?#][^\s]*$"
SEMANTIC_VERSION = r"^\d+\.\d+\.\d+$"


class TreeModel(BaseModel):
    """Base of every part of the tree: frozen, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Reference(TreeModel):
    """A public document the tree's content draws on."""

    title: str = Field(min_length=3)
    url: str = Field(pattern=URL)


class Effects(TreeModel):
    """What an answer or a rule adds to the assessment."""

    benefit: int = Field(default=0, description="Points of public value.")
    risks: dict[str, int] = Field(
        default_factory=dict, description="Points added to each named risk."
    )
    models: dict[BusinessModelId, int] = Field(
        default_factory=dict, description="Points for (+) or against (-) each business model."
    )


class CaseFeatures(TreeModel):
    """How an answer describes the data use, in the case studies' words (to find close cases)."""

    domain: StatisticalDomain | None = None
    source_type: SourceType | None = None
    motivation: Motivation | None = None


class Option(Effects):
    """One possible answer to a question."""

    id: str = Field(pattern=IDENTIFIER)
    label: str = Field(min_length=2)
    help: str = ""
    safeguard: str | None = None
    exclusive: bool = Field(default=False, description="Cannot be combined with other answers.")
    case_features: CaseFeatures = Field(default_factory=CaseFeatures)


class Question(TreeModel):
    """A question of the tree, with its help text and its possible answers."""

    id: str = Field(pattern=IDENTIFIER)
    section: str
    text: str = Field(min_length=5)
    help: str = Field(min_length=5)
    kind: Literal["single", "multiple"] = "single"
    required: bool = False
    skip_as: list[str] = Field(
        default_factory=list,
        description="Options counted when the question is skipped (prudence for risks).",
    )
    options: list[Option] = Field(min_length=2)

    def option(self, option_id: str) -> Option:
        """Return the option with this id (KeyError if there is none)."""
        return _find(self.options, option_id)

    @property
    def option_ids(self) -> list[str]:
        """The ids of the options, in order."""
        return [option.id for option in self.options]


class Condition(TreeModel):
    """Holds when the answer to `question` is (or includes) one of `answer_in`."""

    question: str
    answer_in: list[str] = Field(min_length=1)


class Rule(Effects):
    """A combination of answers with a consequence and the reason for it."""

    id: str = Field(pattern=IDENTIFIER)
    when: list[Condition] = Field(min_length=1)
    exclude_models: list[BusinessModelId] = Field(default_factory=list)
    reason: str = Field(min_length=10)


class Section(TreeModel):
    """A group of questions shown under one heading."""

    id: str = Field(pattern=IDENTIFIER)
    title: str


class Stage(TreeModel):
    """A stage of the data value chain."""

    id: ValueChainStage
    title: str


class Owner(TreeModel):
    """Someone who can own an action."""

    id: str = Field(pattern=IDENTIFIER)
    title: str


class BusinessModel(TreeModel):
    """One of the five business models of public-private partnerships for statistics."""

    id: BusinessModelId
    title: str
    description: str
    requires: list[str] = Field(
        default_factory=list, description="Safeguards the model cannot work without."
    )


class Safeguard(TreeModel):
    """A protection, what cellcensus provides for it, who puts it in place, what it mitigates."""

    id: str = Field(pattern=IDENTIFIER)
    title: str
    cellcensus_feature: str | None = Field(
        default=None, description="Where cellcensus provides it; null if organisational only."
    )
    description: str
    owner: str
    mitigates: dict[str, int] = Field(default_factory=dict)


class Risk(TreeModel):
    """A risk at one stage of the value chain, and the safeguards it calls for."""

    id: str = Field(pattern=IDENTIFIER)
    stage: ValueChainStage
    title: str
    description: str
    calls_for: list[str] = Field(min_length=1)


class Action(TreeModel):
    """A step someone must take, when its conditions hold (always, without conditions)."""

    id: str = Field(pattern=IDENTIFIER)
    text: str
    owner: str
    when: list[Condition] = Field(default_factory=list)


class Quadrant(TreeModel):
    """Where a benefit and a risk score fall, as in the PLUTO public-value assessment."""

    id: str = Field(pattern=IDENTIFIER)
    benefit: Literal["high", "low"]
    risk: Literal["high", "low"]
    title: str
    advice: str


class RiskLevels(TreeModel):
    """Residual points from which a risk is medium or high."""

    medium: int = Field(ge=1)
    high: int = Field(ge=1)

    @model_validator(mode="after")
    def _medium_below_high(self) -> RiskLevels:
        if self.medium >= self.high:
            raise ValueError(f"medium ({self.medium}) must be below high ({self.high})")
        return self


class Scoring(TreeModel):
    """Thresholds that turn points into levels and quadrants (scores are 0 to 100)."""

    benefit_threshold: int = Field(ge=0, le=100)
    risk_threshold: int = Field(ge=0, le=100)
    risk_levels: RiskLevels


class DecisionTree(TreeModel):
    """The whole decision tree, as read from `decision_tree.yaml`."""

    schema_version: Literal[1]
    tree_version: str = Field(pattern=SEMANTIC_VERSION)
    title: str
    description: str
    references: list[Reference] = Field(min_length=1)
    scoring: Scoring
    sections: list[Section] = Field(min_length=1)
    value_chain: list[Stage] = Field(min_length=5, max_length=5)
    owners: list[Owner] = Field(min_length=1, description="In the order actions are listed.")
    business_models: list[BusinessModel] = Field(min_length=5, max_length=5)
    safeguards: list[Safeguard] = Field(min_length=1)
    risks: list[Risk] = Field(min_length=1)
    questions: list[Question] = Field(min_length=1)
    rules: list[Rule] = Field(default_factory=list)
    actions: list[Action] = Field(default_factory=list)
    quadrants: list[Quadrant] = Field(min_length=4, max_length=4)

    @model_validator(mode="after")
    def _references_resolve(self) -> DecisionTree:
        check_references(self)
        return self

    def question(self, question_id: str) -> Question:
        """Return the question with this id (KeyError if there is none)."""
        return _find(self.questions, question_id)

    def risk(self, risk_id: str) -> Risk:
        """Return the risk with this id (KeyError if there is none)."""
        return _find(self.risks, risk_id)

    def safeguard(self, safeguard_id: str) -> Safeguard:
        """Return the safeguard with this id (KeyError if there is none)."""
        return _find(self.safeguards, safeguard_id)

    def business_model(self, model_id: str) -> BusinessModel:
        """Return the business model with this id (KeyError if there is none)."""
        return _find(self.business_models, model_id)

    def section_title(self, section_id: str) -> str:
        """Return the heading of a section (KeyError if there is none)."""
        return _find(self.sections, section_id).title

    @property
    def major_version(self) -> str:
        """The major part of `tree_version`: answers files are valid across a major version."""
        return self.tree_version.split(".")[0]


class _Identified(Protocol):
    @property
    def id(self) -> str: ...


ItemT = TypeVar("ItemT", bound=_Identified)


def _find(items: Iterable[ItemT], item_id: str) -> ItemT:
    for item in items:
        if item.id == item_id:
            return item
    raise KeyError(item_id)


def check_references(tree: DecisionTree) -> None:
    """Check every cross-reference of the tree.

    Raises:
        ValueError: A name is repeated or refers to nothing (the message names both).
    """
    _check_unique("question", (question.id for question in tree.questions))
    _check_unique("risk", (risk.id for risk in tree.risks))
    _check_unique("safeguard", (safeguard.id for safeguard in tree.safeguards))
    _check_unique("rule", (rule.id for rule in tree.rules))
    _check_unique("business model", (model.id for model in tree.business_models))
    if sorted(model.id for model in tree.business_models) != sorted(BUSINESS_MODELS):
        raise ValueError(f"business_models must be exactly: {', '.join(BUSINESS_MODELS)}")
    pairs = {(quadrant.benefit, quadrant.risk) for quadrant in tree.quadrants}
    if len(pairs) != 4:
        raise ValueError("quadrants must cover the four benefit x risk combinations once each")
    for question in tree.questions:
        _check_question(tree, question)
    for rule in tree.rules:
        _check_effects(tree, f"rule '{rule.id}'", rule)
        _check_conditions(tree, f"rule '{rule.id}'", rule.when)
    for action in tree.actions:
        _check_known(f"action '{action.id}' owner", [action.owner], _owner_ids(tree))
        _check_conditions(tree, f"action '{action.id}'", action.when)
    _check_catalogues(tree)


def _check_question(tree: DecisionTree, question: Question) -> None:
    where = f"question '{question.id}'"
    _check_known(f"{where} section", [question.section], [s.id for s in tree.sections])
    _check_unique(f"{where} option", question.option_ids)
    _check_known(f"{where} skip_as", question.skip_as, question.option_ids)
    if question.kind == "single" and len(question.skip_as) > 1:
        raise ValueError(f"{where}: a single-answer question skips as one option at most")
    safeguard_ids = [safeguard.id for safeguard in tree.safeguards]
    for option in question.options:
        _check_effects(tree, f"{where} option '{option.id}'", option)
        if option.safeguard is not None:
            _check_known(f"{where} option '{option.id}'", [option.safeguard], safeguard_ids)
    _check_prudent_skip(question)


def _check_prudent_skip(question: Question) -> None:
    """Skipping a question whose answers differ in risk counts more than its safest answer.

    Otherwise leaving risky questions out would lower the risk score (prudence for risks).
    """
    points = {option.id: sum(option.risks.values()) for option in question.options}
    if question.required or len(set(points.values())) < 2:
        return
    skipped = sum(points[option] for option in question.skip_as)
    if skipped <= min(points.values()):
        raise ValueError(
            f"question '{question.id}': skipping it counts {skipped} risk points, no more than "
            f"its safest answer: give it a skip_as answer with more (e.g. 'Not known yet')"
        )


def _check_catalogues(tree: DecisionTree) -> None:
    risk_ids = [risk.id for risk in tree.risks]
    safeguard_ids = [safeguard.id for safeguard in tree.safeguards]
    for risk in tree.risks:
        _check_known(f"risk '{risk.id}' calls_for", risk.calls_for, safeguard_ids)
    for model in tree.business_models:
        _check_known(f"business model '{model.id}' requires", model.requires, safeguard_ids)
    for safeguard in tree.safeguards:
        where = f"safeguard '{safeguard.id}'"
        _check_known(f"{where} owner", [safeguard.owner], _owner_ids(tree))
        _check_known(f"{where} mitigates", list(safeguard.mitigates), risk_ids)


def _check_effects(tree: DecisionTree, where: str, effects: Effects) -> None:
    _check_known(f"{where} risks", list(effects.risks), [risk.id for risk in tree.risks])


def _check_conditions(tree: DecisionTree, where: str, conditions: list[Condition]) -> None:
    question_ids = [question.id for question in tree.questions]
    for condition in conditions:
        _check_known(f"{where} condition", [condition.question], question_ids)
        options = tree.question(condition.question).option_ids
        _check_known(f"{where} condition on '{condition.question}'", condition.answer_in, options)


def _owner_ids(tree: DecisionTree) -> list[str]:
    return [owner.id for owner in tree.owners]


def _check_unique(kind: str, ids: Iterable[str]) -> None:
    repeated = [item for item, count in Counter(ids).items() if count > 1]
    if repeated:
        raise ValueError(f"{kind} id '{repeated[0]}' is used more than once")


def _check_known(where: str, names: Iterable[str], known: list[str]) -> None:
    for name in names:
        if name not in known:
            raise ValueError(f"{where}: '{name}' is unknown; known: {', '.join(known)}")


def default_tree_path() -> Path:
    """The decision tree shipped with cellcensus."""
    return Path(str(resources.files("cellcensus.governance.assessment") / "decision_tree.yaml"))


def load_decision_tree(path: Path | None = None) -> DecisionTree:
    """Read and validate a decision tree.

    Args:
        path: A tree file; the one shipped with cellcensus by default.

    Returns:
        The validated tree.

    Raises:
        CellcensusError: The file is missing, not YAML, or breaks the schema.
    """
    source = path or default_tree_path()
    return validate_file(DecisionTree, read_yaml(source), source=source)
