"""Algorithms use the weights valid on the day of the events they count (versioned network).

Cell C is in area 2 until MOVE - 1 and in area 3 from MOVE (day 3 of the hand-made worlds):
events before count in 2, from then on in 3. Outputs over a whole period use the version
valid on the period's last day.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd
import pytest

from cellcensus.holder.algorithms import conformance as suite
from cellcensus.holder.algorithms import get_algorithm, registered_algorithms
from cellcensus.holder.algorithms.conformance import World

from .conftest import ALLOCATION, D, as_dict, ev, hand_world

MOVE = D + dt.timedelta(days=3)

VERSIONED = pd.concat(
    [
        ALLOCATION[ALLOCATION.cell_id != "C"].assign(valid_from=None, valid_to=None),
        pd.DataFrame(
            {
                "cell_id": ["C", "C"],
                "area_code": ["2", "3"],
                "weight": [1.0, 1.0],
                "valid_from": [None, MOVE],
                "valid_to": [MOVE - dt.timedelta(days=1), None],
            }
        ),
    ],
    ignore_index=True,
)


def _day(number: int) -> dt.date:
    return D + dt.timedelta(days=number)


def test_present_population_counts_a_cell_in_its_area_of_each_day(release):
    world = hand_world([ev(1, day, 12, "C") for day in range(6)], VERSIONED)
    counts = as_dict(
        release("present_population", world, slot_minutes=1440, max_carry_minutes=0),
        "local_date",
        "area_code",
    )
    assert counts == pytest.approx({(_day(day), "2" if day < 3 else "3"): 1.0 for day in range(6)})


def test_present_population_moves_a_carried_device_when_its_cell_changes(release):
    # Seen at C at 22:00 on the eve of MOVE and carried for 12 hours: in area 2 that
    # evening, in area 3 from midnight (device 2 makes MOVE a day with data).
    world = hand_world([ev(1, 2, 22, "C"), ev(2, 3, 12, "A")], VERSIONED)
    counts = as_dict(
        release("present_population", world, max_carry_minutes=720),
        "local_date",
        "slot",
        "area_code",
    )
    assert counts[_day(2), 22, "2"] == pytest.approx(1.0)
    assert counts[_day(2), 23, "2"] == pytest.approx(1.0)
    for hour in range(11):
        assert counts[MOVE, hour, "3"] == pytest.approx(1.0)
    assert not [key for key in counts if key[0] == MOVE and key[2] == "2"]
    assert (MOVE, 11, "3") not in counts


def test_trips_od_places_each_trip_by_the_weights_of_its_day(release):
    rows = []
    for day in (1, 4):
        rows += [ev(1, day, 7, "D"), ev(1, day, 8, "D"), ev(1, day, 9, "C"), ev(1, day, 10, "C")]
    world = hand_world(rows, VERSIONED)
    counts = as_dict(release("trips_od", world), "local_date", "origin", "destination")
    assert counts == pytest.approx({(_day(1), "3", "2"): 1.0, (_day(4), "3", "3"): 1.0})


def test_usual_residence_uses_the_weights_of_the_last_day_of_the_period(release):
    world = hand_world([ev(1, day, 22, "C") for day in range(6)], VERSIONED)
    early = release("usual_residence", world, end=str(_day(2)))
    late = release("usual_residence", world, end=str(_day(5)))
    open_ended = release("usual_residence", world)
    assert as_dict(early, "area_code") == pytest.approx({"2": 1.0})
    assert as_dict(late, "area_code") == pytest.approx({"3": 1.0})
    assert as_dict(open_ended, "area_code") == pytest.approx({"3": 1.0})
    for last, area in ((2, "2"), (5, "3")):
        bayesian = release(
            "usual_residence", world, end=str(_day(last)), spatial_estimator="bayesian"
        )
        found = {key: value for key, value in as_dict(bayesian, "area_code").items() if value}
        assert found == pytest.approx({area: 1.0})


def test_inbound_tourism_places_each_night_by_the_weights_of_its_evening(release):
    roamer = {"mcc": 208}
    world = hand_world(
        [ev(1001, day, 22, "C", **roamer) for day in (1, 4)]
        + [ev(1001, day + 1, 6, "C", **roamer) for day in (1, 4)],
        VERSIONED,
    )
    counts = as_dict(
        release("inbound_tourism", world, impute_nights=False, max_end_nights=0, max_weight=1),
        "area_code",
        "indicator",
    )
    assert counts["2", "nights"] == pytest.approx(1.0)
    assert counts["3", "nights"] == pytest.approx(1.0)


def test_internal_migration_places_each_home_by_its_own_period(release):
    def nights(device, cells):
        return [ev(device, day, 22, cell) for day, cell in zip(range(6), cells, strict=True)]

    world = hand_world(
        nights(1, "CCCCCC")  # stays at C: on the diagonal, by C's later weights
        + nights(2, "AAACCC")  # A -> C after the move: 1 -> 3
        + nights(3, "CCCAAA"),  # C before the move -> A: 2 -> 1
        VERSIONED,
    )
    counts = as_dict(
        release(
            "internal_migration",
            world,
            before_start=str(_day(0)),
            before_end=str(_day(2)),
            after_start=str(_day(3)),
            after_end=str(_day(5)),
            min_nights=2,
            max_visit_nights=3,
        ),
        "origin",
        "destination",
    )
    assert counts == pytest.approx({("3", "3"): 1.0, ("1", "3"): 1.0, ("2", "1"): 1.0})


def _split_versions(allocation: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """The same weights as two versions of every cell, the second from `day`."""
    before = allocation.assign(valid_from=None, valid_to=day - dt.timedelta(days=1))
    after = allocation.assign(valid_from=day, valid_to=None)
    return pd.concat([before, after], ignore_index=True)


def _unchanged_world(world: World) -> World:
    """The conformance world with a version boundary mid-period that changes no weight."""
    return dataclasses.replace(
        world, allocation=_split_versions(world.allocation, suite.START + dt.timedelta(days=5))
    )


@pytest.mark.parametrize("name", sorted(registered_algorithms()))
def test_a_version_boundary_that_changes_no_weight_changes_no_result(
    name, world, duckdb_runner, period_runner
):
    # The plain world over the whole period at once: the conformance suite shows that day
    # by day gives the same, and it costs a fraction to compile.
    algorithm = get_algorithm(name)
    split = _unchanged_world(world)
    for values in suite.parameter_sets(algorithm):
        plain = period_runner.run(algorithm, world, values)
        versioned = duckdb_runner.run(algorithm, split, values)
        keys = list(algorithm.manifest.key_names)
        assert plain[keys].equals(versioned[keys]), (name, values)
        assert versioned.device_count.to_numpy() == pytest.approx(
            plain.device_count.to_numpy(), abs=suite.TOLERANCE
        ), (name, values)


def _moved_world(world: World) -> World:
    """The conformance world where C11 moves from area A2 to A3 and C04 changes split."""
    allocation = world.allocation
    day = suite.START + dt.timedelta(days=7)
    moving = allocation.cell_id.isin(["C11", "C04"])
    later = pd.DataFrame(
        {
            "cell_id": ["C11", "C04", "C04"],
            "area_code": ["A3", "A2", "A3"],
            "weight": [1.0, 0.25, 0.75],
            "valid_from": [day, day, day],
            "valid_to": [None, None, None],
        }
    )
    frame = pd.concat(
        [
            allocation[~moving].assign(valid_from=None, valid_to=None),
            allocation[moving].assign(valid_from=None, valid_to=day - dt.timedelta(days=1)),
            later,
        ],
        ignore_index=True,
    )
    return dataclasses.replace(world, allocation=frame)


def test_the_moved_world_changes_results(world, duckdb_runner):
    algorithm = get_algorithm("present_population")
    plain = duckdb_runner.run(algorithm, world, {})
    moved = duckdb_runner.run(algorithm, _moved_world(world), {})
    assert not plain.equals(moved)
    # Devices are only moved between areas, never created or lost.
    assert moved.device_count.sum() == pytest.approx(plain.device_count.sum())


@pytest.mark.spark
@pytest.mark.parametrize("name", sorted(registered_algorithms()))
def test_spark_agrees_with_duckdb_on_a_versioned_network(name, world, period_runner, spark_runner):
    algorithm = get_algorithm(name)
    first = suite.parameter_sets(algorithm)[:1]
    algorithm = dataclasses.replace(
        algorithm,
        manifest=dataclasses.replace(
            algorithm.manifest, examples=() if first == [{}] else tuple(first)
        ),
    )
    suite.check_engines_agree(
        algorithm, _moved_world(world), {"duckdb": period_runner, "spark": spark_runner}
    )
