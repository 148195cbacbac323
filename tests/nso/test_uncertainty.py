import dataclasses
import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from cellcensus.errors import CellcensusError
from cellcensus.holder.disclosure.hierarchy import layout
from cellcensus.holder.disclosure.ledger import Charge
from cellcensus.holder.disclosure.noise import noisy_counts
from cellcensus.holder.disclosure.policy import DifferentialPrivacy, DisclosurePolicy
from cellcensus.holder.disclosure.protection import protect
from cellcensus.nso.expansion import national_expansion
from cellcensus.nso.uncertainty import (
    DeclaredNoise,
    count_variance,
    cross_fitted_model_error,
    declared_noise,
    intervals,
    model_error,
    noisy_interval,
    normal_interval,
    normal_laplace_half_width,
    size_class_model_error,
)
from cellcensus.release import Provenance, Release

CODES = ["11001", "11002", "11003"]


def release(policy: dict[str, object] | None = None, **columns: object) -> Release:
    table = pd.DataFrame({"area_code": CODES, "device_count": [100, None, 400], **columns})
    provenance = Provenance(
        job_id="j",
        algorithm="usual_residence",
        version="1",
        parameters={},
        policy=policy or {},
        created_at="2024-04-01T00:00:00+00:00",
        engine="duckdb",
    )
    return Release(table=table, provenance=provenance)


def test_laplace_policy_gives_two_b_squared_and_rounding_base_squared_over_twelve() -> None:
    noise = declared_noise(
        release=release({"rounding_base": 5, "dp": {"epsilon": 0.5, "mechanism": "laplace"}})
    )

    np.testing.assert_allclose(noise.variance, [8.0, 8.0, 8.0])  # b = 1 / 0.5
    assert noise.rounding_variance == pytest.approx(25 / 12)
    assert "Laplace" in noise.source and "0.5" in noise.source


def test_contribution_bound_scales_the_laplace_noise() -> None:
    noise = declared_noise(release=release({"dp": {"epsilon": 1.0}}), contribution_bound=3.0)

    assert noise.variance.iloc[0] == pytest.approx(18.0)


def test_only_laplace_noise_on_each_count_gives_a_laplace_scale() -> None:
    laplace = declared_noise(release=release({"dp": {"epsilon": 1.0}}))
    gaussian = declared_noise(
        release=release({"dp": {"epsilon": 1.0, "delta": 1e-6, "mechanism": "gaussian"}})
    )
    counted = release({"dp": {"epsilon": 1.0}})
    provenance = dataclasses.replace(
        counted.provenance, parameters={"spatial_estimator": "bayesian"}
    )
    estimated = declared_noise(release=dataclasses.replace(counted, provenance=provenance))

    np.testing.assert_allclose(laplace.laplace_scale(), [1.0, 1.0, 1.0])  # b = 1 / epsilon
    assert not gaussian.laplace and (gaussian.laplace_scale() == 0).all()
    # An estimator run on noisy counts spreads many counts' noise: no single Laplace term.
    assert not estimated.laplace


MECHANISMS = [
    pytest.param({"epsilon": 0.4, "delta": 0.0, "mechanism": "laplace"}, id="laplace"),
    pytest.param({"epsilon": 0.4, "delta": 1e-6, "mechanism": "gaussian"}, id="gaussian"),
]


def _holder_release(dp: dict[str, object], *, units: int) -> tuple[Release, float]:
    """1,000 areas protected by the holder's own `protect`, and its noise's true variance."""
    policy = DisclosurePolicy(min_count=15, rounding_base=1, dp=DifferentialPrivacy(**dp))  # type: ignore[arg-type]
    codes = [f"{i:05d}" for i in range(1000)]
    raw = pd.DataFrame({"area_code": codes, "device_count": np.linspace(0, 5000, len(codes))})
    charge = Charge(
        job_id="j",
        analyst="a",
        project="p",
        epsilon=0.4,
        delta=1e-6,
        charged_at=dt.datetime(2011, 3, 1, tzinfo=dt.UTC),
    )
    table = protect(
        raw, keys=codes, policy=policy, contribution_bound=1.0, units=units, charge=charge
    )
    scale = noisy_counts(
        leaves=raw["device_count"].to_numpy(),
        layout=layout(leaves=codes, leaf_level="area_code", hierarchy=None),
        dp_policy=policy.dp,  # type: ignore[arg-type]
        contribution_bound=1.0,
        units=units,
    ).scale
    if dp["mechanism"] == "laplace":
        assert scale == pytest.approx(units / 0.4, rel=1e-6)  # b = U L / epsilon
    true_variance = 2 * scale**2 if dp["mechanism"] == "laplace" else scale**2
    provenance = Provenance(
        job_id="j",
        algorithm="usual_residence",
        version="1",
        parameters={},
        policy=policy.to_dict(),
        created_at="2011-04-01T00:00:00+00:00",
        engine="duckdb",
        privacy_units=units,
    )
    return Release(table=table, provenance=provenance), true_variance


@pytest.mark.parametrize("dp", MECHANISMS)
@pytest.mark.parametrize("units", [1, 24])
def test_noise_variance_read_from_a_holder_release_is_the_mechanisms(
    dp: dict[str, object], units: int
) -> None:
    # Laplace's ci95 is b ln 20 = 2.118 sd: reading it as 1.96 sd overstated the variance
    # by 16.8 %; without the ci95 column, the policy needs U privacy units, not 1.
    holder_release, true_variance = _holder_release(dp, units=units)
    from_policy = Release(
        table=holder_release.table.drop(columns="ci95"), provenance=holder_release.provenance
    )

    from_column = declared_noise(release=holder_release).variance
    derived = declared_noise(release=from_policy).variance

    assert from_column.to_numpy() == pytest.approx(true_variance, rel=0.01)
    assert derived.to_numpy() == pytest.approx(true_variance, rel=0.01)


def test_a_bayesian_release_ci95_is_a_normal_bootstrap_interval() -> None:
    holder_release, _ = _holder_release(MECHANISMS[0].values[0], units=1)  # type: ignore[arg-type]
    provenance = dataclasses.replace(
        holder_release.provenance, parameters={"spatial_estimator": "bayesian"}
    )
    table = holder_release.table.assign(ci95=1.959964)

    noise = declared_noise(release=Release(table=table, provenance=provenance))

    assert noise.variance.to_numpy() == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize(
    ("columns", "variance"),
    [
        ({"noise_sd": [2.0, 2.0, 3.0]}, [4.0, 4.0, 9.0]),
        ({"noise_variance": [5.0, 5.0, 5.0]}, [5.0, 5.0, 5.0]),
        ({"ci95_low": [90.0, None, 380.0], "ci95_high": [110.0, None, 420.0]}, None),
        ({"ci95": [1.959964, 1.959964, 3.919928]}, [1.0, 1.0, 4.0]),
        ({"ci95": [[98.04, 101.96], None, [396.08, 403.92]]}, [1.0, 0.0, 4.0]),
    ],
)
def test_a_declared_noise_column_takes_precedence_over_the_policy(
    columns: dict[str, object], variance: list[float] | None
) -> None:
    gaussian = {"epsilon": 0.01, "delta": 1e-6, "mechanism": "gaussian"}
    noise = declared_noise(release=release({"dp": gaussian}, **columns))

    if variance is None:
        sd = np.array([20.0, 0.0, 40.0]) / (2 * 1.959964)
        variance = list(sd**2)
    np.testing.assert_allclose(noise.variance, variance, rtol=1e-4)
    # Said in the report's words: its readers see no column names.
    assert (
        noise.source.startswith("the ") and "of the noise, given beside each count" in noise.source
    )
    assert "column" not in noise.source and not any(name in noise.source for name in columns)


def test_no_noise_declared_and_bad_declarations() -> None:
    assert declared_noise(release=release()).source == "no noise declared"
    with pytest.raises(CellcensusError, match="noise_sd"):
        declared_noise(release=release(noise_sd=["a", "b", "c"]))
    with pytest.raises(CellcensusError, match="mechanism"):
        declared_noise(release=release({"dp": {"epsilon": 1, "mechanism": "exponential"}}))


def test_count_variance_adds_binomial_sampling_noise_and_rounding() -> None:
    devices = pd.Series([100.0, np.nan, 400.0], index=CODES)
    noise = DeclaredNoise(variance=pd.Series(8.0, index=CODES), rounding_base=5, source="test")

    variance = count_variance(devices=devices, noise=noise, selection_probability=0.2)

    np.testing.assert_allclose(variance, [80 + 8 + 25 / 12, np.nan, 320 + 8 + 25 / 12])
    with pytest.raises(CellcensusError, match="selection probability"):
        count_variance(devices=devices, noise=noise, selection_probability=0.0)


@pytest.mark.parametrize(
    ("sd", "scale"), [(1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (0.3, 1.0), (5.0, 1.0)]
)
def test_normal_laplace_half_width_holds_95_percent_of_the_sum(sd: float, scale: float) -> None:
    rng = np.random.default_rng(5)
    draws = rng.normal(0.0, sd, 400_000) + rng.laplace(0.0, scale, 400_000)

    half = normal_laplace_half_width(np.array([sd]), np.array([scale]))[0]

    # 400,000 draws: the binomial sd of the share is 0.03 points; allow 0.2.
    assert np.mean(np.abs(draws) <= half) == pytest.approx(0.95, abs=0.002)
    if scale == 0.0:
        assert half == pytest.approx(1.959964 * sd)
    if sd == 0.0:
        assert half == pytest.approx(scale * math.log(20.0))


def test_noisy_intervals_cover_where_normal_ones_fall_short() -> None:
    # Estimates whose error is mostly their own count's Laplace noise (sd 0.2 beside a
    # Laplace scale of 1): the normal interval of the same standard error covers 93.7 %.
    rng = np.random.default_rng(6)
    n = 200_000
    truth = pd.Series(np.full(n, 100.0))
    estimate = truth + rng.normal(0.0, 0.2, n) + rng.laplace(0.0, 1.0, n)
    std_error = pd.Series(np.full(n, math.sqrt(0.2**2 + 2.0)))

    noisy = noisy_interval(estimate, std_error, laplace=pd.Series(np.ones(n)))
    normal = normal_interval(estimate, std_error)

    def coverage(bounds: pd.DataFrame) -> float:
        return float(((bounds["ci_lower"] <= truth) & (truth <= bounds["ci_upper"])).mean())

    assert coverage(noisy) == pytest.approx(0.95, abs=0.003)
    assert coverage(normal) < 0.94
    pd.testing.assert_series_equal(noisy["std_error"], std_error, check_names=False)


def test_intervals_scale_the_count_variance_by_the_factor() -> None:
    devices = pd.Series([100.0, np.nan, 400.0], index=CODES)
    expansion = national_expansion(devices=devices, market_share=0.5, sampling_fraction=0.2)
    variance = pd.Series([100.0, np.nan, 400.0], index=CODES)

    table = intervals(expansion=expansion, variance=variance, tau=0.0, level=0.95)
    with_model = intervals(expansion=expansion, variance=variance, tau=0.1, level=0.95)

    np.testing.assert_allclose(table["std_error"], [100.0, np.nan, 200.0])
    np.testing.assert_allclose(table["ci_upper"], [1000 + 195.9964, np.nan, 4000 + 391.9928])
    assert with_model["std_error"].iloc[0] == pytest.approx(math.hypot(100, 100))
    with pytest.raises(CellcensusError, match="level"):
        intervals(expansion=expansion, variance=variance, level=95)


def test_intervals_are_cut_at_zero() -> None:
    devices = pd.Series([1.0], index=["A"])
    expansion = national_expansion(devices=devices, market_share=1.0, sampling_fraction=1.0)

    table = intervals(expansion=expansion, variance=pd.Series([25.0], index=["A"]))

    assert table["ci_lower"].iloc[0] == 0.0


def test_model_error_is_small_when_sampling_explains_the_errors() -> None:
    rng = np.random.default_rng(2)
    truth = pd.Series(rng.uniform(5_000, 50_000, 400))
    devices = pd.Series(rng.binomial(truth.astype(int), 0.04).astype(float))
    expansion = national_expansion(devices=devices, market_share=0.4, sampling_fraction=0.1)
    variance = devices * 0.96

    tau = model_error(expansion=expansion, variance=variance, reference=truth)

    assert tau < 0.02  # against 2-7 % sampling error: the chance misses at the margin
    table = intervals(expansion=expansion, variance=variance, tau=tau)
    inside = (table["ci_lower"] <= truth) & (truth <= table["ci_upper"])
    assert inside.mean() >= 0.93


def test_model_error_widens_intervals_to_cover_errors_beyond_sampling() -> None:
    rng = np.random.default_rng(3)
    truth = pd.Series(rng.uniform(5_000, 50_000, 600))
    misplaced = truth * rng.lognormal(0, 0.08, 600)  # 8 % model error
    devices = pd.Series(rng.binomial(misplaced.astype(int), 0.04).astype(float))
    expansion = national_expansion(devices=devices, market_share=0.4, sampling_fraction=0.1)
    variance = devices * 0.96
    fit, check = truth.iloc[:300], truth.iloc[300:]

    tau = model_error(expansion=expansion, variance=variance, reference=fit)

    assert 0.05 < tau < 0.12
    table = intervals(expansion=expansion, variance=variance, tau=tau).iloc[300:]
    inside = (table["ci_lower"] <= check) & (check <= table["ci_upper"])
    assert inside.mean() >= 0.9
    sampling_only = intervals(expansion=expansion, variance=variance).iloc[300:]
    narrow = (sampling_only["ci_lower"] <= check) & (check <= sampling_only["ci_upper"])
    assert narrow.mean() < 0.7
    assert model_error(expansion=expansion, variance=variance, reference=pd.Series()) == 0.0


def test_model_error_covers_a_new_area_at_the_split_conformal_rate() -> None:
    # 40 calibration areas whose errors are all model error (10 %, no sampling): the k-th
    # smallest of their scores, k = ceil(41 x 0.95) = 39, covers a new area with probability
    # 39 / 41 = 95.1 %. One rank higher (the 40th) covered 40 / 41 = 97.6 %.
    rng = np.random.default_rng(21)
    n, draws = 40, 200
    covered = []
    for _ in range(draws):
        estimate = pd.Series(rng.uniform(1_000, 10_000, 2 * n))
        reference: pd.Series = estimate * np.exp(rng.normal(0.0, 0.1, 2 * n))
        expansion = national_expansion(devices=estimate, market_share=1.0, sampling_fraction=1.0)
        variance = pd.Series(0.0, index=estimate.index)
        tau = model_error(expansion=expansion, variance=variance, reference=reference.iloc[:n])
        table = intervals(expansion=expansion, variance=variance, tau=tau).iloc[n:]
        new: pd.Series = reference.iloc[n:]
        covered.append(float(((table["ci_lower"] <= new) & (new <= table["ci_upper"])).mean()))

    # 200 draws of 40 new areas: the mean's sd is 0.0035; allow 0.01.
    assert np.mean(covered) == pytest.approx(math.ceil((n + 1) * 0.95) / (n + 1), abs=0.01)


def _coverage_by_size(
    *, shape: str, draws: int = 30, n: int = 600
) -> dict[str, tuple[np.ndarray, float]]:
    """Coverage of five quintiles of the estimate, and median relative half-width, per method.

    Each draw: n areas of 1,000 to 100,000 residents (log-uniform), whose devices are a
    binomial sample (p = 0.04, the sampling variance stated exactly) of the residents moved
    by a relative model error of known sd depending on size: from 1 % (smallest) to 8 %
    (largest) when ``growing``, from 12 % to 2 % when ``shrinking``. ``tau`` is fitted on one
    half, the intervals checked on the other.
    """
    rng = np.random.default_rng(5)
    covered: dict[str, list[np.ndarray]] = {"one tau": [], "by size": []}
    widths: dict[str, list[float]] = {"one tau": [], "by size": []}
    for _ in range(draws):
        truth = pd.Series(np.exp(rng.uniform(math.log(1_000), math.log(100_000), n)))
        position = (np.log(truth) - math.log(1_000)) / math.log(100)
        sd = 0.01 + 0.07 * position if shape == "growing" else 0.12 - 0.10 * position
        moved: pd.Series = (truth * np.exp(rng.normal(0.0, sd))).astype(int)
        devices = pd.Series(rng.binomial(moved, 0.04).astype(float))
        expansion = national_expansion(devices=devices, market_share=0.4, sampling_fraction=0.1)
        variance = devices * 0.96
        fit, check = truth.iloc[: n // 2], truth.iloc[n // 2 :]
        tau = {
            "one tau": model_error(expansion=expansion, variance=variance, reference=fit),
            "by size": size_class_model_error(
                expansion=expansion, variance=variance, reference=fit
            ).of(expansion.estimate),
        }
        quintile = pd.qcut(expansion.estimate.iloc[n // 2 :].rank(method="first"), 5, labels=False)
        for method, value in tau.items():
            table = intervals(expansion=expansion, variance=variance, tau=value).iloc[n // 2 :]
            inside = (table["ci_lower"] <= check) & (check <= table["ci_upper"])
            covered[method].append(inside.groupby(quintile).mean().to_numpy())
            half = (table["ci_upper"] - table["ci_lower"]) / 2 / table["estimate"]
            widths[method].append(float(half.median()))
    return {
        method: (np.mean(covered[method], axis=0), float(np.median(widths[method])))
        for method in covered
    }


@pytest.mark.parametrize("shape", ["growing", "shrinking"])
def test_model_error_by_size_class_covers_every_size_at_the_nominal_rate(shape: str) -> None:
    # A relative model error that grows (or shrinks) with size, beside a sampling error that
    # shrinks with it: one tau for all sizes covers the 95 % on average only, large areas
    # (small ones) too rarely. Fitted apart per quintile of the estimate (Mondrian split
    # conformal), each class is covered at about 95 % and the overall bar (90 %) holds.
    measured = _coverage_by_size(shape=shape)
    pooled, (by_size, width) = measured["one tau"][0], measured["by size"]

    # 30 draws of ~60 areas per class: a class's mean coverage has an sd near 0.005 from
    # the areas and 0.006 from each draw's own conformal quantile; allow 0.02 around the
    # conformal target, ceil(61 x 0.95) / 61 = 95.1 % to 57 / 59 = 96.6 %.
    assert abs(pooled - 0.95).max() > 0.03, pooled  # the uneven coverage being corrected
    assert ((by_size >= 0.93) & (by_size <= 0.985)).all(), by_size
    assert abs(by_size - 0.95).max() < abs(pooled - 0.95).max() / 2
    assert by_size.mean() >= 0.90
    # No wider than needed: the median interval at most 15 % wider than one tau's, which
    # leaves its worst class 3 points or more short (measured: 9 % wider when the model
    # error grows with size, 1 % when it shrinks).
    assert width <= 1.15 * measured["one tau"][1]


def test_size_classes_need_enough_calibration_areas_and_no_reference_decides_them() -> None:
    rng = np.random.default_rng(8)
    estimate = pd.Series(rng.uniform(1_000, 50_000, 400), index=[f"{i:05d}" for i in range(400)])
    expansion = national_expansion(devices=estimate, market_share=1.0, sampling_fraction=1.0)
    variance = pd.Series(0.0, index=estimate.index)
    reference: pd.Series = estimate * np.exp(rng.normal(0.0, 0.05, 400))

    def fitted(known: pd.Series) -> tuple[int, ...]:
        return size_class_model_error(
            expansion=expansion, variance=variance, reference=known
        ).n_areas

    everything = size_class_model_error(expansion=expansion, variance=variance, reference=reference)
    smallest: pd.Series = reference[estimate < estimate.median()]  # of small areas only

    assert fitted(reference) == (80, 80, 80, 80, 80)  # quintiles of the 400 estimates
    assert len(fitted(reference.iloc[:100])) == 2  # 100 // 40 classes at most
    # The small areas' references fill two quintiles and half the third: that half is a
    # class (40 areas), the empty quintiles above join it.
    assert fitted(smallest) == (80, 80, 40)
    assert fitted(reference.iloc[:39]) == (39,)
    one = size_class_model_error(
        expansion=expansion, variance=variance, reference=reference, size_classes=1
    )
    assert one.tau[0] == pytest.approx(
        model_error(expansion=expansion, variance=variance, reference=reference)
    )
    assert everything.limits == pytest.approx(np.quantile(estimate, [0.2, 0.4, 0.6, 0.8]))
    tau = everything.of(estimate)
    assert tau.iloc[int(estimate.argmax())] == everything.tau[-1]
    assert tau.iloc[int(estimate.argmin())] == everything.tau[0]
    empty = size_class_model_error(expansion=expansion, variance=variance, reference=pd.Series())
    assert empty.tau == (0.0,)


def test_cross_fitted_model_error_gives_each_fold_the_fit_on_every_other_reference() -> None:
    rng = np.random.default_rng(11)
    codes = [f"{i:05d}" for i in range(300)]
    estimate = pd.Series(rng.lognormal(8.0, 1.0, 300), index=codes)
    estimate.iloc[:5] = np.nan  # no estimate: the first class, as `ModelError.of` has it
    expansion = national_expansion(devices=estimate, market_share=1.0, sampling_fraction=1.0)
    variance = pd.Series(estimate.fillna(0.0) * 0.5, index=codes)
    reference: pd.Series = estimate.fillna(100.0) * np.exp(rng.normal(0.0, 0.1, 300))
    reference = reference.iloc[:280]  # the last 20 areas have no reference: in no fold
    reference.iloc[10] = np.nan  # nor has this one
    # Folds as the flows' (one per home), with a fold of a code no estimate has.
    folds = [pd.Index(codes[k:280:7]) for k in range(7)] + [pd.Index(["none"])]

    crossed = cross_fitted_model_error(
        expansion=expansion, variance=variance, reference=reference, folds=folds
    )

    for fold, fit in zip(folds, crossed.folds, strict=True):
        alone = size_class_model_error(
            expansion=expansion, variance=variance, reference=reference.drop(fold, errors="ignore")
        )
        assert fit == alone
        inside = estimate.index.isin(fold)
        assert crossed.tau[inside].equals(alone.of(estimate)[inside])
    everything = size_class_model_error(expansion=expansion, variance=variance, reference=reference)
    assert crossed.tau.iloc[280:].equals(everything.of(estimate).iloc[280:])
    assert crossed.tau.index.equals(estimate.index) and crossed.tau.notna().all()
