from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely

from cellcensus.errors import CellcensusError
from cellcensus.world import WorldParams, WorldSummary, synthesize
from cellcensus.world.clock import in_hours
from cellcensus.world.country import SyntheticCountry, tracked_homes
from cellcensus.world.params import FaultRates
from cellcensus.world.places import Column

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
DAYS = ("2011-03-11", "2011-03-12", "2011-03-13")


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
    for day in DAYS:
        assert (world_folder / "events" / f"date={day}" / "part-0.parquet").is_file()
        assert (world_folder / "truth" / "presence" / f"date={day}" / "part-0.parquet").is_file()
    for name in ("cells.parquet", "metadata.json", "world.json"):
        assert (world_folder / name).is_file()
    for name in (
        "persons.parquet", "devices.parquet", "migrations.parquet", "roamer_stays.parquet",
        "machines.parquet", "tacs.parquet", "faults.json",
    ):  # fmt: skip
        assert (world_folder / "truth" / name).is_file()


def test_metadata_says_what_the_holder_knows(world_folder: Path, small_params: WorldParams) -> None:
    metadata = json.loads((world_folder / "metadata.json").read_text())
    assert metadata["operator"] == "synthetic-operator"
    assert (metadata["mcc"], metadata["mnc"]) == (206, 1)
    assert metadata["period"] == {"start": DAYS[0], "end": DAYS[-1]}
    assert metadata["timezone"] == "Europe/Brussels"
    assert metadata["sampling_fraction"] == small_params.scale
    devices = pq.read_table(world_folder / "truth" / "devices.parquet").to_pandas()
    persons = pq.read_table(world_folder / "truth" / "persons.parquet").to_pandas()
    primary = devices[devices["kind"] == "primary"]
    assert metadata["market_share"] == pytest.approx(len(primary) / len(persons))
    # The share of residents: the market share of phone owners times ownership (~85%).
    assert 0.3 < metadata["market_share"] < small_params.market_share
    region = persons.set_index("person_id")["home_area"].map(_region_of())
    by_region = region.loc[primary["person_id"]].value_counts().to_dict()
    assert metadata["subscribers_by_region"] == by_region


def _region_of() -> dict[str, str]:
    from cellcensus.reference import belgium

    areas = belgium.municipalities()
    return dict(zip(areas["area_code"], areas["region"], strict=True))


def test_world_json_holds_parameters_and_totals(small_world: WorldSummary) -> None:
    document = json.loads((small_world.out / "world.json").read_text())
    assert document["status"] == "complete"
    assert document["parameters"]["scale"] == 0.002
    assert document["parameters"]["start"] == DAYS[0]
    assert document["parameters"]["faults"]["duplicate"] == 0
    totals = document["totals"]
    assert totals["persons"] == small_world.persons
    assert totals["devices"] == small_world.devices == sum(totals["devices_by_kind"].values())
    assert totals["sites"] == small_world.sites == 4000
    assert totals["cells"] == small_world.cells
    assert totals["events"] == small_world.events == len(_events(small_world.out))


def test_events_schema_is_exactly_the_contract(world_folder: Path) -> None:
    for path in sorted((world_folder / "events").rglob("*.parquet")):
        assert pq.read_schema(path).equals(EVENTS_CONTRACT)


def test_cells_and_truth_schemas(world_folder: Path) -> None:
    cells = pq.read_table(world_folder / "cells.parquet").to_pandas()
    assert list(cells.columns) == [
        "cell_id", "site_id", "latitude", "longitude", "azimuth_deg", "beam_width_deg",
        "range_m", "technology", "valid_from", "valid_to",
    ]  # fmt: skip
    assert cells["cell_id"].is_unique and cells["cell_id"].iloc[0] == "C000001"
    assert set(cells["technology"]) == {"2G", "3G"}
    assert (cells.groupby("site_id")["azimuth_deg"].nunique() == 3).all()
    assert cells["beam_width_deg"].eq(65).all() and cells["range_m"].gt(0).all()
    changed = cells["valid_from"].notna() | cells["valid_to"].notna()
    assert 0 < changed.mean() < 0.05
    persons = pq.read_table(world_folder / "truth" / "persons.parquet")
    assert persons.column_names == ["person_id", "home_area", "work_area", "age", "sex"]
    devices = pq.read_table(world_folder / "truth" / "devices.parquet").to_pandas()
    assert list(devices.columns) == ["user_id", "person_id", "kind", "mcc", "mnc"]
    assert set(devices["kind"]) == {"primary", "secondary", "m2m", "roamer"}
    assert devices.loc[devices["kind"].isin(["m2m", "roamer"]), "person_id"].isna().all()
    assert devices.loc[devices["kind"].isin(["primary", "secondary"]), "person_id"].notna().all()
    presence = pq.read_table(world_folder / "truth" / "presence")
    assert presence.schema.field("hour").type == pa.timestamp("us", tz="UTC")


def test_events_are_valid_sorted_in_their_day_and_on_cells_valid_that_day(
    world_folder: Path,
) -> None:
    cells = pq.read_table(world_folder / "cells.parquet").to_pandas().set_index("cell_id")
    devices = pq.read_table(world_folder / "truth" / "devices.parquet").to_pandas()
    tacs = set(pq.read_table(world_folder / "truth" / "tacs.parquet").column("tac").to_pylist())
    for path in sorted((world_folder / "events").rglob("*.parquet")):
        events = pq.read_table(path).to_pandas()
        day = date.fromisoformat(path.parent.name.removeprefix("date="))
        assert events["timestamp"].is_monotonic_increasing
        local = events["timestamp"].dt.tz_convert("Europe/Brussels").dt.date
        assert (local == day).all()
        assert set(events["cell_id"]) <= set(cells.index)
        used = cells.loc[events["cell_id"].unique()]
        assert (used["valid_from"].isna() | (used["valid_from"] <= day)).all()
        assert (used["valid_to"].isna() | (used["valid_to"] >= day)).all()
        assert set(events["user_id"]) <= set(devices["user_id"])
        assert set(events["event_type"]) <= EVENT_TYPES
        assert set(events["tac"]) <= tacs
        assert not events.duplicated().any()
    assert devices["user_id"].is_unique


def test_mcc_and_mnc_are_the_devices_home_network(world_folder: Path) -> None:
    events = _events(world_folder)
    devices = pq.read_table(world_folder / "truth" / "devices.parquet").to_pandas()
    merged = (
        events[["user_id", "mcc", "mnc"]]
        .drop_duplicates()
        .merge(devices, on="user_id", suffixes=("", "_truth"))
    )
    assert (merged["mcc"] == merged["mcc_truth"]).all()
    assert (merged["mnc"] == merged["mnc_truth"]).all()
    foreign = merged[merged["mcc"] != 206]
    assert (foreign["kind"] == "roamer").all() and len(foreign) > 0


def test_roamers_are_seen_only_between_their_arrival_and_departure(world_folder: Path) -> None:
    events = _events(world_folder)
    stays = pq.read_table(world_folder / "truth" / "roamer_stays.parquet").to_pandas()
    seen = events.merge(stays, on="user_id")
    assert len(seen) > 0
    assert (seen["timestamp"] >= seen["arrival"]).all()
    assert (seen["timestamp"] < seen["departure"]).all()


def test_presence_truth_is_hourly_for_the_sample(world_folder: Path) -> None:
    presence = pq.read_table(world_folder / "truth" / "presence").to_pandas()
    persons = pq.read_table(world_folder / "truth" / "persons.parquet").to_pandas()
    sampled = presence["person_id"].nunique()
    assert sampled == min(20_000, len(persons))
    assert len(presence) == sampled * 72
    home = presence["person_id"].map(persons.set_index("person_id")["home_area"])
    hour = presence["hour"].dt.tz_convert("Europe/Brussels").dt.hour.to_numpy()
    night = in_hours(hour, (1, 5))
    at_home = presence["area"][night] == home[night]
    assert 0.9 < at_home.mean() < 1.0  # the rest: away for the night, moved, night shifts
    assert presence["area"].isna().mean() < 0.05  # abroad
    assert (presence["area"][~night] != home[~night]).mean() > 0.1


def test_same_seed_gives_identical_files_whatever_the_threads(
    world_folder: Path, small_params: WorldParams, tmp_path: Path
) -> None:
    again = synthesize(out=tmp_path / "again", params=small_params, threads=1)
    assert _files(again.out) == _files(world_folder)
    other = WorldParams(scale=small_params.scale, days=1, seed=small_params.seed + 1)
    different = synthesize(out=tmp_path / "other", params=other)
    day = "truth/persons.parquet"
    assert _files(different.out)[day] != _files(world_folder)[day]


def test_too_small_a_scale_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CellcensusError, match="scale"):
        synthesize(out=tmp_path / "empty", params=WorldParams(scale=1e-7, days=1))


def test_a_previous_world_is_replaced(tmp_path: Path) -> None:
    out = tmp_path / "world"
    synthesize(out=out, params=WorldParams(scale=0.0005, days=2, presence_persons=10))
    synthesize(out=out, params=WorldParams(scale=0.0005, days=1, presence_persons=10))
    assert [path.name for path in (out / "events").iterdir()] == ["date=2011-03-07"]


def test_a_refused_run_leaves_the_previous_world_as_it_was(tmp_path: Path) -> None:
    out = tmp_path / "world"
    synthesize(out=out, params=WorldParams(scale=0.0005, days=1, presence_persons=10))
    before = _files(out)
    with pytest.raises(CellcensusError, match="threads"):
        synthesize(out=out, params=WorldParams(scale=0.0005, days=1), threads=0)
    with pytest.raises(CellcensusError, match="scale"):
        synthesize(out=out, params=WorldParams(scale=1e-7, days=1))
    assert _files(out) == before


def test_an_interrupted_world_is_no_delivery(tmp_path: Path) -> None:
    def interrupt(step: str, _fraction: float) -> None:
        if step.startswith("events of day 2"):
            raise KeyboardInterrupt

    out = tmp_path / "world"
    with pytest.raises(KeyboardInterrupt):
        synthesize(out=out, params=WorldParams(scale=0.0005, days=3), progress=interrupt)
    assert json.loads((out / "world.json").read_text())["status"] == "incomplete"
    assert not (out / "metadata.json").exists()


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
    params = WorldParams(scale=0.0005, days=2, start=date(2011, 3, 26), presence_persons=50)
    summary = synthesize(out=tmp_path / "dst", params=params)
    presence = pq.read_table(summary.out / "truth" / "presence").to_pandas()
    hours_per_person = presence.groupby("person_id").size()
    assert (hours_per_person == 24 + 23).all()
    events = pq.read_table(summary.out / "events" / "date=2011-03-27").to_pandas()
    local = events["timestamp"].dt.tz_convert("Europe/Brussels")
    assert (local.dt.date == date(2011, 3, 27)).all()
    assert not (local.dt.hour == 2).any()


def test_signalling_makes_the_data_denser(tmp_path: Path) -> None:
    base = WorldParams(scale=0.0005, days=1, presence_persons=10)
    plain = synthesize(out=tmp_path / "cdr", params=base)
    signalling = WorldParams(scale=0.0005, days=1, presence_persons=10, location_update_minutes=60)
    dense = synthesize(out=tmp_path / "lu", params=signalling)
    updates = _events(dense.out)
    assert (updates["event_type"] == "location_update").sum() > 10 * plain.devices
    assert dense.events > 2 * plain.events


def test_world_json_gives_back_the_parameters_the_world_was_made_with(
    small_world: WorldSummary, small_params: WorldParams
) -> None:
    document = json.loads((small_world.out / "world.json").read_text(encoding="utf-8"))
    assert WorldParams.from_document(document["parameters"]) == small_params
    faulty = WorldParams(scale=0.002, days=2, faults=FaultRates(duplicate=0.01))
    parameters = json.loads(json.dumps(dataclasses.asdict(faulty), default=str))
    assert WorldParams.from_document(parameters) == faulty


def test_tracked_homes_are_the_homes_the_country_places(
    small_params: WorldParams, small_country: SyntheticCountry
) -> None:
    tracked, home_xy = tracked_homes(small_params)
    residents = small_country.residents
    areas = residents.home_area[tracked]
    assert len(home_xy) == tracked.size
    homes = small_country.agents.places[: small_country.agents.persons, Column.HOME]
    assert (small_country.locations.area[homes] == areas).all()
    polygons = small_country.territory.polygons[areas]
    inside = [shapely.contains_xy(p, x, y) for p, (x, y) in zip(polygons, home_xy, strict=True)]
    assert np.mean(inside) > 0.99
