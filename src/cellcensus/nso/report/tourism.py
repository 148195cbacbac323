"""Report section of inbound tourism: nights and arrivals of foreign visitors per area."""

from __future__ import annotations

from html import escape

import pandas as pd

from cellcensus.nso.report.numbers import decimal, number, percent, signed_percent
from cellcensus.nso.tourism import Tourism


def tourism_section(tourism: Tourism) -> str:
    """The inbound tourism section: method, the table per area, agreement with a truth."""
    nights, arrivals = tourism.indicator("nights"), tourism.indicator("arrivals")
    names = tourism.table.drop_duplicates("area_code").set_index("area_code")["area_name"]
    truth = bool(nights["truth"].notna().any())
    head = "".join(
        f"<th scope='col'>{label}</th>"
        for label in (
            tourism.level.capitalize(),
            "Nights",
            "95% interval",
            "Arrivals",
            "95% interval",
            *(("True nights", "True arrivals") if truth else ()),
        )
    )
    body = "".join(
        _row(str(names[code]), nights.loc[code], arrivals.loc[code], truth=truth)
        for code in nights.index
    )
    return (
        "<section><h2>Inbound tourism</h2>\n"
        f"<p>The holder counted the nights spent and the arrivals of foreign phones roaming "
        f"on its network per {escape(tourism.level)} with {escape(tourism.source)}: a night "
        "is spent where the phone is in night hours, a night no event shows is added where "
        "the phone's own activity lets one expect it, and an arrival is the first night of "
        "each stay. Each count is divided by the chance that a visitor is in the data, the "
        "holder's share of the country's inbound roaming times the share of the data used "
        f"({percent(tourism.selection_probability, 2)}). Every foreign phone counts as a "
        "visitor: cross-border workers who sleep in the country and residents with a foreign "
        "SIM among them. The intervals come from the sampling of visitors (a visitor's nights "
        "come in or stay out together) and the noise and rounding the release declares. "
        "Only counts whose noisy value exceeded the release's threshold are published, each "
        "on its own: where few visitors were counted, the published estimates are biased "
        "upward (those whose noise was negative were more often withheld), and an area may "
        "publish its arrivals and not its nights. Average length of stay, over the areas "
        f"that published both: {decimal(tourism.average_stay, 2)} nights per arrival.</p>\n"
        f"{_agreement(tourism) if truth else ''}"
        "<table><caption>Foreign visitors' nights and arrivals (inbound_tourism.csv, also as "
        f"Parquet)</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        "</section>"
    )


def _row(name: str, nights: pd.Series, arrivals: pd.Series, *, truth: bool) -> str:
    """One area's estimates, intervals and (where known) truth, as a table row."""
    cells = [
        number(nights["estimate"]),
        _interval(nights),
        number(arrivals["estimate"]),
        _interval(arrivals),
        *((number(nights["truth"]), number(arrivals["truth"])) if truth else ()),
    ]
    values = "".join(f"<td class='num'>{cell}</td>" for cell in cells)
    return f"<tr><th scope='row'>{escape(name)}</th>{values}</tr>"


def _interval(row: pd.Series) -> str:
    if pd.isna(row["estimate"]):
        return "suppressed"
    return f"{number(row['ci_lower'])} – {number(row['ci_upper'])}"


def _agreement(tourism: Tourism) -> str:
    """The estimates against a synthetic world's truth, in words."""
    metrics = tourism.metrics()
    said = [
        f"{name} {signed_percent(metrics[name]['relative_bias'])} in total "
        f"(weighted error {percent(metrics[name]['weighted_ape'])}, intervals holding the "
        f"truth in {percent(metrics[name]['interval_coverage'], 0)} of the areas)"
        for name in ("nights", "arrivals")
    ]
    return (
        "<p>Against the synthetic world's true stays of all its visitors, over the areas "
        f"released: {'; '.join(said)}.</p>\n"
    )
