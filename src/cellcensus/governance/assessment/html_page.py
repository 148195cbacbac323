"""The assessment as a self-contained HTML page."""

from __future__ import annotations

from html import escape

from cellcensus.governance.assessment.result import Assessment, RiskFinding

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; color: #222;
       line-height: 1.45; padding: 0 1rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; width: 100%; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
.high { color: #b03a2e; font-weight: bold; } .medium { color: #a0522d; }
.summary { display: flex; gap: 2rem; align-items: center; flex-wrap: wrap; }
.score { font-size: 2rem; font-weight: bold; }
blockquote { border-left: 4px solid #c0392b; margin: 0; padding: 0.2rem 1rem; }
"""


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(header)}</th>" for header in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _list(items: list[str], tag: str = "ul") -> str:
    return f"<{tag}>" + "".join(f"<li>{item}</li>" for item in items) + f"</{tag}>"


def to_html(assessment: Assessment, *, chart: str) -> str:
    """Render the assessment as HTML.

    Args:
        assessment: The result to render.
        chart: An inline SVG of the quadrant.

    Returns:
        A complete HTML document.
    """
    body = "".join(
        [
            _summary(assessment, chart),
            _recommendation(assessment),
            _risks(assessment),
            _safeguards(assessment),
            _actions(assessment),
            _cases(assessment),
            _answers(assessment),
        ]
    )
    title = escape(f"Data-sharing assessment: {assessment.title}")
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head><body>{body}</body></html>\n"
    )


def _summary(assessment: Assessment, chart: str) -> str:
    quadrant = assessment.quadrant
    country = f" · {escape(assessment.country)}" if assessment.country else ""
    return (
        f"<h1>Data-sharing assessment: {escape(assessment.title)}</h1>"
        f"<p>Decision tree {escape(assessment.tree_version)}{country}</p>"
        f"<p>{escape(assessment.description)}</p>"
        '<div class="summary"><div>'
        f'<p>Benefit score<br><span class="score">{assessment.benefit_score}</span>/100</p>'
        f'<p>Risk score<br><span class="score">{assessment.risk_score}</span>/100</p>'
        f"<p><strong>{escape(quadrant.title)}</strong></p>"
        f"<blockquote>{escape(quadrant.advice)}</blockquote>"
        f"</div>{chart}</div>"
    )


def _recommendation(assessment: Assessment) -> str:
    recommendation = assessment.recommendation
    rows = [
        [escape(s.title), str(s.points), "excluded by a rule" if s.excluded else ""]
        for s in recommendation.scores
    ]
    return (
        f"<h2>Recommended business model: {escape(recommendation.title)}</h2>"
        f"<p>{escape(recommendation.description)}</p><p>Why:</p>"
        + _list([escape(reason) for reason in recommendation.reasons])
        + f"<p>Runner-up: <strong>{escape(recommendation.runner_up_title)}</strong>: "
        f"{escape(recommendation.runner_up_reason)}</p>"
        + _table(["Business model", "Points", ""], rows)
    )


def _risk_row(risk: RiskFinding) -> list[str]:
    raised = [f"{escape(c.text)} (+{c.points})" for c in risk.raised_by]
    lowered = [f"{escape(m.title)} (−{m.points})" for m in risk.mitigated_by]
    return [
        escape(risk.title),
        f'<span class="{risk.level}">{risk.level}</span>',
        f"{risk.residual_points} of {risk.raw_points}",
        _list(raised),
        _list(lowered) if lowered else "nothing",
    ]


def _risks(assessment: Assessment) -> str:
    parts = ["<h2>Risks along the value chain</h2>"]
    headers = ["Risk", "Level", "Points after safeguards", "Raised by", "Lowered by"]
    for stage in assessment.stages:
        shown = [risk for risk in stage.risks if risk.level != "low"]
        parts.append(f"<h3>{escape(stage.title)}</h3>")
        parts.append(
            _table(headers, [_risk_row(r) for r in shown])
            if shown
            else "<p>No medium or high risk.</p>"
        )
    return "".join(parts)


def _safeguards(assessment: Assessment) -> str:
    rows = [
        [
            escape(call.title),
            escape(call.cellcensus_feature or "organisational (not software)"),
            "yes" if call.in_place else '<span class="high">no</span>',
            escape(", ".join(call.called_by)),
            escape(call.owner),
        ]
        for call in assessment.safeguards
    ]
    headers = ["Safeguard", "What cellcensus provides", "In place", "Called for by", "Owner"]
    return "<h2>Safeguards called for</h2>" + _table(headers, rows)


def _actions(assessment: Assessment) -> str:
    items = [
        f"<strong>{escape(action.owner)}</strong>: {escape(action.text)}"
        for action in assessment.actions
    ]
    return "<h2>Actions</h2>" + _list(items, tag="ol")


def _cases(assessment: Assessment) -> str:
    items = [
        f'<a href="{escape(case.url)}">{escape(case.title)}</a> '
        f"({escape(', '.join(case.countries))}; {', '.join(map(str, case.years))}): shares "
        f"{escape('; '.join(case.shared))}. <code>cellcensus cases show {case.case_id}</code>"
        for case in assessment.closest_cases
    ]
    body = _list(items) if items else "<p>No case study shares these features.</p>"
    return "<h2>Closest case studies</h2>" + body


def _answers(assessment: Assessment) -> str:
    rows = [
        [
            escape(answer.section),
            escape(answer.text),
            escape("; ".join(answer.answers) or "-") + (" (skipped)" if answer.skipped else ""),
        ]
        for answer in assessment.answers
    ]
    rules = [
        f"<code>{escape(rule.rule_id)}</code>: {escape(rule.reason)}"
        for rule in assessment.rules_applied
    ]
    return (
        "<h2>Rules applied</h2>"
        + (_list(rules) if rules else "<p>None.</p>")
        + "<h2>Answers</h2>"
        + _table(["Section", "Question", "Answer"], rows)
    )
