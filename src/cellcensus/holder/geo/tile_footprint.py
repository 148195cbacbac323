"""The network's footprint on 250 m tiles, kept in the store for the `posterior` estimator.

`usual_residence` with ``spatial_estimator="posterior"`` places each device on the tiles its
home cell serves, weighted by how well every cell it uses at night serves them (see
`holder.algorithms.spatial`). That needs, inside the enclave, P(cell | tile) of the ``signal``
footprint model and each tile's area and prior, which this module computes once per network
and saves under ``STORE/footprint/``:

- ``cells.parquet``: cell_id, sector (cells of one antenna sector share a footprint);
- ``serving.parquet``: sector, tile, probability (P(sector | tile) >= `RadioModel`'s floor);
- ``tiles.parquet``: tile, area_code (municipality of the tile's centre), log_prior (log of
  the register population density there, people per km², floored at `MIN_DENSITY`).

The footprint is that of the network's latest state (`current_cells`): a network that
changes during the period is placed by its state at the end of it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cellcensus.holder.algorithms.base import FOOTPRINT_TABLES
from cellcensus.holder.geo.allocation import DEFAULT_TILE_M, register_population_areas
from cellcensus.holder.geo.footprint import (
    RadioModel,
    grid_tiles,
    network_sectors,
    serving_probabilities,
    tile_density,
)
from cellcensus.holder.store import Store
from cellcensus.holder.store.layout import CELLS_DIGEST_KEY
from cellcensus.holder.store.writer_lock import writing
from cellcensus.reference import municipalities

SHADOWING_DB = 6.0
"""Shadowing of the footprint (dB): what `bench_home_posterior.py` measured best."""

MIN_DENSITY = 1.0
"""People per km² below which a tile's prior is floored: an empty tile stays possible."""


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
        tiles = grid_tiles(municipalities() if areas is None else areas, size_m=DEFAULT_TILE_M)
        density = tile_density(tiles, register_population_areas())
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
            "tiles": pd.DataFrame(
                {
                    "tile": np.arange(len(tiles.x), dtype="int64"),
                    "area_code": tiles.area_code.astype(str),
                    "log_prior": np.log(np.maximum(density, MIN_DENSITY)),
                }
            ),
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
