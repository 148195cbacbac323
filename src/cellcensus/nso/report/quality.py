"""Report sections built from an `EstimationResult`: estimators, accuracy, uncertainty, quality.

Each function returns one HTML ``<section>`` (or list items) for `cellcensus.nso.report.html`.
Every value from data is escaped; the quality section follows the dimensions of the European
Statistical System quality framework (Regulation (EC) No 223/2009, Article 12).
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from html import escape

from cellcensus.nso.production import (
    ESTIMATOR_INFO,
    NO_SUBSCRIBERS_BY_REGION,
    EstimationResult,
    EstimatorOutcome,
)
from cellcensus.nso.report.numbers import decimal, number, percent, signed_percent
from cellcensus.release import published_period


def summary_section(result: EstimationResult) -> str:
    """The lead paragraph: what was estimated, how well, and against what.

    Args:
        result: The estimation.

    Returns:
        The summary section.
    """
    best = result.best
    released = best.table["estimate"].notna()
    # Summed as published (each area rounded to persons): the total a reader adds up.
    total = float(best.table.loc[released, "estimate"].round(0).sum())
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
        f"{percent(best.agreement.ape_median)} of the census; the absolute differences sum "
        f"to {percent(best.agreement.weighted_ape)} of the census population "
        "(population-weighted APE). Every figure comes with a "
        f"{result.options.level:.0%} interval, which "
        f"contains the census value for {percent(best.coverage)} of municipalities.{gain}</p>"
        "</section>"
    )


_NUM = ' class="num"'


def _compared(result: EstimationResult) -> str:
    """How many of the validation half were judged (estimate and census), where not all."""
    judged = result.best.holdout.n_areas
    if judged >= len(result.validation_areas):
        return ""
    return f", {judged:,} of them with an estimate and a census count to judge"


def estimators_section(result: EstimationResult) -> str:
    """Table of every estimator's agreement, hold-out agreement and interval coverage.

    Args:
        result: The estimation.

    Returns:
        The section.
    """
    comparison = result.comparison()
    names = (
        "Fitted on areas",
        "log R²",
        "log slope",
        "Median error",
        "Weighted error",
        "Total",
        "Hold-out median",
        "Hold-out weighted",
        "Coverage (hold-out)",
        "Median ± interval",
    )
    head = '<th scope="col">Estimator</th>' + "".join(
        f'<th scope="col"{"" if index == 0 else _NUM}>{name}</th>'
        for index, name in enumerate(names)
    )
    rows = []
    for name, row in comparison.iterrows():
        mark = ' class="default"' if name == result.default else ""
        label = escape(str(row["label"])) + (" (default)" if name == result.default else "")
        rows.append(
            f'<tr{mark}><th scope="row" class="row">{label}</th>'
            f"<td>{'yes' if row['supervised'] else 'no'}</td>"
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
        f"({len(result.validation_areas):,}{_compared(result)}), whose reference values it "
        "never saw; for "
        "estimators fitted on areas, that is the figure to go by. The default estimator was "
        f"chosen on {len(result.selection_splits)} other random splits into halves, drawn "
        "independently of this one, as the one whose estimates on each half, fitted on the "
        f"other, came closest to {reference_name(result)}, so that its hold-out error here "
        "is not the one it was picked for. <em>Total</em>: "
        "error of the sum over the compared municipalities.</p>\n"
        '<div class="wide"><table><caption>Agreement of each estimator with the 2011 census, '
        "on all municipalities and on the hold-out half</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody>"
        f"</table></div>{f'<ul>{skipped}</ul>' if skipped else ''}</section>"
    )


def size_class_section(result: EstimationResult) -> str:
    """Errors of the default and the national estimator by size of municipality, and coverage.

    Args:
        result: The estimation.

    Returns:
        The section: a table of errors, then one of the intervals' coverage and width.
    """
    best = result.best.by_size_class
    level = f"{result.options.level:.0%}"
    national = result.outcomes.get("national")
    naive = (
        national.by_size_class
        if national is not None
        else best.assign(weighted_ape=math.nan, interval_coverage=math.nan)
    )
    rows, covered = [], []
    for row, plain in zip(
        best.to_dict(orient="records"), naive.to_dict(orient="records"), strict=True
    ):
        label = f'<th scope="row" class="row">{escape(str(row["size_class"]))}</th>'
        rows.append(
            f"<tr>{label}"
            f'<td class="num">{int(row["n_areas"]):,}</td>'
            f'<td class="num">{int(row["n_suppressed"]):,}</td>'
            f'<td class="num">{percent(row["ape_median"])}</td>'
            f'<td class="num">{percent(row["ape_p90"])}</td>'
            f'<td class="num">{percent(row["weighted_ape"])}</td>'
            f'<td class="num">{signed_percent(row["relative_bias"])}</td>'
            f'<td class="num">{percent(float(plain["weighted_ape"]))}</td></tr>'
        )
        covered.append(
            f"<tr>{label}"
            f'<td class="num">{int(row["n_areas"]):,}</td>'
            f'<td class="num">{percent(row["interval_coverage"])}</td>'
            f'<td class="num">{percent(row["median_relative_ci"])}</td>'
            f'<td class="num">{percent(float(plain["interval_coverage"]))}</td></tr>'
        )
    return (
        "<section><h2>Accuracy by size of municipality</h2>\n"
        f"<p>Errors of the default estimator ({escape(result.best.info.label)}) by census "
        "population; the last column gives the national factor's weighted error for "
        "comparison. Small municipalities have few devices, so their estimates are less "
        "precise; and since only counts whose noisy value exceeded the threshold are "
        "published, the published estimates of small municipalities are also biased upward "
        "(those whose noise happened to be negative were more often withheld).</p>\n"
        '<table class="by-size"><caption>Errors of the default estimator by census size of '
        'municipality</caption><thead><tr><th scope="col">Residents (census)</th>'
        '<th scope="col" class="num">Compared</th>'
        '<th scope="col" class="num">Suppressed</th><th scope="col" class="num">Median error</th>'
        '<th scope="col" class="num">90th percentile</th>'
        '<th scope="col" class="num">Weighted error</th><th scope="col" class="num">Total</th>'
        '<th scope="col" class="num">National factor, weighted</th></tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table>\n"
        f"<p>How often the {level} intervals contain the census value in each class: "
        "intervals are judged within classes, not only overall, since one overall rate can "
        "hide large municipalities covered less often and small ones nearly always. "
        "<em>Median ±</em>: half of the class's intervals are narrower than that share of "
        "the estimate. The last column gives the national factor's coverage.</p>\n"
        '<table class="by-size"><caption>Coverage of the default estimator\'s intervals by '
        'census size of municipality</caption><thead><tr><th scope="col">Residents (census)'
        '</th><th scope="col" class="num">Compared</th>'
        '<th scope="col" class="num">Coverage</th><th scope="col" class="num">Median ±</th>'
        '<th scope="col" class="num">National factor, coverage</th></tr>'
        f"</thead><tbody>{''.join(covered)}</tbody></table></section>"
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
        "neighbouring municipality, uneven coverage), set so that intervals cover the "
        "calibration reference at the nominal rate within each class of estimated size "
        "(up to five, the quintiles of the estimates), since it is not the same share of a "
        "small municipality's estimate as of a large one's: one rate for all sizes would "
        "cover some sizes too rarely. It is "
        "cross-fitted: the municipalities are split at random into two halves, and each "
        "half gets the model error measured on the other, so that no interval is calibrated "
        "on its own municipality: " + _model_error_words(best) + ".",
    )
    body = "".join(f"<li>{item}</li>" for item in items)
    return (
        "<section><h2>Uncertainty</h2>\n"
        f"<p>Every estimate has a standard error and a {result.options.level:.0%} interval "
        "(in the tables and output files). They combine three sources:</p>\n"
        f"<ul>{body}</ul>\n"
        f"<p>The intervals of the default estimator contain the census value for "
        f"{percent(best.coverage)} of municipalities (out of sample: each half's model error "
        f"comes from the other half), and for {percent(best.holdout_coverage)} in the "
        "hold-out half, where the estimator too was fitted on the other half only. Half of "
        "the intervals are narrower than "
        f"±{percent(best.median_relative_ci)} of the estimate.</p>\n"
        f"{error_sources_table(result)}</section>"
    )


def _model_error_words(best: EstimatorOutcome) -> str:
    """The default estimator's model error per size class, in each half, as a phrase."""
    if max(best.model_error, default=0.0) <= 0:
        return (
            "none was needed for the default estimator, whose differences from the "
            "reference sampling and noise already explain"
        )
    fits = best.model_error_by_size
    if fits.empty:
        return f"{' and '.join(percent(tau) for tau in best.model_error)} of the estimate"
    halves = [rows for _, rows in fits.groupby("half", sort=False)]
    limits = {tuple(zip(rows["lower"], rows["upper"], strict=True)) for rows in halves}
    if len(halves) != 2 or len(limits) > 1:
        # Each half's fit makes its own classes (fewer where its other half has fewer
        # calibration areas): paired figures would pair classes that differ.
        said = [
            "; ".join(
                f"{_estimate_class(low, high)}: {percent(tau)}"
                for low, high, tau in zip(
                    rows["lower"].to_numpy(dtype="float64"),
                    rows["upper"].to_numpy(dtype="float64"),
                    rows["tau"].to_numpy(dtype="float64"),
                    strict=True,
                )
            )
            for rows in halves
        ]
        return (
            "as a share of the estimate, for the default estimator, per class of estimated "
            "residents, in one half of the municipalities " + ", in the other ".join(said)
        )
    classes = []
    for low, high in sorted(next(iter(limits))):
        rows = fits[(fits["lower"] == low) & (fits["upper"] == high)]
        taus = " and ".join(percent(float(tau)) for tau in rows["tau"])
        classes.append(f"{_estimate_class(float(low), float(high))}: {taus}")
    return (
        "as a share of the estimate, for the default estimator, per class of estimated "
        "residents (the first figure for one half of the municipalities, the second for the "
        "other): " + "; ".join(classes)
    )


def _estimate_class(low: float, high: float) -> str:
    """A class of estimated residents in words: ``under 6,500``, ``6,500 – 10,100``."""
    if low <= 0 and math.isinf(high):
        return "all sizes"
    if low <= 0:
        return f"under {high:,.0f}"
    if math.isinf(high):
        return f"{low:,.0f} and over"
    return f"{low:,.0f} – {high:,.0f}"


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
    head = "".join(
        f'<th scope="col" class="num">{escape(name)}</th>' for name, _, _ in ERROR_SOURCE_CLASSES
    )
    rows = []
    for column, label in labels:
        medians = (
            float(relative.loc[(census >= low) & (census < high), column].median())
            for _, low, high in ERROR_SOURCE_CLASSES
        )
        cells = "".join(f'<td class="num">{percent(value)}</td>' for value in medians)
        share = float(variance[column] / total) if total else math.nan
        rows.append(
            f'<tr><th scope="row" class="row">{escape(label)}</th>'
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
        '<table class="sources-of-error"><caption>Median standard error added by each source, '
        "as a share of the estimate, by census size of municipality</caption>"
        '<thead><tr><th scope="col">Source</th><th scope="col" class="num">All</th>'
        f'{head}<th scope="col" class="num">Share of variance</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _times(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.2f} times"


def estimation_method_items(result: EstimationResult) -> list[str]:
    """Steps of the method list describing the estimators (plain HTML list items).

    Args:
        result: The estimation.

    Returns:
        One item per estimator that ran, the default marked.
    """
    return [
        f"<strong>{escape(outcome.info.label)}</strong>: {escape(outcome.info.description)}"
        + (" <strong>Default.</strong>" if name == result.default else "")
        for name, outcome in result.outcomes.items()
    ]


def default_assumptions(result: EstimationResult) -> str:
    """When the default estimator is approximately unbiased: a sentence and a list (HTML).

    Args:
        result: The estimation.

    Returns:
        The paragraph and list, to follow the list of estimators.
    """
    assumptions = "".join(f"<li>{escape(text)}</li>" for text in result.best.assumptions)
    return (
        f"<p>The default estimator, {escape(result.best.info.label)}, is approximately "
        "unbiased when:</p>"
        f'<ul class="assumptions">{assumptions}</ul>'
    )


def quality_section(
    *, result: EstimationResult, generated: date | datetime | None, synthetic: bool = False
) -> str:
    """The release's quality along the dimensions of the ESS quality framework.

    Args:
        result: The estimation.
        generated: When the report was made (for timeliness); None if not known. A naive
            datetime is taken as local time.
        synthetic: Whether the data are simulated: their observation period is then a label,
            not when they were collected, so timeliness is stated as processing time.

    Returns:
        The section.
    """
    best = result.best
    reference = reference_name(result)
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
            "sum of absolute differences as a share of the census population "
            f"(population-weighted APE) {percent(best.agreement.weighted_ape)}, log-log slope "
            f"{decimal(best.agreement.log_slope, 3)}; on the hold-out half "
            f"{percent(best.holdout.ape_median)} and {percent(best.holdout.weighted_ape)}. "
            f"{result.options.level:.0%} intervals cover the census for "
            f"{percent(best.coverage)} of municipalities. "
            f"{_count(best.agreement.n_suppressed, 'municipality is', 'municipalities are')} "
            "suppressed.",
        ),
        (
            "Timeliness and punctuality",
            timeliness(result=result, generated=generated, synthetic=synthetic),
        ),
        (
            "Coherence and comparability",
            "Calibrated estimators add up exactly to the known totals of each "
            f"{escape(result.options.margin_level)} ({reference}) only together "
            f"with {reference}'s population of the withheld municipalities: the "
            "published estimates alone fall "
            "short of each total by that population. The total of the published "
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
    body = "".join(f'<tr><th scope="row">{label}</th><td>{text}</td></tr>' for label, text in rows)
    return (
        "<section><h2>Quality</h2>\n<p>Along the dimensions of the European Statistical "
        "System quality framework.</p>\n"
        '<table class="quality"><caption class="visually-hidden">The release\'s quality by '
        f"dimension</caption><tbody>{body}</tbody></table></section>"
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
        "measured on the calibration areas, per class of size. They do not cover errors "
        "shared by every municipality, such as a wrong published market share where no "
        "margin corrects it.",
        _reference_limitation(result),
        "Calibrated figures assume that within each margin group the first estimate errs "
        "by the same proportion everywhere.",
        "The phone ownership by age used for the age correction is an assumption (an "
        "illustrative table unless a national survey's is supplied).",
    ]
    if "regional" in result.skipped:
        why = (
            "The holder did not publish its subscribers per region"
            if result.skipped["regional"] == NO_SUBSCRIBERS_BY_REGION
            else "The calibration reference lacks municipalities, so the population of a "
            "region is unknown"
        )
        items.append(f"{why}, so regional market shares could only be corrected by calibration.")
    return items


def _reference_limitation(result: EstimationResult) -> str:
    """What the calibration reference leaves the census to check."""
    spread = (
        "only of how the phones spread them over municipalities (the noise of the spatial pattern)"
    )
    if reference_name(result) == "the census":
        return (
            "The calibrated figures add up to the census's totals per "
            f"{escape(result.options.margin_level)}: the census is no independent check of "
            f"their level, {spread}. Its values per municipality also chose the default "
            "estimator and measured the model error, each on halves of the municipalities "
            "other than those it was judged on."
        )
    reference = result.reference_agreement
    gap = abs(reference.relative_bias)
    side = "below" if reference.relative_bias < 0 else "above"
    total = f"{percent(gap, 2)} {side} it" if round(gap, 4) else "equal to it"
    return (
        "The calibration reference agrees with the census within "
        f"{percent(reference.ape_median, 2)} for the median municipality and is "
        f"{total} in total: the census is not an "
        f"independent check of the level of the calibrated figures, {spread}, and they "
        "inherit the reference's gap to it."
    )


def reference_name(result: EstimationResult) -> str:
    """``the census`` where the calibration reference is the census, else what it is."""
    reference = result.reference_agreement
    same = reference.n_areas == len(result.census.dropna()) and reference.weighted_ape == 0
    return "the census" if same else "the calibration reference"


def timeliness(
    *, result: EstimationResult, generated: date | datetime | None, synthetic: bool = False
) -> str:
    """The timeliness and punctuality of the release, in the sense of the ESS framework.

    Timeliness is the time from the end of the reference period to the release. For real
    data that is the holder's release time minus the period's last day, then the statistics
    office's processing time to this report. Simulated data are dated to match the census
    they are compared with but were made by the run itself, so the time from their period
    to the release means nothing: only the processing time is stated.

    Args:
        result: The estimation (its release time and published period).
        generated: When the report was made; None if not known. A naive datetime is taken as
            local time; a date has no time of day.
        synthetic: Whether the data are simulated.

    Returns:
        A few sentences (plain HTML, values escaped).
    """
    start, end = published_period(result.published) or (None, None)
    released = _moment(result.released_at)
    made = _moment(generated)
    sentences = []
    if synthetic:
        dated = (
            f", dated {start.isoformat()} to {end.isoformat()} to match the census they are "
            "compared with rather than collected then"
            if start is not None and end is not None
            else ""
        )
        sentences.append(
            f"Not measurable here: the data are simulated{dated}, so the time from their "
            "observation period to the release says nothing about timeliness; what this run "
            "measures is processing time."
        )
    elif end is not None and released is not None:
        lag = (released[0].date() - end).days
        sentences.append(
            f"The holder released the counts {_count(lag, 'day', 'days')} after the end of "
            f"the observation period ({end.isoformat()})."
            if lag >= 0
            else f"The release is dated {released[0].date().isoformat()}, before the end of "
            f"the observation period ({end.isoformat()}): its time stamps are inconsistent."
        )
    processing = _processing(released=released, made=made)
    if processing:
        sentences.append(processing)
    if not sentences:
        sentences.append("Release dates not recorded.")
    sentences.append(
        "With real data, counts can be produced as soon as the period's network records are "
        "in the operator's store; no survey fieldwork is needed. Punctuality cannot be "
        "assessed: no release calendar is recorded with the release."
    )
    return " ".join(sentences)


def _processing(
    *, released: tuple[datetime, bool] | None, made: tuple[datetime, bool] | None
) -> str:
    """When the holder released the counts, and how long after it the report was made."""
    if released is None:
        return ""
    moment, precise = released
    when = moment.strftime("%Y-%m-%d %H:%M %Z").strip() if precise else moment.date().isoformat()
    text = f"The holder released the counts on {escape(when)}"
    if made is None:
        return text + "."
    later, made_precise = made
    if precise and made_precise:
        if later < moment:
            return f"{text}; this report is dated before it, so one of the two dates is wrong."
        return (
            f"{text}, and the statistics office made this report {_duration(later - moment)} later."
        )
    days = (later.date() - moment.date()).days
    if days < 0:
        return f"{text}; this report is dated before it, so one of the two dates is wrong."
    after = "the same day" if days == 0 else f"{_count(days, 'day', 'days')} later"
    return f"{text}, and the statistics office made this report {after}."


def _moment(value: str | date | datetime | None) -> tuple[datetime, bool] | None:
    """An aware datetime (naive ones are local time) and whether it has a time of day."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            parsed: date | datetime = (
                datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
            )
        except ValueError:
            return None
    else:
        parsed = value
    if isinstance(parsed, datetime):
        return parsed.astimezone(UTC), True
    return datetime.combine(parsed, time(), tzinfo=UTC), False


def _duration(span: timedelta) -> str:
    """A time span in words: minutes under two hours, hours under two days, else days."""
    minutes = round(span.total_seconds() / 60)
    if minutes < 1:
        return "less than a minute"
    if minutes < 120:
        return _count(minutes, "minute", "minutes")
    if minutes < 48 * 60:
        return _count(round(minutes / 60), "hour", "hours")
    return _count(round(minutes / (24 * 60)), "day", "days")


def _count(value: int | float, one: str, many: str) -> str:
    number_of = int(value)
    return f"{number_of:,} {one if number_of == 1 else many}"


def _ratio(naive: float, best: float) -> str:
    if math.isnan(naive) or math.isnan(best) or best <= 0:
        return "–"
    return f"{naive / best:.1f}"
