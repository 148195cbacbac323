import datetime as dt

import pytest

from .conftest import D, as_dict, ev, hand_world

NEXT = D + dt.timedelta(days=1)

WORLD = hand_world(
    [
        # 1, day 0: stay at A (40 min) ending at B (A's site: one stay, left from B), stay
        # at C, back to A.
        ev(1, 0, 7, "A"), ev(1, 0, 7, "A", 40), ev(1, 0, 8, "B"),
        ev(1, 0, 9, "C"), ev(1, 0, 12, "C"), ev(1, 0, 18, "A"), ev(1, 0, 19, "A"),
        # 1, day 1: A -> C -> A -> C: the same area pair twice counts the device once.
        ev(1, 1, 7, "A"), ev(1, 1, 7, "A", 40), ev(1, 1, 9, "C"), ev(1, 1, 10, "C"),
        ev(1, 1, 12, "A"), ev(1, 1, 13, "A"), ev(1, 1, 14, "C"), ev(1, 1, 15, "C"),
        # 2, day 0: stay at B (areas 1 and 2) then at C (area 2).
        ev(2, 0, 8, "B"), ev(2, 0, 9, "B"), ev(2, 0, 10, "C"), ev(2, 0, 11, "C"),
        # 3, day 0: short visits only (10 minutes each): no stays, no trips.
        ev(3, 0, 8, "A"), ev(3, 0, 8, "A", 10), ev(3, 0, 9, "C"), ev(3, 0, 9, "C", 10),
    ]
)  # fmt: skip


def test_trips_between_consecutive_stays(release):
    counts = as_dict(release("trips_od", WORLD), "local_date", "origin", "destination")
    assert counts == pytest.approx(
        {
            (D, "1", "2"): 1.0, (D, "2", "1"): 1.0, (D, "2", "2"): 1.0,
            (NEXT, "1", "2"): 1.0, (NEXT, "2", "1"): 1.0,
        }
    )  # fmt: skip


def test_shorter_stays_and_fewer_trips_per_day(release):
    short = as_dict(
        release("trips_od", WORLD, min_stay_minutes=10), "local_date", "origin", "destination"
    )
    assert short[D, "1", "2"] == pytest.approx(2.0)  # device 3's A -> C now counts
    first_only = as_dict(
        release("trips_od", WORLD, max_trips_per_day=1), "local_date", "origin", "destination"
    )
    assert first_only == pytest.approx(
        {(D, "1", "2"): 1.0, (D, "2", "2"): 1.0, (NEXT, "1", "2"): 1.0}
    )


def test_a_stay_goes_on_while_the_phone_is_handed_between_its_site_s_cells(release):
    # Half an hour at site S1, alternating between its cells A and B (no cell holds the
    # phone for 30 minutes), then a stay at C: one trip, from the stay's last cell (A).
    alternating = hand_world(
        [
            ev(4, 0, 7, "A"), ev(4, 0, 7, "B", 15), ev(4, 0, 7, "A", 35),
            ev(4, 0, 9, "C"), ev(4, 0, 10, "C"),
        ]
    )  # fmt: skip

    counts = as_dict(release("trips_od", alternating), "local_date", "origin", "destination")

    assert counts == pytest.approx({(D, "1", "2"): 1.0})
