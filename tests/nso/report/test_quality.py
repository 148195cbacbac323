"""The quality section's timeliness row: true for simulated and for real data."""

import math
from dataclasses import replace
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import cast

import pandas as pd

from cellcensus.nso.production import EstimationResult, EstimatorOutcome
from cellcensus.nso.report.quality import (
    _model_error_words,
    estimators_section,
    quality_section,
    timeliness,
)

DEMO_RELEASE = "2026-11-28T10:13:58+00:00"
"""When the demo's enclave released its counts: years after the simulated 2011 period."""


def released(result: EstimationResult, at: str, end: str = "2011-03-28") -> EstimationResult:
    published = {**result.published, "period": {"start": "2011-03-01", "end": end}}
    return replace(result, released_at=at, published=published)


def test_simulated_data_state_processing_time_not_years_since_2011(
    realistic_result: EstimationResult,
) -> None:
    result = released(realistic_result, DEMO_RELEASE)

    text = timeliness(
        result=result, generated=datetime(2026, 11, 28, 10, 16, 30, tzinfo=UTC), synthetic=True
    )

    assert "days after" not in text and "5,7" not in text
    assert "Not measurable here: the data are simulated, dated 2011-03-01 to 2011-03-28" in text
    assert "The holder released the counts on 2026-11-28 10:13 UTC" in text
    assert "made this report 3 minutes later" in text
    assert "no release calendar" in text


def test_the_quality_table_of_a_simulated_release_has_the_true_row(
    realistic_result: EstimationResult,
) -> None:
    html = quality_section(
        result=released(realistic_result, DEMO_RELEASE), generated=None, synthetic=True
    )

    row = html.split('<th scope="row">Timeliness and punctuality</th><td>')[1].split("</td>")[0]
    assert row.startswith("Not measurable here")
    assert "The holder released the counts on 2026-11-28 10:13 UTC." in row
    assert "days after" not in row


def test_real_data_count_days_from_the_end_of_the_period_to_the_release(
    realistic_result: EstimationResult,
) -> None:
    result = released(realistic_result, "2011-04-04T08:00:00+00:00")

    text = timeliness(result=result, generated=datetime(2011, 4, 4, 11, 0, tzinfo=UTC))

    assert text.startswith(
        "The holder released the counts 7 days after the end of the observation period "
        "(2011-03-28)."
    )
    assert "made this report 3 hours later" in text
    assert "simulated" not in text


def test_dates_without_time_and_inconsistent_dates_are_said_plainly(
    realistic_result: EstimationResult,
) -> None:
    same_day = timeliness(
        result=released(realistic_result, "2011-04-04"), generated=date(2011, 4, 4)
    )
    before_end = timeliness(
        result=released(realistic_result, "2011-03-20T00:00:00+00:00"), generated=None
    )
    report_first = timeliness(
        result=released(realistic_result, "2011-04-04T08:00:00+00:00"),
        generated=datetime(2011, 4, 4, 7, 0, tzinfo=UTC),
    )
    unknown = timeliness(result=replace(realistic_result, released_at=""), generated=None)

    assert (
        "released the counts on 2011-04-04, and the statistics office made this report "
        "the same day" in same_day
    )
    assert "before the end of the observation period (2011-03-28)" in before_end
    assert "this report is dated before it" in report_first
    assert unknown.startswith("Release dates not recorded.")


def test_the_model_error_of_halves_with_different_size_classes_is_said_half_by_half() -> None:
    # One half's other half had too few calibration areas for two classes: one tau for all.
    fits = pd.DataFrame(
        {
            "lower": [0.0, 0.0, 6_500.0],
            "upper": [math.inf, 6_500.0, math.inf],
            "n_areas": [79, 41, 40],
            "tau": [0.05, 0.08, 0.03],
            "half": ["calibration", "validation", "validation"],
        }
    )
    best = cast(
        EstimatorOutcome, SimpleNamespace(model_error=(0.05, 0.08), model_error_by_size=fits)
    )

    said = _model_error_words(best)

    assert said.endswith(
        "in one half of the municipalities all sizes: 5.0%, in the other under 6,500: 8.0%; "
        "6,500 and over: 3.0%"
    ), said
    assert "the first figure for one half" not in said
    same = pd.DataFrame(
        {
            "lower": [0.0, 6_500.0] * 2,
            "upper": [6_500.0, math.inf] * 2,
            "n_areas": [41, 40, 40, 41],
            "tau": [0.08, 0.03, 0.07, 0.04],
            "half": ["calibration"] * 2 + ["validation"] * 2,
        }
    )
    paired = _model_error_words(
        cast(EstimatorOutcome, SimpleNamespace(model_error=(0.08, 0.07), model_error_by_size=same))
    )
    assert paired.endswith("under 6,500: 8.0% and 7.0%; 6,500 and over: 3.0% and 4.0%"), paired


def test_the_hold_out_half_says_how_many_of_it_had_an_estimate_to_judge(
    realistic_result: EstimationResult,
) -> None:
    judged = realistic_result.best.holdout.n_areas
    whole = estimators_section(realistic_result)
    # Twelve areas of the validation half without a published estimate (suppressed).
    unpublished = pd.Index([f"9{code:04d}" for code in range(12)])
    fewer = estimators_section(
        replace(
            realistic_result,
            validation_areas=realistic_result.validation_areas.append(unpublished),
        )
    )

    assert judged == len(realistic_result.validation_areas)
    assert "of them with an estimate" not in whole
    assert (
        f"judged on the other half ({judged + 12:,}, {judged:,} of them with an estimate and "
        "a census count to judge)" in fewer
    )


def test_the_summary_total_is_the_sum_of_the_published_estimates(
    realistic_result: EstimationResult,
) -> None:
    # A reader who adds up the published table (rounded to persons) finds the report's total.
    from cellcensus.nso.dissemination import official_table
    from cellcensus.nso.report.numbers import number
    from cellcensus.nso.report.quality import summary_section

    published = official_table(result=realistic_result)["estimate"].sum()
    unrounded = realistic_result.best.table["estimate"].sum()
    assert round(unrounded) != published  # the rounding of each area shows in the total

    assert f"count {number(published)} residents" in summary_section(realistic_result)
