"""What an assessment finds: the models written to JSON and rendered as Markdown and HTML."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

RiskLevel = Literal["low", "medium", "high"]


class Finding(BaseModel):
    """Base of the result models: frozen, serialisable."""

    model_config = ConfigDict(frozen=True)


class Contribution(Finding):
    """An answer or a rule that added points, and its wording."""

    question_id: str | None = None
    rule_id: str | None = None
    text: str
    points: int


class Mitigation(Finding):
    """A safeguard in place that lowered a risk."""

    safeguard_id: str
    title: str
    points: int


class RiskFinding(Finding):
    """One risk of the value chain: how high it is and why."""

    risk_id: str
    stage: str
    title: str
    raw_points: int
    residual_points: int
    level: RiskLevel
    raised_by: list[Contribution]
    mitigated_by: list[Mitigation]
    calls_for: list[str]


class StageFindings(Finding):
    """The risks of one stage of the value chain."""

    stage: str
    title: str
    risks: list[RiskFinding]

    @property
    def high_risks(self) -> list[RiskFinding]:
        """The risks of this stage that are high."""
        return [risk for risk in self.risks if risk.level == "high"]


class QuadrantFinding(Finding):
    """Where the benefit and risk scores fall."""

    id: str
    title: str
    advice: str
    benefit: Literal["high", "low"]
    risk: Literal["high", "low"]


class ModelScore(Finding):
    """The points of one business model and where they came from."""

    model_id: str
    title: str
    points: int
    excluded: bool
    contributions: list[Contribution]


class Recommendation(Finding):
    """The recommended business model, why, and the runner-up."""

    model_id: str
    title: str
    description: str
    reasons: list[str]
    runner_up_id: str
    runner_up_title: str
    runner_up_reason: str
    scores: list[ModelScore]


class SafeguardCall(Finding):
    """A safeguard called for by medium or high risks or by the recommended model."""

    safeguard_id: str
    title: str
    cellcensus_feature: str | None
    owner: str
    in_place: bool
    called_by: list[str]


class ActionItem(Finding):
    """A step to take and who owns it."""

    owner_id: str
    owner: str
    text: str


class CaseReference(Finding):
    """A case study close to the assessed data use."""

    case_id: str
    title: str
    countries: list[str]
    years: list[int]
    business_model: str
    score: int
    shared: list[str]
    url: str


class AnsweredQuestion(Finding):
    """A question and the answers counted for it."""

    question_id: str
    section: str
    text: str
    answers: list[str]
    skipped: bool


class AppliedRule(Finding):
    """A rule of the tree whose conditions held."""

    rule_id: str
    reason: str


class Assessment(Finding):
    """The complete result of assessing one data use."""

    tree_version: str
    title: str
    country: str | None
    description: str
    benefit_score: int
    risk_score: int
    benefit_threshold: int
    risk_threshold: int
    quadrant: QuadrantFinding
    stages: list[StageFindings]
    recommendation: Recommendation
    safeguards: list[SafeguardCall]
    actions: list[ActionItem]
    closest_cases: list[CaseReference]
    rules_applied: list[AppliedRule]
    answers: list[AnsweredQuestion]

    @property
    def high_risks(self) -> list[RiskFinding]:
        """Every high risk, in value-chain order."""
        return [risk for stage in self.stages for risk in stage.high_risks]
