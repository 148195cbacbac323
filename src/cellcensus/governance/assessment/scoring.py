"""Points to scores: public value, risks per value-chain stage, and the PLUTO-like quadrant.

The benefit score is the benefit points as a share of the most the tree can give. The risk
score is the residual points of every risk, each capped at the `high` level, as a share of all
risks at that level: 100 means every risk of the value chain is high.
"""

from __future__ import annotations

from collections.abc import Iterator

from cellcensus.governance.assessment.answers import Answers
from cellcensus.governance.assessment.result import (
    Contribution,
    Mitigation,
    QuadrantFinding,
    RiskFinding,
    RiskLevel,
    StageFindings,
)
from cellcensus.governance.assessment.tree import (
    Condition,
    DecisionTree,
    Effects,
    Option,
    Question,
    Rule,
)


def counted_options(tree: DecisionTree, answers: Answers) -> Iterator[tuple[Question, Option]]:
    """Every (question, option) that counts: chosen, or `skip_as` for skipped questions."""
    for question in tree.questions:
        for option_id in answers.counted_options(question):
            yield question, question.option(option_id)


def condition_holds(tree: DecisionTree, answers: Answers, condition: Condition) -> bool:
    """Whether the answer to a condition's question is (or includes) one of its options."""
    counted = answers.counted_options(tree.question(condition.question))
    return bool(set(counted) & set(condition.answer_in))


def applied_rules(tree: DecisionTree, answers: Answers) -> list[Rule]:
    """The rules whose every condition holds, in the tree's order."""
    return [
        rule
        for rule in tree.rules
        if all(condition_holds(tree, answers, condition) for condition in rule.when)
    ]


def contributions(tree: DecisionTree, answers: Answers) -> Iterator[tuple[Effects, Contribution]]:
    """Every source of points (answers then rules) with the wording that explains it.

    The contribution's `points` is left at 0: callers read the points they need from the
    effects.
    """
    for question, option in counted_options(tree, answers):
        skipped = question.id not in answers.chosen
        note = " (skipped, counted as this)" if skipped else ""
        text = f"{question.text} → {option.label}{note}"
        yield option, Contribution(question_id=question.id, text=text, points=0)
    for rule in applied_rules(tree, answers):
        yield rule, Contribution(rule_id=rule.id, text=rule.reason, points=0)


def benefit_score(tree: DecisionTree, answers: Answers) -> int:
    """Public value as a share (0-100) of the most benefit points the tree can give."""
    points = sum(effects.benefit for effects, _ in contributions(tree, answers))
    best = _most_benefit(tree)
    return round(100 * min(max(points, 0), best) / best) if best else 0


def _most_benefit(tree: DecisionTree) -> int:
    total = sum(max(rule.benefit, 0) for rule in tree.rules)
    for question in tree.questions:
        gains = [max(option.benefit, 0) for option in question.options]
        total += sum(gains) if question.kind == "multiple" else max(gains)
    return total


def risk_findings(tree: DecisionTree, answers: Answers) -> list[RiskFinding]:
    """Each risk of the tree: the answers and rules that raised it, the safeguards that lowered it.

    Args:
        tree: The decision tree.
        answers: The answers.

    Returns:
        One finding per risk, in the tree's order.
    """
    raised = list(contributions(tree, answers))
    in_place = safeguards_in_place(tree, answers)
    findings = []
    for risk in tree.risks:
        raised_by = [
            contribution.model_copy(update={"points": effects.risks[risk.id]})
            for effects, contribution in raised
            if effects.risks.get(risk.id, 0) > 0
        ]
        mitigated_by = [
            Mitigation(safeguard_id=item.id, title=item.title, points=item.mitigates[risk.id])
            for item in (tree.safeguard(safeguard_id) for safeguard_id in in_place)
            if item.mitigates.get(risk.id, 0) > 0
        ]
        raw = sum(contribution.points for contribution in raised_by)
        residual = max(raw - sum(mitigation.points for mitigation in mitigated_by), 0)
        findings.append(
            RiskFinding(
                risk_id=risk.id,
                stage=risk.stage,
                title=risk.title,
                raw_points=raw,
                residual_points=residual,
                level=risk_level(tree, residual),
                raised_by=raised_by,
                mitigated_by=mitigated_by,
                calls_for=list(risk.calls_for),
            )
        )
    return findings


def safeguards_in_place(tree: DecisionTree, answers: Answers) -> list[str]:
    """The ids of the safeguards the answers say are in place."""
    return [
        option.safeguard
        for _, option in counted_options(tree, answers)
        if option.safeguard is not None
    ]


def risk_level(tree: DecisionTree, residual_points: int) -> RiskLevel:
    """The level of a risk from its residual points."""
    levels = tree.scoring.risk_levels
    if residual_points >= levels.high:
        return "high"
    return "medium" if residual_points >= levels.medium else "low"


def risk_score(tree: DecisionTree, findings: list[RiskFinding]) -> int:
    """Residual risk as a share (0-100) of every risk at the `high` level."""
    cap = tree.scoring.risk_levels.high
    capped = sum(min(finding.residual_points, cap) for finding in findings)
    return round(100 * capped / (cap * len(findings))) if findings else 0


def by_stage(tree: DecisionTree, findings: list[RiskFinding]) -> list[StageFindings]:
    """Group the risk findings by value-chain stage, in the chain's order."""
    return [
        StageFindings(
            stage=stage.id,
            title=stage.title,
            risks=[finding for finding in findings if finding.stage == stage.id],
        )
        for stage in tree.value_chain
    ]


def quadrant(tree: DecisionTree, benefit: int, risk: int) -> QuadrantFinding:
    """The quadrant a benefit and a risk score fall in."""
    benefit_side = "high" if benefit >= tree.scoring.benefit_threshold else "low"
    risk_side = "high" if risk >= tree.scoring.risk_threshold else "low"
    chosen = next(
        item for item in tree.quadrants if (item.benefit, item.risk) == (benefit_side, risk_side)
    )
    return QuadrantFinding(
        id=chosen.id,
        title=chosen.title,
        advice=chosen.advice,
        benefit=chosen.benefit,
        risk=chosen.risk,
    )
