"""Assessing a data use: answers in, the complete `Assessment` out."""

from __future__ import annotations

from collections.abc import Sequence

from cellcensus.governance.assessment.answers import Answers
from cellcensus.governance.assessment.recommendation import recommend
from cellcensus.governance.assessment.result import (
    AnsweredQuestion,
    AppliedRule,
    Assessment,
    CaseReference,
)
from cellcensus.governance.assessment.safeguards import action_list, safeguard_calls
from cellcensus.governance.assessment.scoring import (
    applied_rules,
    benefit_score,
    by_stage,
    counted_options,
    quadrant,
    risk_findings,
    risk_score,
)
from cellcensus.governance.assessment.tree import DecisionTree
from cellcensus.governance.cases import CaseMatch, CaseStudy, DataUseFeatures, closest_cases


def assess(tree: DecisionTree, answers: Answers, cases: Sequence[CaseStudy]) -> Assessment:
    """Assess a data use from its answers to the decision tree.

    Args:
        tree: The decision tree.
        answers: The answers, checked against the tree.
        cases: The case studies to find the closest ones among.

    Returns:
        Scores, quadrant, risks per value-chain stage, recommended business model, safeguards,
        actions and the closest case studies.
    """
    findings = risk_findings(tree, answers)
    benefit = benefit_score(tree, answers)
    risk = risk_score(tree, findings)
    recommendation = recommend(tree, answers)
    calls = safeguard_calls(tree, answers, findings, recommendation.model_id)
    features = data_use_features(tree, answers, recommendation.model_id)
    return Assessment(
        tree_version=tree.tree_version,
        title=answers.title,
        country=answers.country,
        description=answers.description,
        benefit_score=benefit,
        risk_score=risk,
        benefit_threshold=tree.scoring.benefit_threshold,
        risk_threshold=tree.scoring.risk_threshold,
        quadrant=quadrant(tree, benefit, risk),
        stages=by_stage(tree, findings),
        recommendation=recommendation,
        safeguards=calls,
        actions=action_list(tree, answers, calls),
        closest_cases=[_case_reference(match) for match in closest_cases(cases, features)],
        rules_applied=[
            AppliedRule(rule_id=rule.id, reason=" ".join(rule.reason.split()))
            for rule in applied_rules(tree, answers)
        ],
        answers=answered_questions(tree, answers),
    )


def data_use_features(tree: DecisionTree, answers: Answers, model_id: str) -> DataUseFeatures:
    """Describe the assessed data use in the case studies' words."""
    features = [option.case_features for _, option in counted_options(tree, answers)]
    return DataUseFeatures(
        business_model=model_id,
        source_types=frozenset(f.source_type for f in features if f.source_type),
        domains=frozenset(f.domain for f in features if f.domain),
        motivations=frozenset(f.motivation for f in features if f.motivation),
        country=answers.country,
    )


def _case_reference(match: CaseMatch) -> CaseReference:
    case = match.case
    return CaseReference(
        case_id=case.id,
        title=case.title,
        countries=case.countries,
        years=case.years,
        business_model=case.business_model,
        score=match.score,
        shared=list(match.shared),
        url=case.sources[0].url,
    )


def answered_questions(tree: DecisionTree, answers: Answers) -> list[AnsweredQuestion]:
    """Every question with the answers counted for it, for the record."""
    return [
        AnsweredQuestion(
            question_id=question.id,
            section=tree.section_title(question.section),
            text=question.text,
            answers=[question.option(o).label for o in answers.counted_options(question)],
            skipped=question.id not in answers.chosen,
        )
        for question in tree.questions
    ]
