import datetime as dt

import pytest

from cellcensus.errors import CellcensusError
from cellcensus.holder.algorithms import get_algorithm

from .conftest import D, as_dict, ev, hand_world

# Device 1: home A (3 nights) though B seen once and C by day.
# Device 2: 2 nights at B and 2 at C: the tie goes to the smaller cell id, B.
# Device 3: one night only, left out with min_nights=2.
# Device 4: 06:00 belongs to the previous night, 07:00 is day: home A on nights 0 and 1.
# Device 5: a roamer sleeping at C: never a resident.
WORLD = hand_world(
    [
        *(ev(1, d, 22, "A") for d in range(3)),
        ev(1, 3, 23, "B"),
        *(ev(1, d, 12, "C") for d in range(5)),
        ev(2, 0, 21, "B"),
        ev(2, 2, 5, "B"),
        ev(2, 3, 21, "C"),
        ev(2, 5, 3, "C"),
        ev(3, 0, 23, "C"),
        ev(3, 0, 23, "C"),
        ev(4, 1, 6, "A"),
        ev(4, 1, 21, "A"),
        ev(4, 3, 7, "C"),
        ev(4, 3, 8, "C"),
        *(ev(5, d, 22, "C", mcc=208) for d in range(4)),
    ]
)


def test_counts_are_shared_by_allocation_weights(release):
    counts = as_dict(release("usual_residence", WORLD, min_nights=2), "area_code")
    # Devices 1 and 4 at A (area 1), device 2 at B (half in each area).
    assert counts == pytest.approx({"1": 2.5, "2": 0.5})


def test_min_nights_one_keeps_single_night_devices(release):
    counts = as_dict(release("usual_residence", WORLD, min_nights=1), "area_code")
    assert counts == pytest.approx({"1": 2.5, "2": 1.5})  # device 3 at C


def test_min_nights_counts_distinct_nights_across_cells(release):
    # Devices 1 (3 nights at A, 1 at B) and 2 (2 at B, 2 at C) have 4 nights though no cell
    # holds 4 of them; device 4 has 2.
    counts = as_dict(release("usual_residence", WORLD, min_nights=4), "area_code")
    assert counts == pytest.approx({"1": 1.5, "2": 0.5})


def test_distinct_nights_are_counted_across_the_windows_of_the_night_sets(release):
    # Nights are bit sets of 63 nights from the epoch (`places.NIGHT_WINDOW`); D's window
    # ends after night 16. Device 8: A on nights 10-23 (7 in each window), B on 24-35 (12):
    # A. Device 9: A on nights 0 and 63, B on 1 and 64 (the same bits of two windows): four
    # distinct nights, though no cell holds four; the tie goes to A.
    assert (D - dt.date(1970, 1, 1)).days % 63 == 46
    world = hand_world(
        [
            *(ev(8, d, 22, "A") for d in range(10, 24)),
            *(ev(8, d, 22, "B") for d in range(24, 36)),
            *(ev(9, d, 22, "A") for d in (0, 63)),
            *(ev(9, d, 22, "B") for d in (1, 64)),
        ]
    )
    counts = as_dict(release("usual_residence", world, min_nights=4), "area_code")
    assert counts == pytest.approx({"1": 2.0})


@pytest.mark.parametrize("days", [62, 63])
def test_the_first_and_last_nights_of_the_period_both_count(release, days):
    # Device 1 at A on the morning of the first date (the night before it) and the evening
    # of the last: two nights. 62 dates hold 63 nights, one bit set counted from the first
    # night (`places.one_set_from`); 63 dates hold 64, sets of 63 nights from 1970.
    world = hand_world([ev(1, 0, 5, "A"), ev(1, days - 1, 22, "A"), ev(2, days - 1, 12, "B")])
    counts = as_dict(release("usual_residence", world, min_nights=2), "area_code")
    assert counts == pytest.approx({"1": 1.0})


def test_period_restricts_the_nights(release):
    # Local dates 3..5: device 1 has one night (B) -> out; device 2 two nights at C.
    counts = release(
        "usual_residence", WORLD, min_nights=2, start=D.replace(day=10), end=D.replace(day=12)
    )
    assert as_dict(counts, "area_code") == pytest.approx({"2": 1.0})


# Device 7 sleeps at A on 3 nights with one event, at B on 2 nights with many events:
# most distinct nights says A, most night activity says B.
# Multi-MNO: A holds 3/5 of the nights and of the night hours, B 2/5: with shares of 0.4
# both are home cells (the device is split), with 0.8 none is.
RULES_WORLD = hand_world(
    [
        *(ev(7, d, 22, "A") for d in range(3)),
        *(ev(7, d, hour, "B", minute) for d in (3, 4) for hour in (21, 23) for minute in (0, 30)),
    ]
)


@pytest.mark.parametrize(
    "values",
    [
        {"rule": "most_distinct_nights"},
        {"rule": "most_night_activity"},
        {"rule": "multi_mno", "home_ps_share": 0.4, "home_nights_share": 0.4},
        {"rule": "anchor_point"},
    ],
)
def test_every_rule_counts_the_device_once(release, values):
    counts = as_dict(release("usual_residence", RULES_WORLD, **values), "area_code")
    assert sum(counts.values()) == pytest.approx(1.0)


def test_rules_disagree_as_documented(release):
    nights = as_dict(
        release("usual_residence", RULES_WORLD, rule="most_distinct_nights"), "area_code"
    )
    activity = as_dict(
        release("usual_residence", RULES_WORLD, rule="most_night_activity"), "area_code"
    )
    split = as_dict(
        release(
            "usual_residence",
            RULES_WORLD,
            rule="multi_mno",
            home_ps_share=0.4,
            home_nights_share=0.4,
        ),
        "area_code",
    )
    assert nights == pytest.approx({"1": 1.0})  # A
    assert activity == pytest.approx({"1": 0.5, "2": 0.5})  # B
    assert split == pytest.approx({"1": 0.75, "2": 0.25})  # half A, half B
    strict = release("usual_residence", RULES_WORLD, rule="multi_mno")
    assert strict.empty  # no cell holds 80% of the nights


def test_anchor_point_takes_the_most_frequent_monthly_home(release):
    # March: 6 nights at A (area 1), 1 at C; April and May: 2 nights at C (area 2) each.
    # Most distinct nights says A (6 against 5); the monthly homes are A, C, C: anchor C.
    rows = [*(ev(8, d, 22, "A") for d in range(6)), ev(8, 7, 22, "C")]
    rows += [ev(8, d, 23, "C") for d in (30, 31, 60, 61)]
    world = hand_world(rows)
    anchor = as_dict(release("usual_residence", world, rule="anchor_point"), "area_code")
    assert anchor == pytest.approx({"2": 1.0})
    nights = as_dict(release("usual_residence", world), "area_code")
    assert nights == pytest.approx({"1": 1.0})
    needs_four = release("usual_residence", world, rule="anchor_point", min_months=4)
    assert needs_four.empty


def test_sensitivity_shows_devices_changing_area_between_rules(release):
    table = release("usual_residence_sensitivity", RULES_WORLD)
    by_rule = {
        rule: as_dict(group, "area_code", "alternative_area")
        for rule, group in table.groupby("alternative_rule")
    }
    # Most distinct nights (A, area 1) against most night activity (B: areas 1 and 2).
    assert by_rule["most_night_activity"] == pytest.approx({("1", "1"): 0.5, ("1", "2"): 0.5})
    assert by_rule["anchor_point"] == pytest.approx({("1", "1"): 1.0})
    assert "multi_mno" not in by_rule  # no home under the strict Multi-MNO shares


def test_same_cell_under_two_rules_stays_on_the_diagonal(release):
    # Device 9 sleeps only at B (split 1/2): every rule agrees, so no device changes area.
    world = hand_world([ev(9, d, 22, "B") for d in range(4)])
    table = release("usual_residence_sensitivity", world)
    assert (table.area_code == table.alternative_area).all()
    assert table.device_count.sum() == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"min_nights": 0}, "min_nights"),
        ({"night_start_hour": 30}, "night_start_hour"),
        ({"rule": "most_pings"}, "rule"),
        ({"filters": {"home_mcc": 99}}, "filters.home_mcc"),
        ({"bogus": 1}, "bogus"),
        ({"start": "2011-03-10", "end": "2011-03-01"}, "after"),
    ],
)
def test_out_of_range_parameters_are_refused_by_name(values, named):
    with pytest.raises(CellcensusError, match=named):
        get_algorithm("usual_residence").manifest.parse(values)


def test_unknown_algorithm_lists_known_ones():
    with pytest.raises(CellcensusError, match="usual_residence"):
        get_algorithm("nope")
