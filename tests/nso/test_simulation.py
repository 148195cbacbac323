from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from cellcensus.errors import CellcensusError
from cellcensus.nso.simulation import (
    SimulatedDisclosure,
    SimulatedRelease,
    SimulationBiases,
    simulate_release,
)
from cellcensus.reference import belgium


def test_a_simulated_release_looks_like_the_enclaves(unbiased: SimulatedRelease) -> None:
    release = unbiased.release

    assert list(release.table.columns) == ["area_code", "device_count"]
    assert len(release.table) == 589
    assert release.n_suppressed == 1  # Herstappe: 85 residents
    assert (release.table["device_count"].dropna() % 5 == 0).all()
    assert set(release.published) == {
        "market_share",
        "sampling_fraction",
        "period",
        "subscribers_by_region",
        "synthetic",
    }
    assert release.published["synthetic"] is True
    assert set(release.published["subscribers_by_region"]) == {"2000", "3000", "4000"}
    assert release.provenance.policy["dp"] == {
        "epsilon": 0.5,
        "delta": 0.0,
        "mechanism": "laplace",
    }
    # Dated when it was made, as the enclave dates its releases, not in the simulated 2011.
    made = datetime.fromisoformat(release.provenance.created_at)
    assert made.tzinfo is not None and datetime.now(UTC) - made < timedelta(hours=1)


def test_truth_is_the_census_and_devices_follow_the_market_share(
    unbiased: SimulatedRelease,
) -> None:
    census = belgium.census_population().set_index("area_code")["population"]

    assert unbiased.truth.sum() == census.sum()
    subscribers = sum(unbiased.release.published["subscribers_by_region"].values())
    assert subscribers == pytest.approx(0.4 * 0.1 * census.sum(), rel=0.01)
    # No biases: devices are the subscribers, moved between municipalities at most.
    assert unbiased.devices.sum() == subscribers


def test_biases_move_the_device_counts_the_way_they_say() -> None:
    plain = simulate_release(seed=2)
    second = simulate_release(seed=2, biases=SimulationBiases(secondary_sim_rate=0.1))
    regional = simulate_release(seed=2, biases=SimulationBiases(regional_share={"3000": 0.5}))

    assert second.devices.sum() / plain.devices.sum() == pytest.approx(1.1, rel=0.01)
    wallonia = belgium.municipalities().set_index("area_code")["region"] == "3000"
    per_person = regional.devices / regional.truth
    assert per_person[wallonia].mean() < 0.6 * per_person[~wallonia].mean()


def test_the_same_seed_gives_the_same_release() -> None:
    first = simulate_release(seed=9, disclosure=SimulatedDisclosure(noise_column=True))
    again = simulate_release(seed=9, disclosure=SimulatedDisclosure(noise_column=True))

    assert first.release.table.equals(again.release.table)
    assert np.allclose(first.release.table["noise_sd"], np.sqrt(2) / 0.5)


def test_impossible_subscription_probabilities_are_refused() -> None:
    with pytest.raises(CellcensusError, match="probability"):
        simulate_release(market_share=0.9, biases=SimulationBiases(regional_share={"2000": 1.5}))
