import pytest

from .conftest import as_dict, ev, hand_world

WORLD = hand_world(
    [
        # 1 (France): nights 0 and 1 at A, away on night 2, night 3 at C: two arrivals.
        ev(1, 0, 22, "A", mcc=208), ev(1, 1, 6, "A", mcc=208), ev(1, 1, 23, "A", mcc=208),
        ev(1, 3, 23, "C", mcc=208), ev(1, 3, 14, "D", mcc=208),
        # 2 (UK): night 0 mostly at B (split between areas 1 and 2), once at A.
        ev(2, 0, 22, "B", mcc=234), ev(2, 0, 23, "B", mcc=234), ev(2, 1, 2, "A", mcc=234),
        # 3 (UK): a day tripper, never seen at night.
        ev(3, 2, 14, "D", mcc=234),
        # 4: the holder's own subscriber.
        *(ev(4, d, 22, "D") for d in range(4)),
    ]
)  # fmt: skip


def indicators(frame):
    return {
        indicator: as_dict(group, "area_code") for indicator, group in frame.groupby("indicator")
    }


def test_devices_nights_and_arrivals_per_area(release):
    got = indicators(release("inbound_tourism", WORLD))
    assert got["nights"] == pytest.approx({"1": 2.5, "2": 1.5})
    assert got["devices"] == pytest.approx({"1": 1.5, "2": 1.5})
    assert got["arrivals"] == pytest.approx({"1": 1.5, "2": 1.5})


def test_countries_and_night_cap(release):
    french = indicators(release("inbound_tourism", WORLD, countries=[208]))
    assert french["nights"] == pytest.approx({"1": 2.0, "2": 1.0})
    capped = indicators(release("inbound_tourism", WORLD, max_nights=1))
    assert capped["nights"] == pytest.approx({"1": 1.5, "2": 0.5})
    assert capped["arrivals"] == pytest.approx({"1": 1.5, "2": 0.5})


SILENT = hand_world(
    [
        # 7 (Germany): seen on day 0 (last at A) and day 1, never at night: one night at A.
        ev(7, 0, 11, "D", mcc=262), ev(7, 0, 15, "A", mcc=262), ev(7, 1, 10, "C", mcc=262),
        # 8 (Germany): seen on days 0 and 2 only: no night is known.
        ev(8, 0, 15, "A", mcc=262), ev(8, 2, 15, "A", mcc=262),
    ]
)  # fmt: skip


def test_a_silent_night_between_two_days_seen_counts(release):
    got = indicators(release("inbound_tourism", SILENT))
    assert got["nights"] == pytest.approx({"1": 1.0})
    assert got["arrivals"] == pytest.approx({"1": 1.0})
    assert "nights" not in indicators(release("inbound_tourism", SILENT, impute_nights=False))
