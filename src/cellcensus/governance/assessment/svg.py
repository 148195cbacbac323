"""The benefit-risk quadrant as an SVG picture, for the HTML report."""

from __future__ import annotations

from cellcensus.governance.assessment.result import Assessment

SIZE = 320
MARGIN = 40
LABEL_GAP = 10  # corner labels sit outside the square, where the dot never covers them
LABEL_SIZE = 10
CORNERS = (
    ("high value, low risk", 0, MARGIN - LABEL_GAP),
    ("high value, high risk", 1, MARGIN - LABEL_GAP),
    ("low value, low risk", 0, SIZE - MARGIN + LABEL_GAP + LABEL_SIZE),
    ("low value, high risk", 1, SIZE - MARGIN + LABEL_GAP + LABEL_SIZE),
)


def _x(score: float) -> float:
    return MARGIN + (SIZE - 2 * MARGIN) * score / 100


def _y(score: float) -> float:
    return SIZE - MARGIN - (SIZE - 2 * MARGIN) * score / 100


def quadrant_chart(assessment: Assessment) -> str:
    """Draw the assessment's benefit (vertical) and risk (horizontal) scores in the quadrants.

    Args:
        assessment: The result to draw.

    Returns:
        An inline SVG element.
    """
    inner = SIZE - 2 * MARGIN
    risk_line, benefit_line = _x(assessment.risk_threshold), _y(assessment.benefit_threshold)
    labels = "".join(
        f'<text x="{MARGIN + inner * fx:.0f}" y="{y}" font-size="{LABEL_SIZE}" '
        f'fill="#555" text-anchor="{"end" if fx else "start"}">{text}</text>'
        for text, fx, y in CORNERS
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{SIZE}" height="{SIZE}" '
        f'role="img" aria-label="Benefit {assessment.benefit_score}, '
        f'risk {assessment.risk_score}">'
        f'<rect x="{MARGIN}" y="{MARGIN}" width="{inner}" height="{inner}" fill="#fafafa" '
        'stroke="#999"/>'
        f'<line x1="{risk_line:.0f}" y1="{MARGIN}" x2="{risk_line:.0f}" y2="{SIZE - MARGIN}" '
        'stroke="#bbb" stroke-dasharray="4"/>'
        f'<line x1="{MARGIN}" y1="{benefit_line:.0f}" x2="{SIZE - MARGIN}" '
        f'y2="{benefit_line:.0f}" stroke="#bbb" stroke-dasharray="4"/>'
        f"{labels}"
        f'<circle cx="{_x(assessment.risk_score):.0f}" cy="{_y(assessment.benefit_score):.0f}" '
        'r="8" fill="#c0392b"/>'
        f'<text x="{SIZE / 2:.0f}" y="{SIZE - 4}" font-size="12" text-anchor="middle">'
        "risk score →</text>"
        f'<text x="14" y="{SIZE / 2:.0f}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 14 {SIZE / 2:.0f})">benefit score →</text>'
        "</svg>"
    )
