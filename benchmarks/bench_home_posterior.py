"""Home municipality by the tile posterior vs the home cell's allocation, against true homes.

Usage:
    python benchmarks/bench_home_posterior.py --world DIR [--key-file FILE] [--min-nights 2]

DIR holds a synthetic world's ``dataset/`` (with ``truth/``) and its ``store/`` with the
municipality allocation, as `cellcensus demo --out DIR` leaves them (key file: the demo's
``--key-file``; default ``DIR/holder.key``, where the demo keeps it); the store's tile
footprint is built if it is missing.
For the devices `usual_residence` places (default parameters but `--min-nights`), it compares
the two ways from home cells to municipalities with where the devices' owners really live
(the spatial step alone), and times each on the engine:

- ``home cell allocation``: the home cell's allocation weights (`spatial_estimator:
  allocation`);
- ``tile posterior``: `holder/algorithms/posterior.py` (`spatial_estimator: posterior`).

Printed per way: the share of devices (persons who did not move) whose largest share is their
home municipality, and against the true homes per municipality the weighted APE, the median
APE and the Pearson r of logs.

With ``--true-prior`` it also runs the tile posterior with the density of the devices' true
homes per tile as its prior instead of the register's (rebuilt from the world's parameters):
a bound on what any prior, however learned, could give.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
from pyproj import Transformer

from cellcensus.holder.algorithms.areas import allocation_on, spread
from cellcensus.holder.algorithms.base import TileFootprint
from cellcensus.holder.algorithms.posterior import posterior_areas
from cellcensus.holder.algorithms.usual_residence import UsualResidenceParameters, homes_and_nights
from cellcensus.holder.enclave.compute import open_tables
from cellcensus.holder.geo.allocation import DEFAULT_TILE_M
from cellcensus.holder.geo.footprint import grid_tiles
from cellcensus.holder.geo.projection import GRID_CRS
from cellcensus.holder.geo.tile_footprint import build_tile_footprint, has_footprint
from cellcensus.holder.store import Store
from cellcensus.holder.store.pseudonym import load_or_create_key, pseudonymise
from cellcensus.reference import municipalities
from cellcensus.world import WorldParams
from cellcensus.world.country import tracked_homes
from cellcensus.world.identifiers import person_ids
from cellcensus.world.territory import PROJECTED_CRS

PEOPLE = ("primary", "secondary")


def true_homes(world: Path, key_file: Path) -> tuple[pd.Series, set[int]]:
    """Each person-carried device's true home municipality, and those of non-movers."""
    truth = world / "dataset" / "truth"
    devices = pd.read_parquet(truth / "devices.parquet")
    key = load_or_create_key(key_file=key_file)
    devices["device_id"] = pseudonymise(user_ids=devices["user_id"].tolist(), key=key)
    persons = pd.read_parquet(truth / "persons.parquet", columns=["person_id", "home_area"])
    devices = devices[devices["kind"].isin(PEOPLE)].merge(persons, on="person_id")
    moves = truth / "migrations.parquet"
    movers = set(pd.read_parquet(moves)["person_id"]) if moves.exists() else set()
    stayed = set(devices.loc[~devices["person_id"].isin(movers), "device_id"])
    area: pd.Series = devices.set_index("device_id")["home_area"]
    return area, stayed


def true_prior(world: Path, footprint: TileFootprint) -> TileFootprint:
    """`footprint` with the density of the holder's devices' true homes as each tile's prior.

    Tiles without such a home get 0.05 of one, so that they stay possible.
    """
    document = json.loads((world / "dataset" / "world.json").read_text(encoding="utf-8"))
    tracked, home_xy = tracked_homes(WorldParams.from_document(document["parameters"]))
    devices = pd.read_parquet(world / "dataset" / "truth" / "devices.parquet")
    owners = set(devices.loc[devices["kind"].isin(PEOPLE), "person_id"])
    mine = np.isin(person_ids(tracked), list(owners))
    x, y = Transformer.from_crs(PROJECTED_CRS, GRID_CRS, always_xy=True).transform(
        home_xy[mine, 0], home_xy[mine, 1]
    )
    tiles = grid_tiles(municipalities(), size_m=DEFAULT_TILE_M)
    cell = pd.MultiIndex.from_arrays([tiles.x // DEFAULT_TILE_M, tiles.y // DEFAULT_TILE_M])
    found = cell.get_indexer(pd.MultiIndex.from_arrays([x // DEFAULT_TILE_M, y // DEFAULT_TILE_M]))
    homes = np.bincount(found[found >= 0], minlength=len(tiles.x))
    prior = footprint.tiles.to_pandas()
    # A tile on a border has a part in each municipality: each its share of the tile's homes.
    prior["log_prior"] = np.log((homes[prior["tile"].to_numpy()] + 0.05) * prior["share"])
    return TileFootprint(
        cells=footprint.cells, serving=footprint.serving, tiles=ibis.memtable(prior)
    )


def agreement(shares: pd.DataFrame, home: pd.Series, stayed: set[int]) -> dict[str, float]:
    """Home municipality right, and wAPE, median APE, log r against true homes."""
    shares = shares[shares["device_id"].isin(home.index)]
    estimate = shares.groupby("area_code")["share"].sum()
    truth = home.reindex(shares["device_id"].unique()).value_counts()
    both = pd.concat([estimate.rename("e"), truth.rename("t")], axis=1).fillna(0.0)
    both["e"] *= both["t"].sum() / both["e"].sum()
    both = both[both["t"] > 0]
    ape = (both["e"] - both["t"]).abs() / both["t"]
    order = ["device_id", "share", "area_code"]
    top = shares.sort_values(order, ascending=[True, False, True]).drop_duplicates("device_id")
    top = top[top["device_id"].isin(stayed)]
    right = top["area_code"].to_numpy() == home.reindex(top["device_id"]).to_numpy()
    logs = np.log(both[["e", "t"]].clip(lower=0.5))
    return {
        "right": float(right.mean()),
        "wape": float((both["e"] - both["t"]).abs().sum() / both["t"].sum()),
        "ape_median": float(ape.median()),
        "log_r": float(np.corrcoef(logs["e"], logs["t"])[0, 1]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=Path, required=True)
    parser.add_argument("--key-file", type=Path)
    parser.add_argument("--min-nights", type=int, default=2)
    parser.add_argument("--true-prior", action="store_true", help="Also with true homes as prior.")
    args = parser.parse_args()
    store = Store(args.world / "store")
    if not has_footprint(store):
        started = time.perf_counter()
        build_tile_footprint(store)
        print(f"tile footprint built in {time.perf_counter() - started:.1f} s")
    tables = open_tables(store)
    assert tables.footprint is not None
    params = UsualResidenceParameters(min_nights=args.min_nights)
    homes, nights = homes_and_nights(tables, params)
    home, stayed = true_homes(args.world, args.key_file or args.world / "holder.key")
    allocation = allocation_on(tables.allocation, params.end)
    started = time.perf_counter()
    by_cell = spread(homes, allocation, share="share").select(
        "device_id", "area_code", share="_weight"
    )
    shares = by_cell.to_pandas()
    report(
        f"home cell allocation ({time.perf_counter() - started:.0f} s)",
        agreement(shares, home, stayed),
    )
    started = time.perf_counter()
    shares = posterior_areas(
        nights, homes, tables.footprint, allocation, tables.materialize
    ).to_pandas()
    report(
        f"tile posterior ({time.perf_counter() - started:.0f} s)", agreement(shares, home, stayed)
    )
    if args.true_prior:
        bound = true_prior(args.world, tables.footprint)
        shares = posterior_areas(nights, homes, bound, allocation, tables.materialize).to_pandas()
        report("tile posterior, true prior", agreement(shares, home, stayed))


def report(name: str, figures: dict[str, float]) -> None:
    values = "  ".join(f"{key} {value:.4f}" for key, value in figures.items())
    print(f"{name:32s} {values}", flush=True)


if __name__ == "__main__":
    main()
