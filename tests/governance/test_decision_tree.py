from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest
import yaml

from cellcensus.errors import CellcensusError
from cellcensus.governance.assessment import Answers, DecisionTree, load_decision_tree
from cellcensus.governance.assessment.scoring import risk_findings
from cellcensus.governance.assessment.tree import default_tree_path
from cellcensus.governance.schemas import load_schema, schema_files
from cellcensus.governance.vocabulary import BUSINESS_MODELS, VALUE_CHAIN_STAGES

ISSUE_RISKS = {
    "inaccurate_data",
    "unauthorised_collection",
    "weak_stewardship",
    "poor_problem_definition",
    "insecure_provisions",
    "unauthorised_access",
    "re_identification",
    "biased_models",
    "incompatible_datasets",
    "non_representative",
    "misuse",
}


def test_tree_is_versioned_and_covers_every_topic(tree: DecisionTree) -> None:
    assert tree.tree_version.count(".") == 2
    assert {section.id for section in tree.sections} == {
        "purpose",
        "data",
        "motivations",
        "capacity",
        "legal",
        "risks",
        "safeguards",
    }
    assert {q.section for q in tree.questions} == {section.id for section in tree.sections}
    assert {risk.id for risk in tree.risks} == ISSUE_RISKS
    assert {risk.stage for risk in tree.risks} == set(VALUE_CHAIN_STAGES)
    assert sorted(model.id for model in tree.business_models) == sorted(BUSINESS_MODELS)
    six_rs = {option.id for option in tree.question("motivations").options} - {"not_known"}
    assert six_rs == {
        "research_and_insights",
        "revenue",
        "responsibility",
        "reciprocity",
        "reputation",
        "regulatory_compliance",
    }
    assert {"sdg_indicator", "timeliness"} <= set(tree.question("public_value").option_ids)
    assert "not_assessed" in tree.question("data_invisibles").option_ids


def test_safeguards_map_to_cellcensus_features(tree: DecisionTree) -> None:
    provided = {s.id: s.cellcensus_feature for s in tree.safeguards if s.cellcensus_feature}
    for required in (
        "pseudonymisation",
        "thresholds",
        "differential_privacy",
        "certified_algorithms",
        "audit",
    ):
        assert provided[required].startswith("holder.")


def test_shipped_tree_is_valid_against_the_shipped_json_schema() -> None:
    schema_path = next(path for path in schema_files() if path.name.startswith("decision_tree"))
    document = yaml.safe_load(default_tree_path().read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(load_schema(schema_path)).validate(document)


def _broken_tree(tmp_path: Path, change: str, into: str) -> Path:
    text = default_tree_path().read_text(encoding="utf-8")
    assert change in text
    path = tmp_path / "tree.yaml"
    path.write_text(text.replace(change, into, 1), encoding="utf-8")
    return path


def test_rule_on_unknown_question_is_refused_with_its_name(tmp_path: Path) -> None:
    path = _broken_tree(
        tmp_path, "{question: urgency, answer_in: [days]}", "{question: hurry, answer_in: [days]}"
    )
    with pytest.raises(CellcensusError, match=r"rule 'emergency_without_pipeline'.*'hurry'"):
        load_decision_tree(path)


def test_unknown_risk_in_an_option_is_refused(tmp_path: Path) -> None:
    path = _broken_tree(
        tmp_path,
        "risks: {misuse: 2}\n        models: {in_house_production: 2}",
        "risks: {fraud: 2}\n        models: {in_house_production: 2}",
    )
    with pytest.raises(CellcensusError, match=r"question 'purpose' option.*'fraud' is unknown"):
        load_decision_tree(path)


def test_schema_breach_names_the_field(tmp_path: Path) -> None:
    path = _broken_tree(tmp_path, 'tree_version: "1.1.0"', 'tree_version: "one"')
    with pytest.raises(CellcensusError, match=r"tree.yaml: at tree_version"):
        load_decision_tree(path)


def test_yaml_syntax_error_gives_the_line(tmp_path: Path) -> None:
    path = tmp_path / "tree.yaml"
    path.write_text("title: [unclosed\n", encoding="utf-8")
    with pytest.raises(CellcensusError, match=r"not valid YAML .*line"):
        load_decision_tree(path)


def test_unknown_business_model_as_a_key_is_named(tmp_path: Path) -> None:
    path = _broken_tree(
        tmp_path,
        "models: {moving_algorithms: 2, remote_access: 1}",
        "models: {moving_algorithm: 2, remote_access: 1}",
    )
    expected = r"at questions\.0\.options\.0\.models: 'moving_algorithm' is not allowed as a key: "
    with pytest.raises(CellcensusError, match=expected + r"Input should be 'in_house_production'"):
        load_decision_tree(path)


def test_risk_levels_out_of_order_are_refused(tmp_path: Path) -> None:
    path = _broken_tree(tmp_path, "    medium: 2 ", "    medium: 5 ")
    with pytest.raises(CellcensusError, match=r"scoring\.risk_levels: medium \(5\) must be below"):
        load_decision_tree(path)


def test_a_tree_where_skipping_counts_as_the_safest_answer_is_refused(tmp_path: Path) -> None:
    path = _broken_tree(tmp_path, "    skip_as: [not_known]\n", "")  # the first: beneficiaries
    with pytest.raises(CellcensusError, match=r"question 'beneficiaries': skipping it counts 0"):
        load_decision_tree(path)


def _raw_risk_points(tree: DecisionTree, answers: Answers) -> int:
    return sum(finding.raw_points for finding in risk_findings(tree, answers))


@pytest.mark.parametrize("name", ["belgium_residents", "disaster_response", "commercial_resale"])
def test_leaving_a_question_out_counts_more_risk_than_its_safest_answer(
    tree: DecisionTree, example: Callable[[str], Answers], name: str
) -> None:
    """Prudence for risks: an unanswered risk question is not assumed to be safe."""
    answers = example(name)
    for question in tree.questions:
        points = [sum(option.risks.values()) for option in question.options]
        if question.required or len(set(points)) < 2:
            continue
        safest = question.options[points.index(min(points))]
        chosen = {**answers.chosen, question.id: (safest.id,)}
        answered = _raw_risk_points(tree, replace(answers, chosen=chosen))
        del chosen[question.id]
        skipped = _raw_risk_points(tree, replace(answers, chosen=chosen))
        assert skipped > answered, question.id
