"""Internal migration: expansion, intervals, suppression and noise on hand-made releases, and
the refusals of releases the expansion cannot use."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cellcensus.errors import CellcensusError
from cellcensus.nso.migration import MigrationTruth, Periods, estimate_migration
from cellcensus.nso.migration_releases import check_migration_release
from cellcensus.nso.production import EstimationResult
from cellcensus.reference import arrondissements_2019
from cellcensus.release import Provenance, Release

EPSILON = 0.5
"""Laplace noise of scale 1 / EPSILON on every count (bound 1, one privacy unit)."""
POLICY = {
    "min_count": 15.0,
    "rounding_base": 5,
    "dp": {"epsilon": EPSILON, "delta": 0.0, "mechanism": "laplace"},
}
PERIODS = {
    "before_start": "2011-03-01",
    "before_end": "2011-03-12",
    "after_start": "2011-03-17",
    "after_end": "2011-03-28",
}
"""Within the simulated residents' period (2011-03-01 to 2011-03-28)."""
A, B, C, D = "11001", "11002", "11004", "12002"
COUNTS = {
    (A, A): 400, (A, B): 30, (A, C): None, (A, D): None,
    (B, A): 50, (B, B): 9000, (B, C): 20, (B, D): 25,
    (C, A): None, (C, B): None, (C, C): 300, (C, D): None,
    (D, A): 20, (D, B): None, (D, C): None, (D, D): 250,
}  # fmt: skip
"""Devices by (origin, destination): A's out-migrants partly withheld, B's all released,
C's all withheld."""


def migration_release(
    counts: dict[tuple[str, str], int | None] = COUNTS,
    *,
    algorithm: str = "internal_migration",
    parameters: dict[str, str] = PERIODS,
) -> Release:
    table = pd.DataFrame(
        {
            "origin": [origin for origin, _ in counts],
            "destination": [destination for _, destination in counts],
            "device_count": pd.array(list(counts.values()), dtype="Int64"),
        }
    )
    provenance = Provenance(
        job_id="job-migration",
        algorithm=algorithm,
        version="1.2.0",
        parameters=dict(parameters),
        policy=POLICY,
        created_at="2011-04-01T00:00:00",
        engine="duckdb",
    )
    published = {"market_share": 0.4, "sampling_fraction": 0.1, "synthetic": True}
    return Release(table=table, provenance=provenance, published=published)


def periods_of(parameters: dict[str, str]) -> Periods:
    days = [pd.Timestamp(parameters[name]).date() for name in PERIODS]
    return (days[0], days[1]), (days[2], days[3])


def per_device(residents: EstimationResult) -> pd.Series:
    """Persons per released device of each municipality, from the residents' table."""
    table = residents.best.table
    return table["estimate"] / table["released_devices"]


def count_variance(devices: float) -> float:
    """Binomial sampling (p = 0.4 x 0.1), Laplace noise 2 b^2 and rounding to 5 (25 / 12)."""
    return devices * (1 - 0.04) + 2 / EPSILON**2 + 25 / 12


def test_each_pair_is_expanded_with_its_origins_persons_per_device(unbiased_result):
    moved = estimate_migration(
        release=migration_release(), residents=unbiased_result, periods=periods_of(PERIODS)
    )

    factor = per_device(unbiased_result)
    pairs = moved.pairs.set_index(["origin", "destination"])
    for (origin, destination), devices in COUNTS.items():
        row = pairs.loc[(origin, destination)]
        if devices is None:
            assert math.isnan(row["estimate"]) and math.isnan(row["std_error"])
            continue
        assert row["estimate"] == pytest.approx(devices * factor[origin])
        assert row["std_error"] == pytest.approx(
            factor[origin] * math.sqrt(count_variance(devices))
        )
        assert row["ci_lower"] < row["estimate"] < row["ci_upper"]


def test_an_intervals_half_width_covers_95_percent_of_sampling_and_laplace_noise(
    unbiased_result,
):
    moved = estimate_migration(
        release=migration_release(), residents=unbiased_result, periods=periods_of(PERIODS)
    )
    row = moved.pairs.set_index(["origin", "destination"]).loc[(A, B)]
    factor = per_device(unbiased_result)[A]
    sampling_and_rounding = factor * math.sqrt(30 * 0.96 + 25 / 12)
    laplace = factor / EPSILON
    rng = np.random.default_rng(3)
    draws = rng.normal(0, sampling_and_rounding, 400_000) + rng.laplace(0, laplace, 400_000)
    half = row["ci_upper"] - row["estimate"]
    assert np.mean(np.abs(draws) <= half) == pytest.approx(0.95, abs=0.002)


def test_areas_sum_their_released_pairs_and_say_what_is_withheld(unbiased_result):
    moved = estimate_migration(
        release=migration_release(), residents=unbiased_result, periods=periods_of(PERIODS)
    )
    f = per_device(unbiased_result)

    out = moved.measure("out_migrants")
    assert out.loc[A, "estimate"] == pytest.approx(30 * f[A])  # A to C and D withheld
    assert (out.loc[A, "n_pairs"], out.loc[A, "n_suppressed"], out.loc[A, "status"]) == (
        1,
        2,
        "partial",
    )
    assert out.loc[B, "estimate"] == pytest.approx((50 + 20 + 25) * f[B])
    assert out.loc[B, "status"] == "estimated"
    assert out.loc[B, "std_error"] == pytest.approx(
        f[B] * math.sqrt(sum(count_variance(d) for d in (50, 20, 25)))
    )
    assert math.isnan(out.loc[C, "estimate"]) and out.loc[C, "status"] == "suppressed"

    into = moved.measure("in_migrants")
    assert into.loc[A, "estimate"] == pytest.approx(50 * f[B] + 20 * f[D])  # C to A withheld
    assert into.loc[A, "status"] == "partial"
    variance = f[B] ** 2 * count_variance(50) + f[D] ** 2 * count_variance(20)
    assert into.loc[A, "std_error"] == pytest.approx(math.sqrt(variance))

    stayers = moved.measure("stayers")
    assert stayers.loc[B, "estimate"] == pytest.approx(9000 * f[B])

    net = moved.measure("net_migration")
    # B: in from A (from C and D withheld), out to A, C and D.
    assert net.loc[B, "estimate"] == pytest.approx(30 * f[A] - (50 + 20 + 25) * f[B])
    # Symmetric, and below zero where the area loses persons.
    assert net.loc[B, "ci_upper"] - net.loc[B, "estimate"] == pytest.approx(
        net.loc[B, "estimate"] - net.loc[B, "ci_lower"]
    )
    lost = net[net["estimate"] < 0]
    assert not lost.empty and (lost["ci_lower"] < lost["estimate"]).all()

    rate = moved.measure("migration_rate")
    o, s = out.loc[B, "estimate"], stayers.loc[B, "estimate"]
    assert rate.loc[B, "estimate"] == pytest.approx(o / (s + o))
    # Delta method, against the numerical gradient of O / (S + O).
    step = 1e-3
    d_out = ((o + step) / (s + o + step) - (o - step) / (s + o - step)) / (2 * step)
    d_stay = (o / (s + step + o) - o / (s - step + o)) / (2 * step)
    spread = d_out**2 * out.loc[B, "std_error"] ** 2 + d_stay**2 * stayers.loc[B, "std_error"] ** 2
    assert rate.loc[B, "std_error"] == pytest.approx(math.sqrt(spread), rel=1e-4)
    assert rate.loc[C, "status"] == "suppressed" and math.isnan(rate.loc[C, "estimate"])


def test_the_national_block_counts_released_and_withheld_pairs(unbiased_result):
    moved = estimate_migration(
        release=migration_release(), residents=unbiased_result, periods=periods_of(PERIODS)
    )
    block = moved.metrics()
    f = per_device(unbiased_result)
    released = {pair: d for pair, d in COUNTS.items() if d is not None}
    movers = sum(d * f[o] for (o, t), d in released.items() if o != t)
    stayers = sum(d * f[o] for (o, t), d in released.items() if o == t)
    assert block["movers"] == pytest.approx(movers)
    assert block["stayers"] == pytest.approx(stayers)
    assert block["migration_rate"] == pytest.approx(movers / (movers + stayers))
    assert block["n_pairs"] == len(released)
    assert block["n_pairs"] + block["n_suppressed"] == len(COUNTS)
    assert block["n_mover_pairs_suppressed"] == sum(d is None for d in COUNTS.values())
    assert (block["level"], block["before"]) == ("municipality", ["2011-03-01", "2011-03-12"])


def test_the_pairs_the_noise_alone_releases_are_expected_as_laplace_tails_say(unbiased_result):
    """Twelve pairs between areas: an empty one is released when its noise tops 15."""
    moved = estimate_migration(
        release=migration_release(), residents=unbiased_result, periods=periods_of(PERIODS)
    )
    draws = np.random.default_rng(5).laplace(0, 1 / EPSILON, 4_000_000)
    beyond = draws[draws > POLICY["min_count"]]
    assert beyond.size > 500  # enough draws beyond the threshold to measure
    assert moved.noise_only_pairs == pytest.approx(12 * beyond.size / draws.size, rel=0.1)
    assert moved.noise_only_devices == pytest.approx(12 * beyond.sum() / draws.size, rel=0.1)


def test_an_arrondissement_release_takes_its_municipalities_persons_per_device(unbiased_result):
    parent = arrondissements_2019()
    counts = {
        ("11000", "11000"): 5000,
        ("11000", "12000"): 40,
        ("12000", "11000"): None,
        ("12000", "12000"): 3000,
    }
    moved = estimate_migration(
        release=migration_release(counts),
        residents=unbiased_result,
        periods=periods_of(PERIODS),
        parent=parent,
        level="arrondissement",
    )
    table = unbiased_result.best.table
    known = table["estimate"].notna() & (table["released_devices"] > 0)
    persons = table.loc[known, "estimate"].groupby(parent.reindex(table.index)[known]).sum()
    devices = table.loc[known, "released_devices"].groupby(parent.reindex(table.index)[known]).sum()
    pairs = moved.pairs.set_index(["origin", "destination"])
    factor = persons["11000"] / devices["11000"]
    assert pairs.loc[("11000", "12000"), "estimate"] == pytest.approx(40 * factor)
    assert moved.measure("in_migrants").loc["11000", "status"] == "suppressed"
    assert moved.metrics()["level"] == "arrondissement"


def test_a_synthetic_worlds_movers_stand_beside_the_estimates(unbiased_result):
    truth = MigrationTruth(
        movers=pd.DataFrame(
            {"origin": [A, B, B], "destination": [B, A, C], "persons": [2.0, 4.0, 3.0]}
        ),
        persons=pd.Series({A: 100.0, B: 1000.0, C: 50.0, D: 60.0}),
        sampling_fraction=0.1,
    )
    moved = estimate_migration(
        release=migration_release(),
        residents=unbiased_result,
        periods=periods_of(PERIODS),
        truth=truth,
    )
    out = moved.measure("out_migrants")
    assert out.loc[B, "truth"] == pytest.approx((4 + 3) / 0.1)
    assert out.loc[D, "truth"] == 0
    assert moved.measure("stayers").loc[B, "truth"] == pytest.approx((1000 - 7) / 0.1)
    assert moved.measure("migration_rate").loc[B, "truth"] == pytest.approx(7 / 1000)
    block = moved.metrics()
    assert block["truth_movers"] == pytest.approx(9 / 0.1)
    assert block["truth_migration_rate"] == pytest.approx(9 / 1210)
    # Compared: the released pairs between areas (A to B, B to A, B to C, B to D, D to A).
    assert block["truth_n_pairs"] == 5 and block["truth_n_suppressed"] == 0
    assert block["truth_movers_in_released_pairs"] == pytest.approx(90)


RESIDENTS = {"period": {"start": "2011-03-01", "end": "2011-03-28"}}


@pytest.mark.parametrize(
    ("release", "said"),
    [
        (
            migration_release(algorithm="home_work_flows"),
            "is a release of home_work_flows, not of internal_migration; ask the holder for "
            "`cellcensus store allocate --store STORE --level arrondissement` (once), then "
            "`cellcensus run internal_migration --store STORE --level arrondissement "
            "--param before_start=...",
        ),
        (
            migration_release(parameters={"before_start": "2011-03-01"}),
            "its provenance does not give the periods (before_start, before_end, after_start, "
            "after_end) as dates",
        ),
        (
            migration_release(parameters={**PERIODS, "before_start": "2011-02-20"}),
            "its earlier period, 2011-02-20 to 2011-03-12, is not within the residents' "
            "release's 2011-03-01 to 2011-03-28",
        ),
        (
            migration_release({("2000", "3000"): 40, ("3000", "3000"): 900}),
            "its areas are regions (e.g. 2000, 3000): each mover is expanded with the persons "
            "per device of its origin",
        ),
    ],
    ids=["algorithm", "periods", "before the residents", "regions"],
)
def test_a_release_the_expansion_cannot_use_is_refused_saying_what_to_ask_for(release, said):
    with pytest.raises(CellcensusError) as refused:
        check_migration_release(release, residents=RESIDENTS, source="--migration m.csv")
    assert said in str(refused.value)
    assert str(refused.value).startswith("--migration m.csv")


def test_a_release_without_the_counts_is_refused_naming_its_columns():
    release = migration_release()
    lacking = Release(
        table=release.table.drop(columns="device_count"),
        provenance=release.provenance,
        published=release.published,
    )
    with pytest.raises(CellcensusError, match=r"lacks column\(s\) device_count \(it has origin"):
        check_migration_release(lacking, residents=RESIDENTS)


def test_a_later_period_past_the_residents_is_taken():
    """Only the earlier period must lie in the residents': destinations' factors are unused."""
    later = migration_release(parameters={**PERIODS, "after_end": "2011-04-30"})
    level, periods = check_migration_release(later, residents=RESIDENTS)
    assert level == "municipality"
    assert periods[1][1].isoformat() == "2011-04-30"
