"""The world's statistics against its parameters and the published figures (docs/world.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import shapely

from cellcensus.world import WorldParams, WorldSummary
from cellcensus.world.clock import in_hours
from cellcensus.world.country import SyntheticCountry
from cellcensus.world.evidence import TOURIST_DESTINATIONS
from cellcensus.world.places import Column, PoiKind
from cellcensus.world.roaming import SIGHTS, SIGHTSEEING_KM


@pytest.fixture(scope="module")
def events(world_folder: Path) -> pd.DataFrame:
    frame: pd.DataFrame = pq.read_table(world_folder / "events").to_pandas()
    devices = pq.read_table(world_folder / "truth" / "devices.parquet").to_pandas()
    frame["kind"] = frame["user_id"].map(devices.set_index("user_id")["kind"])
    local = frame["timestamp"].dt.tz_convert("Europe/Brussels")
    frame["hour"] = local.dt.hour
    frame["day"] = local.dt.date
    return frame


def test_activity_is_heavy_tailed(events: pd.DataFrame) -> None:
    people = events[events["kind"] == "primary"]
    per_device = np.sort(people["user_id"].value_counts().to_numpy())[::-1]
    top_decile = per_device[: per_device.size // 10].sum() / per_device.sum()
    assert top_decile > 0.3
    per_device_day = people.groupby(["user_id", "day"]).size()
    assert per_device_day.quantile(0.99) > 5 * per_device_day.median()


def test_more_events_by_day_than_at_night(events: pd.DataFrame) -> None:
    people = events[events["kind"].isin(["primary", "secondary"])]
    hour = people["hour"].to_numpy()
    night, day = in_hours(hour, (0, 6)), in_hours(hour, (10, 20))
    # Background data of smartphones is flat over the day; calls and SMS follow the rhythm.
    assert (day.sum() / 10) > 2.5 * (night.sum() / 6)
    talk = people["event_type"].str.startswith(("call", "sms")).to_numpy()
    assert ((day & talk).sum() / 10) > 6 * ((night & talk).sum() / 6)


def test_weekend_effect(events: pd.DataFrame, small_params: WorldParams) -> None:
    people = events[events["kind"] == "primary"]
    per_day = people.groupby("day").size().to_numpy()  # Friday, Saturday, Sunday
    ratio = per_day[1:].mean() / per_day[0]
    assert abs(ratio - small_params.weekend_activity) < 0.05


def test_machines_report_regularly(events: pd.DataFrame, world_folder: Path) -> None:
    machines = pq.read_table(world_folder / "truth" / "machines.parquet").to_pandas()
    static = set(
        machines.loc[~machines["moving"] & (machines["machine"] != "payment terminal"), "user_id"]
    )
    m2m = events[events["user_id"].isin(static)].sort_values(["user_id", "timestamp"])
    gaps = m2m.groupby("user_id")["timestamp"].diff().dt.total_seconds().dropna()
    per_device = gaps.groupby(m2m["user_id"]).agg(["mean", "std"])
    variation = (per_device["std"] / per_device["mean"]).median()
    assert variation < 0.05  # regular timing; a person's inter-event times vary over 100%
    people = events[events["kind"] == "primary"].sort_values(["user_id", "timestamp"])
    person_gaps = people.groupby("user_id")["timestamp"].diff().dt.total_seconds().dropna()
    person_variation = person_gaps.groupby(people["user_id"]).agg(["mean", "std"])
    assert (person_variation["std"] / person_variation["mean"]).median() > 1.0
    # Static machines stay on a handful of cells; vehicles move across many.
    cells = events[events["kind"] == "m2m"].groupby("user_id")["cell_id"].nunique()
    moving = set(machines.loc[machines["moving"], "user_id"])
    assert cells[cells.index.isin(static)].median() <= 4
    assert cells[cells.index.isin(moving)].median() >= 5


def test_ping_pong_between_cells_at_home(events: pd.DataFrame) -> None:
    night = events[(events["kind"] == "primary") & in_hours(events["hour"].to_numpy(), (1, 5))]
    busy = night.groupby("user_id").filter(lambda group: len(group) >= 5)
    cells = busy.groupby("user_id")["cell_id"].nunique()
    assert 0.2 < np.mean(cells > 1) < 0.95


def test_inbound_roamers_go_to_tourist_places(small_country: SyntheticCountry) -> None:
    territory = small_country.territory
    stays = small_country.stays
    tourist = np.zeros(territory.size, dtype=bool)
    for destination in TOURIST_DESTINATIONS:
        tourist |= territory.codes_matching(destination.prefixes)
    assert np.mean(tourist[stays.area]) > 0.7
    assert tourist.sum() < 0.2 * territory.size
    origins = np.bincount(stays.origin)
    assert origins[:4].sum() > 0.6 * stays.size  # the neighbours first
    assert 1.0 < stays.nights[stays.nights > 0].mean() < 4.0


def test_each_visitor_sleeps_and_sightsees_at_places_of_its_own(
    small_country: SyntheticCountry,
) -> None:
    """Accommodations and sights are not the area's few leisure places: at small scales
    those are one or two per municipality, and their cells would carry all its visitors'
    nights and evenings."""
    stays, locations = small_country.stays, small_country.locations
    home = stays.places[:, Column.HOME]
    assert np.unique(home).size == stays.size
    for column in (Column.NEW_HOME, Column.WORK, Column.TRIP, Column.STAY):
        assert (stays.places[:, column] == home).all()
    assert (locations.area[home] == stays.area).all()
    polygons = small_country.territory.polygons[stays.area]
    x, y = stays.accommodation_xy.T
    assert (
        np.mean([shapely.contains_xy(p, a, b) for p, a, b in zip(polygons, x, y, strict=True)])
        > 0.99
    )
    busiest = np.bincount(stays.area).argmax()
    leisure = small_country.pois.count[PoiKind.LEISURE, busiest]
    cells = np.unique(locations.sector[home[stays.area == busiest], 0])
    assert cells.size > leisure
    sights = stays.places[:, list(SIGHTS)]
    assert np.unique(np.concatenate([home, sights.ravel()])).size == 4 * stays.size
    # Two sights in the destination, the third in a nearby area (a wrong index: ~80 km).
    assert (locations.area[sights[:, :2]] == stays.area[:, None]).all()
    assert (locations.area[sights[:, 2]] != stays.area).all()
    nearby = stays.location_xy[sights[:, 2] - home[0]]
    assert np.median(np.hypot(*(nearby - stays.accommodation_xy).T)) < 3 * SIGHTSEEING_KM * 1000
    seen = np.unique(locations.sector[sights[stays.area == busiest, :2].ravel(), 0])
    assert seen.size > leisure


def test_migrants_live_in_their_new_home_after_moving(
    small_world: WorldSummary, small_country: SyntheticCountry
) -> None:
    moves = pq.read_table(small_world.out / "truth" / "migrations.parquet").to_pandas()
    assert (moves["from_area"] != moves["to_area"]).all()
    presence = pq.read_table(small_world.out / "truth" / "presence").to_pandas()
    presence = presence.drop(columns="date")  # the partition column
    sampled = presence[presence["person_id"].isin(moves["person_id"])]
    if sampled.empty:
        pytest.skip("no mover in the presence sample of this small world")
    hour = sampled["hour"].dt.tz_convert("Europe/Brussels")
    night = sampled[hour.dt.hour == 3].merge(moves, on="person_id")
    after = night["hour"].dt.tz_convert("Europe/Brussels").dt.date >= night["date"]
    assert (night.loc[after, "area"] == night.loc[after, "to_area"]).mean() > 0.8
