"""Accuracy of the certified algorithms against the synthetic world's ground truth.

One synthetic Belgium (0.15 % of the population, four weeks outside school holidays) is
generated, ingested (pseudonymised) and allocated to municipalities with the default sector
coverage once per session; each test runs one algorithm on the store and compares it with
``truth/`` at a stated tolerance. The tests play the holder: they map truth user ids to store
device ids with the holder's key.

The world's migration rate is raised from Belgium's 4.7 % to 100 % a year so that four weeks
hold enough movers to measure (about 50 of the holder's devices move between the two
periods); persons who move during the period are left out where their home is ambiguous.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cellcensus.holder.algorithms import usual_residence
from cellcensus.holder.algorithms.areas import allocation_on
from cellcensus.holder.algorithms.base import StoreTables
from cellcensus.holder.algorithms.device_filter import (
    DeviceFilterAlgorithmParameters,
    MultiSimParameters,
    Scope,
    Subscribers,
    cell_sites,
    multi_sim_hints,
    multi_sim_pairs,
)
from cellcensus.holder.algorithms.inbound_tourism import SEEN_ONLY
from cellcensus.holder.algorithms.internal_migration import (
    InternalMigrationParameters,
    period_nights,
    stayers,
)
from cellcensus.holder.algorithms.places import home_cells
from cellcensus.holder.algorithms.posterior import posterior_areas, posterior_shares
from cellcensus.holder.algorithms.registry import get_algorithm
from cellcensus.holder.enclave.compute import open_tables
from cellcensus.holder.geo import build_allocation, roll_up_allocation
from cellcensus.holder.geo.tile_footprint import build_tile_footprint
from cellcensus.holder.store import Store, ingest_dataset
from cellcensus.holder.store.pseudonym import load_or_create_key, pseudonymise
from cellcensus.reference import belgium, municipalities
from cellcensus.world import WorldParams, synthesize

pytestmark = pytest.mark.slow  # one four-week world, generated, ingested, allocated: 30-60 s

START = dt.date(2011, 3, 14)  # a Monday after the carnival holidays; Easter ones start 11 April
DAYS = 28
END = START + dt.timedelta(days=DAYS - 1)
PARAMS = WorldParams(scale=0.0015, days=DAYS, seed=7, start=START, migration_rate_per_year=1.0)
TIMEZONE = "Europe/Brussels"
PEOPLE = ("primary", "secondary")


@dataclass(frozen=True)
class Truth:
    """The world's ground truth, with each device's store id."""

    folder: Path
    persons: pd.DataFrame
    devices: pd.DataFrame
    migrations: pd.DataFrame

    def frame(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        return pd.read_parquet(self.folder / name, columns=columns)


@dataclass(frozen=True)
class AccuracyWorld:
    store: Store
    truth: Truth

    def tables(self, level: str = "municipality") -> StoreTables:
        return open_tables(self.store, level=level)


def allocated_world(root: Path, params: WorldParams) -> Store:
    """The world of `params` generated under `root`, ingested (key `root`/holder.key) and
    allocated to municipalities."""
    synthesize(out=root / "dataset", params=params)
    ingest_dataset(dataset=root / "dataset", store=root / "store", key_file=root / "holder.key")
    store = Store(root / "store")
    build_allocation(store=store, areas=municipalities())
    return store


@pytest.fixture(scope="session")
def accuracy_world(tmp_path_factory: pytest.TempPathFactory) -> AccuracyWorld:
    root = tmp_path_factory.mktemp("accuracy")
    store = allocated_world(root, PARAMS)
    key_file = root / "holder.key"
    roll_up_allocation(store=store, parent=_arrondissements(), level="arrondissement")
    build_tile_footprint(store)
    folder = root / "dataset" / "truth"
    devices = pd.read_parquet(folder / "devices.parquet")
    key = load_or_create_key(key_file=key_file)
    devices["device_id"] = pseudonymise(user_ids=devices["user_id"].tolist(), key=key)
    migrations = pd.read_parquet(folder / "migrations.parquet")
    migrations["date"] = pd.to_datetime(migrations["date"]).dt.date
    truth = Truth(
        folder=folder,
        persons=pd.read_parquet(folder / "persons.parquet"),
        devices=devices,
        migrations=migrations,
    )
    return AccuracyWorld(store=store, truth=truth)


def _arrondissements() -> pd.Series:
    links: pd.Series = belgium.crosswalk_2019().set_index("area_code")["arrondissement_2019"]
    return links


def top_area(tables: StoreTables) -> pd.Series:
    """Each cell's area of largest allocation weight (ties: the smallest area code)."""
    allocation = tables.allocation.to_pandas()
    ordered = allocation.sort_values(["cell_id", "weight", "area_code"], ascending=[1, 0, 1])
    areas: pd.Series = ordered.drop_duplicates("cell_id").set_index("cell_id")["area_code"]
    return areas


def pearson(a: pd.Series, b: pd.Series) -> float:
    return float(np.corrcoef(a.to_numpy(float), b.to_numpy(float))[0, 1])


def paired(truth: pd.Series, released: pd.Series) -> pd.DataFrame:
    """Both series on the union of their keys (0 where one has none)."""
    return pd.concat([truth.rename("truth"), released.rename("released")], axis=1).fillna(0.0)


# --- usual residence ------------------------------------------------------------------------


def test_usual_residence_places_nine_devices_in_ten_in_their_home_municipality(accuracy_world):
    """The device's most likely municipality by the tile posterior, against its true home.

    Measured 92.9 % (87.5 % by the home cell's allocation weights; 92.5 % and 87.4 % with
    nights from 20:00 to 07:00, before `usual_residence` 2.4). On the country with random
    towns (before GeoNames', docs/world.md): 90.4 % (docs/geography.md), 84.5 % by the
    allocation (cells straddle municipalities, and every home rule gave 83-86 %), 89.0 % by the
    posterior with nights counted as independent over five sectors, 88.5 % with the home
    cell's tiles alone as candidates.
    """
    tables = accuracy_world.tables()
    params = usual_residence.UsualResidenceParameters(min_nights=5)
    homes, nights = usual_residence.homes_and_nights(tables, params)
    assert tables.footprint is not None
    _, unplaced = posterior_shares(nights, homes, tables.footprint)
    # A home cell serving no tile at CANDIDATE_MIN or more keeps its allocation weights.
    assert unplaced.count().to_pandas() < 0.01 * homes.count().to_pandas()
    allocation = allocation_on(tables.allocation, None)
    shares = posterior_areas(nights, homes, tables.footprint, allocation).to_pandas()
    shares = shares.sort_values(["device_id", "share", "area_code"], ascending=[1, 0, 1])
    best = shares.drop_duplicates("device_id").set_index("device_id")["area_code"]
    by_cell = homes.to_pandas().sort_values(["device_id", "share", "cell_id"], ascending=[1, 0, 1])
    by_cell = by_cell.drop_duplicates("device_id").set_index("device_id")["cell_id"]
    truth = accuracy_world.truth
    movers = set(truth.migrations["person_id"])
    devices = truth.devices[truth.devices["kind"].isin(PEOPLE)]
    devices = devices[~devices["person_id"].isin(movers)].merge(truth.persons, on="person_id")
    devices = devices[devices["device_id"].isin(best.index)]
    assert len(devices) > 4000
    home = devices["home_area"].to_numpy()
    posterior = float((best.reindex(devices["device_id"]).to_numpy() == home).mean())
    cell_area = by_cell.reindex(devices["device_id"]).map(top_area(tables)).to_numpy()
    allocation = float((cell_area == home).mean())
    assert posterior >= 0.90, f"posterior: home municipality right for {posterior:.1%}"
    assert posterior >= allocation + 0.05, (posterior, allocation)
    # Each device's shares sum to its one home.
    assert np.allclose(shares.groupby("device_id")["share"].sum(), 1.0)


# --- present population --------------------------------------------------------------------


def test_present_population_follows_true_presence_per_municipality_and_hour(accuracy_world):
    """Devices per municipality and hour of the first week against the holder's subscribers.

    The truth counts the persons with a primary SIM of the holder (the algorithm counts
    devices: comparing with all persons would measure the regional market shares, which the
    NSO's expansion corrects, rather than the algorithm). Measured r = 0.986 (0.985 at
    night, on the country with random towns); with the last known position only
    (``max_backfill_minutes=0``, version 1.2) 0.970, 0.948 at night: a phone silent overnight
    is nearer its morning's cell, at home, than its evening's.
    """
    r = presence_agreement(accuracy_world)
    assert r >= 0.98, f"r = {r:.3f}"
    only_forward = presence_agreement(accuracy_world, max_backfill_minutes=0)
    assert only_forward < r - 0.01, (only_forward, r)


def test_the_bayesian_estimator_follows_true_presence_as_closely(accuracy_world):
    """One update (the posterior under the register prior) measured r = 0.988 (allocation 0.986)."""
    r = presence_agreement(accuracy_world, spatial_estimator="bayesian")
    assert r >= 0.98, f"r = {r:.3f}"


def test_usual_places_bring_brussels_day_night_ratio_near_the_truth(accuracy_world):
    """Brussels-Capital's devices at 11:00 over 03:00 on weekdays against the subscribers'.

    Measured: true 1.343; 1.189 from the nearest observations (-11.4 %: a phone silent
    through the working day counts at home, where it was seen in the morning and evening);
    1.270 (-5.4 %; -4.8 % on the country with random towns) with slots more than 3 hours from
    both observations at the device's usual place at that hour; r per municipality and hour
    0.987 either way.
    """
    values = {"slot_minutes": 60, "subscribers": "domestic", "start": START, "end": END}
    truth = accuracy_world.truth
    subscribers = set(truth.devices.loc[truth.devices["kind"] == "primary", "person_id"])
    presence = truth.frame("presence", columns=["person_id", "hour", "area"]).dropna()
    presence = presence[presence["person_id"].isin(subscribers)]
    local = presence["hour"].dt.tz_convert(TIMEZONE)
    presence = presence.assign(slot=local.dt.hour, weekday=local.dt.day_of_week < 5)
    brussels = set(municipalities().query("region == '4000'")["area_code"])
    presence = presence[presence["weekday"] & presence["area"].isin(brussels)]
    true_ratio = _day_over_night(presence.groupby("slot").size())

    def ratio(**more: object) -> float:
        released = get_algorithm("present_population").run(
            accuracy_world.tables(), {**values, **more}
        )
        weekday = pd.to_datetime(released["local_date"]).dt.day_of_week < 5
        released = released[weekday & released["area_code"].isin(brussels)]
        return _day_over_night(released.groupby("slot")["device_count"].sum())

    nearest, usual = ratio(), ratio(usual_place_after_minutes=180)
    assert nearest / true_ratio - 1 < -0.09, (nearest, true_ratio)
    assert abs(usual / true_ratio - 1) <= 0.06, (usual, true_ratio)
    assert presence_agreement(accuracy_world, usual_place_after_minutes=180) >= 0.98


def _day_over_night(per_slot: pd.Series) -> float:
    return float(per_slot[11] / per_slot[3])


def presence_agreement(accuracy_world: AccuracyWorld, **values: object) -> float:
    """r of devices per municipality and hour of the first week with the true subscribers."""
    week_end = START + dt.timedelta(days=6)
    released = get_algorithm("present_population").run(
        accuracy_world.tables(),
        {"slot_minutes": 60, "subscribers": "domestic", "start": START, "end": week_end, **values},
    )
    released["local_date"] = pd.to_datetime(released["local_date"]).dt.date
    truth = accuracy_world.truth
    subscribers = set(truth.devices.loc[truth.devices["kind"] == "primary", "person_id"])
    presence = truth.frame("presence", columns=["person_id", "hour", "area"]).dropna()
    presence = presence[presence["person_id"].isin(subscribers)]
    local = presence["hour"].dt.tz_convert(TIMEZONE)
    presence = presence.assign(local_date=local.dt.date, slot=local.dt.hour)
    presence = presence[presence["local_date"] <= week_end]
    keys = ["local_date", "slot", "area_code"]
    true_counts = presence.rename(columns={"area": "area_code"}).groupby(keys).size()
    both = paired(true_counts, released.set_index(keys)["device_count"])
    assert len(both) > 0.8 * 7 * 24 * 589
    return pearson(both["truth"], both["released"])


# --- home-work flows -------------------------------------------------------------------------


def test_home_work_flows_follow_true_commuting_between_arrondissements(accuracy_world):
    released = (
        get_algorithm("home_work_flows")
        .run(accuracy_world.tables("arrondissement"), {})
        .set_index(["home_area", "work_area"])["device_count"]
    )
    persons = accuracy_world.truth.persons.dropna(subset=["work_area"])
    links = _arrondissements()
    flows = pd.DataFrame(
        {
            "home_area": persons["home_area"].map(links),
            "work_area": persons["work_area"].map(links),
        }
    ).value_counts()
    both = paired(flows, released)
    assert released.sum() > 3000
    r = pearson(both["truth"], both["released"])
    assert r >= 0.95, f"r = {r:.3f}"


# --- trips ---------------------------------------------------------------------------------


def test_trips_follow_true_moves_between_arrondissements(accuracy_world):
    """Trips between arrondissements over four weeks against the subscribers' true moves.

    A true move is a change of arrondissement between two consecutive hours of a person's
    local day (distinct per person, day and pair, as the release counts devices). Measured:
    r = 0.963 over the pairs (0.970 on the country with random towns, where the release held
    18 % of the true moves, 14 % to 24 % by origin): a trip is seen only when the phone makes
    events at both ends of it on the day (docs/algorithms/trips_od.md). With stays per cell
    rather than per site, r = 0.960 and 11 %: a phone staying put is handed between its
    site's cells.
    """
    released = get_algorithm("trips_od").run(accuracy_world.tables("arrondissement"), {})
    released = released[released["origin"] != released["destination"]]
    estimated = released.groupby(["origin", "destination"])["device_count"].sum()
    truth = accuracy_world.truth
    subscribers = set(truth.devices.loc[truth.devices["kind"] == "primary", "person_id"])
    presence = truth.frame("presence", columns=["person_id", "hour", "area"]).dropna()
    presence = presence[presence["person_id"].isin(subscribers)].sort_values(["person_id", "hour"])
    presence["arrondissement"] = presence["area"].map(_arrondissements())
    presence["local_date"] = presence["hour"].dt.tz_convert(TIMEZONE).dt.date
    day = presence.groupby(["person_id", "local_date"])["arrondissement"]
    presence["origin"] = day.shift()
    moves = presence[
        presence["origin"].notna() & (presence["origin"] != presence["arrondissement"])
    ]
    moves = moves.drop_duplicates(["person_id", "local_date", "origin", "arrondissement"])
    true_moves = moves.groupby(["origin", "arrondissement"]).size()
    true_moves.index.names = ["origin", "destination"]

    both = paired(true_moves, estimated)
    assert len(both) > 500
    r = pearson(both["truth"], both["released"])
    assert r >= 0.95, f"r = {r:.3f}"
    share = both["released"].sum() / both["truth"].sum()
    assert share >= 0.15, f"{share:.1%} of the true moves"


# --- inbound tourism -------------------------------------------------------------------------


def true_roamer_nights(stays: pd.DataFrame, first: dt.date, last: dt.date) -> pd.DataFrame:
    """One row per night (local date of its evening) a visitor spent, in [first, last]."""
    arrival = stays["arrival"].dt.tz_convert(TIMEZONE).dt.date
    rows = [
        (user_id, day + dt.timedelta(days=k), area)
        for user_id, day, nights, area in zip(
            stays["user_id"], arrival, stays["nights"], stays["area"], strict=True
        )
        for k in range(nights)
    ]
    nights = pd.DataFrame(rows, columns=["user_id", "night", "area"])
    return nights[(nights["night"] >= first) & (nights["night"] <= last)]


TOURISM_VISITORS = 150
"""Times the world's foreign visitors in the tourism tests' world (121,014 true nights, 17 s
to make): at ten times, Walloon Brabant had 51 true nights of 24 visitors, whose count varied by
16 % from one sample of visitors to the next, so a 10 % bar measured the draw; here the
smallest province has 691 and the errors below are the method's."""
PROVINCE_NIGHTS = 50
"""True nights a province needs for its released nights to be held to a tolerance."""
BRUSSELS, FLEMISH_BRABANT = "4000", "20001"  # the Brussels region counts as a province
WALLOON_BRABANT = "20002"


@dataclass(frozen=True)
class TourismWorld:
    store: Store
    truth: Path

    def tables(self) -> StoreTables:
        return open_tables(self.store, level="municipality")


@pytest.fixture(scope="session")
def tourism_world(tmp_path_factory: pytest.TempPathFactory) -> TourismWorld:
    """The accuracy world with `TOURISM_VISITORS` times the visitors, ingested, allocated and
    with its tile footprint (benchmarks/bench_tourism_provinces.py --visitors 150 makes the
    same world)."""
    root = tmp_path_factory.mktemp("tourism")
    arrivals = PARAMS.roamer_arrivals_per_day * TOURISM_VISITORS
    store = allocated_world(root, replace(PARAMS, roamer_arrivals_per_day=arrivals))
    build_tile_footprint(store)
    return TourismWorld(store=store, truth=root / "dataset" / "truth")


def nights_per_province(world: TourismWorld, **params: object) -> pd.DataFrame:
    """Released and true visitor nights per province (Brussels as one): truth, released.

    The truth counts the nights of evenings the period sees (its first morning's night to
    its last evening's).
    """
    period = {"start": START, "end": END}  # so no expected night falls outside it
    released = get_algorithm("inbound_tourism").run(world.tables(), {**period, **params})
    nights = released[released["indicator"] == "nights"]
    province = municipalities().set_index("area_code")["province"].fillna("Brussels")
    estimated = nights.groupby(nights["area_code"].map(province))["device_count"].sum()
    stays = pd.read_parquet(world.truth / "roamer_stays.parquet")
    true_nights = true_roamer_nights(stays, START - dt.timedelta(days=1), END)
    return paired(true_nights["area"].map(province).value_counts(), estimated)


def test_inbound_tourism_corrections_bring_the_nights_close_to_the_truth(tourism_world):
    """The nights no event shows, added by the three corrections, against the true nights.

    Brussels and the two Brabants (the province of Brabant until 1995) count as one here:
    what crosses their borders is the spatial step's (the next tests), and Brussels has nine
    times their visitor nights. Measured (121,014 true nights): -2.1 % over the country
    (-32.3 % counting only what the events show); in the 9 areas -4.4 % to +0.8 % (-35.3 %
    to -29.4 %). Held at 5 % over the country and 8 % per area.
    """
    corrected = brabant_area(nights_per_province(tourism_world))
    seen = brabant_area(nights_per_province(tourism_world, **SEEN_ONLY))
    country = corrected.sum()
    assert country["truth"] > 50_000
    assert abs(country["released"] / country["truth"] - 1) <= 0.05, country.to_dict()
    assert seen["released"].sum() / country["truth"] - 1 <= -0.15  # what the corrections add
    assert (corrected["truth"] >= PROVINCE_NIGHTS).all() and len(corrected) == 9
    error = corrected["released"] / corrected["truth"] - 1
    assert error.abs().max() <= 0.08, error.round(3).to_dict()


def brabant_area(both: pd.DataFrame) -> pd.DataFrame:
    """`both` (per province) with Flemish and Walloon Brabant added to Brussels."""
    province = both.index.to_series().replace(
        {FLEMISH_BRABANT: BRUSSELS, WALLOON_BRABANT: BRUSSELS}
    )
    return both.groupby(province.to_numpy()).sum()


def test_inbound_tourism_bayesian_estimator_follows_the_visitors_not_the_residents(
    tourism_world,
):
    """The Bayesian estimator against the allocation weights, which follow residents.

    Measured: Flemish Brabant +8.1 % against +33.8 % (4 % of Brussels' visitor nights,
    nearly ten times its own, cross the border by the allocation weights); the average error
    over the provinces 3.6 % against 6.1 %; the same nights over the country (the estimator
    moves nights, never adds any).
    """
    bayesian = nights_per_province(tourism_world, spatial_estimator="bayesian")
    allocated = nights_per_province(tourism_world)
    assert bayesian["released"].sum() == pytest.approx(allocated["released"].sum(), rel=1e-9)
    error = {
        name: (both["released"] / both["truth"] - 1)[both["truth"] >= PROVINCE_NIGHTS]
        for name, both in (("bayesian", bayesian), ("allocation", allocated))
    }
    brabant = FLEMISH_BRABANT
    assert abs(error["bayesian"][brabant]) <= 0.20, error["bayesian"].round(3).to_dict()
    assert abs(error["bayesian"][brabant]) < abs(error["allocation"][brabant]) / 2
    assert error["bayesian"].abs().mean() < error["allocation"].abs().mean()


def test_inbound_tourism_nights_per_province_within_ten_percent(tourism_world):
    """Nights spent by foreign visitors per province (Brussels as one), in provinces with
    at least 50 true nights (`nights_per_province`), by the Bayesian estimator.

    Measured: Flemish Brabant +8.1 % (4,370 true nights), Walloon Brabant +5.6 % (691), the
    others -4.9 % to -1.4 %; on a draw with 100 times the visitors +5.3 %, +4.7 % and -8.0 %
    (Namur) to +2.8 %; with 60 times, +7.0 % and -8.5 %, but Limburg (619 nights) -11.1 %, as
    by the allocation weights (-9.9 %): smaller draws measure their visitors. Before the stays
    never seen at night were represented by those seen (version 1.6) Flemish Brabant was
    +14.3 %: their nights sat at their day-time cells, often a sight across Brussels' border
    (docs/algorithms/inbound_tourism.md).
    """
    both = nights_per_province(tourism_world, spatial_estimator="bayesian")
    both = both[both["truth"] >= PROVINCE_NIGHTS]
    assert len(both) >= 8
    error = both["released"] / both["truth"] - 1
    assert error.abs().max() <= 0.10, error.round(3).to_dict()


# --- internal migration ----------------------------------------------------------------------

BEFORE = (START, START + dt.timedelta(days=11))  # 12 nights
AFTER = (START + dt.timedelta(days=16), END)  # 12 nights, after a gap of four days


def test_internal_migration_finds_movers_with_precision_and_recall_of_four_in_five(
    accuracy_world,
):
    """Devices whose home municipality changed against the persons who moved in between.

    Movers are devices whose earlier and later homes (the algorithm's home cells, kept or
    reset by its stayer rule, at their largest-weight municipality) differ. Persons who moved
    during either period are left out (their home in that period is ambiguous).
    """
    tables = accuracy_world.tables()
    params = InternalMigrationParameters(
        before_start=BEFORE[0],
        before_end=BEFORE[1],
        after_start=AFTER[0],
        after_end=AFTER[1],
        min_nights=5,
    )
    released = get_algorithm("internal_migration").run(tables, params.model_dump())
    nights = (period_nights(tables, params, *BEFORE), period_nights(tables, params, *AFTER))
    periods = (home_cells(nights[0], params), home_cells(nights[1], params))
    stayed = stayers(periods, nights, cell_sites(tables.cells), params.max_visit_nights)
    before, after = (period.to_pandas() for period in periods)
    homes = before.merge(after, on="device_id", suffixes=("_before", "_after"))
    assert homes["device_id"].is_unique  # the default rule gives one home cell
    area = top_area(tables)
    truth = accuracy_world.truth
    moves = truth.migrations
    between = moves[(moves["date"] > BEFORE[1]) & (moves["date"] <= AFTER[0])]
    during = set(moves["person_id"]) - set(between["person_id"])
    devices = truth.devices[truth.devices["kind"].isin(PEOPLE)]
    devices = devices[~devices["person_id"].isin(during)]
    found = devices.merge(homes, on="device_id")
    found["moved"] = found["person_id"].isin(between["person_id"])
    changed = found["cell_id_before"].map(area) != found["cell_id_after"].map(area)
    found["detected"] = changed & ~found["device_id"].isin(set(stayed.to_pandas()["device_id"]))
    hits = int((found["moved"] & found["detected"]).sum())
    precision = hits / max(int(found["detected"].sum()), 1)
    recall = hits / int(found["moved"].sum())
    assert found["moved"].sum() >= 30
    assert precision >= 0.8, f"precision {precision:.2f}"
    assert recall >= 0.8, f"recall {recall:.2f}"
    # The release agrees: its off-diagonal mass is about the detected movers (spread over
    # areas, with the movers between cells of one area and those of the other device kinds)
    off_diagonal = released.loc[released["origin"] != released["destination"], "device_count"]
    # (without the stayer rule, ping-pong between cells would put about four times as many).
    assert found["detected"].sum() <= off_diagonal.sum() <= 2 * found["detected"].sum()


# --- multi-SIM hints -------------------------------------------------------------------------


def test_multi_sim_hints_pair_the_devices_of_one_person(accuracy_world):
    """Hinted pairs against the persons with two SIMs of the holder.

    Measured: 86 % of the pairs are one person's, 46 % of such persons are found (a data-only
    second SIM is rarely seen in the same hours as the first). Bars: 75 % and 35 %.
    """
    tables = accuracy_world.tables()
    params = DeviceFilterAlgorithmParameters(subscribers=Subscribers.DOMESTIC)
    scope = Scope(tables, params, params.subscribers, params.filters)
    kept = scope.keep(scope.events("device_id", "local_date", "local_hour", "cell_id"))
    pairs = multi_sim_pairs(kept, tables.cells, MultiSimParameters()).to_pandas()
    hints = set(multi_sim_hints(scope, MultiSimParameters()).to_pandas()["device_id"])
    devices = accuracy_world.truth.devices
    owner = devices.dropna(subset=["person_id"]).set_index("device_id")["person_id"]
    same = pairs["device_a"].map(owner) == pairs["device_b"].map(owner)
    two_sims = int((owner.value_counts() > 1).sum())
    assert len(pairs) >= 50
    assert same.mean() >= 0.75, f"precision {same.mean():.2f}"
    assert same.sum() / two_sims >= 0.35, f"recall {same.sum() / two_sims:.2f}"
    # One device counted per pair (a device in two pairs is counted once).
    assert len(pairs) >= len(hints) >= 0.9 * len(pairs)
