"""The three shipped worked examples give the recommendations the rules call for."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from cellcensus.governance.assessment import Answers, Assessment, DecisionTree, assess
from cellcensus.governance.cases import CaseStudy

Example = Callable[[str], Answers]


def with_answer(answers: Answers, question_id: str, *option_ids: str) -> Answers:
    """The same answers with one question answered differently."""
    return replace(answers, chosen={**answers.chosen, question_id: option_ids})


def _score(result: Assessment, model_id: str) -> tuple[int, bool]:
    score = next(s for s in result.recommendation.scores if s.model_id == model_id)
    return score.points, score.excluded


def _applied(result: Assessment) -> set[str]:
    return {rule.rule_id for rule in result.rules_applied}


def test_belgian_case_moves_algorithms_to_the_data(
    tree: DecisionTree, cases: list[CaseStudy], example: Example
) -> None:
    result = assess(tree, example("belgium_residents"), cases)
    recommendation = result.recommendation
    assert recommendation.model_id == "moving_algorithms"
    assert recommendation.runner_up_id == "remote_access"
    # Why: recurring official statistics own the method, and the operator can host it.
    assert {"official_statistics_own_the_method", "individual_data_stays_home"} <= _applied(result)
    assert any("Recurring official statistics" in reason for reason in recommendation.reasons)
    assert any("runs the user's certified algorithms" in r for r in recommendation.reasons)
    assert _score(result, "sending_data_to_end_users")[1] is True
    assert result.quadrant.id == "proceed"
    assert result.benefit_score >= 80 and result.risk_score < result.risk_threshold
    assert result.high_risks == []


def test_operator_without_compute_moves_belgium_to_a_trusted_third_party(
    tree: DecisionTree, cases: list[CaseStudy], example: Example
) -> None:
    answers = with_answer(example("belgium_residents"), "holder_capacity", "no_capacity")
    result = assess(tree, answers, cases)
    assert "nothing_runs_at_the_holder" in _applied(result)
    assert _score(result, "moving_algorithms")[1] is True
    assert _score(result, "in_house_production")[1] is True
    assert result.recommendation.model_id == "trusted_third_party"
    assert result.recommendation.runner_up_id == "remote_access"


def test_disaster_response_relies_on_the_operators_analysts(
    tree: DecisionTree, cases: list[CaseStudy], example: Example
) -> None:
    result = assess(tree, example("disaster_response"), cases)
    assert result.recommendation.model_id == "in_house_production"
    assert result.recommendation.runner_up_id == "moving_algorithms"
    assert "emergency_without_pipeline" in _applied(result)
    assert "no pipeline is installed" in result.recommendation.reasons[0]
    assert {risk.risk_id for risk in result.high_risks} == {
        "re_identification",
        "non_representative",
    }
    assert result.quadrant.id == "proceed_with_safeguards"


def test_an_installed_pipeline_moves_disaster_response_to_algorithms(
    tree: DecisionTree, cases: list[CaseStudy], example: Example
) -> None:
    answers = with_answer(example("disaster_response"), "holder_capacity", "can_host_certified")
    result = assess(tree, answers, cases)
    assert "emergency_with_pipeline" in _applied(result)
    assert result.recommendation.model_id == "moving_algorithms"
    assert result.recommendation.runner_up_id == "in_house_production"


def test_commercial_resale_comes_out_high_risk(
    tree: DecisionTree, cases: list[CaseStudy], example: Example
) -> None:
    result = assess(tree, example("commercial_resale"), cases)
    assert result.quadrant.id == "do_not_share"
    assert result.risk_score >= 60 and result.benefit_score <= 10
    high = {risk.risk_id: risk for risk in result.high_risks}
    assert {"misuse", "re_identification", "unauthorised_access"} <= set(high)
    misuse_sources = {c.question_id or c.rule_id for c in high["misuse"].raised_by}
    assert {"access_control", "use_restriction", "resale_to_any_buyer"} <= misuse_sources
    # Personal trajectories would reach an unprotected country: two models are ruled out.
    assert _score(result, "sending_data_to_end_users")[1] is True
    assert _score(result, "remote_access")[1] is True
    assert result.recommendation.model_id == "in_house_production"
    assert any("Establish a legal basis" in action.text for action in result.actions)


def test_action_lists_start_with_the_data_steward(
    tree: DecisionTree, cases: list[CaseStudy], example: Example
) -> None:
    for name in ("belgium_residents", "disaster_response", "commercial_resale"):
        actions = assess(tree, example(name), cases).actions
        assert actions[0].owner_id == "data_steward"
        owners = [action.owner_id for action in actions]
        order = [owner.id for owner in tree.owners]
        assert owners == sorted(owners, key=order.index)


def test_missing_safeguards_become_actions_with_their_feature(
    tree: DecisionTree, cases: list[CaseStudy], example: Example
) -> None:
    result = assess(tree, example("belgium_residents"), cases)
    calls = {call.safeguard_id: call for call in result.safeguards}
    assert calls["pseudonymisation"].in_place and not calls["enclave"].in_place
    assert "recommended model" in ", ".join(calls["enclave"].called_by)
    assert any("holder.enclave" in action.text for action in result.actions)


def test_closest_cases_share_the_model_and_the_source(
    tree: DecisionTree, cases: list[CaseStudy], example: Example
) -> None:
    result = assess(tree, example("belgium_residents"), cases)
    assert len(result.closest_cases) == 3
    best = result.closest_cases[0]
    assert best.business_model == "moving_algorithms"
    assert "source: telecom" in best.shared


def test_skipped_question_counts_as_its_prudent_answer(
    tree: DecisionTree, cases: list[CaseStudy], example: Example
) -> None:
    answers = example("belgium_residents")
    chosen = {k: v for k, v in answers.chosen.items() if k != "data_invisibles"}
    skipped = assess(tree, replace(answers, chosen=chosen), cases)
    risk = next(r for s in skipped.stages for r in s.risks if r.risk_id == "non_representative")
    assert any("Not assessed yet (skipped" in c.text for c in risk.raised_by)
    record = next(a for a in skipped.answers if a.question_id == "data_invisibles")
    assert record.skipped and record.answers == ["Not assessed yet"]
