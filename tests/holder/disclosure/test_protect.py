from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from cellcensus.errors import CellcensusError, DisclosureError
from cellcensus.holder.disclosure import (
    DifferentialPrivacy,
    DisclosurePolicy,
    Hierarchy,
    PrivacyLedger,
    Role,
    policy_for,
    protect,
)

NO_NOISE = DisclosurePolicy(min_count=15)
KEY = b"holder-secret"


def table(counts: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame({"area_code": list(counts), "device_count": list(counts.values())})


def test_counts_at_or_below_threshold_are_suppressed_and_keys_completed():
    raw = table({"a": 15.0, "b": 15.2, "c": 100.4})
    out = protect(raw, keys=["a", "b", "c", "d"], policy=NO_NOISE)
    assert list(out.area_code) == ["a", "b", "c", "d"]
    assert list(out.columns) == ["area_code", "device_count"]
    assert out.device_count.isna().tolist() == [True, False, False, True]
    assert out.device_count.iloc[1] == 15
    assert out.device_count.iloc[2] == 100


def test_released_counts_are_multiples_of_the_base_rounded_half_up_without_a_key():
    raw = table({"a": 22.4, "b": 22.5, "c": 1234.0})
    out = protect(raw, keys=["a", "b", "c"], policy=NO_NOISE)
    assert out.device_count.tolist() == [20, 25, 1235]


def test_keyed_rounding_is_consistent_across_releases_and_depends_on_the_key():
    raw = table({f"{i:05d}": 100.0 + i for i in range(200)})
    keys = list(raw.area_code)
    first = protect(raw, keys=keys, policy=NO_NOISE, rounding_key=KEY)
    again = protect(raw, keys=keys, policy=NO_NOISE, rounding_key=KEY)
    other = protect(raw, keys=keys, policy=NO_NOISE, rounding_key=b"another")
    pd.testing.assert_frame_equal(first, again)
    assert (first.device_count % 5 == 0).all()
    assert (first.device_count != other.device_count).any()
    assert (np.abs(first.device_count.to_numpy(float) - raw.device_count.to_numpy()) < 5).all()


def test_keyed_rounding_is_unbiased_over_many_cells():
    raw = table({f"{i:05d}": 101.0 for i in range(2000)})
    out = protect(raw, keys=list(raw.area_code), policy=NO_NOISE, rounding_key=KEY)
    assert out.device_count.mean() == pytest.approx(101.0, abs=0.25)


def test_key_outside_public_set_is_refused():
    with pytest.raises(CellcensusError, match="public key set"):
        protect(table({"zz": 50.0}), keys=["a"], policy=NO_NOISE)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_malformed_counts_are_refused(bad):
    with pytest.raises(CellcensusError, match="device_count for area_code"):
        protect(table({"a": bad}), keys=["a"], policy=NO_NOISE)


def test_repeated_keys_and_missing_columns_are_refused():
    raw = pd.DataFrame({"area_code": ["a", "a"], "device_count": [20.0, 30.0]})
    with pytest.raises(CellcensusError, match="repeats area_code"):
        protect(raw, keys=["a"], policy=NO_NOISE)
    with pytest.raises(CellcensusError, match="lacks column"):
        protect(raw.drop(columns="device_count"), keys=["a"], policy=NO_NOISE)


@pytest.mark.parametrize(
    "raw",
    [
        table({"a": 20.0, "zz-found": 50.0}),  # a key outside the public set
        table({"a": 20.0, "b-found": float("inf")}),  # a row the algorithm could not count
        pd.DataFrame({"area_code": ["a", "b-found", "b-found"], "device_count": [20.0, 1, 2]}),
    ],
)
def test_refusals_do_not_name_the_keys_of_the_output(raw):
    """A refusal reaches the analyst: which keys the exact output holds must not be in it."""
    with pytest.raises(CellcensusError, match="algorithm output") as refusal:
        protect(raw, keys=["a", "b-found", "c"], policy=NO_NOISE)
    assert "found" not in str(refusal.value)


def test_dp_release_needs_a_ledger_charge_and_a_contribution_bound(charge_for):
    policy = policy_for(algorithm="usual_residence")
    raw = table({"a": 500.0})
    with pytest.raises(DisclosureError, match="charge the job to the privacy-loss ledger"):
        protect(raw, keys=["a"], policy=policy, contribution_bound=1.0)
    with pytest.raises(DisclosureError, match="contribution_bound"):
        protect(raw, keys=["a"], policy=policy, charge=charge_for(policy))
    cheaper = DisclosurePolicy(dp=DifferentialPrivacy(epsilon=0.1))
    with pytest.raises(DisclosureError, match="less than the policy spends"):
        protect(raw, keys=["a"], policy=policy, contribution_bound=1.0, charge=charge_for(cheaper))


def test_dp_release_with_a_real_ledger_charge(tmp_path):
    ledger = PrivacyLedger.at(path=tmp_path / "ledger.sqlite")
    ledger.set_budget(analyst="ana", project="census", epsilon=1.0, by="sam", role=Role.STEWARD)
    # At the default threshold of 15, b's 3 plus Laplace noise of scale 2.5 was released in
    # 12 of 3,000 runs (0.4 %); at 50 the chance is about 3e-9, and b is still withheld.
    policy = replace(policy_for(algorithm="usual_residence"), min_count=50)
    charge = ledger.charge(job_id="j1", analyst="ana", project="census", epsilon=policy.epsilon)
    out = protect(
        table({"a": 500.0, "b": 3.0}),
        keys=["a", "b", "c"],
        policy=policy,
        contribution_bound=1.0,
        charge=charge,
    )
    assert list(out.columns) == ["area_code", "device_count", "ci95"]
    assert out.ci95.tolist() == pytest.approx([2.5 * np.log(20)] * 3, abs=0.01)
    assert out.device_count.isna().tolist() == [False, True, True]
    assert abs(out.device_count.iloc[0] - 500) <= 40


def test_dp_noise_differs_between_releases_and_is_centred(charge_for):
    policy = DisclosurePolicy(rounding_base=1, dp=DifferentialPrivacy(epsilon=0.4))
    raw = table({f"{i:04d}": 200.0 for i in range(400)})
    keys = list(raw.area_code)
    first, second = (
        protect(
            raw, keys=keys, policy=policy, contribution_bound=1.0, charge=charge_for(policy)
        ).device_count.to_numpy(float)
        for _ in range(2)
    )
    assert (first != second).mean() > 0.5
    # The mean's sd is about 0.18 and the sd's about 7 % (Laplace tails): these bars fail by
    # chance about once in 2 million runs (measured over 2 million simulated releases).
    assert first.mean() == pytest.approx(200.0, abs=1.0)
    assert first.std() == pytest.approx(2.5 * np.sqrt(2), rel=0.3)


def test_dp_threshold_is_applied_to_the_noisy_count(charge_for):
    """Which cells are withheld is post-processing of the noise, not a fact of exact counts.

    Laplace scale 2.5: a cell of 15 devices is released when its noise is > 0 (p = 0.5), one
    of 16 withheld when its noise is <= -1 (p = 0.5 exp(-0.4) = 0.335). Over 400 cells each
    the shares' standard errors are 0.025 and 0.024: the bounds sit 5.1 of them or more away
    (a chance failure about once in 2.5 million runs, exact binomial tails).
    """
    policy = DisclosurePolicy(rounding_base=1, dp=DifferentialPrivacy())
    raw = table({f"{i:04d}": 15.0 if i < 400 else 16.0 for i in range(800)})
    out = protect(
        raw,
        keys=list(raw.area_code),
        policy=policy,
        contribution_bound=1.0,
        charge=charge_for(policy),
    )
    withheld = out.device_count.isna().to_numpy()
    assert 0.37 < withheld[:400].mean() < 0.63
    assert 0.21 < withheld[400:].mean() < 0.46


@pytest.mark.parametrize("mechanism", ["laplace", "gaussian"])
def test_noise_alone_releases_about_one_cell_of_a_large_sparse_table(charge_for, mechanism):
    """A matrix of 20,000 pairs, all empty but one of 80 devices (a migration, say).

    At the threshold of 15 alone, Laplace noise of scale 2.5 lifts an empty pair above it
    with chance exp(-6) / 2: 25 pairs of pure noise are expected (5 to 55 but once in 2.8
    million). Raised to each cell's noise quantile 1 - 1/n (23.0 devices here), the
    threshold lets through about one (more than 8 once in 900,000); the true pair stays.
    """
    dp = {
        "laplace": DifferentialPrivacy(),
        "gaussian": DifferentialPrivacy(mechanism="gaussian", delta=1e-6, epsilon=2.0),
    }[mechanism]
    raw = table({f"{i:05d}": 80.0 if i == 0 else 0.0 for i in range(20_000)})
    released = {}
    for name, noise_releases in (("raised", 1.0), ("min_count", None)):
        policy = DisclosurePolicy(rounding_base=1, dp=replace(dp, noise_releases=noise_releases))
        out = protect(
            raw,
            keys=list(raw.area_code),
            policy=policy,
            contribution_bound=1.0,
            charge=charge_for(policy),
        )
        assert out.device_count.notna().iloc[0]  # the pair of 80 devices
        released[name] = int(out.device_count.iloc[1:].notna().sum())
    assert released["raised"] <= 8, released
    if mechanism == "laplace":
        assert 5 <= released["min_count"] <= 55, released


def test_contribution_bound_scales_the_noise(charge_for):
    policy = policy_for(algorithm="usual_residence")
    raw = table({"a": 500.0})
    bound_1 = protect(
        raw, keys=["a"], policy=policy, contribution_bound=1.0, charge=charge_for(policy)
    )
    bound_24 = protect(
        raw, keys=["a"], policy=policy, contribution_bound=24.0, charge=charge_for(policy)
    )
    assert bound_24.ci95.iloc[0] == pytest.approx(24 * bound_1.ci95.iloc[0], rel=1e-3)


def test_utility_municipality_counts_keep_a_small_relative_error(charge_for):
    """Default policy on Belgium-sized counts: the noise costs statisticians little.

    Devices = 30 % of the census population of each municipality. Failure probability of the
    8 % bound: a 500-device cell fails only if |Laplace(2.5)| > 35, p = exp(-14) < 1e-6.
    """
    from cellcensus.reference import census_population

    census = census_population()
    exact = (census.population * 0.3).to_numpy()
    raw = pd.DataFrame({"area_code": census.area_code, "device_count": exact})
    policy = policy_for(algorithm="usual_residence")
    out = protect(
        raw,
        keys=list(census.area_code),
        policy=policy,
        contribution_bound=1.0,
        charge=charge_for(policy),
        rounding_key=KEY,
    )
    released = out.set_index("area_code").device_count.reindex(census.area_code).to_numpy(float)
    large = exact > 500
    relative = np.abs(released[large] - exact[large]) / exact[large]
    assert large.sum() > 550
    assert relative.max() < 0.08
    assert np.median(relative) < 0.005
    within = np.abs(released[large] - exact[large]) <= out.ci95.iloc[0] + policy.rounding_base
    assert within.mean() > 0.9


BELGIUM_LIKE = Hierarchy(
    leaf_level="municipality",
    parents=pd.DataFrame(
        {
            "area_code": ["11001", "11002", "11003", "12001", "12002", "21001"],
            "arrondissement": ["11000", "11000", "11000", "12000", "12000", "21000"],
            "region": ["2000", "2000", "2000", "2000", "2000", "4000"],
        }
    ),
)


def test_hierarchy_releases_every_level_with_secondary_suppression():
    raw = table(
        {
            "11001": 300.0,
            "11002": 12.0,
            "11003": 40.0,
            "12001": 500.0,
            "12002": 60.0,
            "21001": 900.0,
        }
    )
    out = protect(raw, keys=list(raw.area_code), policy=NO_NOISE, hierarchy=BELGIUM_LIKE)
    released = out.set_index(["level", "area_code"]).device_count
    assert list(out.columns) == ["level", "area_code", "device_count"]
    assert released["arrondissement", "11000"] == 350
    assert released["region", "2000"] == 910
    # 11002 is suppressed; with the arrondissement total published, 11003 must go too
    assert pd.isna(released["municipality", "11002"])
    assert pd.isna(released["municipality", "11003"])
    assert released["municipality", "11001"] == 300
    assert released["municipality", "21001"] == 900


def test_hierarchy_must_cover_every_key_and_nest():
    raw = table({"11001": 300.0, "99999": 20.0})
    with pytest.raises(CellcensusError, match="no parents"):
        protect(raw, keys=["11001", "99999"], policy=NO_NOISE, hierarchy=BELGIUM_LIKE)
    crossing = Hierarchy(
        leaf_level="municipality",
        parents=pd.DataFrame(
            {"area_code": ["a", "b"], "arrondissement": ["A", "A"], "region": ["R1", "R2"]}
        ),
    )
    with pytest.raises(CellcensusError, match="do not nest"):
        protect(table({"a": 20.0}), keys=["a", "b"], policy=NO_NOISE, hierarchy=crossing)


def test_dp_hierarchy_is_consistent_up_to_rounding_and_non_negative(charge_for):
    policy = DisclosurePolicy(rounding_base=1, dp=DifferentialPrivacy())
    raw = table(
        {"11001": 300.0, "11002": 0.0, "11003": 40.0, "12001": 500.0, "12002": 60.0, "21001": 900.0}
    )
    out = protect(
        raw,
        keys=list(raw.area_code),
        policy=policy,
        contribution_bound=1.0,
        hierarchy=BELGIUM_LIKE,
        charge=charge_for(policy),
    )
    assert (out.device_count.dropna() >= 0).all()
    assert set(out.level) == {"municipality", "arrondissement", "region"}
    ci = out.set_index(["level", "area_code"]).ci95
    assert ci["arrondissement", "11000"] == pytest.approx(
        ci["municipality", "11001"] * 3**0.5, rel=1e-3
    )


def test_empty_public_key_set_is_refused():
    with pytest.raises(CellcensusError, match="public key set is empty"):
        protect(table({}), keys=[], policy=NO_NOISE)
