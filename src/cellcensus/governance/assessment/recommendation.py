"""Which of the five business models fits, with the reason and the runner-up.

Each model adds the points that the answers and rules give it; a rule can exclude a model.
The model with the most points among those not excluded is recommended; ties go to the model
listed first in the tree (the more protective ones come first).
"""

from __future__ import annotations

from cellcensus.governance.assessment.answers import Answers
from cellcensus.governance.assessment.result import Contribution, ModelScore, Recommendation
from cellcensus.governance.assessment.scoring import applied_rules, contributions
from cellcensus.governance.assessment.tree import DecisionTree

REASONS_SHOWN = 4


def model_scores(tree: DecisionTree, answers: Answers) -> list[ModelScore]:
    """The points of each business model, ranked best first (excluded models last).

    Args:
        tree: The decision tree.
        answers: The answers.

    Returns:
        One score per model.
    """
    sources = list(contributions(tree, answers))
    excluded = {
        model_id for rule in applied_rules(tree, answers) for model_id in rule.exclude_models
    }
    scores = []
    for model in tree.business_models:
        parts = [
            contribution.model_copy(update={"points": effects.models[model.id]})
            for effects, contribution in sources
            if effects.models.get(model.id, 0) != 0
        ]
        parts += [
            Contribution(rule_id=rule.id, text=rule.reason, points=0)
            for rule in applied_rules(tree, answers)
            if model.id in rule.exclude_models
        ]
        scores.append(
            ModelScore(
                model_id=model.id,
                title=model.title,
                points=sum(part.points for part in parts),
                excluded=model.id in excluded,
                contributions=parts,
            )
        )
    return sorted(scores, key=lambda score: (score.excluded, -score.points))


def recommend(tree: DecisionTree, answers: Answers) -> Recommendation:
    """Recommend a business model.

    Args:
        tree: The decision tree.
        answers: The answers.

    Returns:
        The recommended model with its reasons, and the runner-up with why it came second.
    """
    scores = model_scores(tree, answers)
    best, runner_up = scores[0], scores[1]
    model = tree.business_model(best.model_id)
    return Recommendation(
        model_id=best.model_id,
        title=best.title,
        description=model.description,
        reasons=_reasons(best),
        runner_up_id=runner_up.model_id,
        runner_up_title=runner_up.title,
        runner_up_reason=_runner_up_reason(best, runner_up),
        scores=scores,
    )


def _reasons(score: ModelScore) -> list[str]:
    """The strongest positive contributions, rules first (they carry their own reasons)."""
    if score.excluded:
        return ["No business model fits these answers: every one is excluded by a rule."]
    positive = [part for part in score.contributions if part.points > 0]
    ranked = sorted(positive, key=lambda part: (part.rule_id is None, -part.points))
    return [f"{part.text} (+{part.points})" for part in ranked[:REASONS_SHOWN]]


def _runner_up_reason(best: ModelScore, runner_up: ModelScore) -> str:
    if runner_up.excluded:
        rules = [part.text for part in runner_up.contributions if part.rule_id is not None]
        return "Every other model is excluded: " + " ".join(rules)
    summary = f"{runner_up.points} points against {best.points} for {best.title.lower()}"
    for_best = {part.text: part.points for part in best.contributions}
    for_runner_up = {part.text: part.points for part in runner_up.contributions}
    gaps = {
        text: for_best.get(text, 0) - for_runner_up.get(text, 0)
        for text in for_best.keys() | for_runner_up.keys()
    }
    deciding = max(sorted(gaps), key=lambda text: gaps[text])
    return (
        f"{summary}; what separates them most: {deciding} "
        f"({for_best.get(deciding, 0):+d} against {for_runner_up.get(deciding, 0):+d})."
    )
