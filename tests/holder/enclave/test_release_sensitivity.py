"""The epsilon of a release is the privacy loss of the whole release, not of one of its slots.

`present_population` declares its contribution bound per (local date, slot) and `trips_od`
per local date: over a release of U such units one device can add the bound to every one of
them, so the noise must be calibrated to U times the bound (L1; sqrt(U) times for L2). With
the per-unit bound alone, the published epsilon would understate the loss U times.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import opendp.prelude as dp
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from tiny_store import build_store  # type: ignore[import-not-found]

from cellcensus.errors import CellcensusError
from cellcensus.holder.algorithms.registry import get_algorithm
from cellcensus.holder.disclosure import DEFAULT_POLICIES, Charge, DisclosurePolicy, protect
from cellcensus.holder.disclosure.hierarchy import layout
from cellcensus.holder.disclosure.noise import _scale, noisy_counts, release_sensitivity
from cellcensus.holder.disclosure.policy import DifferentialPrivacy
from cellcensus.holder.enclave import Enclave
from cellcensus.holder.enclave.compute import open_tables, privacy_units
from cellcensus.holder.store import Store
from cellcensus.holder.store.key_record import RECORD_NAME, KeyPeriod, write_key_record
from cellcensus.release import CI95_PER_SD

DAYS = 7  # the tiny store: 7 days of March 2011, municipalities 11001, 11002, 21004
LN20 = math.log(20.0)  # Laplace: ci95 = scale * ln 20


def assert_ci95(table: pd.DataFrame, expected: float) -> None:
    """Every cell's published ci95 is `expected` (rounded to 0.01 as released)."""
    values = table["ci95"].astype(float).to_numpy()
    assert len(values) and np.allclose(values, expected, atol=0.011), (set(values), expected)


@pytest.fixture
def enclave(store, tmp_path):
    """A steward's Laplace policy for every algorithm: its scale is U L / epsilon exactly."""
    laplace = DisclosurePolicy(dp=DifferentialPrivacy())
    return Enclave(store=store, state_url=f"sqlite:///{tmp_path / 'e.db'}", policy=laplace)


def test_the_default_many_unit_release_is_gaussian_and_grows_with_the_root_of_the_units(
    store, tmp_path
):
    enclave = Enclave(store=store, state_url=f"sqlite:///{tmp_path / 'd.db'}")
    hourly = enclave.run(
        algorithm="present_population",
        parameters={"slot_minutes": 60, "start": "2011-03-08", "end": "2011-03-09"},
        analyst="a",
    )
    policy = DEFAULT_POLICIES["present_population"].dp
    assert policy is not None and hourly.provenance.policy["dp"]["mechanism"] == "gaussian"
    cells = layout(leaves=[f"k{index:03d}" for index in range(3)], leaf_level="key")
    one_unit = noisy_counts(
        leaves=np.full(3, 50.0), layout=cells, dp_policy=policy, contribution_bound=1.0
    )
    # 48 units: sqrt(48) times the noise of one, where Laplace would take 48 times.
    assert_ci95(hourly.table, round(float(one_unit.ci95[0]) * math.sqrt(48), 2))


def test_present_population_noise_covers_every_date_and_slot(enclave):
    # Daily slots over the 7 days: U = 7 units of bound 1.
    daily = enclave.run(
        algorithm="present_population", parameters={"slot_minutes": 1440}, analyst="a"
    )
    epsilon = daily.provenance.policy["dp"]["epsilon"]
    assert daily.provenance.policy["dp"]["mechanism"] == "laplace"
    assert len(daily.table) == DAYS * 1 * 3
    # Laplace scale U * L / epsilon (7 / 0.4 = 17.5 devices), not L / epsilon (2.5).
    expected = round(DAYS * 1.0 / epsilon * LN20, 2)
    assert_ci95(daily.table, expected)
    # Hourly slots over two days: U = 2 x 24 = 48 units.
    hourly = enclave.run(
        algorithm="present_population",
        parameters={"slot_minutes": 60, "start": "2011-03-08", "end": "2011-03-09"},
        analyst="a",
    )
    assert len(hourly.table) == 2 * 24 * 3
    expected = round(48 * 1.0 / epsilon * LN20, 2)
    assert_ci95(hourly.table, expected)


def test_trips_od_noise_covers_every_day_at_the_parameters_bound(enclave):
    release = enclave.run(algorithm="trips_od", parameters={"max_trips_per_day": 2}, analyst="a")
    epsilon = release.provenance.policy["dp"]["epsilon"]
    assert len(release.table) == DAYS * 3 * 3
    # 2 trips per device and day, over 7 days: sensitivity 14.
    expected = round(DAYS * 2.0 / epsilon * LN20, 2)
    assert_ci95(release.table, expected)


def test_inbound_tourism_noise_is_calibrated_to_the_nights_its_period_spans(enclave):
    # A roamer adds at most n devices, 2 n weighted arrivals and 2 (n + 4) weighted nights
    # (max_weight 2, max_end_nights 2), n its nights: at most max_nights (92), and at most
    # the nights the period spans, its days' evenings and the one before its first day.
    def ci95(release, nights):
        epsilon = release.provenance.policy["dp"]["epsilon"]
        return round((nights + 2 * (2 * nights + 4)) / epsilon * LN20, 2)

    week = enclave.run(algorithm="inbound_tourism", parameters={}, analyst="a")
    assert_ci95(week.table, ci95(week, DAYS + 1))  # 48 where 92 nights gave 468
    days = {"start": "2011-03-08", "end": "2011-03-10"}
    three = enclave.run(algorithm="inbound_tourism", parameters=days, analyst="a")
    assert_ci95(three.table, ci95(three, 4))
    capped = enclave.run(
        algorithm="inbound_tourism", parameters={**days, "max_nights": 2}, analyst="a"
    )
    assert_ci95(capped.table, ci95(capped, 2))


def test_a_whole_release_bound_is_noised_once(enclave):
    # usual_residence's bound is for the whole release (no unit keys): U = 1.
    release = enclave.run(algorithm="usual_residence", parameters={"min_nights": 2}, analyst="a")
    epsilon = release.provenance.policy["dp"]["epsilon"]
    assert_ci95(release.table, round(LN20 / epsilon, 2))


def test_opendp_certifies_the_policy_epsilon_for_a_device_in_every_unit():
    units, bound, epsilon = 48, 1.0, 0.4
    cells = layout(leaves=[f"k{index:03d}" for index in range(units * 3)], leaf_level="key")
    noisy = noisy_counts(
        leaves=np.full(units * 3, 50.0),
        layout=cells,
        dp_policy=DifferentialPrivacy(epsilon=epsilon),
        contribution_bound=bound,
        units=units,
    )
    assert noisy.scale == pytest.approx(units * bound / epsilon, rel=1e-6)
    # An independent OpenDP Laplace measurement of that scale, at the distance between two
    # releases that differ by one device present in all 48 slots: the loss is epsilon.
    dp.enable_features("contrib")
    domain = dp.vector_domain(dp.atom_domain(T=float, nan=False), size=units * 3)
    laplace = dp.m.make_laplace(domain, dp.l1_distance(T=float), scale=noisy.scale, k=-40)
    assert laplace.map(units * bound) <= epsilon * (1 + 1e-9)
    # ... and 48 times the policy's epsilon at the per-slot scale the enclave used before.
    before = dp.m.make_laplace(domain, dp.l1_distance(T=float), scale=bound / epsilon, k=-40)
    assert before.map(units * bound) == pytest.approx(units * epsilon, rel=1e-6)


def test_gaussian_release_scales_with_the_square_root_of_the_units():
    gaussian = DifferentialPrivacy(epsilon=0.4, delta=1e-7, mechanism="gaussian")
    assert release_sensitivity(
        contribution_bound=2.0, units=16, mechanism="gaussian"
    ) == pytest.approx(8.0)
    assert release_sensitivity(contribution_bound=2.0, units=16, mechanism="laplace") == 32.0
    cells = layout(leaves=[f"k{index:02d}" for index in range(32)], leaf_level="key")
    leaves = np.full(32, 50.0)
    spread = noisy_counts(
        leaves=leaves, layout=cells, dp_policy=gaussian, contribution_bound=2.0, units=16
    )
    once = noisy_counts(leaves=leaves, layout=cells, dp_policy=gaussian, contribution_bound=8.0)
    assert spread.scale == pytest.approx(once.scale, rel=1e-9)
    assert spread.epsilon <= 0.4 * (1 + 1e-9) and spread.delta <= 1e-7


def test_privacy_units_are_the_product_of_the_unit_keys_domains():
    manifest = get_algorithm("present_population").manifest
    domains = {"local_date": list(range(14)), "slot": list(range(24)), "area_code": ["a", "b"]}
    assert privacy_units(manifest.unit_keys, domains) == 14 * 24
    assert privacy_units(get_algorithm("trips_od").manifest.unit_keys, domains) == 14
    assert privacy_units((), domains) == 1
    with pytest.raises(CellcensusError, match="unit keys"):
        privacy_units(("hour",), domains)


def test_protect_refuses_a_malformed_unit_count():
    raw = pd.DataFrame({"area_code": ["a"], "device_count": [30.0]})
    policy = DisclosurePolicy(dp=DifferentialPrivacy())
    with pytest.raises(CellcensusError, match="units"):
        protect(
            raw,
            keys=["a", "b"],
            policy=policy,
            contribution_bound=1.0,
            units=0,
            charge=Charge(
                job_id="j",
                analyst="a",
                project="p",
                epsilon=policy.epsilon,
                delta=0.0,
                charged_at=dt.datetime.now(dt.UTC),
            ),
        )


def test_a_key_rotation_in_the_period_counts_each_device_once_per_key(tmp_path):
    # From the rotation on, every device has another pseudonym: over the whole week each one
    # is two devices of the release, and the noise must cover both.
    store = build_store(tmp_path / "store")
    rotation = dt.date(2011, 3, 10)
    for day in range(10, 14):
        path = store / "events" / f"date=2011-03-{day}" / "part-0.parquet"
        events = pq.read_table(path)
        renamed = pc.add(events["device_id"], 1)  # new pseudonyms, as a new key makes
        pq.write_table(events.set_column(0, "device_id", renamed), path)
    write_key_record(
        [KeyPeriod(None, "0" * 16), KeyPeriod(rotation, "1" * 16)], path=store / RECORD_NAME
    )
    laplace = DisclosurePolicy(dp=DifferentialPrivacy())
    enclave = Enclave(store=store, state_url=f"sqlite:///{tmp_path / 'e.db'}", policy=laplace)
    week = enclave.run(algorithm="usual_residence", parameters={}, analyst="a")
    one_key = enclave.run(
        algorithm="usual_residence",
        parameters={"start": rotation.isoformat(), "end": "2011-03-13"},
        analyst="a",
    )
    one_device = 1.0 / 0.4 * LN20  # Laplace ci95 of one device's bound at epsilon 0.4
    # 80 devices an area, each twice: 480 over the three areas (240 if counted once), with
    # Laplace noise of scale 5 on each (a chance failure below once in a billion runs).
    assert week.table["device_count"].astype(float).sum() > 360
    assert week.provenance.privacy_units == 2
    assert_ci95(week.table, round(2 * one_device, 2))
    assert one_key.provenance.privacy_units == 1
    assert_ci95(one_key.table, round(one_device, 2))


ROTATION = dt.date(2011, 3, 10)
NEW_KEY = 10**12  # added to every pseudonym from the rotation on: a new key's pseudonyms


def rotated_store(root, *, without: int | None = None):
    """The tiny store with a key rotation on `ROTATION`, optionally without one device.

    `without` is the device's pseudonym under the first key; under the new key it has
    another one, as `cellcensus store rotate-key` makes it.
    """
    store = build_store(root)
    for path in sorted((store / "events").glob("date=*/part-0.parquet")):
        events = pq.read_table(path)
        day = dt.date.fromisoformat(path.parent.name.removeprefix("date="))
        if without is not None:
            events = events.filter(pc.not_equal(events["device_id"], without))
        if day >= ROTATION:
            renamed = pc.add(events["device_id"], NEW_KEY)
            events = events.set_column(0, "device_id", renamed)
        pq.write_table(events, path)
    write_key_record(
        [KeyPeriod(None, "0" * 16), KeyPeriod(ROTATION, "1" * 16)], path=store / RECORD_NAME
    )
    return store


def exact_counts(store, algorithm, parameters):
    """The algorithm's exact output on `store`, by its key columns."""
    found = get_algorithm(algorithm)
    names = [key.name for key in found.manifest.keys]
    raw = found.run(open_tables(Store(store)), parameters)
    return raw.set_index(names)["device_count"].astype(float)


@pytest.mark.parametrize(
    ("algorithm", "parameters", "policy"),
    [
        # The default Gaussian policy; a device's position is carried across midnight, so
        # on the slots around the rotation both of its pseudonyms are present.
        (
            "present_population",
            {"slot_minutes": 60, "start": "2011-03-09", "end": "2011-03-10"},
            None,
        ),
        # A steward's Gaussian policy for a bound over the period: both pseudonyms of a
        # device have the same home, so they add 2 to one cell (L2 2, not sqrt 2).
        (
            "usual_residence",
            {},
            DisclosurePolicy(dp=DifferentialPrivacy(epsilon=0.4, delta=1e-6, mechanism="gaussian")),
        ),
    ],
)
def test_noise_covers_one_device_across_a_key_rotation(tmp_path, algorithm, parameters, policy):
    # The attack a key rotation opens: one person is two pseudonyms of the release. Measure
    # what removing that person (both pseudonyms) changes in the exact output, and check that
    # the noise released is calibrated to at least that change.
    target = 1_000_000  # the tiny store's first device
    full = exact_counts(rotated_store(tmp_path / "full"), algorithm, parameters)
    less = exact_counts(rotated_store(tmp_path / "less", without=target), algorithm, parameters)
    change = full.sub(less, fill_value=0.0).to_numpy()
    l2 = float(np.sqrt(np.sum(change**2)))
    enclave = Enclave(
        store=rotated_store(tmp_path / "released"),
        state_url=f"sqlite:///{tmp_path / 'e.db'}",
        policy=policy,
    )
    release = enclave.run(algorithm=algorithm, parameters=parameters, analyst="a")
    dp_policy = DisclosurePolicy.from_dict(release.provenance.policy).dp
    assert dp_policy is not None and dp_policy.mechanism == "gaussian"
    sigma = float(release.table["ci95"].astype(float).min()) / CI95_PER_SD["gaussian"]
    # The smallest sigma at which OpenDP certifies the policy for that change.
    needed = _scale(
        size=len(release.table),
        d_in=l2,
        mechanism="gaussian",
        epsilon=dp_policy.epsilon,
        delta=dp_policy.delta,
    )
    assert sigma >= needed * (1 - 1e-3), (algorithm, l2, sigma, needed)


def test_the_noise_a_rotated_release_declares_by_its_policy_is_the_noise_it_carries(tmp_path):
    # A release's table without its noise column (a CSV kept without it): the statistician
    # derives the noise from the provenance's policy, units and the manifest's bound, and
    # must find the sigma the holder drew, Gaussian noise over a key rotation included.
    from dataclasses import replace

    from cellcensus.nso.uncertainty import declared_noise

    enclave = Enclave(
        store=rotated_store(tmp_path / "store"), state_url=f"sqlite:///{tmp_path / 'e.db'}"
    )
    release = enclave.run(
        algorithm="present_population",
        parameters={"slot_minutes": 60, "start": "2011-03-09", "end": "2011-03-10"},
        analyst="a",
    )
    sigma = float(release.table["ci95"].astype(float).min()) / CI95_PER_SD["gaussian"]
    bare = replace(release, table=release.table.drop(columns="ci95"))

    declared = declared_noise(release=bare, contribution_bound=1.0)

    assert float(declared.variance.iloc[0]) ** 0.5 == pytest.approx(sigma, rel=1e-2)
