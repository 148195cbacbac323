from __future__ import annotations

from datetime import date

import pytest

from cellcensus.errors import CellcensusError
from cellcensus.world import WorldParams


def test_defaults_are_valid_and_start_on_a_monday() -> None:
    params = WorldParams()
    assert params.start.weekday() == 0
    assert params.end == date(2011, 3, 13)
    assert (params.scale, params.days, params.seed, params.market_share) == (0.03, 7, 1, 0.4)


@pytest.mark.parametrize(
    ("changes", "name"),
    [
        ({"scale": 0.0}, "scale"),
        ({"scale": -1.0}, "scale"),
        ({"scale": 1.5}, "scale"),
        ({"days": 0}, "days"),
        ({"days": 367}, "days"),
        ({"market_share": 0.0}, "market_share"),
        ({"market_share": 1.01}, "market_share"),
        ({"seed": -1}, "seed"),
        ({"sites": 100}, "sites"),
        ({"work_attendance": 1.5}, "work_attendance"),
        ({"work_hours": (17, 9)}, "work_hours"),
        ({"night_hours": (20, 25)}, "night_hours"),
        ({"event_rate_floor": 9.0}, "event_rate_floor"),
        ({"hourly_activity": (1.0,) * 23}, "hourly_activity"),
        ({"event_type_shares": (0.5, 0.5, 0.5, 0.0, 0.0)}, "event_type_shares"),
        ({"presence_persons": -1}, "presence_persons"),
    ],
)
def test_bad_parameters_raise_one_line_naming_the_parameter(
    changes: dict[str, object], name: str
) -> None:
    with pytest.raises(CellcensusError) as raised:
        WorldParams(**changes)  # type: ignore[arg-type]
    message = str(raised.value)
    assert name in message
    assert "\n" not in message


def test_upper_bounds_are_allowed() -> None:
    WorldParams(scale=1.0, days=366, market_share=1.0)
