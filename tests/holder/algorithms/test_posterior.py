"""usual_residence with the tile posterior (`spatial_estimator="posterior"`)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from cellcensus.errors import CellcensusError
from cellcensus.holder.algorithms import conformance as suite
from cellcensus.holder.algorithms.posterior import EVIDENCE_POWER

from .conftest import HAND_FOOTPRINT, as_dict, ev, hand_world, with_examples

POSTERIOR = {"spatial_estimator": "posterior"}


def _nights(device: int, cell: str, nights: range) -> list[tuple[object, ...]]:
    return [ev(device, night, 23, cell) for night in nights]


def _hand_world(footprint: dict[str, pd.DataFrame] | None = HAND_FOOTPRINT) -> suite.World:
    rows = [
        *_nights(1, "B", range(4)),
        *_nights(1, "A", range(4, 6)),  # B's side facing A: area 1
        *_nights(2, "B", range(4)),  # nothing else: B's tiles by P(B | t), half each side
        *_nights(3, "D", range(3)),
    ]
    return dataclasses.replace(hand_world(rows), footprint=footprint)


def test_other_night_cells_say_which_side_of_the_home_cell_a_device_sleeps(release):
    world = _hand_world()
    allocated = as_dict(release("usual_residence", world), "area_code")
    assert allocated == pytest.approx({"1": 1.0, "2": 1.0, "3": 1.0})  # B halved: 0.5 + 0.5
    placed = as_dict(release("usual_residence", world, **POSTERIOR), "area_code")
    # Device 1's likelihood on B's tiles: 4^k ln P(B|t) + 2^k ln P(A|t), floored at 1e-3,
    # its nights weighing by the power k.
    b, a = 4**EVIDENCE_POWER, 2**EVIDENCE_POWER
    score = np.array([b * np.log(p_b) + a * np.log(max(p_a, 1e-3)) for p_b, p_a in
                      [(0.3, 0.7), (0.9, 0.1), (0.9, 0.0), (0.3, 0.0)]])  # fmt: skip
    weights = np.exp(score - score.max())
    on_side = weights[:2].sum() / weights.sum()
    assert on_side > 0.99
    assert placed["1"] == pytest.approx(on_side + 0.5, abs=1e-9)
    assert placed["2"] == pytest.approx(1.5 - on_side, abs=1e-9)
    assert placed["3"] == pytest.approx(1.0, abs=1e-12)
    assert sum(placed.values()) == pytest.approx(3.0, abs=1e-9)


def test_the_tiles_of_the_other_sectors_of_most_nights_are_candidates_too(release):
    # Device 5 sleeps 3 nights at C and 3 at D: its home cell is C (ties: the smaller id),
    # which serves tile 3 (area 2) at 0.7 and tile 2 below the 0.2 cut. D serves tile 4
    # (area 3) alone. With C's tiles alone the device would be all in area 2.
    rows = [*_nights(5, "C", range(3)), *_nights(5, "D", range(3, 6))]
    world = dataclasses.replace(hand_world(rows), footprint=HAND_FOOTPRINT)
    placed = as_dict(release("usual_residence", world, **POSTERIOR), "area_code")
    # Scores up to a constant: tile 3, 3^k ln 0.7 (D at its floor); tile 4, 3^k ln 1 (C at
    # its floor), with k the power nights weigh by.
    in_3 = 1 / (1 + np.exp(3**EVIDENCE_POWER * np.log(0.7)))
    assert placed["3"] == pytest.approx(in_3, abs=1e-9)
    assert placed["2"] == pytest.approx(1 - in_3, abs=1e-9)


def test_a_home_cell_outside_the_footprint_keeps_its_allocation_weights(release):
    footprint = dict(HAND_FOOTPRINT)
    footprint["cells"] = HAND_FOOTPRINT["cells"][lambda frame: frame.cell_id != "D"]
    placed = as_dict(release("usual_residence", _hand_world(footprint), **POSTERIOR), "area_code")
    assert placed["3"] == pytest.approx(1.0, abs=1e-12)
    assert sum(placed.values()) == pytest.approx(3.0, abs=1e-9)


def test_without_a_footprint_the_posterior_is_refused_naming_the_command(release):
    with pytest.raises(CellcensusError, match="--tile-footprint"):
        release("usual_residence", _hand_world(footprint=None), **POSTERIOR)


def _only_posterior(algorithm):
    # parameter_sets gives the defaults and the examples: keep the posterior set alone.
    return [values for values in suite.parameter_sets(algorithm) if values == POSTERIOR]


def test_posterior_passes_the_conformance_checks(footprint_world, period_runner):
    algorithm = with_examples("usual_residence", POSTERIOR)
    assert _only_posterior(algorithm) == [POSTERIOR]
    suite.check_schema(algorithm, footprint_world, period_runner)
    suite.check_deterministic(algorithm, footprint_world, period_runner)
    suite.check_contribution_bound(algorithm, footprint_world, period_runner, n_events=50_000)
    suite.check_day_by_day(algorithm, footprint_world, period_runner.con)
    placed = period_runner.run(algorithm, footprint_world, POSTERIOR)
    allocated = period_runner.run(algorithm, footprint_world, {})
    assert placed.device_count.sum() == pytest.approx(allocated.device_count.sum(), abs=1e-9)
    assert not np.allclose(placed.device_count, allocated.device_count)


@pytest.mark.spark
def test_posterior_gives_the_same_result_on_spark(footprint_world, period_runner, spark_runner):
    suite.check_engines_agree(
        with_examples("usual_residence", POSTERIOR),
        footprint_world,
        {"duckdb": period_runner, "spark": spark_runner},
    )
