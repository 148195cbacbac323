"""Writing an assessment as Markdown, HTML (with a quadrant chart) and JSON."""

from __future__ import annotations

import json
from pathlib import Path

from cellcensus.errors import CellcensusError
from cellcensus.governance.assessment.html_page import to_html
from cellcensus.governance.assessment.result import Assessment, RiskFinding
from cellcensus.governance.assessment.svg import quadrant_chart

REPORT_NAME = "assessment"


def to_json(assessment: Assessment) -> str:
    """The assessment as indented JSON."""
    return json.dumps(assessment.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"


def to_markdown(assessment: Assessment) -> str:
    """The assessment as a Markdown report."""
    parts = [
        _md_summary(assessment),
        _md_recommendation(assessment),
        _md_risks(assessment),
        _md_safeguards(assessment),
        _md_actions(assessment),
        _md_cases(assessment),
        _md_rules_and_answers(assessment),
    ]
    return "\n".join(parts)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _md_summary(assessment: Assessment) -> str:
    quadrant = assessment.quadrant
    lines = [
        f"# Data-sharing assessment: {assessment.title}",
        "",
        f"Decision tree {assessment.tree_version}"
        + (f" · {assessment.country}" if assessment.country else ""),
        "",
    ]
    if assessment.description:
        lines += [" ".join(assessment.description.split()), ""]
    lines += [
        "| Benefit score | Risk score | Quadrant |",
        "| ---: | ---: | --- |",
        f"| {assessment.benefit_score}/100 | {assessment.risk_score}/100 | {quadrant.title} |",
        "",
        f"> {quadrant.advice}",
        "",
    ]
    return "\n".join(lines)


def _md_recommendation(assessment: Assessment) -> str:
    recommendation = assessment.recommendation
    lines = [
        f"## Recommended business model: {recommendation.title}",
        "",
        " ".join(recommendation.description.split()),
        "",
        "Why:",
        "",
        *[f"- {reason}" for reason in recommendation.reasons],
        "",
        f"Runner-up: **{recommendation.runner_up_title}**: {recommendation.runner_up_reason}",
        "",
        "| Business model | Points | Excluded by a rule |",
        "| --- | ---: | --- |",
        *[
            f"| {score.title} | {score.points} | {'yes' if score.excluded else ''} |"
            for score in recommendation.scores
        ],
        "",
    ]
    return "\n".join(lines)


def _md_risks(assessment: Assessment) -> str:
    lines = ["## Risks along the value chain", ""]
    for stage in assessment.stages:
        lines += [f"### {stage.title}", ""]
        shown = [risk for risk in stage.risks if risk.level != "low"]
        if not shown:
            lines += ["No medium or high risk.", ""]
            continue
        lines += [
            "| Risk | Level | Points after safeguards | Raised by | Lowered by |",
            "| --- | --- | ---: | --- | --- |",
            *[_md_risk_row(risk) for risk in shown],
            "",
        ]
    return "\n".join(lines)


def _md_risk_row(risk: RiskFinding) -> str:
    raised = "; ".join(f"{_cell(c.text)} (+{c.points})" for c in risk.raised_by)
    lowered = "; ".join(f"{m.title} (-{m.points})" for m in risk.mitigated_by) or "nothing"
    level = f"**{risk.level}**" if risk.level == "high" else risk.level
    return (
        f"| {risk.title} | {level} | {risk.residual_points} of {risk.raw_points} "
        f"| {raised} | {lowered} |"
    )


def _md_safeguards(assessment: Assessment) -> str:
    lines = [
        "## Safeguards called for",
        "",
        "| Safeguard | What cellcensus provides | In place | Called for by | Owner |",
        "| --- | --- | --- | --- | --- |",
    ]
    for call in assessment.safeguards:
        feature = _cell(call.cellcensus_feature or "organisational (not software)")
        lines.append(
            f"| {call.title} | {feature} | {'yes' if call.in_place else '**no**'} "
            f"| {_cell(', '.join(call.called_by))} | {call.owner} |"
        )
    return "\n".join([*lines, ""])


def _md_actions(assessment: Assessment) -> str:
    lines = ["## Actions", ""]
    lines += [
        f"{number}. **{action.owner}**: {action.text}"
        for number, action in enumerate(assessment.actions, start=1)
    ]
    return "\n".join([*lines, ""])


def _md_cases(assessment: Assessment) -> str:
    lines = ["## Closest case studies", ""]
    if not assessment.closest_cases:
        lines.append("No case study shares these features.")
    for case in assessment.closest_cases:
        where = ", ".join(case.countries)
        years = ", ".join(str(year) for year in case.years)
        lines.append(
            f"- **{case.title}** ({where}; {years}): shares {'; '.join(case.shared)}. "
            f"`cellcensus cases show {case.case_id}` · [source]({case.url})"
        )
    return "\n".join([*lines, ""])


def _md_rules_and_answers(assessment: Assessment) -> str:
    lines = ["## Rules applied", ""]
    lines += [f"- `{rule.rule_id}`: {rule.reason}" for rule in assessment.rules_applied] or [
        "None."
    ]
    lines += ["", "## Answers", "", "| Section | Question | Answer |", "| --- | --- | --- |"]
    for answer in assessment.answers:
        given = "; ".join(answer.answers) or "-"
        if answer.skipped:
            given = f"skipped (counted as: {given})" if answer.answers else "skipped"
        lines.append(f"| {answer.section} | {_cell(answer.text)} | {_cell(given)} |")
    return "\n".join([*lines, ""])


def write_reports(assessment: Assessment, directory: Path) -> list[Path]:
    """Write `assessment.md`, `assessment.html` and `assessment.json` into a directory.

    Args:
        assessment: The result to write.
        directory: Where to write (created if missing).

    Returns:
        The files written.

    Raises:
        CellcensusError: The directory cannot be created or written to.
    """
    outputs = {
        directory / f"{REPORT_NAME}.md": to_markdown(assessment),
        directory / f"{REPORT_NAME}.html": to_html(assessment, chart=quadrant_chart(assessment)),
        directory / f"{REPORT_NAME}.json": to_json(assessment),
    }
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for path, text in outputs.items():
            path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise CellcensusError(f"{directory}: cannot write the reports ({error.strerror})") from None
    return list(outputs)
