from __future__ import annotations

import re
from dataclasses import fields
from datetime import date
from pathlib import Path

import pytest

from cellcensus.errors import CellcensusError
from cellcensus.world import WorldParams
from cellcensus.world.evidence import SOURCES
from cellcensus.world.params import FaultRates


def test_defaults_are_valid_and_start_on_a_monday() -> None:
    params = WorldParams()
    assert params.start.weekday() == 0
    assert params.end == date(2011, 3, 13)
    assert (params.scale, params.days, params.seed, params.market_share) == (0.03, 7, 1, 0.4)
    assert not params.faults.any
    assert params.location_update_minutes == 0


@pytest.mark.parametrize(
    ("changes", "name"),
    [
        ({"scale": 0.0}, "scale"),
        ({"scale": 1.5}, "scale"),
        ({"days": 0}, "days"),
        ({"days": 367}, "days"),
        ({"market_share": 0.0}, "market_share"),
        ({"market_share": 1.01}, "market_share"),
        ({"seed": -1}, "seed"),
        ({"sites": 100}, "sites"),
        ({"work_attendance": 1.5}, "work_attendance"),
        ({"night_hours": (20, 25)}, "night_hours"),
        ({"hourly_activity": (1.0,) * 23}, "hourly_activity"),
        ({"session_shares": (0.5, 0.5, 0.5)}, "session_shares"),
        ({"phone_ownership": ((5, 0.5),)}, "phone_ownership"),
        ({"technology_shares": (("2G", 0.5), ("3G", 1.0), ("4G", 0.0))}, "technology_shares"),
        ({"location_update_minutes": 3}, "location_update_minutes"),
        ({"presence_persons": -1}, "presence_persons"),
        ({"other_places": 4}, "other_places"),
        ({"regional_share_factors": (("Flanders", 1.1),)}, "regional_share_factors"),
        ({"trip_probability": (0.1,)}, "trip_probability"),
        ({"outing_hours": (3,)}, "outing_hours"),
        ({"working_ages": (18, 64, 70)}, "working_ages"),
        ({"work_start_hours": (8,)}, "work_start_hours"),
        ({"school_ages": (3,)}, "school_ages"),
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
    WorldParams(scale=1.0, days=366, market_share=1.0, location_update_minutes=1440)


def test_fault_rates_parse_one_rate_or_named_kinds() -> None:
    every = FaultRates.parse("0.01")
    assert set(every.rates().values()) == {0.01}
    named = FaultRates.parse("duplicate=0.02, null_field=0.001")
    assert named.duplicate == 0.02 and named.null_field == 0.001 and named.unknown_cell == 0
    assert named.any and not FaultRates().any
    for text, word in [("dupes=0.1", "unknown"), ("x", "RATE"), ("0.5", "0.1")]:
        with pytest.raises(CellcensusError, match=word):
            FaultRates.parse(text)


def test_every_parameter_and_source_is_documented() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "world.md").read_text(encoding="utf-8")
    missing = [item.name for item in fields(WorldParams) if f"`{item.name}`" not in docs]
    assert not missing, f"parameters missing from docs/world.md: {missing}"
    unsourced = [key for key in SOURCES if f"`{key}`" not in docs]
    assert not unsourced, f"sources missing from docs/world.md: {unsourced}"


def test_every_number_default_docs_world_md_gives_is_the_parameters() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "world.md").read_text(encoding="utf-8")
    written = dict(re.findall(r"^\| `(\w+)` \| ([^|]+) \|", docs, flags=re.M))
    checked = 0
    for item in fields(WorldParams):
        default = item.default
        if isinstance(default, bool) or not isinstance(default, int | float | date):
            continue  # steps, ranges and tables are written in words
        text = written[item.name].split(" (")[0].replace(",", "").strip()
        assert text == (default.isoformat() if isinstance(default, date) else f"{default:g}"), (
            f"docs/world.md gives {item.name} the default {written[item.name]!r}"
        )
        checked += 1
    assert checked >= 40
