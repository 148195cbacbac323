"""The issue's bars, on simulated releases with known truth (the census) at scale 0.1.

Bars (issue 7), over non-suppressed municipalities against the census: population-weighted
APE <= 3 %, median APE <= 5 %, log-log slope within 0.97-1.03, and 95 % intervals covering
the truth for at least 90 % of municipalities. With the realistic biases switched on, the
corrected estimators stay within them and the naive national factor does not.
"""

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest

from cellcensus.errors import CellcensusError
from cellcensus.nso.expansion import Expansion
from cellcensus.nso.production import (
    ESTIMATORS,
    SELECTION_SPLITS,
    TIE,
    EstimationOptions,
    EstimationResult,
    estimate_all,
    negative_estimates,
)
from cellcensus.nso.report.quality import estimation_limitations
from cellcensus.nso.simulation import SimulatedRelease, SimulationBiases, simulate_release
from cellcensus.nso.validation import Agreement, agreement
from cellcensus.reference import belgium

WEIGHTED_APE_BAR = 0.03
MEDIAN_APE_BAR = 0.05
SLOPE_BARS = (0.97, 1.03)
COVERAGE_BAR = 0.90
CORRECTED = ("greg_calibrated", "raking_calibrated", "logit_calibrated")
"""Estimators expected to meet the bars under the realistic biases. The uncalibrated
corrections cannot see that second SIMs and machines are commoner in towns."""


def meets_bars(agreement: Agreement) -> bool:
    return (
        agreement.weighted_ape <= WEIGHTED_APE_BAR
        and agreement.ape_median <= MEDIAN_APE_BAR
        and SLOPE_BARS[0] <= agreement.log_slope <= SLOPE_BARS[1]
    )


def test_without_biases_the_national_factor_meets_the_bars(
    unbiased_result: EstimationResult,
) -> None:
    national = unbiased_result.outcomes["national"]

    assert meets_bars(national.agreement), national.agreement
    assert meets_bars(national.holdout), national.holdout
    assert national.holdout_coverage >= COVERAGE_BAR


@pytest.mark.parametrize("name", CORRECTED)
def test_under_realistic_biases_the_corrected_estimators_meet_the_bars(
    realistic_result: EstimationResult, name: str
) -> None:
    outcome = realistic_result.outcomes[name]

    assert meets_bars(outcome.agreement), outcome.agreement
    assert meets_bars(outcome.holdout), outcome.holdout  # fitted on the other half
    assert outcome.coverage >= COVERAGE_BAR
    assert outcome.holdout_coverage >= COVERAGE_BAR


def test_under_realistic_biases_the_naive_factor_fails_and_the_best_beats_it(
    realistic_result: EstimationResult,
) -> None:
    naive = realistic_result.outcomes["national"].agreement
    best = realistic_result.best

    assert not meets_bars(naive)
    assert naive.weighted_ape > 2 * WEIGHTED_APE_BAR  # regional shares and second SIMs
    assert best.name in CORRECTED
    assert best.agreement.weighted_ape < naive.weighted_ape / 3
    assert best.holdout.weighted_ape < naive.weighted_ape / 3


def test_each_correction_improves_on_the_step_before(realistic_result: EstimationResult) -> None:
    wape = {name: o.holdout.weighted_ape for name, o in realistic_result.outcomes.items()}

    assert wape["regional"] < wape["national"]  # regional market shares
    assert wape["devices_per_person"] < wape["regional"]  # second SIMs, machines, lost homes
    assert wape["raking_calibrated"] < wape["age_coverage"]  # urban second SIMs, regions


def test_every_estimate_has_an_interval_around_it(realistic_result: EstimationResult) -> None:
    for outcome in realistic_result.outcomes.values():
        table = outcome.table.dropna(subset=["estimate"])
        assert (table["std_error"] > 0).all(), outcome.name
        assert (table["ci_lower"] <= table["estimate"]).all()
        assert (table["estimate"] <= table["ci_upper"]).all()
        assert (table["ci_lower"] >= 0).all()


@pytest.mark.parametrize("name", ["national", "raking_calibrated"])
def test_intervals_cover_every_fifth_of_the_sizes_at_the_bar(
    realistic: SimulatedRelease, realistic_result: EstimationResult, name: str
) -> None:
    # The bar holds within size classes, not only overall. With one model error for all
    # sizes the national factor covered the smallest fifth of the municipalities 87 % of the
    # time and the largest 100 % on this release; raking the largest 91.5 %. Fitted per
    # class of estimated size, every fifth is covered at >= 90 % (~118 areas each: 95 %
    # give an sd of 2 points). Over seeds 0-29 the fifths average 95-96.5 % (national) and
    # 96.4-97.6 % (raking), against 84.4-99.6 % and 92.0-97.5 % with one model error; a
    # class's tau rests on ~58 areas, so a single release's fifth can fall lower (86 %).
    table = realistic_result.outcomes[name].table.dropna(subset=["estimate"])
    truth = realistic.truth.reindex(table.index)
    inside = (table["ci_lower"] <= truth) & (truth <= table["ci_upper"])
    fifth = pd.qcut(table["estimate"].rank(method="first"), 5, labels=False)

    by_fifth = inside.groupby(fifth).mean()

    assert (by_fifth >= COVERAGE_BAR).all(), by_fifth
    assert inside.mean() >= COVERAGE_BAR


def test_the_model_error_is_fitted_per_class_of_estimated_size(
    realistic_result: EstimationResult,
) -> None:
    outcome = realistic_result.outcomes["raking_calibrated"]
    fits = outcome.model_error_by_size
    estimate = outcome.table["estimate"]
    model = outcome.error_sources["model"] / estimate

    halves = realistic_result.calibration_areas, realistic_result.validation_areas
    for half, got, fitted_on in (
        ("calibration", halves[0], halves[1]),
        ("validation", halves[1], halves[0]),
    ):
        classes = fits[fits["half"] == half]
        assert len(classes) == 5  # ~290 areas with a reference in each half
        known = realistic_result.calibration_reference.reindex(fitted_on).notna()
        assert classes["n_areas"].sum() == (known & (estimate.reindex(fitted_on) > 0)).sum()
        for row in classes.itertuples():
            members = got[
                (
                    (estimate.reindex(got) >= row.lower) & (estimate.reindex(got) < row.upper)
                ).to_numpy()
            ]
            assert model.reindex(members).dropna().to_numpy() == pytest.approx(row.tau)
    assert max(outcome.model_error) == pytest.approx(fits["tau"].max())
    metrics = realistic_result.metrics_json()["estimators"]["raking_calibrated"]
    assert len(metrics["model_error_by_size"]) == len(fits)


def test_calibrated_margins_hold_exactly(realistic_result: EstimationResult) -> None:
    province = belgium.municipalities().set_index("area_code")["province"]
    reference = realistic_result.calibration_reference
    assert realistic_result.options.margin_level == "province"
    for name in ("ratio_calibrated", "greg_calibrated", "raking_calibrated", "logit_calibrated"):
        estimate = realistic_result.outcomes[name].table["estimate"]
        # Suppressed areas keep no estimate; their reference population stands in for them.
        completed = estimate.fillna(reference.where(estimate.isna()))
        np.testing.assert_allclose(
            completed.groupby(province).sum(), reference.groupby(province).sum(), rtol=1e-9
        )


def test_margins_can_be_arrondissements(realistic: SimulatedRelease) -> None:
    result = estimate_all(
        release=realistic.release, options=EstimationOptions(margin_level="arrondissement")
    )

    arrondissement = belgium.municipalities().set_index("area_code")["arrondissement"]
    estimate = result.outcomes["raking_calibrated"].table["estimate"]
    reference = result.calibration_reference
    completed = estimate.fillna(reference.where(estimate.isna()))
    np.testing.assert_allclose(
        completed.groupby(arrondissement).sum(), reference.groupby(arrondissement).sum(), rtol=1e-9
    )
    assert meets_bars(result.outcomes["raking_calibrated"].agreement)


def test_metrics_json_keeps_the_usual_residence_block_and_adds_one_per_estimator(
    realistic_result: EstimationResult,
) -> None:
    metrics = realistic_result.metrics_json()
    text = json.dumps(metrics, allow_nan=False)  # strict JSON: NaN written as null

    block = json.loads(text)["usual_residence"]
    for key in ("pearson_r", "log_pearson_r", "ape_median", "ape_p90", "weighted_ape"):
        assert block[key] == pytest.approx(getattr(realistic_result.best.agreement, key))
    assert block["n_areas"] + block["n_suppressed"] == 589
    assert block["estimator"] == realistic_result.default
    assert set(metrics["estimators"]) == {e.name for e in ESTIMATORS}
    raking = metrics["estimators"]["raking_calibrated"]
    assert {"agreement", "holdout", "interval_coverage", "by_size_class"} <= set(raking)
    assert raking["holdout"]["n_areas"] < block["n_areas"]
    classes = raking["by_size_class"]
    assert {"interval_coverage", "median_relative_ci"} <= set(classes[0])
    # Coverage per class, weighted by the areas compared, is the overall coverage.
    compared = sum(c["n_areas"] for c in classes if c["interval_coverage"] is not None)
    assert compared == block["n_areas"]
    assert sum(
        c["interval_coverage"] * c["n_areas"] for c in classes if c["n_areas"]
    ) / compared == pytest.approx(raking["interval_coverage"])


def test_comparison_table_has_one_row_per_estimator(realistic_result: EstimationResult) -> None:
    comparison = realistic_result.comparison()

    assert list(comparison.index) == [e.name for e in ESTIMATORS]
    weighted = comparison["weighted_ape"]
    assert weighted["national"] > weighted["raking_calibrated"]
    assert (
        not comparison[["log_slope", "holdout_weighted_ape", "interval_coverage"]]
        .isna()
        .any()
        .any()
    )


def test_the_holdout_halves_partition_the_areas(realistic_result: EstimationResult) -> None:
    calibration = set(realistic_result.calibration_areas)
    validation = set(realistic_result.validation_areas)

    assert not calibration & validation
    assert len(calibration | validation) == 589
    assert abs(len(calibration) - len(validation)) < 30


def test_without_subscribers_by_region_the_regional_estimator_is_skipped() -> None:
    sim = simulate_release(publish_subscribers_by_region=False, seed=5)

    result = estimate_all(release=sim.release)

    assert "regional" not in result.outcomes
    assert "subscribers_by_region" in result.skipped["regional"]
    assert meets_bars(result.outcomes["devices_per_person"].agreement)
    # A release that names subscribers_by_region without a value publishes none either: the
    # limitation says so, not that the reference lacks municipalities.
    empty = {**sim.release.published, "subscribers_by_region": {}}
    said = estimation_limitations(
        estimate_all(release=dataclasses.replace(sim.release, published=empty))
    )
    assert any("did not publish its subscribers per region" in item for item in said), said
    assert not any("reference lacks" in item for item in said), said


@pytest.mark.parametrize("by_region", [True, False])
def test_a_reference_without_a_province_leaves_no_factor_short_of_its_population(
    by_region: bool,
) -> None:
    # Without Antwerp's 70 municipalities, the register's sum stood for the population of
    # Flanders (regional factor) or of Belgium (devices per subscriber): 16.5 % short over
    # Belgium for every estimator built on them, 27 % in Antwerp, which no margin calibrates.
    sim = simulate_release(
        biases=SimulationBiases(misallocation=0.02),
        publish_subscribers_by_region=by_region,
        seed=11,
    )
    register = belgium.register_population(2011)
    municipalities = belgium.municipalities()
    province = municipalities.set_index(municipalities["area_code"].astype(str))["province"]
    antwerp = register["area_code"].astype(str).map(province).astype(str).eq("10000")

    result = estimate_all(release=sim.release, calibration_reference=register[~antwerp])

    # Without biases every estimator is unbiased: its total within 1 % of the truth (sampling
    # and misplaced homes alone move it by about 0.3 %).
    for name, outcome in result.outcomes.items():
        estimate = outcome.table["estimate"].dropna()
        total = estimate.sum() / sim.truth.reindex(estimate.index).sum() - 1
        assert abs(total) < 0.01, (name, total)
    lacking = "the calibration reference lacks 70 area(s) of the areas table"
    assert lacking in result.skipped["regional" if by_region else "devices_per_person"]
    said = " ".join(estimation_limitations(result))
    assert ("reference lacks municipalities" in said) == by_region
    assert {"age_coverage", "raking_calibrated"} <= set(result.outcomes)


def test_a_reference_of_no_released_area_is_refused_naming_the_codes(
    unbiased: SimulatedRelease,
) -> None:
    # Arrondissement codes given for a municipal release: nothing could be fitted on them,
    # and every estimator would have fallen back to the national factor without a word.
    register = belgium.register_population(2011)
    codes = register["area_code"].astype(str).str[:2] + "000"
    summed = register.groupby(codes)["population"].sum()
    wrong_level = summed.rename_axis("area_code").reset_index()
    wrong_level = wrong_level[~wrong_level["area_code"].isin(unbiased.release.table["area_code"])]
    with pytest.raises(CellcensusError, match="gives the population of no area of the release"):
        estimate_all(release=unbiased.release, calibration_reference=wrong_level)
    with pytest.raises(CellcensusError, match=r"\(none; the release's area codes are like"):
        estimate_all(release=unbiased.release, calibration_reference=register.iloc[:0])


def in_province(register: pd.DataFrame, code: str) -> pd.Series:
    """Whether each municipality of `register` is in the province `code`."""
    municipalities = belgium.municipalities()
    province = municipalities.set_index(municipalities["area_code"].astype(str))["province"]
    return register["area_code"].astype(str).map(province).astype(str).eq(code)


def test_a_reference_of_zeros_for_a_province_leaves_the_calibration_out_not_the_province(
    unbiased: SimulatedRelease,
) -> None:
    register = belgium.register_population(2011)
    antwerp = in_province(register, "10000")
    zeroed = register.assign(population=register["population"].where(~antwerp, 0))

    result = estimate_all(release=unbiased.release, calibration_reference=zeroed)

    # Every calibrated weight of Antwerp went to 0: its 70 municipalities published as empty.
    for name in ("ratio_calibrated", "greg_calibrated", "raking_calibrated", "logit_calibrated"):
        assert "group '10000': known total 0" in result.skipped[name]
    # And its zeros stood for its residents in the population of Flanders: the regional
    # factors, and all built on them, fell 16.5 % short over Belgium. Now every estimator
    # that runs is unbiased, as the release is: its total within 1 % of the truth.
    said = result.skipped["regional"]
    assert "gives 0 residents where devices were counted to 70 area(s)" in said
    assert said.endswith(
        "so the population of its region is unknown: give the calibration reference every "
        "area of the areas table, with its residents"
    )
    for name, outcome in result.outcomes.items():
        estimate = outcome.table["estimate"].dropna()
        total = estimate.sum() / unbiased.truth.reindex(estimate.index).sum() - 1
        assert abs(total) < 0.01, (name, total)


def test_margins_out_of_the_logit_bounds_leave_the_bounded_estimator_out_with_its_reason(
    unbiased: SimulatedRelease,
) -> None:
    # A register that counts Luxembourg three times over: a small province, so the factor of
    # Wallonia rises by only 15 % and its weights would have to reach about 2.6, beyond the
    # logit bound of 2. GREG and raking follow the register; logit says why it cannot.
    register = belgium.register_population(2011)
    luxembourg = in_province(register, "80000")
    tripled = register.assign(population=register["population"].where(~luxembourg, lambda p: 3 * p))

    result = estimate_all(release=unbiased.release, calibration_reference=tripled)

    assert "logit_calibrated" not in result.outcomes
    said = result.skipped["logit_calibrated"]
    assert "the bounds (0.5, 2) may be too tight" in said
    assert "`cellcensus estimate --logit-bounds LOWER UPPER`" in said  # how to widen them
    assert {"greg_calibrated", "raking_calibrated"} <= set(result.outcomes)

    # Widened, they reach the margins: every weight within them, the provinces' totals met.
    options = EstimationOptions(logit_bounds=(0.25, 4.0))
    wider = estimate_all(release=unbiased.release, calibration_reference=tripled, options=options)
    logit = wider.outcomes["logit_calibrated"]
    first = wider.outcomes["age_coverage"].table["estimate"]
    g = (logit.table["estimate"] / first).dropna()
    assert g.between(0.25, 4.0, inclusive="neither").all() and g.max() > 2.0


def test_the_default_is_chosen_without_the_census(unbiased_result: EstimationResult) -> None:
    assert unbiased_result.options.default is None
    best = min(outcome.selection_score for outcome in unbiased_result.outcomes.values())
    chosen = unbiased_result.outcomes[unbiased_result.default]
    assert chosen.selection_score <= best * (1 + TIE)
    # Of estimators tied with the best, the first in report order.
    earlier = list(unbiased_result.outcomes)[: list(unbiased_result.outcomes).index(chosen.name)]
    assert all(
        unbiased_result.outcomes[name].selection_score > best * (1 + TIE) for name in earlier
    )


def test_a_near_twin_does_not_take_the_default_by_a_rounding(
    unbiased_result: EstimationResult,
) -> None:
    """Logit with bounds (0.5, 2) weighs as raking does to within 1e-4 near 1: a tie."""
    outcomes = unbiased_result.outcomes
    raking, logit = (outcomes[name] for name in ("raking_calibrated", "logit_calibrated"))
    assert logit.selection_score == pytest.approx(raking.selection_score, rel=TIE)
    order = list(outcomes)
    assert order.index("raking_calibrated") < order.index("logit_calibrated")
    assert unbiased_result.default != "logit_calibrated"


def test_the_default_is_chosen_on_other_splits_than_the_one_reported(
    unbiased_result: EstimationResult,
) -> None:
    splits = unbiased_result.selection_splits
    reported_on = set(unbiased_result.validation_areas)
    assert len(splits) == SELECTION_SPLITS
    assert len({tuple(sorted(second)) for _, second in splits}) == SELECTION_SPLITS
    for first, second in splits:
        assert set(first) | set(second) == set(unbiased_result.calibration_reference.index)
        assert not set(first) & set(second)
        # Independent draws of half the areas share about half of them.
        assert 0.35 < len(set(second) & reported_on) / len(reported_on) < 0.65
    # The national factor fits nothing: each half of every split judges the same estimates,
    # so its pooled score is its error against the calibration reference over all areas.
    national = unbiased_result.outcomes["national"]
    expected = agreement(
        estimate=national.table["estimate"], reference=unbiased_result.calibration_reference
    )
    assert national.selection_score == pytest.approx(expected.weighted_ape, rel=1e-12)
    # A fitted estimator is judged out of sample: its pooled score is above its in-sample
    # error against the reference (fitted on the judged areas' own values).
    greg = unbiased_result.outcomes["greg_calibrated"]
    in_sample = agreement(
        estimate=greg.table["estimate"], reference=unbiased_result.calibration_reference
    )
    assert greg.selection_score > in_sample.weighted_ape


def test_unknown_default_or_missing_facts_are_refused(unbiased: SimulatedRelease) -> None:
    with pytest.raises(CellcensusError, match="default estimator 'best'"):
        estimate_all(release=unbiased.release, options=EstimationOptions(default="best"))
    skipped = simulate_release(publish_subscribers_by_region=False, seed=7).release
    with pytest.raises(CellcensusError, match="'regional' did not run"):
        estimate_all(release=skipped, options=EstimationOptions(default="regional"))
    release = unbiased.release
    stripped = type(release)(table=release.table, provenance=release.provenance, published={})
    with pytest.raises(CellcensusError, match="market_share"):
        estimate_all(release=stripped)


def test_estimates_table_puts_the_census_beside_the_default(
    realistic_result: EstimationResult,
) -> None:
    table = realistic_result.estimates()

    assert table.index.name == "area_code"
    assert {"estimate", "ci_lower", "ci_upper", "census"} <= set(table.columns)
    assert table["census"].sum() == pytest.approx(11_000_638)
    long = realistic_result.long_table()
    assert len(long) == 589 * len(realistic_result.outcomes)
    assert not math.isnan(float(long["estimate"].sum()))
    assert isinstance(long, pd.DataFrame)


def test_no_interval_is_calibrated_on_its_own_areas_reference(unbiased: SimulatedRelease) -> None:
    # Register values of the validation half far off: before cross-fitting they widened
    # every interval through one tau; now that half's intervals use the other half's tau.
    register = belgium.register_population(2011)
    plain = estimate_all(release=unbiased.release, calibration_reference=register)
    validation = plain.validation_areas
    inside = register["area_code"].astype(str).isin(validation)
    shifted = register.assign(
        population=register["population"].where(~inside, 1.5 * register["population"])
    )

    moved = estimate_all(release=unbiased.release, calibration_reference=shifted)

    before, after = plain.outcomes["national"], moved.outcomes["national"]
    kept = before.table.index.isin(validation)
    assert after.table.loc[kept, "std_error"].to_numpy() == pytest.approx(
        before.table.loc[kept, "std_error"].to_numpy(), rel=1e-12, nan_ok=True
    )
    assert after.model_error[0] > 2 * before.model_error[0] + 0.1  # fitted on the far half


def test_an_estimator_with_a_negative_population_is_left_out_with_its_reason() -> None:
    """A linear calibration's weights can go below 0 (tiny worlds, heavy noise): the demo
    once failed on such an estimate instead of leaving the estimator out."""
    areas = pd.Index(["11001", "11002"], name="area_code")

    def fitted(estimate: list[float]) -> tuple[Expansion, int]:
        values = pd.Series(estimate, index=areas)
        ones = pd.Series(1.0, index=areas)
        return Expansion("x", devices=ones, estimate=values, factor=values, gradient=values), 0

    full = {"greg_calibrated": fitted([120.0, 80.0]), "raking_calibrated": fitted([90.0, 80.0])}
    held = {"greg_calibrated": fitted([130.0, -4.0]), "raking_calibrated": fitted([90.0, 70.0])}
    reasons = negative_estimates(full, held)
    assert list(reasons) == ["greg_calibrated"]
    assert "negative estimates for 1 area(s), e.g. 11002" in reasons["greg_calibrated"]


@pytest.mark.parametrize(
    ("every", "where"), [(40, "fitted on half of the areas"), (80, "areas withheld")]
)
def test_the_power_law_is_skipped_on_too_few_released_areas_and_the_rest_runs(
    unbiased: SimulatedRelease, every: int, where: str
) -> None:
    # 15 released areas: enough to fit the law on all of them, not on a half for
    # validation; 8: not even on all of them. Either way, the other estimators run.
    table = unbiased.release.table.copy()
    released = np.arange(len(table)) % every == 0
    table["device_count"] = table["device_count"].where(released)

    result = estimate_all(release=dataclasses.replace(unbiased.release, table=table))

    assert "power_law" not in result.outcomes
    assert "at least 10 calibration areas" in result.skipped["power_law"]
    assert where in result.skipped["power_law"]
    assert {"national", "age_coverage", "raking_calibrated"} <= set(result.outcomes)
    assert result.default in result.outcomes


def test_an_estimator_a_selection_half_cannot_fit_is_published_but_not_chosen(
    unbiased: SimulatedRelease,
) -> None:
    # 25 released areas: the power law fits on all of them and on the hold-out's half, not
    # on some halves of the selection splits (fewer than 10 released areas there).
    table = unbiased.release.table.copy()
    table["device_count"] = table["device_count"].where(np.arange(len(table)) % 24 == 0)

    result = estimate_all(release=dataclasses.replace(unbiased.release, table=table))

    law = result.outcomes["power_law"]
    assert "power_law" not in result.skipped
    assert math.isnan(law.selection_score)
    assert not math.isnan(law.holdout.weighted_ape)
    assert result.default != "power_law"
    assert not math.isnan(result.best.selection_score)


def test_the_limitations_say_which_totals_the_figures_add_up_to(
    unbiased: SimulatedRelease, unbiased_result: EstimationResult
) -> None:
    census = " ".join(estimation_limitations(unbiased_result))
    assert "add up to the census's totals per province" in census
    register = belgium.register_population(2011)
    on_register = estimate_all(release=unbiased.release, calibration_reference=register)
    said = " ".join(estimation_limitations(on_register))
    assert "census's totals" not in said
    # The register of 1 January 2011 counts 49,372 fewer residents than the census.
    assert "0.14% for the median municipality and is 0.45% below it in total" in said, said
