import dataclasses

import pytest

from cellcensus.holder.algorithms.conformance import M2M_TAC
from cellcensus.holder.algorithms.device_filter import (
    DeviceFilterAlgorithmParameters,
    MultiSimParameters,
    Scope,
    multi_sim_hints,
)

from .conftest import as_dict, ev, hand_world

WORLD = hand_world(
    [
        # 1: a phone on three days at two cells: kept.
        *(ev(1, d, 22, cell) for d in range(3) for cell in ("A", "C")),
        # 2: a listed M2M module, even though it "calls".
        *(ev(2, d, 12, "A", tac=M2M_TAC) for d in range(3)),
        # 3: data only, one cell, five days: a meter.
        *(ev(3, d, h, "C", kind="data") for d in range(5) for h in (0, 6, 12, 18)),
        # 4: data only but at two cells.
        *(ev(4, d, 12, cell, kind="data") for d in range(3) for cell in ("A", "D")),
        # 5: one call on one day.
        ev(5, 2, 12, "D"),
        # 6: an inbound roamer.
        *(ev(6, d, 22, "D", mcc=234) for d in range(3)),
    ]
)


def test_each_device_is_counted_under_its_first_reason(release):
    counts = as_dict(
        release(
            "device_filter",
            WORLD,
            subscribers="domestic",
            filters={"m2m_tacs": [M2M_TAC], "min_days": 2},
        ),
        "reason",
    )
    assert counts == {"m2m_tac": 1, "m2m_behaviour": 1, "seen_too_little": 1, "kept": 2}


def test_filters_are_parameters(release):
    counts = as_dict(
        release(
            "device_filter",
            WORLD,
            subscribers="all",
            filters={"m2m_behaviour": False, "min_events": 4},
        ),
        "reason",
    )
    # No TAC list, no behaviour rule: only the devices with fewer than 4 events go (2, 5, 6).
    assert counts == {"seen_too_little": 3, "kept": 3}
    wider = as_dict(release("device_filter", WORLD, filters={"m2m_max_cells": 2}), "reason")
    assert wider == {"m2m_behaviour": 2, "kept": 4}


def test_scope_by_home_network(release):
    inbound = as_dict(release("device_filter", WORLD, subscribers="inbound"), "reason")
    assert inbound == {"kept": 1}
    other_home = as_dict(
        release("device_filter", WORLD, subscribers="domestic", filters={"home_mcc": 234}),
        "reason",
    )
    assert other_home == {"kept": 1}


def test_algorithms_leave_filtered_devices_out(release):
    # Only the phone (1) and the meter (3) are seen at night; the roamer (6) is not resident.
    # The phone's nights tie between A and C: A, area 1.
    homes = release("usual_residence", WORLD, min_nights=1)
    assert as_dict(homes, "area_code") == pytest.approx({"1": 1.0})
    unfiltered = release("usual_residence", WORLD, min_nights=1, filters={"m2m_behaviour": False})
    assert as_dict(unfiltered, "area_code") == pytest.approx({"1": 1.0, "2": 1.0})


@pytest.mark.parametrize("summarised", [False, True])
@pytest.mark.parametrize(
    ("subscribers", "filters"),
    [
        ("all", {}),
        ("domestic", {"m2m_tacs": [M2M_TAC], "min_days": 2}),
        ("all", {"m2m_max_cells": 2, "min_days": 3}),
        ("domestic", {"m2m_behaviour": False, "min_events": 4}),
    ],
)
def test_keep_leaves_the_rows_of_the_kept_devices_and_no_other(
    duckdb_runner, summarised, subscribers, filters
):
    # `keep` drops the devices with another reason than "kept" (an anti join): the rows it
    # leaves of the scope's events are exactly those of the devices the filter keeps.
    params = DeviceFilterAlgorithmParameters(subscribers=subscribers, filters=filters)
    world = dataclasses.replace(WORLD, summarised=summarised)
    scope = Scope(world.tables(), params, params.subscribers, params.filters)
    reasons = duckdb_runner.con.to_pandas(scope.reasons)
    kept = set(reasons.device_id[reasons.reason == "kept"])
    events = scope.events("device_id", "timestamp", "cell_id")
    every = duckdb_runner.con.to_pandas(events)
    left = duckdb_runner.con.to_pandas(scope.keep(events))
    assert set(reasons.device_id) == set(every.device_id)  # a reason for every device in scope
    assert 0 < len(kept) < len(set(every.device_id))  # some kept, some dropped
    expected = every[every.device_id.isin(kept)]
    key = ["device_id", "timestamp", "cell_id"]
    assert (
        left.sort_values(key)
        .reset_index(drop=True)
        .equals(expected.sort_values(key).reset_index(drop=True))
    )


TWO_SIMS = hand_world(
    [
        # 7 and 8: one person's two SIMs, together at three sites (S1, S2, S3); 8 is quieter.
        *(ev(7, d, h, cell) for d in range(2) for h, cell in ((8, "A"), (12, "C"), (18, "D"))),
        *(ev(8, 0, h, cell) for h, cell in ((8, "B"), (12, "C"), (18, "D"))),
        # 9 sleeps where 7 sleeps (site S1) but spends the day elsewhere: a housemate.
        *(ev(9, d, h, cell) for d in range(2) for h, cell in ((8, "A"), (12, "D"), (18, "C"))),
    ]
)  # fmt: skip


def hinted(runner, world, **values):
    params = DeviceFilterAlgorithmParameters()
    scope = Scope(world.tables(), params, params.subscribers, params.filters)
    hints = multi_sim_hints(scope, MultiSimParameters(**values))
    return set(runner.con.to_pandas(hints)["device_id"])


def test_second_sims_are_hinted_and_still_kept(duckdb_runner, release):
    assert hinted(duckdb_runner, TWO_SIMS) == {8}
    assert as_dict(release("device_filter", TWO_SIMS), "reason") == {"kept": 3}
    # 9 shares a site with 7 in 2 of their 6 hours together: a hint only when asked for.
    assert hinted(duckdb_runner, TWO_SIMS, agreement=0.3, min_sites=1) == {8, 9}
