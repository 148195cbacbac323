"""Inbound tourism nights per province against the world's visitors, and where they spill.

Usage:
    python benchmarks/bench_tourism_provinces.py --world DIR [--visitors 5] [--iterations 1 10]
        [--night-hours 22 8] [--true-prior]

DIR receives the accuracy test's synthetic Belgium (0.15 %, four weeks from 14 March 2011,
seed 7: tests/holder/algorithms/test_accuracy.py) with `--visitors` times the foreign
visitors (`roamer_arrivals_per_day`; 150 times is the tourism tests' world), generated,
ingested and allocated unless DIR already holds it. Printed:

- per province (the Brussels region as one), the true visitor nights (the nights of evenings
  the period sees) and the error of `inbound_tourism`'s released nights: by the allocation
  weights (the default), and so counting only the nights its events show; for each
  `--iterations`, by the tile estimator (`spatial.tile_bayesian_counts`: the register prior,
  then that many updates) fed the algorithm's nights per cell, which is what its
  ``spatial_estimator="bayesian"`` released with as many ``iterations`` up to version 1.6;
  ``bayesian``, what the algorithm's Bayesian estimator releases (version 1.7: the stays
  never seen at night placed as the seen are, 10 updates); by each
  roamer's tile posterior (`posterior.posterior_areas`, usual residence's ``posterior``: its
  nights per cell as evidence); and with every night of a run of consecutive nights at the
  run's cell of most nights (`at_stay_cells`), not at each night's own;
- with ``--true-prior``, the bounds: the tile estimator and each roamer's posterior with the
  world's visitor nights per tile as prior, and the allocation weights of each cell times its
  municipalities' visitor nights per registered resident (what tourist beds could give);
- the share of the nights of Brussels' visitors placed in Flemish Brabant and the reverse,
  and the same shares of residents' home cells (`usual_residence`, its allocation weights):
  how far each spills over the border.

`--night-hours` sets the algorithm's night (default: its own, 20 to 7).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
from pathlib import Path

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from pyproj import Transformer

from cellcensus.holder.algorithms import inbound_tourism as tourism
from cellcensus.holder.algorithms import usual_residence
from cellcensus.holder.algorithms.areas import allocation_on, count_by, spread
from cellcensus.holder.algorithms.base import StoreTables, TileFootprint
from cellcensus.holder.algorithms.device_filter import Scope, Subscribers
from cellcensus.holder.algorithms.places import NIGHT_COLUMNS, summarise_nights
from cellcensus.holder.algorithms.posterior import posterior_areas
from cellcensus.holder.algorithms.spatial import tile_bayesian_counts
from cellcensus.holder.enclave.compute import open_tables
from cellcensus.holder.geo import build_allocation
from cellcensus.holder.geo.allocation import DEFAULT_TILE_M
from cellcensus.holder.geo.footprint import grid_tiles
from cellcensus.holder.geo.projection import GRID_CRS
from cellcensus.holder.geo.tile_footprint import build_tile_footprint
from cellcensus.holder.store import Store, ingest_dataset
from cellcensus.holder.store.pseudonym import load_or_create_key, pseudonymise
from cellcensus.reference import belgium, municipalities
from cellcensus.world import WorldParams, synthesize
from cellcensus.world.country import SyntheticCountry, build_country
from cellcensus.world.territory import PROJECTED_CRS

START = dt.date(2011, 3, 14)
DAYS = 28
END = START + dt.timedelta(days=DAYS - 1)
ACCURACY_WORLD = WorldParams(
    scale=0.0015, days=DAYS, seed=7, start=START, migration_rate_per_year=1.0
)
BRUSSELS, FLEMISH_BRABANT = "4000", "20001"  # the region counts as a province
TIMEZONE = "Europe/Brussels"


def build(world: Path, visitors: float) -> None:
    """The accuracy world with `visitors` times the visitors, ingested and allocated."""
    arrivals = ACCURACY_WORLD.roamer_arrivals_per_day * visitors
    synthesize(
        out=world / "dataset",
        params=dataclasses.replace(ACCURACY_WORLD, roamer_arrivals_per_day=arrivals),
    )
    ingest_dataset(dataset=world / "dataset", store=world / "store", key_file=world / "holder.key")
    store = Store(world / "store")
    build_allocation(store=store, areas=municipalities())
    build_tile_footprint(store)


def provinces() -> pd.Series:
    """Each municipality's province (the Brussels region as one)."""
    province: pd.Series = municipalities().set_index("area_code")["province"]
    return province


def true_nights(world: Path, key_file: Path) -> pd.DataFrame:
    """device_id, area: one row per visitor night of an evening the period sees."""
    stays = pd.read_parquet(world / "dataset" / "truth" / "roamer_stays.parquet")
    stays["device_id"] = pseudonymise(
        user_ids=stays["user_id"].tolist(), key=load_or_create_key(key_file=key_file)
    )
    arrival = stays["arrival"].dt.tz_convert(TIMEZONE).dt.date
    rows = [
        (device, day + dt.timedelta(days=k), area)
        for device, day, nights, area in zip(
            stays["device_id"], arrival, stays["nights"], stays["area"], strict=True
        )
        for k in range(nights)
    ]
    nights = pd.DataFrame(rows, columns=["device_id", "night", "area"])
    return nights[(nights["night"] >= START - dt.timedelta(days=1)) & (nights["night"] <= END)]


def counted_nights(
    tables: StoreTables, params: tourism.InboundTourismParameters
) -> tuple[ir.Table, ir.Table, ir.Table]:
    """The algorithm's counted nights, the roamers' days and their night summary."""
    scope = Scope(tables, params, Subscribers.INBOUND, params.filters)
    events = scope.events(*NIGHT_COLUMNS, "timestamp")
    nights = tables.materialize(scope.keep(summarise_nights(events, params)))
    days = tables.materialize(scope.keep(tourism.daily_activity(events)))
    observed = nights.select("device_id", "night").distinct()
    silent = tourism.silent_nights(days, observed, max_silent_days=params.max_silent_days)
    return tables.materialize(tourism.night_cells(nights, days, params, silent)), days, nights


def at_stay_cells(counted: ir.Table, nights: ir.Table) -> ir.Table:
    """Every counted night of a run of consecutive ones at the run's cell of most nights
    seen (ties: most events, then the smallest cell id), not at each night's own cell."""
    rows = counted.to_pandas().sort_values(["device_id", "night"])
    rows["run"] = rows.groupby("device_id")["arrival"].cumsum()
    seen = nights.to_pandas().merge(rows[["device_id", "night", "run"]], on=["device_id", "night"])
    per_cell = seen.groupby(["device_id", "run", "cell_id"], as_index=False).agg(
        nights=("night", "nunique"), events=("events", "sum")
    )
    per_cell = per_cell.sort_values(
        ["device_id", "run", "nights", "events", "cell_id"], ascending=[1, 1, 0, 0, 1]
    ).drop_duplicates(["device_id", "run"])
    stay = rows.merge(
        per_cell[["device_id", "run", "cell_id"]], on=["device_id", "run"], how="left"
    )
    stay["cell_id"] = stay["cell_id_y"].fillna(stay["cell_id_x"])  # a run seen only by day
    table = ibis.memtable(stay[["device_id", "night", "cell_id", "arrival"]])
    return table.mutate(night=table.night.cast("date"))


def rebuilt(world: Path) -> SyntheticCountry:
    """The world's country, rebuilt from its parameters (its visitors' stays and places)."""
    document = json.loads((world / "dataset" / "world.json").read_text(encoding="utf-8"))
    return build_country(params=WorldParams.from_document(document["parameters"]))


def true_prior(country: SyntheticCountry, footprint: TileFootprint) -> TileFootprint:
    """`footprint` with the world's visitor nights in the period per tile as the prior.

    Each visit's accommodation weighs its nights of evenings the period sees; tiles without
    one get 0.05 of a night, so that they stay possible.
    """
    stays = country.stays
    arrival = pd.to_datetime(stays.arrival_us, unit="us", utc=True).tz_convert(TIMEZONE)
    evening = (arrival.normalize().tz_localize(None) - pd.Timestamp(START)).days.to_numpy() + 1
    # The period's evenings are 0 (the one before START) .. DAYS.
    first = np.maximum(evening, 0)
    nights = np.maximum(np.minimum(evening + stays.nights, DAYS + 1) - first, 0)
    xy = stays.accommodation_xy
    x, y = Transformer.from_crs(PROJECTED_CRS, GRID_CRS, always_xy=True).transform(
        xy[:, 0], xy[:, 1]
    )
    tiles = grid_tiles(municipalities(), size_m=DEFAULT_TILE_M)
    cell = pd.MultiIndex.from_arrays([tiles.x // DEFAULT_TILE_M, tiles.y // DEFAULT_TILE_M])
    found = cell.get_indexer(pd.MultiIndex.from_arrays([x // DEFAULT_TILE_M, y // DEFAULT_TILE_M]))
    inside = found >= 0
    per_tile = np.bincount(found[inside], weights=nights[inside], minlength=len(tiles.x))
    prior = footprint.tiles.to_pandas()
    # A tile on a border has a part in each municipality: each its share of the tile's nights.
    prior["log_prior"] = np.log((per_tile[prior["tile"].to_numpy()] + 0.05) * prior["share"])
    return TileFootprint(
        cells=footprint.cells, serving=footprint.serving, tiles=ibis.memtable(prior)
    )


def visitor_weights(allocation: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """`allocation` with each cell's weights times its municipalities' true visitor nights
    per registered resident, normalised per cell: the most tourist beds per municipality could
    tell (a municipality without a visitor keeps a hundredth of a night)."""
    residents = belgium.register_population(2011).set_index("area_code")["population"]
    per_resident = (truth["area"].value_counts().reindex(residents.index).fillna(0) + 0.01) / (
        residents
    )
    weight = allocation["weight"] * allocation["area_code"].map(per_resident).fillna(0.0)
    version = [allocation["cell_id"], allocation["valid_from"]]  # each version sums to 1
    total = weight.groupby(version, dropna=False).transform("sum")
    return allocation.assign(weight=weight / total)


def errors(truth: pd.Series, released: pd.DataFrame) -> pd.Series:
    """released / true - 1 per province, from released device_count per area_code."""
    per_province = released.groupby(released["area_code"].map(provinces()))["device_count"].sum()
    return (per_province.reindex(truth.index).fillna(0.0) / truth - 1).round(3)


def spill(rows: pd.DataFrame, true_area: str, share: str) -> pd.Series:
    """Share of the rows of each true province placed in the other (Brussels, Fl. Brabant)."""
    province = provinces()
    rows = rows.assign(true=rows[true_area].map(province), placed=rows["area_code"].map(province))
    by = rows.groupby(["true", "placed"])[share].sum()
    return pd.Series(
        {
            "Brussels -> Flemish Brabant": by[BRUSSELS, FLEMISH_BRABANT] / by[BRUSSELS].sum(),
            "Flemish Brabant -> Brussels": by[FLEMISH_BRABANT, BRUSSELS]
            / by[FLEMISH_BRABANT].sum(),
        }
    ).round(3)


def resident_homes(world: Path, tables: StoreTables, key_file: Path) -> pd.DataFrame:
    """device_id, area_code, weight, home_area: residents' home cells by their weights."""
    params = usual_residence.UsualResidenceParameters(min_nights=5)
    homes, _ = usual_residence.homes_and_nights(tables, params)
    allocation = allocation_on(tables.allocation, None)
    placed = spread(homes, allocation, share="share").to_pandas()
    truth = world / "dataset" / "truth"
    devices = pd.read_parquet(truth / "devices.parquet").merge(
        pd.read_parquet(truth / "persons.parquet"), on="person_id"
    )
    key = load_or_create_key(key_file=key_file)
    devices["device_id"] = pseudonymise(user_ids=devices["user_id"].tolist(), key=key)
    return pd.DataFrame(placed.merge(devices[["device_id", "home_area"]], on="device_id"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=Path, required=True)
    parser.add_argument("--visitors", type=float, default=5.0)
    parser.add_argument("--iterations", type=int, nargs="*", default=[1, 10])
    parser.add_argument("--true-prior", action="store_true")
    parser.add_argument("--night-hours", type=int, nargs=2)
    args = parser.parse_args()
    key_file = args.world / "holder.key"
    if not (args.world / "store").exists():
        build(args.world, args.visitors)
    tables = open_tables(Store(args.world / "store"), level="municipality")
    truth = true_nights(args.world, key_file)
    true_counts = truth["area"].map(provinces()).value_counts()
    night = {}
    if args.night_hours:
        night = {"night_start_hour": args.night_hours[0], "night_end_hour": args.night_hours[1]}
    params = tourism.InboundTourismParameters(start=START, end=END, **night)
    counted, days, nights = counted_nights(tables, params)
    spent = tourism.expanded_nights(counted, days, params)
    located = spread(spent, tables.allocation, share="share", day="night")
    table = pd.DataFrame({"true nights": true_counts})
    table["allocation"] = errors(true_counts, count_by(located, ["area_code"]).to_pandas())
    seen_only = params.model_copy(update=tourism.SEEN_ONLY)
    seen, seen_days, _ = counted_nights(tables, seen_only)
    seen = tourism.expanded_nights(seen, seen_days, seen_only)
    seen = spread(seen, tables.allocation, share="share", day="night")
    table["seen only"] = errors(true_counts, count_by(seen, ["area_code"]).to_pandas())
    per_cell = spent.group_by("cell_id").agg(device_count=spent.share.sum()).to_pandas()
    assert tables.footprint is not None, "the store has no tile footprint"
    for iterations in args.iterations:
        placed, _ = tile_bayesian_counts(
            cell_counts=per_cell.assign(all=0),
            footprint=tables.footprint.per_area,
            by=["all"],
            iterations=iterations,
        )
        table[f"tile, {iterations} updates"] = errors(true_counts, placed)
    bayesian = params.model_copy(update={"spatial_estimator": "bayesian"})
    observed = nights.select("device_id", "night").distinct()
    placed = tourism.finish(
        tourism.per_cell(counted, spent, observed).to_pandas(), tables, bayesian
    )
    table["bayesian"] = errors(true_counts, placed[placed["indicator"] == "nights"])
    homes = spent.group_by("device_id", "cell_id").agg(share=spent.share.sum())
    evidence = counted.group_by("device_id", "cell_id").agg(nights=counted.count())
    allocation = allocation_on(tables.allocation, END)
    shares = posterior_areas(evidence, homes, tables.footprint, allocation)
    placed = shares.group_by("area_code").agg(device_count=shares.share.sum()).to_pandas()
    table["device posterior"] = errors(true_counts, placed)
    if args.true_prior:
        bound = true_prior(rebuilt(args.world), tables.footprint)
        placed, _ = tile_bayesian_counts(
            cell_counts=per_cell.assign(all=0), footprint=bound.per_area, by=["all"], iterations=1
        )
        table["tile, visitors' prior"] = errors(true_counts, placed)
        shares = posterior_areas(evidence, homes, bound, allocation)
        placed = shares.group_by("area_code").agg(device_count=shares.share.sum()).to_pandas()
        table["device posterior, visitors' prior"] = errors(true_counts, placed)
        weights = visitor_weights(tables.allocation.to_pandas(), truth)
        reweighted = spread(spent, ibis.memtable(weights), share="share", day="night")
        table["visitors' weights"] = errors(
            true_counts, count_by(reweighted, ["area_code"]).to_pandas()
        )
    stay = tourism.expanded_nights(at_stay_cells(counted, nights), days, params)
    stay = spread(stay, tables.allocation, share="share", day="night")
    table["stay cell"] = errors(true_counts, count_by(stay, ["area_code"]).to_pandas())
    print(table.to_string())
    visitors = located.to_pandas().merge(
        truth.drop_duplicates("device_id")[["device_id", "area"]], on="device_id"
    )
    print("visitor nights:", spill(visitors, "area", "_weight").to_dict())
    residents = resident_homes(args.world, tables, key_file)
    print("residents' homes:", spill(residents, "home_area", "_weight").to_dict())


if __name__ == "__main__":
    main()
