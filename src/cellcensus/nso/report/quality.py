"""Report sections built from an `EstimationResult`: estimators, accuracy, uncertainty, quality.

Each function returns one HTML ``<section>`` (or list items) for `cellcensus.nso.report.html`.
Every value from data is escaped; the quality section follows the dimensions of the European
Statistical System quality framework (Regulation (EC) No 223/2009, Article 12).
"""

from __future__ import annotations

import math
from datetime import date, datetime
from html import escape

from cellcensus.nso.production import ESTIMATOR_INFO, EstimationResult
from cellcensus.nso.report.numbers import decimal, number, percent, signed_percent


def summary_section(result: EstimationResult) -> str:
    """The lead paragraph: what was estimated, how well, and against what.

    Args:
        result: The estimation.

    Returns:
        The summary section.
    """
    best = result.best
    released = best.table["estimate"].notna()
    total = float(best.table.loc[released, "estimate"].sum())
    census = result.census.reindex(best.table.index[released.to_numpy()])
    total_census = float(census.sum())
    national = result.outcomes.get("national")
    gain = ""
    if national is not None and result.default != "national":
        gain = (
            f" A single national factor would have been off by "
            f"{percent(national.agreement.weighted_ape)} (population-weighted) and "
            f"{percent(national.agreement.ape_median)} for the median municipality: the "
            f"corrections divide the weighted error by "
            f"{_ratio(national.agreement.weighted_ape, best.agreement.weighted_ape)}."
        )
    difference = (total - total_census) / total_census if total_census else math.nan
    return (
        '<section><h2>Summary</h2>\n<p class="lead">'
        f"The usual resident population of {int(released.sum()):,} of {len(best.table):,} "
        f"municipalities was estimated from mobile phone data with the "
        f"<strong>{escape(best.info.label)}</strong> estimator "
        f"({_count((~released).sum(), 'municipality', 'municipalities')} had too few devices "
        "and were withheld). Together they "
        f"count {number(total)} residents, against {number(total_census)} in the 2011 census "
        f"({signed_percent(difference)}). Half of the municipalities are within "
        f"{percent(best.agreement.ape_median)} of the census; "
        f"{percent(best.agreement.weighted_ape)} of persons are placed in the wrong "
        f"municipality. Every figure comes with a {result.options.level:.0%} interval, which "
        f"contains the census value for {percent(best.coverage)} of municipalities.{gain}</p>"
        "</section>"
    )


def estimators_section(result: EstimationResult) -> str:
    """Table of every estimator's agreement, hold-out agreement and interval coverage.

    Args:
        result: The estimation.

    Returns:
        The section.
    """
    comparison = result.comparison()
    head = (
        "<tr><th>Estimator</th><th>Fitted on areas</th>"
        '<th class="num">log R²</th><th class="num">log slope</th>'
        '<th class="num">Median error</th><th class="num">Weighted error</th>'
        '<th class="num">Total</th><th class="num">Hold-out median</th>'
        '<th class="num">Hold-out weighted</th><th class="num">Coverage (hold-out)</th>'
        '<th class="num">Median ± interval</th></tr>'
    )
    rows = []
    for name, row in comparison.iterrows():
        mark = ' class="default"' if name == result.default else ""
        label = escape(str(row["label"])) + (" (default)" if name == result.default else "")
        rows.append(
            f"<tr{mark}><td>{label}</td><td>{'yes' if row['supervised'] else 'no'}</td>"
            f'<td class="num">{decimal(row["log_r2"])}</td>'
            f'<td class="num">{decimal(row["log_slope"], 3)}</td>'
            f'<td class="num">{percent(row["ape_median"])}</td>'
            f'<td class="num">{percent(row["weighted_ape"])}</td>'
            f'<td class="num">{signed_percent(row["relative_bias"])}</td>'
            f'<td class="num">{percent(row["holdout_ape_median"])}</td>'
            f'<td class="num">{percent(row["holdout_weighted_ape"])}</td>'
            f'<td class="num">{percent(row["interval_coverage"])} '
            f"({percent(row['holdout_interval_coverage'])})</td>"
            f'<td class="num">{percent(row["median_relative_ci"])}</td></tr>'
        )
    skipped = "".join(
        f"<li>{escape(ESTIMATOR_INFO[name].label)}: not run, {escape(reason)}.</li>"
        for name, reason in result.skipped.items()
    )
    return (
        "<section><h2>Estimators compared</h2>\n"
        "<p>Each estimator turns the same released counts into residents. Errors are against "
        "the 2011 census. <em>Hold-out</em>: the estimator was fitted on a random half of the "
        f"municipalities ({len(result.calibration_areas):,}, drawn within each "
        f"{escape(result.options.margin_level)}) and judged on the other half "
        f"({len(result.validation_areas):,}), whose reference values it never saw; for "
        "estimators fitted on areas, that is the honest figure. The default estimator is the "
        "one whose hold-out estimates came closest to the calibration reference, not to the "
        "census. <em>Total</em>: error of the sum over the compared municipalities.</p>\n"
        f'<div class="wide"><table><thead>{head}</thead><tbody>{"".join(rows)}</tbody>'
        f"</table></div>{f'<ul>{skipped}</ul>' if skipped else ''}</section>"
    )


def size_class_section(result: EstimationResult) -> str:
    """Errors of the default and the national estimator by size of municipality.

    Args:
        result: The estimation.

    Returns:
        The section.
    """
    best = result.best.by_size_class
    national = result.outcomes.get("national")
    naive_errors = (
        national.by_size_class["weighted_ape"].tolist()
        if national is not None
        else [math.nan] * len(best)
    )
    rows = []
    for row, naive_error in zip(best.to_dict(orient="records"), naive_errors, strict=True):
        naive = percent(float(naive_error))
        rows.append(
            f"<tr><td>{escape(str(row['size_class']))}</td>"
            f'<td class="num">{int(row["n_areas"]):,}</td>'
            f'<td class="num">{int(row["n_suppressed"]):,}</td>'
            f'<td class="num">{percent(row["ape_median"])}</td>'
            f'<td class="num">{percent(row["ape_p90"])}</td>'
            f'<td class="num">{percent(row["weighted_ape"])}</td>'
            f'<td class="num">{signed_percent(row["relative_bias"])}</td>'
            f'<td class="num">{naive}</td></tr>'
        )
    return (
        "<section><h2>Accuracy by size of municipality</h2>\n"
        f"<p>Errors of the default estimator ({escape(result.best.info.label)}) by census "
        "population; the last column gives the national factor's weighted error for "
        "comparison. Small municipalities have few devices, so their estimates are less "
        "precise.</p>\n"
        '<table><thead><tr><th>Residents (census)</th><th class="num">Compared</th>'
        '<th class="num">Suppressed</th><th class="num">Median error</th>'
        '<th class="num">90th percentile</th><th class="num">Weighted error</th>'
        '<th class="num">Total</th><th class="num">National factor, weighted</th></tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def uncertainty_section(result: EstimationResult) -> str:
    """How the intervals are made and how often they cover the census.

    Args:
        result: The estimation.

    Returns:
        The section.
    """
    best = result.best
    published = result.published
    probability = float(published["market_share"]) * float(published["sampling_fraction"])
    noise = result.noise
    rounding = (
        f"rounding to multiples of {noise.rounding_base:g} (variance {noise.rounding_variance:.2f})"
        if noise.rounding_base > 1
        else "no rounding"
    )
    items = (
        "Sampling: a resident is in the data with probability market share × sampling "
        f"fraction = {probability:.4g}, so a count of D devices varies by about "
        f"√(D × (1 − {probability:.4g})) from one possible sample to another.",
        f"Disclosure protection declared by the release: {escape(noise.source)}; {rounding}.",
        "Model error: what sampling and noise leave unexplained (homes placed in a "
        "neighbouring municipality, uneven coverage), estimated on the calibration areas so "
        "that intervals cover their reference at the nominal rate: "
        + (
            f"{percent(best.model_error)} of the estimate for the default estimator."
            if best.model_error > 0
            else "none was needed for the default estimator, whose differences from the "
            "reference sampling and noise already explain."
        ),
    )
    body = "".join(f"<li>{item}</li>" for item in items)
    return (
        "<section><h2>Uncertainty</h2>\n"
        f"<p>Every estimate has a standard error and a {result.options.level:.0%} interval "
        "(in the tables and output files). They combine three sources:</p>\n"
        f"<ul>{body}</ul>\n"
        f"<p>The intervals of the default estimator contain the census value for "
        f"{percent(best.coverage)} of municipalities, and for {percent(best.holdout_coverage)} "
        "in the hold-out half. Half of the intervals are narrower than "
        f"±{percent(best.median_relative_ci)} of the estimate.</p>\n"
        f"{error_sources_table(result)}</section>"
    )


ERROR_SOURCE_CLASSES: tuple[tuple[str, float, float], ...] = (
    ("under 5,000", 0.0, 5_000.0),
    ("5,000 – 20,000", 5_000.0, 20_000.0),
    ("20,000 and over", 20_000.0, math.inf),
)
"""Size classes (census residents) of the table of error sources."""


def error_sources_table(result: EstimationResult) -> str:
    """What each source adds to the default estimator's standard errors, by size of area.

    The disclosure noise (declared by the release) beside the sampling error and the model
    error: median standard error as a share of the estimate, and the share of the summed
    variance.

    Args:
        result: The estimation.

    Returns:
        A heading, a sentence and a table (empty when the sources are not known).
    """
    best = result.best
    parts = best.error_sources
    summary = best.error_summary()
    if parts.empty or not summary:
        return ""
    estimate = best.table["estimate"].reindex(parts.index)
    usable = (estimate > 0) & parts["sampling"].notna()
    relative = parts[usable].div(estimate[usable], axis=0)
    census = result.census.reindex(relative.index)
    variance = (parts[usable] ** 2).sum()
    total = float(variance.sum())
    labels = (
        ("sampling", "Sampling (who is in the data)"),
        ("noise", "Disclosure noise and rounding"),
        ("model", "Model error"),
    )
    head = "".join(f'<th class="num">{escape(name)}</th>' for name, _, _ in ERROR_SOURCE_CLASSES)
    rows = []
    for column, label in labels:
        medians = (
            float(relative.loc[(census >= low) & (census < high), column].median())
            for _, low, high in ERROR_SOURCE_CLASSES
        )
        cells = "".join(f'<td class="num">{percent(value)}</td>' for value in medians)
        share = float(variance[column] / total) if total else math.nan
        rows.append(
            f"<tr><td>{escape(label)}</td>"
            f'<td class="num">{percent(float(relative[column].median()))}</td>{cells}'
            f'<td class="num">{percent(share)}</td></tr>'
        )
    return (
        "<h3>Sources of error</h3>\n"
        "<p>Median standard error that each source adds, as a share of the estimate, by "
        "census size of municipality; the last column is each source's share of the "
        "variance summed over all municipalities. The disclosure noise is "
        f"{_times(summary['noise_to_sampling_se'])} the sampling error in the median "
        "municipality.</p>\n"
        '<table class="sources-of-error"><thead><tr><th>Source</th>'
        f'<th class="num">All</th>{head}<th class="num">Share of variance</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _times(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.2f} times"


def estimation_method_items(result: EstimationResult) -> list[str]:
    """Steps of the method list describing the estimators (plain HTML list items).

    Args:
        result: The estimation.

    Returns:
        One item per estimator that ran, then the default estimator's assumptions.
    """
    items = [
        f"<strong>{escape(outcome.info.label)}</strong>: {escape(outcome.info.description)}"
        + (" <strong>Default.</strong>" if name == result.default else "")
        for name, outcome in result.outcomes.items()
    ]
    assumptions = "".join(f"<li>{escape(text)}</li>" for text in result.best.assumptions)
    items.append(
        f"The default estimator, {escape(result.best.info.label)}, is unbiased when:"
        f'<ul class="assumptions">{assumptions}</ul>'
    )
    return items


def quality_section(*, result: EstimationResult, generated: date | datetime | None) -> str:
    """The release's quality along the dimensions of the ESS quality framework.

    Args:
        result: The estimation.
        generated: When the report was made (for timeliness); None if not known.

    Returns:
        The section.
    """
    best = result.best
    period = result.published.get("period") or {}
    rows = (
        (
            "Relevance",
            "Usual residents per municipality: where people spend their nights, the "
            "population concept of the census. The figures can be produced for any period the "
            "operator's data cover, and for other geographies the holder allocates cells to.",
        ),
        (
            "Accuracy and reliability",
            f"Against the 2011 census: median error {percent(best.agreement.ape_median)}, "
            f"population-weighted error {percent(best.agreement.weighted_ape)}, log-log slope "
            f"{decimal(best.agreement.log_slope, 3)}; on the hold-out half "
            f"{percent(best.holdout.ape_median)} and {percent(best.holdout.weighted_ape)}. "
            f"{result.options.level:.0%} intervals cover the census for "
            f"{percent(best.coverage)} of municipalities. "
            f"{_count(best.agreement.n_suppressed, 'municipality is', 'municipalities are')} "
            "suppressed.",
        ),
        (
            "Timeliness and punctuality",
            _timeliness(period=period, result=result, generated=generated),
        ),
        (
            "Coherence and comparability",
            "Calibrated estimators add up exactly to the known totals of each "
            f"{escape(result.options.margin_level)} (register); the total of all "
            "municipalities differs from the census by "
            f"{signed_percent(best.agreement.relative_bias)}. The algorithm, its version and "
            "the disclosure policy are recorded with the release, so later releases made the "
            "same way are comparable.",
        ),
        (
            "Accessibility and clarity",
            "Figures with codes, names, standard errors and intervals as CSV, Parquet, GeoJSON "
            "and SDMX-CSV; this report states the method, its assumptions and limitations; the "
            "algorithms are open and versioned.",
        ),
    )
    body = "".join(f"<tr><th>{label}</th><td>{text}</td></tr>" for label, text in rows)
    return (
        "<section><h2>Quality</h2>\n<p>Along the dimensions of the European Statistical "
        "System quality framework.</p>\n"
        f'<table class="quality"><tbody>{body}</tbody></table></section>'
    )


def estimation_limitations(result: EstimationResult) -> list[str]:
    """Plain-word limitations specific to the estimators and intervals.

    Args:
        result: The estimation.

    Returns:
        One sentence or two per limitation.
    """
    items = [
        "The intervals cover sampling, the declared disclosure noise and a model error "
        "measured on the calibration areas. They do not cover errors shared by every "
        "municipality, such as a wrong published market share where no margin corrects it.",
        "Calibrated figures inherit the errors of the totals they are calibrated to (the "
        "register of 1 January 2011 by default), and assume that within each margin group "
        "the first estimate errs by the same proportion everywhere.",
        "The phone ownership by age used for the age correction is an assumption (an "
        "illustrative table unless a national survey's is supplied).",
    ]
    if "regional" in result.skipped:
        items.append(
            "The holder did not publish its subscribers per region, so regional market shares "
            "could only be corrected by calibration."
        )
    return items


def _timeliness(
    *, period: object, result: EstimationResult, generated: date | datetime | None
) -> str:
    end = period.get("end") if isinstance(period, dict) else None
    released = _day(result.released_at)
    end_day = _day(str(end)) if end else None
    parts = []
    if end_day is not None and released is not None:
        parts.append(
            f"The release was made {_count((released - end_day).days, 'day', 'days')} after "
            f"the end of the observation period ({end_day.isoformat()})"
        )
    if generated is not None and end_day is not None:
        made = generated.date() if isinstance(generated, datetime) else generated
        parts.append(f"this report {_count((made - end_day).days, 'day', 'days')} after it")
    text = "; ".join(parts) + "." if parts else "Release dates not recorded."
    return (
        f"{text} Counts can be produced as soon as the period's network data are in the "
        "operator's store; no survey fieldwork is needed."
    )


def _count(value: int | float, one: str, many: str) -> str:
    number_of = int(value)
    return f"{number_of:,} {one if number_of == 1 else many}"


def _day(value: str) -> date | None:
    try:
        return datetime.fromisoformat(value).date() if "T" in value else date.fromisoformat(value)
    except ValueError:
        return None


def _ratio(naive: float, best: float) -> str:
    if math.isnan(naive) or math.isnan(best) or best <= 0:
        return "–"
    return f"{naive / best:.1f}"
