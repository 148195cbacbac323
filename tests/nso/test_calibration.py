import numpy as np
import pandas as pd
import pytest

from cellcensus.errors import CellcensusError
from cellcensus.nso.calibration import UnreachableMarginError, calibrate, density_classes
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


@pytest.mark.parametrize("method", ["ratio", "linear", "raking"])
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
        for m in ("ratio", "linear", "raking")
    ]

    np.testing.assert_allclose(weights[0], weights[1])
    np.testing.assert_allclose(weights[0], weights[2])


@pytest.mark.parametrize("method", ["linear", "raking"])
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


@pytest.mark.parametrize("method", ["ratio", "linear", "raking"])
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
