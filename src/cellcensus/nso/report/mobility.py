"""Report sections of the present population by hour and of the home-work flows.

`draw_mobility_figures` draws their PNGs; `present_population_section` and `commuting_section`
return the HTML sections (every value from data escaped), which
`cellcensus.nso.report.html.write_report` places after the residents' sections.
"""

from __future__ import annotations

import math
from html import escape
from pathlib import Path

import pandas as pd

from cellcensus.nso.mobility import Commuting, PresentPopulation
from cellcensus.nso.report.figures import (
    FLOWS_PNG,
    PRESENT_HOURLY_PNG,
    PRESENT_MAPS_PNG,
    flow_scatter,
    hourly_chart,
    side_by_side_maps,
)
from cellcensus.nso.report.html import ReportFigure, figure_html
from cellcensus.nso.report.numbers import decimal, number, percent, signed_percent

REGION_NAMES = {"2000": "Flemish Region", "3000": "Walloon Region", "4000": "Brussels-Capital"}
"""Names of the Belgian regions (codes of Statbel)."""


def draw_mobility_figures(
    *,
    out_dir: Path,
    areas: pd.DataFrame,
    present: PresentPopulation | None,
    commuting: Commuting | None,
    note: str,
) -> list[Path]:
    """Draw the maps by hour, the Brussels curve and the flows scatter that apply.

    Args:
        out_dir: Folder of the PNGs.
        areas: Municipalities with ``area_code``, ``area_km2``, ``geometry``, ``region``.
        present: The present population, or None.
        commuting: The home-work flows, or None.
        note: Source line under each figure.

    Returns:
        The PNGs written.
    """
    written: list[Path] = []
    if present is not None:
        mapped = present.areas if present.areas is not None else areas
        keyed = mapped.set_index(mapped["area_code"].astype(str))
        area_km2 = keyed["area_km2"].astype("float64")
        night, day = present.night_hour, present.day_hour
        written.append(
            side_by_side_maps(
                areas=mapped,
                estimate_density=present.weekday[night] / area_km2.reindex(present.weekday.index),
                census_density=present.weekday[day] / area_km2.reindex(present.weekday.index),
                out=out_dir / PRESENT_MAPS_PNG,
                note=note,
                titles=(f"Weekday night, {night:02d}:00", f"Weekday day, {day:02d}:00"),
                title=f"Present population density by {present.level}",
                legend_title="Persons present per km²",
            )
        )
        series = {"Brussels-Capital, mobile phone data": present.region_hourly()}
        truth = present.truth_hourly()
        if truth is not None:
            series["Brussels-Capital, true presence (synthetic world)"] = truth
        written.append(
            hourly_chart(
                series=series,
                out=out_dir / PRESENT_HOURLY_PNG,
                title="Persons present in Brussels-Capital by hour of a weekday",
                marks=(night, day),
                note=note,
            )
        )
    if commuting is not None:
        flows = commuting.flows
        keys = pd.Index(flows["home_area"] + "|" + flows["work_area"])
        written.append(
            flow_scatter(
                estimate=pd.Series(flows["estimate"].to_numpy(), index=keys),
                census=pd.Series(flows["census"].to_numpy(), index=keys),
                within=pd.Series((flows["home_area"] == flows["work_area"]).to_numpy(), keys),
                out=out_dir / FLOWS_PNG,
                metrics=commuting.agreement,
                note=note,
            )
        )
    return written


def present_population_section(*, present: PresentPopulation, out_dir: Path) -> str:
    """The present population section: Brussels by day and night, maps, regions, truth.

    Args:
        present: The present population.
        out_dir: Where `draw_mobility_figures` wrote the PNGs.

    Returns:
        The section.
    """
    level, plural = present.level, _plural(present.level)
    return (
        "<section><h2>Present population by hour</h2>\n"
        "<p>Where people are, hour by hour, rather than where they live. The holder counted "
        f"its own subscribers' phones per {level} and hour (a silent phone at its cell "
        f"nearest in time, before or after) with {escape(present.source)}; the counts are "
        f"multiplied by each {level}'s persons per device from the resident estimate, "
        "scaled hour by hour so that the phones located at that hour stand for every "
        "resident (more phones are silent, and located nowhere, at night), and averaged "
        "over the weekdays of the release after its first day (whose night knows no "
        f"position from before the period). Regional totals leave out the {plural} whose count was "
        "withheld at some hour. Each phone is present in every hour of every day of the "
        "release, so the noise that protects it is calibrated to all those hours at once: "
        "that is why the hours are released for larger areas than the residents.</p>\n"
        f"{_brussels_lead(present)}"
        "<p>A silent phone counts where it was seen nearest in time, before or after (up to "
        "12 hours either way): a phone silent from the evening to the morning counts where "
        "it was last seen for the first half of the night and where it is next seen for the "
        "second, so the curve moves between day and night places more gradually than "
        "people do.</p>\n"
        f"<p>The table of every {level} and hour (present_population.csv, also as Parquet "
        "and SDMX-CSV) gives each estimate "
        "with an approximate 95% interval (median standard error "
        f"{percent(present.median_relative_std_error)} of the estimate) from the sampling "
        "of phones, the disclosure noise and rounding the release "
        f"declares{_present_model_words(present)}. The "
        "weekday means of the maps, with their intervals, are in "
        "present_population_weekday.csv: the same phones are counted every day, so "
        "averaging days reduces the disclosure noise but not the sampling error."
        f"{_clock_changes(present)}</p>\n"
        f"{_present_figures(present, out_dir=out_dir)}{_regions_table(present)}</section>"
    )


def _present_model_words(present: PresentPopulation) -> str:
    """What the present population's intervals say of the method's own error."""
    tau = present.model_error
    if tau is not None and bool((tau > 0).any()):
        median, most = percent(present.median_model_error), percent(float(tau.max()))
        spread = f"median {median}" if most == median else f"median {median}, at most {most}"
        return (
            " and the error of the method itself (where silent phones are placed: "
            f"{spread} of the estimate over the areas, measured at night against the resident "
            "estimates of the other areas)"
        )
    return (
        "; the error of the method itself (where silent phones are placed) is not in it: "
        "against the resident estimate at night, none showed beyond sampling and noise, or "
        "there was none to measure it against"
    )


def _flow_model_words(commuting: Commuting) -> str:
    """What the flows' intervals say of the error of reading a weekday place as work."""
    tau = commuting.model_error
    if tau is not None and bool((tau > 0).any()):
        return (
            " and the error of reading a weekday place as a work place (median "
            f"{percent(float(tau[tau > 0].median()))} of the estimate, measured against the "
            "census flows from the other home arrondissements)"
        )
    return (
        "; the error of reading a weekday place as a work place is not in it: against the "
        "census flows, none showed beyond sampling and noise, or there were none to measure "
        "it against"
    )


def _brussels_lead(present: PresentPopulation) -> str:
    """The paragraph of Brussels-Capital's day/night ratio beside the census (and the truth)."""
    night, day = present.night_hour, present.day_hour
    hourly = present.region_hourly()
    return (
        f'<p class="lead">Brussels-Capital holds {number(hourly.get(night, math.nan))} '
        f"persons at {night:02d}:00 and {number(hourly.get(day, math.nan))} at {day:02d}:00: "
        f"a day/night ratio of <strong>{decimal(present.day_night_ratio(), 2)}</strong>"
        f"{_ratio_interval(present)}. The 2011 census counts "
        f"{number(present.census_jobs)} jobs in the region for "
        f"{number(present.census_resident_workers)} resident workers "
        f"({decimal(present.census_job_ratio, 2)} jobs per resident worker); if every worker "
        "were at work and nobody else moved, the daytime population would be "
        f"{decimal(present.census_day_night_ratio, 2)} times the residents."
        f"{_truth_words(present)}</p>\n"
    )


def _truth_words(present: PresentPopulation) -> str:
    """How the estimates compare with the true presence, where the data are synthetic."""
    truth = present.truth_hourly()
    measured = present.truth_agreement()
    if truth is None or measured is None:
        return ""
    true_ratio = truth.get(present.day_hour, math.nan) / truth.get(present.night_hour, math.nan)
    level = present.level
    return (
        " In the synthetic world the true ratio is "
        f"{decimal(true_ratio, 2)}; per {level} and hour, the estimates correlate "
        f"with the true presence at r = {decimal(measured.pearson_r, 3)} (logarithms: "
        f"{decimal(measured.log_pearson_r, 3)}, {measured.n_areas:,} {level}-hours)."
    )


def _regions_table(present: PresentPopulation) -> str:
    """The table of each region's persons present at night and by day."""
    night, day = present.night_hour, present.day_hour
    rows = []
    for region, name in REGION_NAMES.items():
        series = present.region_hourly(region)
        low, high = series.get(night, math.nan), series.get(day, math.nan)
        rows.append(
            f"<tr><th scope='row' class='row'>{escape(name)}</th>"
            f"<td class='num'>{number(low)}</td>"
            f"<td class='num'>{number(high)}</td>"
            f"<td class='num'>{signed_percent(high / low - 1 if low else math.nan)}</td></tr>"
        )
    return (
        f"<table><caption>Persons present by region at {night:02d}:00 and {day:02d}:00, "
        "mean of the weekdays</caption><thead><tr><th scope='col'>Region</th>"
        f"<th scope='col' class='num'>Present at {night:02d}:00</th>"
        f"<th scope='col' class='num'>At {day:02d}:00</th>"
        "<th scope='col' class='num'>Change</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _present_figures(present: PresentPopulation, *, out_dir: Path) -> str:
    """The maps by hour and Brussels-Capital's curve, those `draw_mobility_figures` drew."""
    night, day = present.night_hour, present.day_hour
    figures = (
        ReportFigure(
            path=out_dir / PRESENT_MAPS_PNG,
            caption=(
                f"Persons present per km², mean of {len(present.weekdays)} weekdays: at "
                f"{night:02d}:00 (left) and {day:02d}:00 (right), same classes and colours."
            ),
            alt=(
                f"Two maps of Belgium side by side, coloured by the density of persons present "
                f"at {night:02d}:00 (left) and {day:02d}:00 (right), with the same classes. "
                f"{_regions_in_words(present)} The numbers of each region are in the table "
                "below the figures."
            ),
        ),
        ReportFigure(
            path=out_dir / PRESENT_HOURLY_PNG,
            caption=(
                f"Persons present in Brussels-Capital by hour, relative to {night:02d}:00; "
                "dashed lines mark the hours of the maps."
            ),
            alt=(
                "Line chart of the persons present in Brussels-Capital by hour of a weekday, "
                f"relative to {night:02d}:00. {_hours_in_words(present)}"
            ),
        ),
    )
    return "".join(figure_html(figure) for figure in figures if figure.path.is_file())


def _regions_in_words(present: PresentPopulation) -> str:
    """How each region's present population changes from night to day, for an alt text."""
    night, day = present.night_hour, present.day_hour
    changes = []
    for region, name in REGION_NAMES.items():
        series = present.region_hourly(region)
        low, high = series.get(night, math.nan), series.get(day, math.nan)
        if low and not math.isnan(low) and not math.isnan(high):
            changes.append(f"{name} {signed_percent(high / low - 1)}")
    if not changes:
        return ""
    return f"From night to day the persons present change by: {'; '.join(changes)}."


def _hours_in_words(present: PresentPopulation) -> str:
    """The lowest and highest hours of Brussels-Capital's curve (and the truth's), in words."""
    night = present.night_hour
    hourly = present.region_hourly().astype("float64")
    base = hourly.get(night, math.nan)
    if not base or math.isnan(base) or hourly.dropna().empty:
        return ""
    relative = (hourly / base).dropna()
    hours, values = relative.index.to_numpy(dtype="int64"), relative.to_numpy(dtype="float64")
    low, high = int(values.argmin()), int(values.argmax())
    day = relative.get(present.day_hour, math.nan)
    text = (
        f"The phones' curve is lowest at {hours[low]:02d}:00 ({decimal(values[low], 2)}) and "
        f"highest at {hours[high]:02d}:00 ({decimal(values[high], 2)}); at "
        f"{present.day_hour:02d}:00, the hour of the daytime map, it is {decimal(day, 2)}."
    )
    truth = present.truth_hourly()
    if truth is not None and truth.get(night):
        true = (truth.astype("float64") / truth[night]).dropna()
        peak = int(true.to_numpy(dtype="float64").argmax())
        text += (
            " The true presence of the synthetic world peaks at "
            f"{int(true.index[peak]):02d}:00 ({decimal(float(true.iloc[peak]), 2)})."
        )
    return text


def _clock_changes(present: PresentPopulation) -> str:
    """What the tables do with the hours the clocks skip or repeat, where there are any."""
    text = ""
    if present.skipped_hours:
        text += (
            f" The clocks skip {_hours(present.skipped_hours)}: the release counts there "
            "only the phones carried in from the hours around, so it is in no table."
        )
    if present.repeated_hours:
        text += (
            f" The clocks repeat {_hours(present.repeated_hours)}: its count covers both "
            "occurrences, two hours (in SDMX-CSV an interval of PT2H)."
        )
    return text


def _hours(labels: tuple[str, ...]) -> str:
    """Local hours in words: ``2011-03-27T02:00`` as 02:00 on 2011-03-27."""
    return ", ".join(f"{label[11:]} on {label[:10]}" for label in labels)


def _ratio_interval(present: PresentPopulation) -> str:
    """The day/night ratio's approximate 95 % interval, in words."""
    low, high = present.day_night_ratio_ci95()
    if math.isnan(low):
        return ""
    return (
        f" (approximate 95% interval {decimal(low, 2)} to {decimal(high, 2)}, from the "
        "sampling of phones and the disclosure noise and rounding the release declares, by "
        "the delta method; conservative, as the phones counted at both hours are not "
        "known; the error of the method itself is not in it)"
    )


def commuting_summary(commuting: Commuting) -> str:
    """The flows' agreement with the census in one line, for the terminal."""
    between = commuting.between
    apart = (
        ""
        if between is None
        else f" (between arrondissements {between.pearson_r:.3f} over {between.n_areas:,})"
    )
    return (
        f"Home-work flows vs census, arrondissements: r = "
        f"{commuting.agreement.pearson_r:.3f} over {commuting.agreement.n_areas:,} released "
        f"flows{apart}, working in home arrondissement "
        f"{percent(commuting.share_within)} (census {percent(commuting.census_share_within)})"
    )


def commuting_section(*, commuting: Commuting, out_dir: Path) -> str:
    """The home-work flows section: agreement with the census 2011 commuting matrix.

    Args:
        commuting: The flows.
        out_dir: Where `draw_mobility_figures` wrote the PNG.

    Returns:
        The section.
    """
    body = "".join(
        f"<tr><th scope='row'>{label}</th><td class='num'>{value}</td></tr>"
        for label, value in _agreement_rows(commuting)
    )
    return (
        "<section><h2>Commuting between arrondissements</h2>\n"
        "<p>The holder found each phone's home cell (nights) and work cell (weekday working "
        f"hours) and released the flows between the {_count_areas(commuting)} arrondissements "
        f"with {escape(commuting.source)}. Each flow is multiplied by the persons per device "
        "of its home arrondissement (from the resident estimate), then scaled so that the "
        "flows from each home arrondissement add up to its resident workers (suppressed "
        "flows count as none, so the released ones carry their workers), and compared "
        "with the census 2011 commuting matrix (arrondissements of 2019). A phone's work "
        "place is any place it visits on weekdays in working hours: a school or a daily "
        "errand as well as a job, so the phones tell how workers split over work places, "
        "not how many there are, and pupils and others who stay near home raise the share "
        "working in the home arrondissement. The census counts workers by place of work, "
        "including those who work at home; the phones count only those seen at a work place "
        "other than home.</p>\n"
        f"{_margin_words(commuting)}"
        "<p>The table of flows (commuting_flows.csv, also as Parquet and SDMX-CSV) gives "
        "each estimate with an approximate 95% interval (median standard error "
        f"{percent(commuting.median_relative_std_error)} of the estimate) from the sampling "
        "of phones, the disclosure noise and rounding the release "
        f"declares{_flow_model_words(commuting)}.</p>\n"
        "<table><caption>Agreement of the estimated flows with the census 2011 commuting "
        f"matrix</caption><tbody>{body}</tbody></table>"
        f"{_flows_figure(commuting, out_dir=out_dir)}</section>"
    )


def _agreement_rows(commuting: Commuting) -> tuple[tuple[str, str], ...]:
    """Label and value of each measure of the flows' agreement with the census."""
    measured = commuting.agreement
    metrics = commuting.metrics()
    between = commuting.between
    return (
        ("Pearson correlation r of the flows", decimal(measured.pearson_r)),
        *(
            []
            if between is None
            else [
                (
                    "r of the flows between arrondissements",
                    f"{decimal(between.pearson_r)} (weighted error "
                    f"{percent(between.weighted_ape)}, {between.n_areas:,} flows)",
                )
            ]
        ),
        ("Correlation of logarithms", decimal(measured.log_pearson_r)),
        ("Log-log slope", decimal(measured.log_slope, 3)),
        (
            "Working in their home arrondissement",
            f"{percent(commuting.share_within)} (census: {percent(commuting.census_share_within)})",
        ),
        (
            "Commuters in the released flows",
            f"{number(metrics['estimated_commuters'])} (census: "
            f"{number(metrics['census_commuters_in_released_pairs'])} in these flows, "
            f"{number(float(commuting.flows['census'].sum()))} in all)",
        ),
        (
            "Persons with a weekday place, before calibration",
            number(metrics["expanded_persons_with_a_work_place"]),
        ),
        (
            "Flows compared / suppressed",
            f"{measured.n_areas:,} / {measured.n_suppressed:,} of {len(commuting.flows):,}",
        ),
    )


def _flows_figure(commuting: Commuting, *, out_dir: Path) -> str:
    """The flows' scatter against the census, if `draw_mobility_figures` drew it."""
    measured = commuting.agreement
    figure = ReportFigure(
        path=out_dir / FLOWS_PNG,
        caption="Each dot is a pair of arrondissements (home, work); on the diagonal, estimate "
        "and census agree. Both axes are logarithmic; suppressed flows are not shown.",
        alt="Scatter plot of estimated against census commuting flows, one dot per pair of "
        "arrondissements (home, work), on logarithmic axes: flows between two "
        "arrondissements as blue dots, within one as vermilion triangles; on the diagonal, "
        f"estimate and census agree. Over the {measured.n_areas:,} dots: "
        f"r = {decimal(measured.pearson_r, 3)}, {decimal(measured.log_pearson_r, 3)} for the "
        f"logarithms{_between_words(commuting)}. The measures are in the table above the "
        "figure.",
    )
    return figure_html(figure) if figure.path.is_file() else ""


def _between_words(commuting: Commuting) -> str:
    """The agreement of the flows between two arrondissements, for the scatter's alt text."""
    if commuting.between is None:
        return ""
    return f", r = {decimal(commuting.between.pearson_r, 3)} between two arrondissements"


def _margin_words(commuting: Commuting) -> str:
    """What the workers margin leaves to the comparison with the census, in words."""
    if not commuting.workers_from_census:
        return ""
    return (
        "<p>The resident workers each home arrondissement's flows are scaled to are the "
        "census matrix's own totals, so each home's total, and the level, agree with the "
        "census by construction; so does most of r over all flows, since most workers work "
        "in their home arrondissement (flows that knew only the national share working "
        "there, and nothing of where the others go, would reach "
        f"r = {decimal(commuting.margin_alone_r, 2)}). The flows between arrondissements are "
        "the check that the margin does not set.</p>\n"
    )


def _plural(level: str) -> str:
    """The plural of an area level: municipalities, arrondissements."""
    return level[:-1] + "ies" if level.endswith("y") else level + "s"


def _count_areas(commuting: Commuting) -> str:
    return f"{commuting.flows['home_area'].nunique():,}"
