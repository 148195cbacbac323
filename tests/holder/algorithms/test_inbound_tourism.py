import dataclasses
import datetime as dt
import math
from typing import Any

import pandas as pd
import pytest

from cellcensus.errors import CellcensusError
from cellcensus.holder.algorithms import conformance as suite
from cellcensus.holder.algorithms.base import COUNT
from cellcensus.holder.algorithms.inbound_tourism import place_unseen

from .conftest import HAND_FOOTPRINT, D, as_dict, ev, hand_world, with_examples

# Only what the events show: no night across silent days, no expected or weighted nights.
COUNTED = {"max_silent_days": 0, "max_end_nights": 0, "max_weight": 1}

WORLD_EVENTS = [
    # 1 (France): nights 0 and 1 at A, away on night 2, night 3 at C: two arrivals. Night 1
    # is not seen ended (no event on day 2): counted only where silent days are bridged.
    ev(1, 0, 22, "A", mcc=208), ev(1, 1, 6, "A", mcc=208), ev(1, 1, 23, "A", mcc=208),
    ev(1, 3, 23, "C", mcc=208), ev(1, 3, 14, "D", mcc=208),
    # 2 (UK): night 0 mostly at B (split between areas 1 and 2), once at A; seen the next
    # morning.
    ev(2, 0, 22, "B", mcc=234), ev(2, 0, 23, "B", mcc=234), ev(2, 1, 2, "A", mcc=234),
    ev(2, 1, 9, "D", mcc=234),
    # 3 (UK): a day tripper, never seen at night.
    ev(3, 2, 14, "D", mcc=234),
    # 4: the holder's own subscriber.
    *(ev(4, d, 22, "D") for d in range(4)),
]  # fmt: skip
WORLD = hand_world(WORLD_EVENTS)


def indicators(frame):
    return {
        indicator: as_dict(group, "area_code") for indicator, group in frame.groupby("indicator")
    }


def test_devices_nights_and_arrivals_per_area(release):
    got = indicators(release("inbound_tourism", WORLD, **COUNTED))
    assert got["nights"] == pytest.approx({"1": 1.5, "2": 1.5})
    assert got["devices"] == pytest.approx({"1": 1.5, "2": 1.5})
    assert got["arrivals"] == pytest.approx({"1": 1.5, "2": 1.5})


def test_countries_and_night_cap(release):
    french = indicators(release("inbound_tourism", WORLD, countries=[208], **COUNTED))
    assert french["nights"] == pytest.approx({"1": 1.0, "2": 1.0})
    capped = indicators(release("inbound_tourism", WORLD, max_nights=1, **COUNTED))
    assert capped["nights"] == pytest.approx({"1": 1.5, "2": 0.5})
    assert capped["arrivals"] == pytest.approx({"1": 1.5, "2": 0.5})


def test_a_night_counts_only_if_the_roamer_is_seen_after_its_functional_midnight(release):
    # 5 (UK) leaves after 02:00: a same-day visitor, no night. 1's night 3 is the data's last
    # night (its morning lies outside the data), so it counts; in a longer period it does not.
    late = hand_world([*WORLD_EVENTS, *LATE_EVENTS])
    got = indicators(release("inbound_tourism", late, **COUNTED))
    assert got["nights"] == pytest.approx({"1": 1.5, "2": 1.5})  # as without 5
    at_two = indicators(release("inbound_tourism", late, **COUNTED, functional_midnight_hour=2))
    assert at_two["nights"] == pytest.approx({"1": 2.5, "2": 1.5})
    longer = {"start": D, "end": D + dt.timedelta(days=5)}
    assert indicators(release("inbound_tourism", late, **COUNTED, **longer))[
        "nights"
    ] == pytest.approx({"1": 1.5, "2": 0.5})  # 1's night 3 (at C) is no longer the last


def test_a_same_day_visitor_who_comes_back_counts_no_night_for_its_first_visit(release):
    # 6 (UK): evenings at A on days 0 and 5 (gone before 04:00 each time), noon at C on day 8.
    evenings = [ev(6, day, hour, "A", mcc=234) for day in (0, 5) for hour in (21, 23)]
    back = hand_world([*evenings, ev(6, 8, 12, "C", mcc=234)])
    assert "nights" not in indicators(release("inbound_tourism", back, **COUNTED))
    # Day 8 is within max_silent_days + 1 of the second evening: nights 5 to 7, at A.
    bridged = indicators(release("inbound_tourism", back, **{**COUNTED, "max_silent_days": 2}))
    assert bridged["nights"] == pytest.approx({"1": 3.0})


# 5 (UK): seen from 14:00 to 02:00 the next day, at A.
LATE_EVENTS = [ev(5, 1, 14, "A", mcc=234), ev(5, 1, 22, "A", mcc=234), ev(5, 2, 2, "A", mcc=234)]


SILENT = hand_world(
    [
        # 7 (Germany): seen on day 0 (last at A) and day 1, never at night: one night at A.
        ev(7, 0, 11, "D", mcc=262), ev(7, 0, 15, "A", mcc=262), ev(7, 1, 10, "C", mcc=262),
        # 8 (Germany): seen on days 0 and 2 only: no night is known.
        ev(8, 0, 15, "A", mcc=262), ev(8, 2, 15, "A", mcc=262),
    ]
)  # fmt: skip


def test_a_silent_night_between_two_days_seen_counts(release):
    got = indicators(release("inbound_tourism", SILENT, **COUNTED))
    assert got["nights"] == pytest.approx({"1": 1.0})
    assert got["arrivals"] == pytest.approx({"1": 1.0})
    off = release("inbound_tourism", SILENT, **{**COUNTED, "impute_nights": False})
    assert "nights" not in indicators(off)


def test_nights_across_silent_days_count_up_to_max_silent_days(release):
    # 8 is seen on days 0 (last at A) and 2: one silent day, two nights at A.
    one_day = indicators(release("inbound_tourism", SILENT, **{**COUNTED, "max_silent_days": 1}))
    assert one_day["nights"] == pytest.approx({"1": 3.0})  # 7's night and 8's two
    assert one_day["arrivals"] == pytest.approx({"1": 2.0})
    assert one_day["devices"] == pytest.approx({"1": 2.0})
    gap = hand_world([ev(8, 0, 15, "A", mcc=262), ev(8, 4, 15, "C", mcc=262)])
    for days, nights in ((2, None), (3, 4.0)):
        got = indicators(release("inbound_tourism", gap, **{**COUNTED, "max_silent_days": days}))
        assert got.get("nights", {}).get("1") == nights


def test_a_silent_night_is_spent_where_the_nearest_night_seen_was(release):
    # 10 (Italy): night 0 at A, then day 1 ends at C with no night-time event and day 2 is
    # seen: night 1 is spent at A, where it slept, not at C, where its evening was.
    after = hand_world(
        [ev(10, 0, 23, "A", mcc=222), ev(10, 1, 18, "C", mcc=222), ev(10, 2, 12, "D", mcc=222)]
    )
    assert indicators(release("inbound_tourism", after, **COUNTED))["nights"] == pytest.approx(
        {"1": 2.0}
    )
    # 11 (Italy): nights 0 at A and 2 at C, night 1 silent (day 1 ends at D): as near to both,
    # it takes the earlier.
    between = hand_world(
        [
            ev(11, 0, 23, "A", mcc=222), ev(11, 1, 12, "D", mcc=222),
            ev(11, 2, 23, "C", mcc=222), ev(11, 3, 9, "D", mcc=222),
        ]
    )  # fmt: skip
    got = indicators(release("inbound_tourism", between, **COUNTED))
    assert got["nights"] == pytest.approx({"1": 2.0, "2": 1.0})
    # 13 (Italy): night 0 at A, then days 1 and 2 end at D without a night-time event: night
    # 1 is at A, but night 2, two nights from A (more than max_silent_days + 1), keeps D.
    far = hand_world(
        [
            ev(13, 0, 23, "A", mcc=222), ev(13, 1, 12, "D", mcc=222),
            ev(13, 2, 12, "D", mcc=222), ev(13, 3, 12, "C", mcc=222),
        ]
    )  # fmt: skip
    got = indicators(release("inbound_tourism", far, **COUNTED))
    assert got["nights"] == pytest.approx({"1": 2.0, "3": 1.0})


# 9 (Spain): three events over days 2 and 3, night 2 seen at A: 1 event a day after the first.
STAY_EVENTS = [ev(9, 2, 21, "A", mcc=214), ev(9, 2, 23, "A", mcc=214), ev(9, 3, 10, "C", mcc=214)]
STAY = hand_world(STAY_EVENTS)


def test_expected_nights_at_the_ends_of_a_stay(release):
    period = {"start": D, "end": D + dt.timedelta(days=6)}
    got = indicators(release("inbound_tourism", STAY, **period, max_weight=1))
    silent = math.exp(-0.9 * 1.0)  # end_share x events a day
    before = silent / (1 - silent)
    after = math.exp(-0.25 * 1.0) / (1 - silent)  # departure_share: the last morning missed
    assert got["nights"] == pytest.approx({"1": 1 + before + after})
    assert got["devices"] == pytest.approx({"1": 1.0})  # expected nights are not devices
    assert got["arrivals"] == pytest.approx({"1": 1.0})
    capped = indicators(
        release("inbound_tourism", STAY, **period, max_weight=1, max_end_nights=0.5)
    )
    assert capped["nights"] == pytest.approx({"1": 2.0})
    # None after the period's last night: its end is night 2's evening.
    last = {"start": D, "end": D + dt.timedelta(days=2), "max_weight": 1}
    assert indicators(release("inbound_tourism", STAY, **last))["nights"] == pytest.approx(
        {"1": 1 + before}
    )


def test_without_a_period_no_expected_night_falls_after_the_data(release):
    # Seen on nights 2 and 3; night 3 is the last the data holds (its last day is day 3).
    to_the_end = hand_world([*STAY_EVENTS, ev(9, 3, 22, "A", mcc=214)])
    silent = math.exp(-0.9 * 3 / 2)  # 4 events over 2 days, the first not counted
    before = silent / (1 - silent)
    got = indicators(release("inbound_tourism", to_the_end, max_weight=1))
    assert got["nights"] == pytest.approx({"1": 2 + before})  # before the stay only
    # In a longer period night 3, never followed by an event, does not count; the nights
    # expected after night 2 stand for it.
    longer = {"end": D + dt.timedelta(days=6), "max_weight": 1}
    got = indicators(release("inbound_tourism", to_the_end, **longer))
    after = math.exp(-0.25 * 3 / 2) / (1 - silent)
    assert got["nights"] == pytest.approx({"1": 1 + before + after})


def test_horvitz_thompson_weight_of_a_stay_and_its_cap(release):
    no_ends = {"max_end_nights": 0}
    seen = 1 - math.exp(-0.3 * 1.0)  # one night, 1 event a day, night_share 0.3
    got = indicators(release("inbound_tourism", STAY, **no_ends, max_weight=5))
    assert got["nights"] == pytest.approx({"1": 1 / seen})
    assert got["arrivals"] == pytest.approx({"1": 1 / seen})
    assert got["devices"] == pytest.approx({"1": 1.0})
    capped = indicators(release("inbound_tourism", STAY, **no_ends, max_weight=2))
    assert capped["nights"] == pytest.approx({"1": 2.0})
    # An active roamer (17 events over two days: 8 a day) is likely seen: weight near 1.
    busy = hand_world(
        [ev(9, 2, h, "A", mcc=214) for h in range(8, 24)] + [ev(9, 3, 9, "A", mcc=214)]
    )
    got = indicators(release("inbound_tourism", busy, **no_ends))
    assert got["nights"] == pytest.approx({"1": 1 / (1 - math.exp(-0.3 * 8))})
    assert got["nights"]["1"] < 1.1


# --- the Bayesian estimator -----------------------------------------------------------------

BAYESIAN = {"spatial_estimator": "bayesian", **COUNTED}


def roamer_nights(device: int, cell: str, nights: int = 1) -> list[tuple[Any, ...]]:
    """A French roamer's `nights` at `cell` from night 0, seen again each next morning."""
    return [
        event
        for night in range(nights)
        for event in (ev(device, night, 22, cell, mcc=208), ev(device, night + 1, 9, cell, mcc=208))
    ]


def test_bayesian_places_every_indicator_by_the_posterior_of_its_cell(release):
    # Tile 1 (area 1) is three times as dense as the others: B's roamer is in area 1 with
    # probability (0.3 + 3 x 0.9) / (0.3 + 3 x 0.9 + 0.9 + 0.3) = 3 / 4.2.
    footprint = {**HAND_FOOTPRINT, "tiles": HAND_FOOTPRINT["tiles"].assign(log_prior=LOG_PRIOR)}
    world = dataclasses.replace(hand_world(roamer_nights(1, "B", 2)), footprint=footprint)
    got = indicators(release("inbound_tourism", world, **BAYESIAN, iterations=1))
    assert got["nights"] == pytest.approx({"1": 2 * 3 / 4.2, "2": 2 * 1.2 / 4.2})
    assert got["devices"] == pytest.approx({"1": 3 / 4.2, "2": 1.2 / 4.2})
    assert got["arrivals"] == pytest.approx(got["devices"])
    allocated = indicators(release("inbound_tourism", world, **COUNTED))
    assert allocated["nights"] == pytest.approx({"1": 1.0, "2": 1.0})  # B halved


LOG_PRIOR = [0.0, math.log(3.0), 0.0, 0.0, 0.0]


def test_bayesian_fits_the_density_to_the_roamers_own_nights(release):
    # Five roamers sleep at A (area 1), one at B: under a flat prior B's nights split evenly,
    # and the updates move them towards area 1, where the roamers are.
    rows = [event for device in range(1, 6) for event in roamer_nights(device, "A")]
    world = dataclasses.replace(
        hand_world([*rows, *roamer_nights(6, "B")]), footprint=HAND_FOOTPRINT
    )
    one = indicators(release("inbound_tourism", world, **BAYESIAN, iterations=1))
    fitted = indicators(release("inbound_tourism", world, **BAYESIAN))
    assert sum(fitted["nights"].values()) == pytest.approx(6.0)
    assert sum(fitted["devices"].values()) == pytest.approx(6.0)  # each device once
    assert fitted["nights"]["1"] > one["nights"]["1"] + 0.2
    assert fitted["nights"]["1"] < 6.0


def test_bayesian_lets_the_stays_seen_at_night_stand_for_those_never_seen(release):
    # 1 sleeps at A (area 1) two nights; 2 is never seen at night: its silent night sits at
    # its last event, C (area 2), where it spent the afternoon, not where it slept.
    unseen = [ev(2, 0, 15, "C", mcc=208), ev(2, 1, 10, "C", mcc=208)]
    world = dataclasses.replace(
        hand_world([*roamer_nights(1, "A", 2), *unseen]), footprint=HAND_FOOTPRINT
    )
    allocated = indicators(release("inbound_tourism", world, **COUNTED))
    assert allocated["nights"] == pytest.approx({"1": 2.0, "2": 1.0})
    got = indicators(release("inbound_tourism", world, **BAYESIAN))
    # Placed as the seen stay's nights are, all three indicators keep their totals.
    assert got["nights"] == pytest.approx({"1": 3.0})
    assert got["devices"] == pytest.approx({"1": 2.0})
    assert got["arrivals"] == pytest.approx({"1": 2.0})
    # With no stay seen at night, nothing stands for the unseen ones: nothing is placed.
    alone = dataclasses.replace(hand_world(unseen), footprint=HAND_FOOTPRINT)
    assert "nights" not in indicators(release("inbound_tourism", alone, **BAYESIAN))


def test_unseen_stays_follow_the_seen_areas_whatever_the_noise_on_their_counts():
    # Noisy counts per area, as the enclave's: arrivals at 10 and -9.9 sum to 0.1, and
    # scaling each area by (0.1 + 100) / 0.1 would put 10,010 arrivals in area 1.
    placed = pd.DataFrame(
        {
            "area_code": ["1", "2", "1", "2", "1", "2"],
            "indicator": ["nights", "nights", "arrivals", "arrivals", "devices", "devices"],
            COUNT: [30.0, 10.0, 10.0, -9.9, -1.0, -2.0],
        }
    )
    unseen = pd.Series({"nights": 40.0, "arrivals": 100.0, "devices": 5.0})
    got = place_unseen(placed, unseen).set_index(["indicator", "area_code"])[COUNT]
    # Positive counts: the seen stand for the unseen (each area times (40 + 40) / 40).
    assert got["nights"].to_dict() == pytest.approx({"1": 60.0, "2": 20.0})
    # An area below 0 gets no share, and no area more than the unseen total.
    assert got["arrivals"].to_dict() == pytest.approx({"1": 110.0, "2": -9.9})
    # No area with a positive count: nothing stands for the unseen, nothing is added.
    assert got["devices"].to_dict() == pytest.approx({"1": -1.0, "2": -2.0})


def test_bayesian_is_refused_without_a_footprint_naming_the_command(release):
    with pytest.raises(CellcensusError, match="--tile-footprint"):
        release("inbound_tourism", hand_world(roamer_nights(1, "B")), **BAYESIAN)


def test_bayesian_passes_the_conformance_checks(footprint_world, period_runner):
    algorithm = with_examples("inbound_tourism", BAYESIAN, {"spatial_estimator": "bayesian"})
    suite.check_schema(algorithm, footprint_world, period_runner)
    suite.check_deterministic(algorithm, footprint_world, period_runner)
    suite.check_day_by_day(algorithm, footprint_world, period_runner.con)
    # The enclave noises the counts per night cell, before `finish`: the bound holds there.
    suite.check_contribution_bound(algorithm, footprint_world, period_runner, n_events=20_000)
    placed = period_runner.run(algorithm, footprint_world, {"spatial_estimator": "bayesian"})
    allocated = period_runner.run(algorithm, footprint_world, {})
    nights = [part[part.indicator == "nights"].device_count.sum() for part in (placed, allocated)]
    assert nights[1] > 0
    assert nights[0] == pytest.approx(nights[1])  # the estimator moves nights, never adds any


@pytest.mark.spark
def test_bayesian_gives_the_same_result_on_spark(footprint_world, period_runner, spark_runner):
    suite.check_engines_agree(
        with_examples("inbound_tourism", {"spatial_estimator": "bayesian"}),
        footprint_world,
        {"duckdb": period_runner, "spark": spark_runner},
    )
