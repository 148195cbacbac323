"""Time the network's footprint on Belgium's 250 m tiles: tiles, prior, serving probabilities.

Usage: python benchmarks/bench_footprint.py [--scale 0.002] [--days 1] [--json FILE]

A tiny synthetic world gives the operator's whole network (its sites do not scale with the
population), ingested into a store as `cellcensus demo` does. The baseline, in the same run:
the tile centres placed in their municipality by an R-tree of the municipalities queried with
every centre (shapely's ``STRtree.query(points, predicate="within")``), which
`points_in_areas` replaces; the two are checked to agree. Then the steps of
`build_tile_footprint` and the whole of it and of `build_allocation` (the municipality
weights of every state the network goes through in `--days`).
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely

from cellcensus.holder.geo import build_allocation
from cellcensus.holder.geo.allocation import DEFAULT_TILE_M, register_population_areas
from cellcensus.holder.geo.footprint import (
    FootprintModel,
    RadioModel,
    grid_tiles,
    network_sectors,
    points_in_areas,
    serving_probabilities,
    tile_density,
)
from cellcensus.holder.geo.projection import to_grid
from cellcensus.holder.geo.tile_footprint import SHADOWING_DB, build_tile_footprint
from cellcensus.holder.store import Store
from cellcensus.holder.store.ingestion import ingest_dataset
from cellcensus.reference import municipalities
from cellcensus.world import WorldParams, synthesize


def timed(step: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Best wall time of `repeat` runs of `step`, and its last result."""
    best, result = math.inf, None
    for _ in range(repeat):
        started = time.perf_counter()
        result = step()
        best = min(best, time.perf_counter() - started)
    return best, result


def tile_centres(size_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The municipalities in grid metres and the centres of the grid's tiles over them."""
    shapes = to_grid(municipalities()["geometry"].to_numpy())
    xmin, ymin, xmax, ymax = shapely.total_bounds(shapes)
    xs = np.arange(math.floor(xmin / size_m), math.ceil(xmax / size_m)) * size_m + size_m / 2
    ys = np.arange(math.floor(ymin / size_m), math.ceil(ymax / size_m)) * size_m + size_m / 2
    gx, gy = np.meshgrid(xs, ys)
    return shapes, gx.ravel(), gy.ravel()


def r_tree(shapes: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The baseline: each centre queried against an R-tree of the areas."""
    point_at, area_at = shapely.STRtree(shapes).query(shapely.points(x, y), predicate="within")
    point_at, first = np.unique(point_at, return_index=True)
    return point_at, area_at[first]


def run(scale: float, days: int) -> dict[str, float]:
    shapes, x, y = tile_centres(DEFAULT_TILE_M)
    figures: dict[str, float] = {"grid_points": float(len(x))}
    figures["r_tree_s"], baseline = timed(lambda: r_tree(shapes, x, y), repeat=3)
    figures["points_in_areas_s"], found = timed(lambda: points_in_areas(shapes, x, y), repeat=3)
    if not all(np.array_equal(a, b) for a, b in zip(baseline, found, strict=True)):
        raise SystemExit("points_in_areas and the R-tree disagree")
    with tempfile.TemporaryDirectory() as folder:
        dataset, store = Path(folder) / "dataset", Path(folder) / "store"
        synthesize(out=dataset, params=WorldParams(scale=scale, days=days))
        ingest_dataset(dataset=dataset, store=store, key_file=Path(folder) / "holder.key")
        figures["grid_tiles_s"], tiles = timed(lambda: grid_tiles(municipalities(), size_m=250))
        figures["tiles"] = float(len(tiles.x))
        figures["tile_density_s"], _ = timed(
            lambda: tile_density(tiles, register_population_areas())
        )
        sectors = network_sectors(Store(store).read_cells())
        figures["sectors"] = float(len(sectors.azimuth_deg))
        radio = RadioModel(shadowing_db=SHADOWING_DB)
        for model in ("signal", "sector"):

            def serve(model: FootprintModel = model) -> pd.DataFrame:
                return serving_probabilities(sectors=sectors, tiles=tiles, model=model, radio=radio)

            seconds, served = timed(serve)
            figures[f"serving_{model}_s"], figures[f"serving_{model}_rows"] = seconds, len(served)
        figures["build_tile_footprint_s"], _ = timed(lambda: build_tile_footprint(Store(store)))
        figures["build_allocation_s"], _ = timed(
            lambda: build_allocation(store=store, areas=municipalities())
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.002, help="world scale (the network)")
    parser.add_argument("--days", type=int, default=1, help="days (the network's states)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    figures = run(args.scale, args.days)
    ratio = figures["r_tree_s"] / figures["points_in_areas_s"]
    print(f"{figures['grid_points']:,.0f} grid points, {figures['tiles']:,.0f} tiles in Belgium")
    print(
        f"tile centres in municipalities: {figures['points_in_areas_s']:.2f} s "
        f"(R-tree baseline {figures['r_tree_s']:.2f} s: {ratio:.1f}x faster)"
    )
    print(f"grid tiles {figures['grid_tiles_s']:.2f} s, prior {figures['tile_density_s']:.2f} s")
    for model in ("signal", "sector"):
        rows = figures[f"serving_{model}_rows"]
        print(
            f"serving probabilities, {model}: {figures[f'serving_{model}_s']:.2f} s for "
            f"{figures['sectors']:,.0f} sectors ({rows:,.0f} tile-sector rows)"
        )
    print(
        f"build_tile_footprint {figures['build_tile_footprint_s']:.2f} s, "
        f"build_allocation {figures['build_allocation_s']:.2f} s"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
