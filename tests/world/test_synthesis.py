from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cellcensus.errors import CellcensusError
from cellcensus.world import WorldParams, WorldSummary, synthesize
from cellcensus.world.activity import Place, in_hours
from cellcensus.world.country import SyntheticCountry

EVENTS_CONTRACT = pa.schema(
    [
        ("user_id", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("cell_id", pa.string()),
        ("event_type", pa.string()),
        ("mcc", pa.int32()),
        ("mnc", pa.int32()),
        ("tac", pa.string()),
    ]
)
EVENT_TYPES = {"call_out", "call_in", "sms_out", "sms_in", "data", "location_update"}


def _events(folder: Path) -> pd.DataFrame:
    frame: pd.DataFrame = pq.read_table(folder / "events").to_pandas()
    return frame


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_folder_layout_follows_the_contract(world_folder: Path) -> None:
    for day in ("2011-03-07", "2011-03-08"):
        assert (world_folder / "events" / f"date={day}" / "part-0.parquet").is_file()
        assert (world_folder / "truth" / "presence" / f"date={day}" / "part-0.parquet").is_file()
    for name in ("cells.parquet", "metadata.json", "world.json"):
        assert (world_folder / name).is_file()
    for name in ("persons.parquet", "devices.parquet"):
        assert (world_folder / "truth" / name).is_file()


def test_metadata_says_what_the_holder_knows(world_folder: Path, small_params: WorldParams) -> None:
    metadata = json.loads((world_folder / "metadata.json").read_text())
    assert metadata["operator"] == "synthetic-operator"
    assert (metadata["mcc"], metadata["mnc"]) == (206, 1)
    assert metadata["period"] == {"start": "2011-03-07", "end": "2011-03-08"}
    assert metadata["timezone"] == "Europe/Brussels"
    assert metadata["market_share"] == small_params.market_share
    assert metadata["sampling_fraction"] == small_params.scale
    devices = pq.read_table(world_folder / "truth" / "devices.parquet").num_rows
    assert sum(metadata["subscribers_by_region"].values()) == devices


def test_world_json_holds_parameters_and_totals(small_world: WorldSummary) -> None:
    document = json.loads((small_world.out / "world.json").read_text())
    assert document["status"] == "complete"
    assert document["parameters"]["scale"] == 0.002
    assert document["parameters"]["start"] == "2011-03-07"
    totals = document["totals"]
    assert totals["persons"] == small_world.persons
    assert totals["devices"] == small_world.devices
    assert totals["sites"] == small_world.sites == 3500
    assert totals["events"] == small_world.events == len(_events(small_world.out))


def test_events_schema_is_exactly_the_contract(world_folder: Path) -> None:
    for path in sorted((world_folder / "events").rglob("*.parquet")):
        assert pq.read_schema(path).equals(EVENTS_CONTRACT)


def test_cells_and_truth_schemas(world_folder: Path) -> None:
    cells = pq.read_table(world_folder / "cells.parquet")
    assert cells.column_names == [
        "cell_id", "site_id", "latitude", "longitude", "azimuth_deg", "beam_width_deg",
        "range_m", "technology", "valid_from", "valid_to",
    ]  # fmt: skip
    assert cells.schema.field("valid_from").type == pa.date32()
    assert cells.column("azimuth_deg").null_count == cells.num_rows
    assert set(cells.column("technology").to_pylist()) == {"4G"}
    assert cells.column("cell_id").to_pylist()[0] == "C00001"
    persons = pq.read_table(world_folder / "truth" / "persons.parquet")
    assert persons.column_names == ["person_id", "home_area", "work_area", "age", "sex"]
    devices = pq.read_table(world_folder / "truth" / "devices.parquet")
    assert devices.column_names == ["user_id", "person_id", "kind", "mcc", "mnc"]
    assert set(devices.column("kind").to_pylist()) == {"primary"}
    presence = pq.read_table(world_folder / "truth" / "presence")
    assert presence.schema.field("hour").type == pa.timestamp("us", tz="UTC")


def test_events_are_valid_sorted_and_in_their_local_day(world_folder: Path) -> None:
    cells = set(pq.read_table(world_folder / "cells.parquet").column("cell_id").to_pylist())
    devices = pq.read_table(world_folder / "truth" / "devices.parquet").to_pandas()
    for path in sorted((world_folder / "events").rglob("*.parquet")):
        events = pq.read_table(path).to_pandas()
        day = date.fromisoformat(path.parent.name.removeprefix("date="))
        assert events["timestamp"].is_monotonic_increasing
        local = events["timestamp"].dt.tz_convert("Europe/Brussels").dt.date
        assert (local == day).all()
        assert set(events["cell_id"]) <= cells
        assert set(events["user_id"]) <= set(devices["user_id"])
        assert set(events["event_type"]) <= EVENT_TYPES
        assert (events["mcc"] == 206).all() and (events["mnc"] == 1).all()
        assert events["tac"].str.fullmatch(r"\d{8}").all()
    assert devices["user_id"].is_unique
    assert devices["user_id"].str.fullmatch(r"3247\d{8}").all()


def test_devices_follow_the_market_share(
    small_world: WorldSummary, small_params: WorldParams
) -> None:
    share = small_params.market_share
    expected = share * small_world.persons
    tolerance = 4 * np.sqrt(small_world.persons * share * (1 - share))
    assert abs(small_world.devices - expected) < tolerance


def test_night_events_fall_at_the_home_cell(
    world_folder: Path, small_country: SyntheticCountry
) -> None:
    events = _events(world_folder)
    hour = events["timestamp"].dt.tz_convert("Europe/Brussels").dt.hour.to_numpy()
    night = events[in_hours(hour, (20, 7))]
    subscribers = small_country.subscribers
    home_cell = small_country.place_cells[subscribers.person, Place.HOME]
    cell_of_user = dict(
        zip(subscribers.user_id, [f"C{cell + 1:05d}" for cell in home_cell], strict=True)
    )
    assert len(night) > 0
    assert (night["cell_id"] == night["user_id"].map(cell_of_user)).all()


def test_most_devices_are_seen_at_night(world_folder: Path, small_world: WorldSummary) -> None:
    events = _events(world_folder)
    local = events["timestamp"].dt.tz_convert("Europe/Brussels")
    first_night = local.dt.day.eq(7) & (local.dt.hour >= 20) | local.dt.day.eq(8) & (
        local.dt.hour < 7
    )
    assert events.loc[first_night, "user_id"].nunique() > 0.8 * small_world.devices


def test_activity_is_heavy_tailed_and_higher_by_day(world_folder: Path) -> None:
    events = _events(world_folder)
    per_device = np.sort(events["user_id"].value_counts().to_numpy())[::-1]
    top_decile = per_device[: per_device.size // 10].sum() / per_device.sum()
    assert top_decile > 0.3
    hour = events["timestamp"].dt.tz_convert("Europe/Brussels").dt.hour.to_numpy()
    night = in_hours(hour, (20, 7))
    night_rate = night.sum() / 11
    day_rate = (~night).sum() / 13
    assert day_rate > 2 * night_rate


def test_presence_truth_is_hourly_and_home_at_night(world_folder: Path) -> None:
    presence = pq.read_table(world_folder / "truth" / "presence").to_pandas()
    persons = pq.read_table(world_folder / "truth" / "persons.parquet").to_pandas()
    sampled = presence["person_id"].nunique()
    assert sampled == min(20_000, len(persons))
    assert len(presence) == sampled * 48
    home = presence["person_id"].map(persons.set_index("person_id")["home_area"])
    hour = presence["hour"].dt.tz_convert("Europe/Brussels").dt.hour.to_numpy()
    night = in_hours(hour, (20, 7))
    assert (presence["area"][night] == home[night]).all()
    assert (presence["area"][~night] != home[~night]).any()


def test_same_seed_gives_identical_files_and_another_seed_differs(
    world_folder: Path, small_params: WorldParams, tmp_path: Path
) -> None:
    again = synthesize(out=tmp_path / "again", params=small_params)
    assert _files(again.out) == _files(world_folder)
    other = WorldParams(scale=small_params.scale, days=1, seed=small_params.seed + 1)
    different = synthesize(out=tmp_path / "other", params=other)
    day = "events/date=2011-03-07/part-0.parquet"
    assert _files(different.out)[day] != _files(world_folder)[day]


def test_a_day_is_the_same_in_every_period_that_contains_it(
    world_folder: Path, small_params: WorldParams, tmp_path: Path
) -> None:
    later = WorldParams(
        scale=small_params.scale, days=1, seed=small_params.seed, start=date(2011, 3, 8)
    )
    summary = synthesize(out=tmp_path / "later", params=later)
    day = "events/date=2011-03-08/part-0.parquet"
    assert _files(summary.out)[day] == _files(world_folder)[day]


def test_too_small_a_scale_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CellcensusError, match="scale"):
        synthesize(out=tmp_path / "empty", params=WorldParams(scale=1e-7, days=1))


def test_a_previous_world_is_replaced(tmp_path: Path) -> None:
    out = tmp_path / "world"
    synthesize(out=out, params=WorldParams(scale=0.001, days=2, presence_persons=10))
    synthesize(out=out, params=WorldParams(scale=0.001, days=1, presence_persons=10))
    assert [path.name for path in (out / "events").iterdir()] == ["date=2011-03-07"]


def test_output_that_is_a_file_or_a_foreign_folder_is_refused(tmp_path: Path) -> None:
    params = WorldParams(scale=0.001, days=1)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(CellcensusError, match="is a file"):
        synthesize(out=a_file, params=params)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(CellcensusError, match="not empty"):
        synthesize(out=foreign, params=params)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_a_period_across_the_spring_dst_change(tmp_path: Path) -> None:
    params = WorldParams(scale=0.001, days=2, start=date(2011, 3, 26), presence_persons=50)
    summary = synthesize(out=tmp_path / "dst", params=params)
    presence = pq.read_table(summary.out / "truth" / "presence").to_pandas()
    hours_per_person = presence.groupby("person_id").size()
    assert (hours_per_person == 24 + 23).all()
    events = pq.read_table(summary.out / "events" / "date=2011-03-27").to_pandas()
    local = events["timestamp"].dt.tz_convert("Europe/Brussels")
    assert (local.dt.date == date(2011, 3, 27)).all()
    assert not (local.dt.hour == 2).any()
