"""The safeguards the risks call for, mapped to cellcensus, and the actions with their owners."""

from __future__ import annotations

from cellcensus.governance.assessment.answers import Answers
from cellcensus.governance.assessment.result import ActionItem, RiskFinding, SafeguardCall
from cellcensus.governance.assessment.scoring import condition_holds, safeguards_in_place
from cellcensus.governance.assessment.tree import DecisionTree


def safeguard_calls(
    tree: DecisionTree, answers: Answers, findings: list[RiskFinding], model_id: str
) -> list[SafeguardCall]:
    """The safeguards called for by medium or high risks and by the recommended model.

    Args:
        tree: The decision tree.
        answers: The answers (to know what is in place).
        findings: The risk findings.
        model_id: The recommended business model.

    Returns:
        One entry per safeguard called for, in the tree's order, with what calls for it.
    """
    in_place = set(safeguards_in_place(tree, answers))
    calling = [finding for finding in findings if finding.level != "low"]
    model = tree.business_model(model_id)
    calls = []
    for safeguard in tree.safeguards:
        called_by = [f"{f.title} ({f.level} risk)" for f in calling if safeguard.id in f.calls_for]
        if safeguard.id in model.requires:
            called_by.append(f"the recommended model ({model.title.lower()})")
        if called_by:
            calls.append(
                SafeguardCall(
                    safeguard_id=safeguard.id,
                    title=safeguard.title,
                    cellcensus_feature=safeguard.cellcensus_feature,
                    owner=_owner_title(tree, safeguard.owner),
                    in_place=safeguard.id in in_place,
                    called_by=called_by,
                )
            )
    return calls


def action_list(
    tree: DecisionTree, answers: Answers, calls: list[SafeguardCall]
) -> list[ActionItem]:
    """The actions to take, ordered by owner as the tree lists owners (data steward first).

    The tree's actions whose conditions hold come first for each owner, then one action per
    safeguard called for that is not yet in place.

    Args:
        tree: The decision tree.
        answers: The answers.
        calls: The safeguards called for.

    Returns:
        The action list.
    """
    items: list[tuple[str, str]] = [
        (action.owner, " ".join(action.text.split()))
        for action in tree.actions
        if all(condition_holds(tree, answers, condition) for condition in action.when)
    ]
    for call in calls:
        if not call.in_place:
            safeguard = tree.safeguard(call.safeguard_id)
            items.append((safeguard.owner, _safeguard_action(call)))
    rank = {owner.id: position for position, owner in enumerate(tree.owners)}
    ordered = sorted(items, key=lambda item: rank[item[0]])
    return [
        ActionItem(owner_id=owner, owner=_owner_title(tree, owner), text=text)
        for owner, text in ordered
    ]


def _safeguard_action(call: SafeguardCall) -> str:
    where = f" ({call.cellcensus_feature})" if call.cellcensus_feature else ""
    return f"Put in place: {call.title}{where}. Called for by: {', '.join(call.called_by)}."


def _owner_title(tree: DecisionTree, owner_id: str) -> str:
    return next(owner.title for owner in tree.owners if owner.id == owner_id)
