"""Home municipality by a device-level tile posterior vs the home cell's allocation (measure).

Usage:
    python benchmarks/bench_home_posterior.py --world DIR [--key-file FILE] [--min-nights 2]
Options: --top-cells 2,5   --shadowing-db 6   --floor 1e-3   --candidate-min 0   --chunk 4000

DIR holds a synthetic world's ``dataset/`` (with ``truth/``) and its ``store/`` with the
municipality allocation, as `cellcensus demo --out DIR` leaves them (key file: the demo's
``--key-file``; default ``DIR/key``). For the devices `usual_residence` places (default
parameters but `--min-nights`), it compares two ways from night cells to municipalities with
where the devices' owners really live (the spatial step alone):

- ``home cell allocation``: the release's way, the home cell's allocation weights;
- ``posterior kN``: Tennekes & Gootzen (2022): over the 250 m tiles t the home cell serves
  (with probability at least `--candidate-min`),
  log post(t) = log prior(t) + sum_c n_c log max(P(c | t), floor), with n_c the nights at each
  of the device's N cells of most nights, P(c | t) the holder's ``signal`` footprint
  (`RadioModel` with `--shadowing-db`) and the prior the register density of the allocation;
  the posterior summed per municipality is the device's shares.

Printed per way: the share of devices (persons who did not move) whose largest share is their
home municipality, and against the true homes per municipality the weighted APE, the median
APE and the Pearson r of logs. The posterior runs in pandas, `--chunk` devices at a time:
it is a measurement of what an estimator would gain, not the estimator.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cellcensus.holder.algorithms.device_filter import Scope, Subscribers
from cellcensus.holder.algorithms.places import night_summary
from cellcensus.holder.algorithms.usual_residence import UsualResidenceParameters, homes
from cellcensus.holder.enclave.compute import open_tables
from cellcensus.holder.geo.allocation import DEFAULT_TILE_M, register_population_areas
from cellcensus.holder.geo.footprint import (
    RadioModel,
    grid_tiles,
    network_sectors,
    serving_probabilities,
    tile_density,
)
from cellcensus.holder.store import Store
from cellcensus.holder.store.pseudonym import load_or_create_key, pseudonymise
from cellcensus.reference import municipalities

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


def posterior_shares(
    nights: pd.DataFrame,
    served: pd.DataFrame,
    *,
    prior: np.ndarray,
    tile_area: np.ndarray,
    floor: float,
    candidate_min: float,
) -> pd.DataFrame:
    """device_id, area_code, share from night counts per sector (ranked, home = rank 0)."""
    home_tiles = served[served["probability"] >= candidate_min]
    candidates = nights[nights["rank"] == 0][["device_id", "sector"]].merge(home_tiles, on="sector")
    candidates = candidates[["device_id", "tile"]].drop_duplicates()
    total = nights.groupby("device_id")["nights"].sum() * np.log(floor)
    hits = candidates.merge(nights, on="device_id").merge(served, on=["tile", "sector"])
    likelihood = np.log(np.maximum(hits["probability"], floor)) - np.log(floor)
    hits["gain"] = hits["nights"] * likelihood
    gain = hits.groupby(["device_id", "tile"])["gain"].sum()
    candidates = candidates[prior[candidates["tile"].to_numpy()] > 0]
    candidates = candidates.set_index(["device_id", "tile"])
    score = total.reindex(candidates.index.get_level_values(0)).to_numpy()
    score = score + gain.reindex(candidates.index).fillna(0.0).to_numpy()
    tile = candidates.index.get_level_values(1).to_numpy()
    frame = pd.DataFrame(
        {
            "device_id": candidates.index.get_level_values(0),
            "area_code": tile_area[tile],
            "score": score + np.log(prior[tile]),
        }
    )
    frame["w"] = np.exp(frame["score"] - frame.groupby("device_id")["score"].transform("max"))
    per_area = frame.groupby(["device_id", "area_code"], as_index=False)["w"].sum()
    total_w = per_area.groupby("device_id")["w"].transform("sum")
    return pd.DataFrame(
        {
            "device_id": per_area["device_id"],
            "area_code": per_area["area_code"],
            "share": per_area["w"] / total_w,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=Path, required=True)
    parser.add_argument("--key-file", type=Path)
    parser.add_argument("--min-nights", type=int, default=2)
    parser.add_argument("--top-cells", default="2,5")
    parser.add_argument("--shadowing-db", type=float, default=6.0)
    parser.add_argument("--floor", type=float, default=1e-3)
    parser.add_argument("--candidate-min", type=float, default=0.0)
    parser.add_argument("--chunk", type=int, default=4000)
    args = parser.parse_args()
    store = Store(args.world / "store")
    tables = open_tables(store)
    params = UsualResidenceParameters(min_nights=args.min_nights)
    started = time.perf_counter()
    located = homes(tables, params).to_pandas()
    scope = Scope(tables, params, Subscribers.DOMESTIC, params.filters)
    summary = night_summary(scope, params)
    nights = summary.group_by("device_id", "cell_id").agg(nights=summary.count()).to_pandas()
    print(f"engine: homes and night cells {time.perf_counter() - started:.1f} s")
    home, stayed = true_homes(args.world, args.key_file or args.world / "key")

    allocation = tables.allocation.to_pandas()
    if "valid_to" in allocation.columns:  # the latest network state, as the footprint below
        allocation = allocation[allocation["valid_to"].isna()]
    spread = located.merge(allocation[["cell_id", "area_code", "weight"]], on="cell_id")
    spread["share"] = spread["share"] * spread["weight"]
    report("home cell allocation", agreement(spread, home, stayed))

    tiles = grid_tiles(municipalities(), size_m=DEFAULT_TILE_M)
    prior = tile_density(tiles, register_population_areas())
    sectors = network_sectors(store.read_cells())
    radio = RadioModel(shadowing_db=args.shadowing_db)
    served = serving_probabilities(sectors=sectors, tiles=tiles, model="signal", radio=radio)
    sector_of = pd.Series(sectors.cell_sector, index=sectors.cell_id)
    # The home cell first, then the cells of most nights (cells of one sector are one).
    nights["sector"] = sector_of.reindex(nights["cell_id"]).to_numpy()
    nights["home"] = nights.set_index(["device_id", "cell_id"]).index.isin(
        located.set_index(["device_id", "cell_id"]).index
    )
    nights = nights[nights["device_id"].isin(set(located["device_id"]))]
    nights = nights.groupby(["device_id", "sector"], as_index=False)[["nights", "home"]].sum()
    order = ["device_id", "home", "nights", "sector"]
    nights = nights.sort_values(order, ascending=[True, False, False, True])
    nights["rank"] = nights.groupby("device_id").cumcount()
    devices = nights["device_id"].unique()
    kept = served[served["probability"] >= args.candidate_min]
    tiles_per_home = nights[nights["rank"] == 0].merge(kept, on="sector")
    print(f"candidate tiles per device: {len(tiles_per_home) / len(devices):.0f}")
    for top in (int(value) for value in args.top_cells.split(",")):
        started = time.perf_counter()
        used = nights[nights["rank"] < top]
        parts = [
            posterior_shares(
                used[used["device_id"].isin(chunk)],
                served,
                prior=prior,
                tile_area=tiles.area_code,
                floor=args.floor,
                candidate_min=args.candidate_min,
            )
            for chunk in np.array_split(devices, max(1, len(devices) // args.chunk))
        ]
        took = time.perf_counter() - started
        report(f"posterior k{top} ({took:.0f} s)", agreement(pd.concat(parts), home, stayed))


def report(name: str, figures: dict[str, float]) -> None:
    values = "  ".join(f"{key} {value:.4f}" for key, value in figures.items())
    print(f"{name:32s} {values}", flush=True)


if __name__ == "__main__":
    main()
