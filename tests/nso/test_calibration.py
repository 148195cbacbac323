import warnings

import numpy as np
import pandas as pd
import pytest

from cellcensus.errors import CellcensusError
from cellcensus.nso.calibration import (
    DEFAULT_BOUNDS,
    CalibrationNotConvergedError,
    UnreachableMarginError,
    calibrate,
    density_classes,
    logit_weight,
    logit_weight_derivative,
)
from cellcensus.nso.expansion import Expansion, national_expansion

RNG = np.random.default_rng(8)
N = 120
CODES = pd.Index([f"{10000 + i}" for i in range(N)], name="area_code")
GROUPS = pd.Series(np.repeat(["g1", "g2", "g3", "g4"], N // 4), index=CODES)
CLASSES = pd.Series(np.tile(["small", "mid", "large"], N // 3), index=CODES)
TRUTH = pd.Series(RNG.uniform(1_000, 50_000, N).round(), index=CODES)
BIAS = GROUPS.map({"g1": 1.1, "g2": 0.9, "g3": 1.0, "g4": 1.2}) * CLASSES.map(
    {"small": 0.95, "mid": 1.0, "large": 1.05}
)
DEVICES = (TRUTH * 0.04 * BIAS * RNG.lognormal(0, 0.01, N)).round()


def young_shares() -> np.ndarray:
    """A covariate per area, the same whichever test asks first (xdist orders them freely)."""
    return np.random.default_rng(9).uniform(0.1, 0.3, N)


def first_estimate(devices: pd.Series = DEVICES) -> Expansion:
    return national_expansion(devices=devices, market_share=0.4, sampling_fraction=0.1)


def group_totals(values: pd.Series, groups: pd.Series) -> pd.Series:
    return values.groupby(groups).sum()


@pytest.mark.parametrize("method", ["ratio", "linear", "raking", "logit"])
def test_one_partition_margins_hold_exactly(method: str) -> None:
    result = calibrate(
        expansion=first_estimate(),
        reference=TRUTH,
        partitions={"group": GROUPS},
        method=method,  # type: ignore[arg-type]
    )

    calibrated = result.expansion.estimate
    np.testing.assert_allclose(group_totals(calibrated, GROUPS), group_totals(TRUTH, GROUPS))
    np.testing.assert_allclose(result.margins["calibrated"], result.margins["target"])
    assert result.expansion.name == f"{method}_calibrated"
    assert "margins" in result.expansion.assumptions


def test_one_partition_gives_the_same_weights_whatever_the_method() -> None:
    weights = [
        calibrate(
            expansion=first_estimate(), reference=TRUTH, partitions={"g": GROUPS}, method=m
        ).g_weights
        for m in ("ratio", "linear", "raking", "logit")
    ]

    for other in weights[1:]:
        np.testing.assert_allclose(weights[0], other)


@pytest.mark.parametrize("method", ["linear", "raking", "logit"])
def test_two_crossed_partitions_and_a_covariate_hold_exactly(method: str) -> None:
    covariates = pd.DataFrame({"young": young_shares()}, index=CODES)

    result = calibrate(
        expansion=first_estimate(),
        reference=TRUTH,
        partitions={"group": GROUPS, "class": CLASSES},
        covariates=covariates,
        method=method,  # type: ignore[arg-type]
    )

    calibrated = result.expansion.estimate
    np.testing.assert_allclose(group_totals(calibrated, GROUPS), group_totals(TRUTH, GROUPS))
    np.testing.assert_allclose(group_totals(calibrated, CLASSES), group_totals(TRUTH, CLASSES))
    assert (calibrated * covariates["young"]).sum() == pytest.approx(
        (TRUTH * covariates["young"]).sum()
    )
    relative = ((calibrated - TRUTH).abs() / TRUTH).median()
    assert relative < 0.02  # the crossed bias is gone, only the 1 % noise is left
    if method == "raking":
        assert (result.g_weights > 0).all()
    if method == "logit":
        lower, upper = DEFAULT_BOUNDS
        assert result.g_weights.between(lower, upper, inclusive="neither").all()
        assert result.expansion.parameters["upper_bound"] == upper


def test_areas_outside_the_calibration_set_get_their_groups_weight() -> None:
    calibration = TRUTH.where(np.arange(N) % 2 == 0)

    result = calibrate(
        expansion=first_estimate(),
        reference=calibration,
        partitions={"group": GROUPS, "class": CLASSES},
        method="raking",
    )

    held_out = np.arange(N) % 2 == 1
    relative = (result.expansion.estimate[held_out] - TRUTH[held_out]).abs() / TRUTH[held_out]
    assert relative.median() < 0.02
    uncalibrated = (first_estimate().estimate[held_out] - TRUTH[held_out]).abs() / TRUTH[held_out]
    assert uncalibrated.median() > 0.05


def test_suppressed_areas_are_left_out_and_a_group_without_calibration_areas_keeps_weight_one() -> (
    None
):
    devices = DEVICES.copy()
    devices.iloc[0] = np.nan
    calibration = TRUTH.where(GROUPS != "g4")

    result = calibrate(
        expansion=first_estimate(devices), reference=calibration, partitions={"g": GROUPS}
    )

    assert np.isnan(result.expansion.estimate.iloc[0])
    assert "10000" not in result.g_weights.index
    assert (result.g_weights[GROUPS == "g4"] == 1.0).all()
    released_g1 = GROUPS.index[(GROUPS == "g1") & devices.notna()]
    assert result.expansion.estimate[released_g1].sum() == pytest.approx(TRUTH[released_g1].sum())


def test_bad_calibration_requests_are_refused() -> None:
    expansion = first_estimate()
    with pytest.raises(CellcensusError, match="exactly one partition"):
        calibrate(
            expansion=expansion,
            reference=TRUTH,
            partitions={"g": GROUPS, "c": CLASSES},
            method="ratio",
        )
    with pytest.raises(CellcensusError, match="method"):
        calibrate(expansion=expansion, reference=TRUTH, partitions={"g": GROUPS}, method="x")  # type: ignore[arg-type]
    with pytest.raises(CellcensusError, match="no group for area_code"):
        calibrate(expansion=expansion, reference=TRUTH, partitions={"g": GROUPS.iloc[1:]})
    with pytest.raises(UnreachableMarginError, match="cannot be negative"):
        negative = TRUTH.copy()
        negative[GROUPS == "g1"] = -negative[GROUPS == "g1"]
        calibrate(expansion=expansion, reference=negative, partitions={"g": GROUPS})
    with pytest.raises(CellcensusError, match="did not converge in 1 steps"):
        calibrate(
            expansion=expansion,
            reference=TRUTH,
            partitions={"g": GROUPS, "c": CLASSES},
            max_iterations=1,
        )
    with pytest.raises(CellcensusError, match="apply to the 'logit' method only"):
        calibrate(
            expansion=expansion,
            reference=TRUTH,
            partitions={"g": GROUPS},
            method="raking",
            bounds=(0.5, 2.0),
        )


@pytest.mark.parametrize("method", ["ratio", "linear", "raking", "logit"])
def test_a_zero_margin_where_devices_were_counted_is_refused(method: str) -> None:
    # A reference whose group g1 reads 0 (codes of another year, gaps filled with 0): every
    # weight went to 0 and the group's 30 areas, with 29,542 devices, were published as
    # empty; ratio and GREG exactly, raking to within 1e-10.
    zeroed = TRUTH.where(GROUPS != "g1", 0.0)
    partitions = {"g": GROUPS} if method == "ratio" else {"g": GROUPS, "c": CLASSES}

    with pytest.raises(UnreachableMarginError, match="margin 'g', group 'g1': known total 0"):
        calibrate(
            expansion=first_estimate(),
            reference=zeroed,
            partitions=partitions,
            method=method,  # type: ignore[arg-type]
        )
    no_devices = DEVICES.where(GROUPS != "g2", 0.0)
    with pytest.raises(UnreachableMarginError, match="group 'g2'"):
        calibrate(
            expansion=first_estimate(no_devices),
            reference=TRUTH,
            partitions=partitions,
            method=method,  # type: ignore[arg-type]
        )


def test_density_classes_have_equal_sizes_and_follow_density() -> None:
    estimate = pd.Series(np.arange(1.0, 11.0), index=CODES[:10])
    km2 = pd.Series(1.0, index=CODES[:10])

    classes = density_classes(estimate=estimate, area_km2=km2, n_classes=5)

    assert classes.tolist() == ["d1", "d1", "d2", "d2", "d3", "d3", "d4", "d4", "d5", "d5"]


def test_the_constants_fitted_count_the_margin_cells_the_others_do_not_fix() -> None:
    # 4 groups and 3 classes are 7 cells, but both partitions add up to every area, so the
    # 7 totals hold only 6 independent constants; a covariate adds one.
    covariates = pd.DataFrame({"young": young_shares()}, index=CODES)
    one = calibrate(expansion=first_estimate(), reference=TRUTH, partitions={"group": GROUPS})
    two = calibrate(
        expansion=first_estimate(),
        reference=TRUTH,
        partitions={"group": GROUPS, "class": CLASSES},
        covariates=covariates,
    )

    assert one.expansion.parameters["fitted_constants"] == 4
    assert two.expansion.parameters["calibration_cells"] == 8
    assert two.expansion.parameters["fitted_constants"] == 7


def students_town(rng: np.random.Generator) -> tuple[Expansion, pd.DataFrame, pd.Series]:
    """First estimates that overstate areas of many young people, one town of students most.

    Calibrating to the share of young people needs a steep slope in it, which a linear weight
    extrapolates below 0 in the town (young share 0.9, the others 0.1 to 0.3).
    """
    truth = pd.Series(rng.uniform(1_000, 50_000, N).round(), index=CODES)
    young = rng.uniform(0.1, 0.3, N)
    young[0] = 0.9
    devices = (truth * 0.04 * (1 + 4.5 * (young - 0.2))).round()
    return first_estimate(devices), pd.DataFrame({"young": young}, index=CODES), truth


def test_logit_meets_the_margins_within_its_bounds_where_greg_goes_negative() -> None:
    expansion, covariates, truth = students_town(np.random.default_rng(5))
    asked = {"reference": truth, "partitions": {"g": GROUPS}, "covariates": covariates}
    greg = calibrate(expansion=expansion, method="linear", **asked)  # type: ignore[arg-type]
    assert greg.g_weights.min() < 0  # the town: a negative population

    lower, upper = 0.1, 10.0  # the town's first estimate is about 4 times its population
    logit = calibrate(expansion=expansion, method="logit", bounds=(lower, upper), **asked)  # type: ignore[arg-type]

    np.testing.assert_allclose(logit.margins["calibrated"], logit.margins["target"], rtol=1e-9)
    assert logit.g_weights.between(lower, upper, inclusive="neither").all()
    assert logit.g_weights.idxmin() == CODES[0]
    assert (logit.expansion.estimate > 0).all()


@pytest.mark.parametrize(
    ("bounds", "twin", "other"),
    [((0.01, 100.0), "raking", "linear"), ((0.5, 1.5), "linear", "raking")],
)
def test_logit_agrees_with_raking_or_greg_as_its_curvature_says_where_weights_are_near_one(
    bounds: tuple[float, float], twin: str, other: str
) -> None:
    # Weights within 1 % of 1: every method's g is 1 + u + g''(0) u^2 / 2 + O(u^3) with
    # |u| < 0.01, so methods differ by up to about u^2 = 1e-4 when their curvatures differ
    # and by about u^3 = 1e-6 when they match. The logit curvature
    # (U + L - 2) / ((1 - L)(U - 1)) is raking's 1 when L U = 1 and GREG's 0 when L + U = 2.
    rng = np.random.default_rng(21)
    truth = pd.Series(rng.uniform(1_000, 50_000, N).round(), index=CODES)
    devices = (truth * 0.04 * rng.uniform(0.97, 1.03, N)).round()
    covariates = pd.DataFrame({"young": rng.uniform(0.1, 0.3, N)}, index=CODES)
    asked = {
        "expansion": first_estimate(devices),
        "reference": truth,
        "partitions": {"g": GROUPS, "c": CLASSES},
        "covariates": covariates,
    }
    g = {m: calibrate(method=m, **asked).g_weights for m in (twin, other)}  # type: ignore[arg-type]
    logit = calibrate(method="logit", bounds=bounds, **asked).g_weights  # type: ignore[arg-type]

    assert (logit - 1).abs().max() < 0.01
    assert (logit - g[twin]).abs().max() < 1e-6
    assert 1e-6 < (logit - g[other]).abs().max() < 1e-4


def test_margins_out_of_reach_of_the_bounds_are_an_error_not_missed_totals() -> None:
    # g1's known total is about 2.7 times its first estimate: no weight below 2 reaches it.
    tripled = TRUTH.where(GROUPS != "g1", TRUTH * 3)
    asked = {"expansion": first_estimate(), "reference": tripled, "partitions": {"g": GROUPS}}

    with pytest.raises(
        CalibrationNotConvergedError, match=r"the bounds \(0.5, 2\) may be too tight.*widen"
    ):
        calibrate(method="logit", **asked)  # type: ignore[arg-type]
    widened = calibrate(method="logit", bounds=(0.5, 4.0), **asked)  # type: ignore[arg-type]
    np.testing.assert_allclose(widened.margins["calibrated"], widened.margins["target"])
    assert 2 < widened.g_weights.max() < 4


@pytest.mark.parametrize(
    "bounds", [(1.0, 2.0), (0.5, 1.0), (-0.1, 2.0), (2.0, 0.5), (0.5, np.inf), (np.nan, 2.0)]
)
def test_bounds_not_around_one_are_refused_naming_them(bounds: tuple[float, float]) -> None:
    with pytest.raises(CellcensusError, match=r"0 <= lower < 1 < upper .*got lower=.*upper="):
        calibrate(
            expansion=first_estimate(),
            reference=TRUTH,
            partitions={"g": GROUPS},
            method="logit",
            bounds=bounds,
        )
    with pytest.raises(CellcensusError, match=f"upper={bounds[1]:g}"):
        logit_weight(np.zeros(1), bounds=bounds)


@pytest.mark.parametrize("bounds", [DEFAULT_BOUNDS, (0.0, 3.0), (0.9, 1.1), (0.2, 50.0)])
def test_the_logit_weight_rises_from_one_bound_to_the_other_through_one(
    bounds: tuple[float, float],
) -> None:
    lower, upper = bounds
    rate = (upper - lower) / ((1 - lower) * (upper - 1))
    u = np.linspace(-3.0, 3.0, 601) / rate  # where g moves, for narrow bounds too
    rise = np.exp(rate * u)  # Deville & Särndal's form, safe for these u
    closed_form = (lower * (upper - 1) + upper * (1 - lower) * rise) / (
        (upper - 1) + (1 - lower) * rise
    )
    h = 1e-6

    g = logit_weight(u, bounds=bounds)
    slope = logit_weight_derivative(u, bounds=bounds)

    np.testing.assert_allclose(g, closed_form, rtol=1e-12)
    assert logit_weight(np.zeros(1), bounds=bounds)[0] == pytest.approx(1.0, abs=1e-15)
    assert logit_weight_derivative(np.zeros(1), bounds=bounds)[0] == pytest.approx(1.0, rel=1e-12)
    central = (logit_weight(u + h, bounds=bounds) - logit_weight(u - h, bounds=bounds)) / (2 * h)
    np.testing.assert_allclose(slope, central, rtol=1e-6, atol=1e-8)
    assert np.all(np.diff(g) > 0) and np.all(slope > 0)
    assert np.all((lower < g) & (g < upper))


@pytest.mark.parametrize("bounds", [DEFAULT_BOUNDS, (0.0, 3.0), (0.9, 1.1)])
def test_the_logit_weight_reaches_its_bounds_without_overflow(
    bounds: tuple[float, float],
) -> None:
    far = np.array([-np.inf, -1e308, -1e3, 1e3, 1e308, np.inf])

    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        g = logit_weight(far, bounds=bounds)
        slope = logit_weight_derivative(far, bounds=bounds)

    np.testing.assert_allclose(g, [bounds[0]] * 3 + [bounds[1]] * 3, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(slope, 0.0, atol=1e-12)
    wide = np.linspace(-1e3, 1e3, 20_001)
    assert np.all(np.diff(logit_weight(wide, bounds=bounds)) >= 0)
