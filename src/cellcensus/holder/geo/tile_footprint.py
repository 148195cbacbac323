"""The network's footprint on 250 m tiles, kept in the store for the `posterior` estimator.

`usual_residence` with ``spatial_estimator="posterior"`` places each device on the tiles its
home cell serves, weighted by how well every cell it uses at night serves them (see
`holder.algorithms.spatial`). That needs, inside the enclave, P(cell | tile) of the ``signal``
footprint model and each tile's area and prior, which this module computes once per network
and saves under ``STORE/footprint/``:

- ``cells.parquet``: cell_id, sector (cells of one antenna sector share a footprint);
- ``serving.parquet``: sector, tile, probability (P(sector | tile) >= `RadioModel`'s floor);
- ``tiles.parquet``: tile, area_code, share, log_prior: one row per tile and municipality it
  overlaps (a tile on a border has a row for each side), the share of the tile there and the
  log of the register population the part holds (the register density at its sample points,
  people per km² floored at `MIN_DENSITY`, times its share). Tiles are those whose centre lies
  in a municipality (`grid_tiles`).

The footprint is that of the network's latest state (`current_cells`): a network that
changes during the period is placed by its state at the end of it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import shapely

from cellcensus.holder.algorithms.base import FOOTPRINT_TABLES
from cellcensus.holder.geo.allocation import DEFAULT_TILE_M, register_population_areas
from cellcensus.holder.geo.footprint import (
    RadioModel,
    Tiles,
    grid_tiles,
    network_sectors,
    points_in_areas,
    serving_probabilities,
)
from cellcensus.holder.geo.projection import to_grid
from cellcensus.holder.store import Store
from cellcensus.holder.store.layout import CELLS_DIGEST_KEY
from cellcensus.holder.store.writer_lock import writing
from cellcensus.reference import municipalities

SHADOWING_DB = 6.0
"""Shadowing of the footprint (dB): what `bench_home_posterior.py` measured best."""

MIN_DENSITY = 1.0
"""People per km² below which a tile's prior is floored: an empty tile stays possible."""

SAMPLES_PER_SIDE = 5
"""Sample points along a tile's side (50 m apart) that share it among the areas it overlaps."""


def footprint_path(store: Store, table: str) -> Path:
    """``STORE/footprint/{table}.parquet``."""
    return store.root / "footprint" / f"{table}.parquet"


def has_footprint(store: Store) -> bool:
    """Whether the store holds a tile footprint made from its current cells.

    A later ingest that changes ``cells.parquet`` leaves the footprint of the old network:
    the estimators that read it wait for `build_tile_footprint` to make it again. A footprint
    without a record of its cells (written before the record existed) is taken as current.
    """
    if not all(footprint_path(store, table).exists() for table in FOOTPRINT_TABLES):
        return False
    return not store.made_from_other_cells(footprint_path(store, "cells"))


def build_tile_footprint(store: Store | Path, *, areas: pd.DataFrame | None = None) -> Path:
    """Compute the store's tile footprint and save it (see the module docstring).

    Args:
        store: The store (or its folder), holding ``cells.parquet``.
        areas: area_code and geometry of the municipalities (default: the 589 of 2019).

    Returns:
        The footprint folder.
    """
    store = store if isinstance(store, Store) else Store(store)
    with writing(store, writer="allocation"):
        areas = municipalities() if areas is None else areas
        tiles = grid_tiles(areas, size_m=DEFAULT_TILE_M)
        sectors = network_sectors(store.read_cells())
        served = serving_probabilities(
            sectors=sectors,
            tiles=tiles,
            model="signal",
            radio=RadioModel(shadowing_db=SHADOWING_DB),
        )
        tables = {
            "cells": pd.DataFrame(
                {
                    "cell_id": sectors.cell_id.astype(str),
                    "sector": sectors.cell_sector.astype("int64"),
                }
            ),
            "serving": pd.DataFrame(
                {
                    "sector": served["sector"].to_numpy(dtype="int64"),
                    "tile": served["tile"].to_numpy(dtype="int64"),
                    "probability": served["probability"].to_numpy(dtype="float64"),
                }
            ),
            "tiles": tile_parts(tiles, areas, register_population_areas()),
        }
        made_from = {CELLS_DIGEST_KEY: store.cells_digest().encode()}
        for name, frame in tables.items():
            path = footprint_path(store, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            aside = path.with_name(f".{path.name}.tmp")
            table = pa.Table.from_pandas(frame, preserve_index=False)
            table = table.replace_schema_metadata({**(table.schema.metadata or {}), **made_from})
            pq.write_table(table, aside)
            aside.replace(path)
    return footprint_path(store, "tiles").parent


def tile_parts(tiles: Tiles, areas: pd.DataFrame, population: pd.DataFrame) -> pd.DataFrame:
    """tile, area_code, share, log_prior: each tile's part in each area it overlaps.

    A tile whose outermost sample points (near its corners) lie in the area of its centre is
    taken as wholly there, at the register
    density of its centre; another is shared among areas by its `SAMPLES_PER_SIDE` ² sample
    points (those outside every area left out), each part's prior the mean register density
    of its points times its share. Labelled by its centre alone, a tile half in a busy town
    centre and centred across the border would hand the town's people (or visitors) to its
    neighbour.

    Args:
        tiles: The tiles (`grid_tiles` of `areas`).
        areas: area_code and geometry (WGS84) of the areas.
        population: area_code, geometry (WGS84) and population: the register prior.
    """
    shapes = to_grid(areas["geometry"].to_numpy())
    populated = to_grid(population["geometry"].to_numpy())
    km2 = shapely.area(populated) / 1e6
    per_km2 = population["population"].to_numpy(dtype=float) / np.where(km2 > 0, km2, np.inf)
    codes = pd.Index(areas["area_code"].astype(str))
    centre = codes.get_indexer(pd.Index(tiles.area_code.astype(str)))
    half = tiles.size_m / 2 * (1 - 1 / SAMPLES_PER_SIDE)  # the outermost sample points
    whole = np.ones(len(tiles.x), dtype=bool)
    for dx, dy in ((-half, -half), (-half, half), (half, -half), (half, half)):
        whole &= _area_at(shapes, tiles.x + dx, tiles.y + dy) == centre
    split = np.flatnonzero(~whole)
    step = tiles.size_m / SAMPLES_PER_SIDE
    offsets = (np.arange(SAMPLES_PER_SIDE) - (SAMPLES_PER_SIDE - 1) / 2) * step
    dx, dy = (grid.ravel() for grid in np.meshgrid(offsets, offsets))
    tile = np.concatenate([np.flatnonzero(whole), np.repeat(split, dx.size)])
    x = np.concatenate([tiles.x[whole], (tiles.x[split, None] + dx).ravel()])
    y = np.concatenate([tiles.y[whole], (tiles.y[split, None] + dy).ravel()])
    area = _area_at(shapes, x, y)
    at = _area_at(populated, x, y)
    density = np.where(at >= 0, per_km2[np.maximum(at, 0)], 0.0)
    samples = pd.DataFrame(
        {"tile": tile, "area": area, "density": np.maximum(density, MIN_DENSITY)}
    )
    parts = (
        samples[samples["area"] >= 0]
        .groupby(["tile", "area"], as_index=False)
        .agg(points=("density", "size"), mass=("density", "sum"))
    )
    in_tile = parts.groupby("tile")["points"].transform("sum")
    return pd.DataFrame(
        {
            "tile": parts["tile"].to_numpy(dtype="int64"),
            "area_code": codes.to_numpy()[parts["area"].to_numpy()],
            "share": (parts["points"] / in_tile).to_numpy(dtype="float64"),
            "log_prior": np.log((parts["mass"] / in_tile).to_numpy(dtype="float64")),
        }
    )


def _area_at(
    shapes: npt.NDArray[np.object_], x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]
) -> npt.NDArray[np.intp]:
    """The index in `shapes` of the area of each point (x, y), -1 outside every one."""
    point_at, area_at = points_in_areas(shapes, x, y)
    found = np.full(len(x), -1, dtype=np.intp)
    found[point_at] = area_at
    return found
