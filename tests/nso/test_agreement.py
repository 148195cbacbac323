import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cellcensus.errors import CellcensusError
from cellcensus.nso.validation import (
    Agreement,
    agreement,
    compare_with_census,
    error_by_size_class,
    holdout_split,
    interval_coverage,
)

CODES = ["11001", "11002", "21001", "62063"]


def series(values: Sequence[float], codes: Sequence[str] = CODES) -> pd.Series:
    return pd.Series(values, index=pd.Index(codes, name="area_code"), dtype="float64")


def test_ten_percent_over_everywhere() -> None:
    reference = series([100, 2_000, 30_000, 400_000])

    result = agreement(estimate=reference * 1.1, reference=reference)

    assert result.ape_median == pytest.approx(0.1)
    assert result.ape_p90 == pytest.approx(0.1)
    assert result.weighted_ape == pytest.approx(0.1)
    assert result.pearson_r == pytest.approx(1.0)
    assert result.log_pearson_r == pytest.approx(1.0)
    assert (result.n_areas, result.n_suppressed) == (4, 0)


def test_hand_computed_example() -> None:
    reference = series([100, 200, 400, 800])
    estimate = series([110, 180, 400, 1000])

    result = agreement(estimate=estimate, reference=reference)

    # APE = 0.1, 0.1, 0.0, 0.25; sorted 0, .1, .1, .25; p90 at rank 2.7 -> .1 + .7 * .15
    assert result.ape_median == pytest.approx(0.1)
    assert result.ape_p90 == pytest.approx(0.205)
    assert result.weighted_ape == pytest.approx((10 + 20 + 0 + 200) / 1500)
    expected_r = stats.pearsonr([110, 180, 400, 1000], [100, 200, 400, 800]).statistic
    assert result.pearson_r == pytest.approx(expected_r)
    expected_log_r = stats.pearsonr(
        np.log([110, 180, 400, 1000]), np.log([100, 200, 400, 800])
    ).statistic
    assert result.log_pearson_r == pytest.approx(expected_log_r)


def test_suppressed_and_unreleased_areas_are_counted_not_compared() -> None:
    reference = series([100, 200, 400, 800])
    estimate = series([110, np.nan, 440], codes=CODES[:3])  # 62063 not released at all

    result = agreement(estimate=estimate, reference=reference)

    assert (result.n_areas, result.n_suppressed) == (2, 2)
    assert result.weighted_ape == pytest.approx(50 / 500)


def test_alignment_is_by_area_code_not_position() -> None:
    reference = series([100, 200, 400, 800])
    shuffled = (reference * 1.1).iloc[::-1]
    as_int = pd.Series((reference * 1.1).to_numpy(), index=[int(c) for c in CODES])

    assert agreement(estimate=shuffled, reference=reference).ape_median == pytest.approx(0.1)
    assert agreement(estimate=as_int, reference=reference).n_areas == 4


def test_areas_outside_the_reference_are_ignored() -> None:
    reference = series([100, 200], codes=CODES[:2])
    estimate = series([100, 200, 5, 5])

    result = agreement(estimate=estimate, reference=reference)

    assert (result.n_areas, result.n_suppressed, result.weighted_ape) == (2, 0, 0.0)


def test_zero_reference_is_left_out_of_ape_but_weighs_in_weighted_ape() -> None:
    reference = series([0, 100, 200, 400])
    estimate = series([5, 110, 220, 440])

    result = agreement(estimate=estimate, reference=reference)

    assert result.ape_median == pytest.approx(0.1)  # 0.1 three times, area with 0 left out
    assert result.weighted_ape == pytest.approx((5 + 10 + 20 + 40) / 700)
    assert result.n_areas == 4
    assert not math.isnan(result.log_pearson_r)


def test_zero_estimate_is_an_error_of_one_hundred_percent() -> None:
    reference = series([100, 200, 400, 800])
    estimate = series([0, 200, 400, 800])

    result = agreement(estimate=estimate, reference=reference)

    assert result.ape_p90 == pytest.approx(0.7)  # 0, 0, 0, 1 -> rank 2.7
    assert result.log_pearson_r == pytest.approx(1.0)  # the zero is left out of the logs


def test_nan_reference_is_not_an_area() -> None:
    reference = series([100, np.nan, 400, 800])
    estimate = series([100, 123, np.nan, 800])

    result = agreement(estimate=estimate, reference=reference)

    assert (result.n_areas, result.n_suppressed) == (2, 1)


def test_everything_suppressed_gives_nan_measures() -> None:
    reference = series([100, 200, 400, 800])

    result = agreement(estimate=series([np.nan] * 4), reference=reference)

    assert (result.n_areas, result.n_suppressed) == (0, 4)
    for value in (result.pearson_r, result.ape_median, result.ape_p90, result.weighted_ape):
        assert math.isnan(value)


def test_to_dict_has_every_measure() -> None:
    reference = series([100, 200, 400, 800])
    result = agreement(estimate=reference, reference=reference)

    assert result.to_dict() == {
        "pearson_r": 1.0,
        "log_pearson_r": 1.0,
        "ape_median": 0.0,
        "ape_p90": 0.0,
        "weighted_ape": 0.0,
        "n_areas": 4,
        "n_suppressed": 0,
        "log_r2": pytest.approx(1.0),
        "log_slope": pytest.approx(1.0),
        "relative_bias": 0.0,
    }
    assert Agreement(**result.to_dict()) == result  # type: ignore[arg-type]


def test_repeated_or_negative_values_are_refused() -> None:
    reference = series([100, 200, 400, 800])
    with pytest.raises(CellcensusError, match="repeats"):
        agreement(estimate=series([1, 2], codes=["11001", "11001"]), reference=reference)
    with pytest.raises(CellcensusError, match="negative"):
        agreement(estimate=series([1, -2, 3, 4]), reference=reference)


def test_compare_with_census_names_areas_in_their_language() -> None:
    census = pd.DataFrame(
        {
            "area_code": ["11002", "21004", "62063", "57081"],
            "name_nl": ["Antwerpen", "Brussel", "Luik", "Doornik"],
            "name_fr": ["Anvers", "Bruxelles", "Liège", "Tournai"],
            "nuts1": ["BE2", "BE1", "BE3", "BE3"],
            "population": [1000, 2000, 0, 500],
        }
    )
    expanded = pd.DataFrame(
        {
            "area_code": ["11002", "21004", "62063"],
            "released_devices": [10.0, np.nan, 1.0],
            "estimate": [1100.0, np.nan, 100.0],
            "factor": 100.0,
        }
    )

    table = compare_with_census(expanded=expanded, census=census)

    assert table["name"].tolist() == ["Antwerpen", "Bruxelles / Brussel", "Liège", "Tournai"]
    assert table["estimate"].isna().tolist() == [False, True, False, True]
    assert table["error"].iloc[0] == pytest.approx(100.0)
    assert table["relative_error"].iloc[0] == pytest.approx(0.1)
    assert math.isnan(table["relative_error"].iloc[2])  # census 0


def test_log_slope_and_r2_measure_size_dependent_error() -> None:
    reference = series([100, 1_000, 10_000, 100_000])
    estimate = reference**0.9 * 3  # small areas over, large ones under

    result = agreement(estimate=estimate, reference=reference)

    assert result.log_slope == pytest.approx(0.9)
    assert result.log_r2 == pytest.approx(1.0)
    assert result.relative_bias == pytest.approx(estimate.sum() / reference.sum() - 1)


def test_error_by_size_class_groups_areas_by_reference_population() -> None:
    codes = [f"{10000 + i}" for i in range(6)]
    reference = series([500, 1_500, 3_000, 4_000, 30_000, 80_000], codes=codes)
    estimate = series([600, np.nan, 3_300, 4_400, 30_300, 80_000], codes=codes)

    table = error_by_size_class(estimate=estimate, reference=reference)

    assert table["size_class"].tolist() == [
        "under 2,000",
        "2,000 – 5,000",
        "5,000 – 10,000",
        "10,000 – 20,000",
        "20,000 – 50,000",
        "50,000 and over",
    ]
    assert table["n_areas"].tolist() == [1, 2, 0, 0, 1, 1]
    assert table["n_suppressed"].tolist() == [1, 0, 0, 0, 0, 0]
    assert table.loc[0, "ape_median"] == pytest.approx(0.2)
    assert table.loc[1, "weighted_ape"] == pytest.approx(0.1)
    assert table.loc[4, "relative_bias"] == pytest.approx(0.01)
    assert math.isnan(table["ape_median"].iloc[2])
    with pytest.raises(CellcensusError, match="increasing"):
        error_by_size_class(estimate=estimate, reference=reference, breaks=(0, 10, 5))


def test_error_by_size_class_measures_coverage_and_width_within_each_class() -> None:
    # An overall 7 in 8 hides a class covered 1 in 4: coverage is judged within classes.
    codes = [f"{10000 + i}" for i in range(9)]
    reference = series([1_000] * 4 + [60_000] * 4 + [3_000], codes=codes)
    estimate = series([1_000] * 4 + [60_000] * 4 + [np.nan], codes=codes)
    lower = series([900] * 4 + [61_000, 61_000, 61_000, 57_000] + [np.nan], codes=codes)
    upper = series([1_100] * 4 + [63_000, 63_000, 63_000, 63_000] + [np.nan], codes=codes)

    table = error_by_size_class(
        estimate=estimate, reference=reference, lower=lower, upper=upper
    ).set_index("size_class")
    plain = error_by_size_class(estimate=estimate, reference=reference)

    assert table.loc["under 2,000", "interval_coverage"] == pytest.approx(1.0)
    assert table.loc["50,000 and over", "interval_coverage"] == pytest.approx(0.25)
    assert table.loc["under 2,000", "median_relative_ci"] == pytest.approx(0.1)
    assert table.loc["50,000 and over", "median_relative_ci"] == pytest.approx(1_000 / 60_000)
    assert np.isnan(table["interval_coverage"]["2,000 – 5,000"])  # suppressed: none
    assert plain["interval_coverage"].isna().all()


def test_interval_coverage_counts_areas_whose_reference_is_inside() -> None:
    reference = series([100, 200, 400, 800])
    lower = series([90, 210, np.nan, 700])
    upper = series([110, 230, np.nan, 800])

    assert interval_coverage(lower=lower, upper=upper, reference=reference) == pytest.approx(2 / 3)
    assert math.isnan(
        interval_coverage(lower=lower * np.nan, upper=upper * np.nan, reference=reference)
    )


def test_holdout_split_is_random_stratified_disjoint_and_reproducible() -> None:
    codes = [f"{10000 + i}" for i in range(40)]
    strata = pd.Series(["a"] * 10 + ["b"] * 10 + ["c"] * 19 + ["d"], index=codes)

    calibration, validation = holdout_split(codes=codes, fraction=0.5, seed=3, strata=strata)
    again, _ = holdout_split(codes=codes, fraction=0.5, seed=3, strata=strata)
    other, _ = holdout_split(codes=codes, fraction=0.5, seed=4, strata=strata)

    assert set(calibration).isdisjoint(validation)
    assert set(calibration) | set(validation) == set(codes)
    assert list(calibration) == list(again) and list(calibration) != list(other)
    per_stratum = strata[list(calibration)].value_counts()
    assert per_stratum["a"] == 5 and per_stratum["b"] == 5 and 9 <= per_stratum["c"] <= 10
    with pytest.raises(CellcensusError, match="fraction"):
        holdout_split(codes=codes, fraction=1.0)
    with pytest.raises(CellcensusError, match="strata"):
        holdout_split(codes=codes, strata=strata.iloc[1:])
