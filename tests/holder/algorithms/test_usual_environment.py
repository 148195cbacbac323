import pytest

from .conftest import as_dict, ev, hand_world

# Days 0-4 are Monday to Friday, 5-6 the weekend.
WORLD = hand_world(
    [
        # 1: home A, works at C Monday-Wednesday, evenings at D three times.
        *(ev(1, d, 22, "A") for d in range(7)),
        *(ev(1, d, h, "C") for d in range(3) for h in (10, 15)),
        *(ev(1, d, 19, "D") for d in (0, 2, 4)),
        # 2: home C, works at D on weekdays; also at D at the weekend (not work).
        *(ev(2, d, 23, "C") for d in range(7)),
        *(ev(2, d, 11, "D") for d in range(7)),
        # 3: home A, by day at B, on A's antenna site: neither work nor another place.
        *(ev(3, d, 21, "A") for d in range(7)),
        *(ev(3, d, 12, "B") for d in range(5)),
    ]
)


def test_home_work_flows(release):
    flows = as_dict(release("home_work_flows", WORLD), "home_area", "work_area")
    assert flows == pytest.approx({("1", "2"): 1.0, ("2", "3"): 1.0})


def test_work_needs_enough_working_days(release):
    flows = as_dict(release("home_work_flows", WORLD, min_work_days=4), "home_area", "work_area")
    assert flows == pytest.approx({("2", "3"): 1.0})


def test_usual_environment_places(release):
    places = as_dict(release("usual_environment", WORLD), "place", "area_code")
    assert places == pytest.approx(
        {("home", "1"): 2.0, ("home", "2"): 1.0, ("work", "2"): 1.0, ("work", "3"): 1.0,
         ("other", "3"): 1.0}
    )  # fmt: skip
    no_other = as_dict(
        release("usual_environment", WORLD, max_other_places=0), "place", "area_code"
    )
    assert ("other", "3") not in no_other
