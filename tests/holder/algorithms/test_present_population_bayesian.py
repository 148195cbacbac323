"""present_population with the Bayesian estimator over the tile footprint (Ricciato & Coluccia)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from cellcensus.errors import CellcensusError
from cellcensus.holder.algorithms import conformance as suite
from cellcensus.holder.algorithms.spatial import (
    AreaFootprint,
    tile_bayesian_counts,
    tile_posterior_weights,
)

from .conftest import HAND_FOOTPRINT, as_dict, ev, hand_world, with_examples

BAYESIAN = {"spatial_estimator": "bayesian"}
ONE_SLOT = {**BAYESIAN, "max_carry_minutes": 0, "max_backfill_minutes": 0}


def _footprint(log_prior: list[float]) -> dict[str, pd.DataFrame]:
    footprint = dict(HAND_FOOTPRINT)
    footprint["tiles"] = HAND_FOOTPRINT["tiles"].assign(log_prior=log_prior)
    return footprint


def test_one_update_is_each_devices_posterior_over_the_tiles_under_the_prior(release):
    # Tile 1 (area 1) is three times as dense as the others: a device at cell B (sector 1)
    # is on tile t with probability prior(t) P(B | t) / sum over tiles.
    log_prior = [0.0, np.log(3.0), 0.0, 0.0, 0.0]
    world = dataclasses.replace(hand_world([ev(1, 0, 10, "B")]), footprint=_footprint(log_prior))
    placed = as_dict(release("present_population", world, **ONE_SLOT), "area_code")
    tiles = HAND_FOOTPRINT["tiles"].assign(prior=np.exp(log_prior))
    serving = HAND_FOOTPRINT["serving"].merge(tiles, on="tile")
    on_b = serving[serving.sector == 1]
    posterior = (on_b.prior * on_b.probability).groupby(on_b.area_code).sum()
    posterior /= posterior.sum()
    assert placed == pytest.approx(posterior.to_dict(), abs=1e-12)
    assert placed["1"] == pytest.approx(3.0 / 4.2)  # by hand: (0.3 + 3 x 0.9) / 4.2
    allocated = as_dict(release("present_population", hand_world([ev(1, 0, 10, "B")])), "area_code")
    assert allocated == {"1": 0.5, "2": 0.5}  # the allocation halves B whatever the density


def random_world() -> tuple[AreaFootprint, pd.DataFrame, np.ndarray]:
    """30 areas, 60 sectors, serving probabilities at random, a flat prior; the counts per
    cell expected of a known density (slot 0), and that density."""
    rng = np.random.default_rng(5)
    n_areas, n_sectors = 30, 60
    mass = rng.uniform(size=(n_sectors, n_areas)) * (rng.uniform(size=(n_sectors, n_areas)) < 0.2)
    mass[rng.integers(n_sectors, size=n_areas), np.arange(n_areas)] += 1.0  # every area served
    serving = mass / mass.sum(axis=0, keepdims=True)
    truth = rng.lognormal(4, 1, n_areas)
    counts = serving @ truth
    footprint = AreaFootprint(
        sectors=pd.Series(np.arange(n_sectors), index=[f"c{i}" for i in range(n_sectors)]),
        serving=sparse.csr_array(serving),
        sector_ids=np.arange(n_sectors),
        areas=np.array([f"a{i:02d}" for i in range(n_areas)]),
        prior=np.ones(n_areas),
    )
    cell_counts = pd.DataFrame(
        {"slot": 0, "cell_id": footprint.sectors.index, "device_count": counts}
    )
    return footprint, cell_counts, truth


def test_updates_fit_a_wrong_prior_to_the_counts():
    # The flat prior is wrong; the updates move it towards the truth.
    footprint, cell_counts, truth = random_world()
    counts = cell_counts.device_count.to_numpy()

    def error(iterations: int) -> float:
        placed, unknown = tile_bayesian_counts(
            cell_counts=cell_counts, footprint=footprint, by=["slot"], iterations=iterations
        )
        assert unknown.empty
        assert placed.device_count.sum() == pytest.approx(counts.sum())
        return float(np.abs(placed.device_count.to_numpy() - truth).sum() / truth.sum())

    assert error(100) < 0.5 * error(1)
    assert error(100) < 0.15


@pytest.mark.parametrize("iterations", [1, 5])
def test_posterior_weights_place_the_counts_as_the_updates_do(iterations):
    # inbound_tourism places its indicators by the weights fitted to its nights.
    footprint, cell_counts, _ = random_world()
    weights = tile_posterior_weights(
        cell_counts=cell_counts, footprint=footprint, iterations=iterations
    )
    assert weights.groupby("cell_id").weight.sum().to_numpy() == pytest.approx(1.0)
    placed = cell_counts.merge(weights, on="cell_id")
    per_area = (placed.device_count * placed.weight).groupby(placed.area_code).sum()
    updated, _ = tile_bayesian_counts(
        cell_counts=cell_counts, footprint=footprint, by=["slot"], iterations=iterations
    )
    expected = updated.set_index("area_code").device_count
    assert per_area.reindex(expected.index).to_numpy() == pytest.approx(expected.to_numpy())


def test_posterior_weights_read_a_negative_count_as_none_and_skip_cells_fitted_to_nothing():
    # Area 1 is served by sector 1 alone, where noise left a negative count: read as 0, area
    # 1 fits to no density after one update, and sector 1 has no posterior to give (its cell
    # falls back to the allocation in `inbound_tourism.finish`). Area 0 has sectors 0 and 2.
    footprint = AreaFootprint(
        sectors=pd.Series([0, 1, 2], index=["c0", "c1", "c2"]),
        serving=sparse.csr_array(np.array([[0.5, 0.0], [0.0, 1.0], [0.5, 0.0]])),
        sector_ids=np.arange(3),
        areas=np.array(["a0", "a1"]),
        prior=np.ones(2),
    )
    counts = pd.DataFrame({"cell_id": ["c0", "c1", "c2"], "device_count": [4.0, -3.0, 2.0]})
    weights = tile_posterior_weights(cell_counts=counts, footprint=footprint, iterations=2)
    zero = counts.assign(device_count=counts.device_count.clip(lower=0.0))
    same = tile_posterior_weights(cell_counts=zero, footprint=footprint, iterations=2)
    pd.testing.assert_frame_equal(weights, same)
    assert set(weights.cell_id) == {"c0", "c2"}
    assert weights.set_index("cell_id").loc[["c0", "c2"], "area_code"].tolist() == ["a0", "a0"]
    assert weights.weight.to_numpy() == pytest.approx(1.0)


def test_a_cell_outside_the_footprint_keeps_its_allocation_weights(release):
    footprint = dict(HAND_FOOTPRINT)
    footprint["cells"] = HAND_FOOTPRINT["cells"][lambda frame: frame.cell_id != "D"]
    rows = [ev(1, 0, 10, "D"), ev(2, 0, 10, "A")]
    world = dataclasses.replace(hand_world(rows), footprint=footprint)
    placed = as_dict(release("present_population", world, **ONE_SLOT), "area_code")
    assert placed["3"] == pytest.approx(1.0, abs=1e-12)
    assert sum(placed.values()) == pytest.approx(2.0, abs=1e-12)


def test_without_a_footprint_the_bayesian_estimator_is_refused_naming_the_command(release):
    with pytest.raises(CellcensusError, match="--tile-footprint"):
        release("present_population", hand_world([ev(1, 0, 10, "B")]), **BAYESIAN)


def test_bayesian_passes_the_conformance_checks_and_keeps_each_slots_total(
    footprint_world, period_runner
):
    algorithm = with_examples("present_population", BAYESIAN)
    suite.check_schema(algorithm, footprint_world, period_runner)
    suite.check_deterministic(algorithm, footprint_world, period_runner)
    suite.check_day_by_day(algorithm, footprint_world, period_runner.con)
    keys = ["local_date", "slot"]
    placed = period_runner.run(algorithm, footprint_world, BAYESIAN).groupby(keys).device_count
    allocated = period_runner.run(algorithm, footprint_world, {}).groupby(keys).device_count
    pd.testing.assert_series_equal(placed.sum(), allocated.sum(), atol=1e-9)


def test_bayesian_respects_the_bound_where_the_noise_goes(footprint_world, period_runner):
    # The enclave noises the counts per cell and slot, which the expression returns before
    # `finish`: the bound holds there.
    algorithm = with_examples("present_population", BAYESIAN)
    suite.check_contribution_bound(algorithm, footprint_world, period_runner, n_events=20_000)


@pytest.mark.spark
def test_bayesian_gives_the_same_result_on_spark(footprint_world, period_runner, spark_runner):
    suite.check_engines_agree(
        with_examples("present_population", BAYESIAN),
        footprint_world,
        {"duckdb": period_runner, "spark": spark_runner},
    )
