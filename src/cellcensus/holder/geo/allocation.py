"""Allocation of cells to areas: each cell's share of each area, by the overlap of its region.

A device seen on a cell is counted in the areas the cell's region overlaps, in proportion to
the overlap (the uniform-prior allocation of the Eurostat Multi-MNO pipeline). Overlaps are
computed in metres (EPSG:3812); the weights of a cell add up to 1.

The allocation is versioned with the network (`versioned_allocation`): the cells table has
validity periods, and a site that appears, moves or goes changes the footprints of its
neighbours too, so the whole network is allocated again as it stood in each distinct network
state (between two consecutive change dates). A cell gets a new version of its weights from
the first day they differ; see docs/geography.md for the rules and the cost.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import shapely
from shapely.errors import GEOSException

from cellcensus.errors import CellcensusError
from cellcensus.holder.geo.boundaries import grid_squares, roll_up_boundaries, save_boundaries
from cellcensus.holder.geo.coverage import network_states, voronoi_coverage
from cellcensus.holder.geo.footprint import (
    FootprintModel,
    RadioModel,
    Sectors,
    Served,
    Tiles,
    grid_tiles,
    network_sectors,
    served,
    tile_density,
)
from cellcensus.holder.geo.projection import to_metric
from cellcensus.holder.store import Store
from cellcensus.holder.store.layout import CELLS_DIGEST_KEY
from cellcensus.holder.store.writer_lock import writing
from cellcensus.reference import arrondissements_2019, municipalities, register_population

ALLOCATION_COLUMNS: tuple[str, ...] = ("cell_id", "area_code", "weight", "overlap_km2")
"""Columns of an allocation: weight sums to 1 per cell; overlap_km2 is region ∩ area."""

VERSIONED_COLUMNS: tuple[str, ...] = (*ALLOCATION_COLUMNS, "valid_from", "valid_to")
"""Columns of a versioned allocation (the store's file): the local dates (both inclusive,
null = open) between which a version of a cell's weights holds; weight sums to 1 per cell
and version. A cell's versions tile the whole time line (the first is open at the start, the
last at the end, each ends the day before the next starts), so exactly one holds on any day."""

SAME_WEIGHT = 1e-12
"""Weights of a cell in two network states closer than this (and overlaps closer than this
many km2) are the same version: a state recomputed with an unchanged neighbourhood gives the
same weights up to rounding."""

CoverageModel = Literal["voronoi", "sector", "signal"]
"""How cells cover the ground: site Voronoi (`coverage`), or a grid footprint (`footprint`)."""

DEFAULT_COVERAGE: CoverageModel = "sector"

AllocationPrior = Literal["area", "population"]
"""Where in its footprint a cell's devices are assumed to be: spread by area (uniform), or
by population density (a dasymetric prior: the register population of each municipality)."""

PRIOR_REGISTER_YEAR = 2015
"""The register count behind the population prior: a later date than the census 2011 the
estimates are validated against (Belgium's 2011 census is itself register-based, so the two
are not independent; the prior only splits a cell between the areas it covers)."""

DEFAULT_TILE_M = 250.0
"""Side of the grid tiles on which footprints are evaluated: finer than the smallest
municipality (Saint-Josse-ten-Noode, 1.1 km2) and than urban site spacing."""

GRID_LEVEL = "inspire_1km"
"""The area level of the INSPIRE 1 km grid: area codes are its standard tile identifiers."""
NAMED_LEVELS = ("municipality", "arrondissement", "province", "region", GRID_LEVEL)
"""The levels of the project: Belgium's nesting areas and the grid. A level of any other name
comes from the holder's own GeoJSON and exists once the store has an allocation for it."""
ROLLED_UP_LEVELS = ("arrondissement", "province", "region")
"""The project's levels made of whole municipalities: summed from the municipality allocation
(`belgian_parents`), no polygons needed."""

FARTHEST_SITE_KM = 100.0
"""A site this far from every area is misplaced (latitude and longitude swapped, a sign lost),
not a site abroad serving the border: allocated to the nearest area, its devices would be
counted there."""

MIN_SHARE = 1e-6
"""Overlaps below this share of a cell's region (10 m2 of a 10 km2 region) are slivers of
digitisation and reprojection, not coverage; they are dropped before normalising."""

_SCHEMA = pa.schema(
    [
        ("cell_id", pa.string()),
        ("area_code", pa.string()),
        ("weight", pa.float64()),
        ("overlap_km2", pa.float64()),
        ("valid_from", pa.date32()),
        ("valid_to", pa.date32()),
    ]
)


def allocate(*, coverage: pd.DataFrame, areas: pd.DataFrame) -> pd.DataFrame:
    """Weights of each cell over the areas its region overlaps.

    Args:
        coverage: cell_id and geometry (WGS84 polygon of the region the cell serves), and
            optionally longitude, latitude of its site (from `voronoi_coverage`).
        areas: area_code and geometry (WGS84 polygons), e.g. `reference.municipalities()`.

    Returns:
        cell_id, area_code, weight, overlap_km2, sorted. A cell's weights are the shares of its
        region's overlap with each area and sum to 1. A cell whose region overlaps no area
        (an empty region, or a site abroad) goes whole (weight 1, overlap 0) to the area
        nearest its site (or its region).

    Raises:
        ValueError: If a column is missing, or a cell with an empty region has no site.
    """
    for frame, columns, what in (
        (coverage, ("cell_id", "geometry"), "coverage"),
        (areas, ("area_code", "geometry"), "areas"),
    ):
        missing = [column for column in columns if column not in frame.columns]
        if missing:
            raise ValueError(f"{what} lacks column(s) {', '.join(missing)}")
    if coverage.empty:
        return _frame(cell_id=[], area_code=[], weight=[], overlap_km2=[])
    area_codes = areas["area_code"].astype(str).to_numpy()
    area_shapes = to_metric(areas["geometry"].to_numpy())
    invalid = ~shapely.is_valid(area_shapes)
    if invalid.any():
        area_shapes[invalid] = shapely.make_valid(area_shapes[invalid])
    tree = shapely.STRtree(area_shapes)

    # Cells of one site share one region: compute each distinct region once.
    geometries = coverage["geometry"].to_numpy()
    region_of_cell, first_cell = _distinct(geometries)
    regions = to_metric(geometries[first_cell])
    region_at, area_at = tree.query(regions, predicate="intersects")
    overlap = shapely.area(shapely.intersection(regions[region_at], area_shapes[area_at]))
    region_area = shapely.area(regions)
    keep = overlap > MIN_SHARE * region_area[region_at]
    region_at, area_at, overlap = region_at[keep], area_at[keep], overlap[keep]

    covered = np.zeros(len(regions), dtype=bool)
    covered[region_at] = True
    orphans = np.flatnonzero(~covered)
    if len(orphans):
        where = _site_points(coverage=coverage, first_cell=first_cell[orphans])
        nearest = tree.query_nearest(to_metric(where), return_distance=False, all_matches=False)
        orphan_at, orphan_area = nearest[0], nearest[1]
        region_at = np.concatenate([region_at, orphans[orphan_at]])
        area_at = np.concatenate([area_at, orphan_area])
        overlap = np.concatenate([overlap, np.zeros(len(orphan_at))])

    per_region = pd.DataFrame(
        {"region": region_at, "area_code": area_codes[area_at], "overlap_km2": overlap / 1e6}
    )
    total = per_region.groupby("region")["overlap_km2"].transform("sum").to_numpy()
    per_region["weight"] = np.divide(
        per_region["overlap_km2"].to_numpy(), total, out=np.ones(len(total)), where=total > 0
    )
    cells = pd.DataFrame(
        {"cell_id": coverage["cell_id"].astype(str).to_numpy(), "region": region_of_cell}
    )
    allocation = cells.merge(per_region, on="region", how="inner")
    allocation = allocation.sort_values(["cell_id", "area_code"], kind="stable")
    return allocation[list(ALLOCATION_COLUMNS)].reset_index(drop=True)


def _distinct(geometries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each geometry, the index of its distinct value; and the first row of each value."""
    keys = shapely.to_wkb(geometries)
    codes, uniques = pd.factorize(pd.Series(keys, dtype=object))
    first = pd.Series(np.arange(len(codes))).groupby(codes).first().to_numpy()
    assert len(first) == len(uniques)
    return np.asarray(codes), first


def _site_points(*, coverage: pd.DataFrame, first_cell: np.ndarray) -> np.ndarray:
    """Where to look for the nearest area: the site, else a point of the region."""
    rows = coverage.iloc[first_cell]
    if {"longitude", "latitude"} <= set(coverage.columns):
        points = shapely.points(
            rows["longitude"].to_numpy(dtype=float), rows["latitude"].to_numpy(dtype=float)
        )
    else:
        points = np.full(len(rows), None, dtype=object)
    lacking = shapely.is_missing(points) | shapely.is_empty(points)
    geometries = rows["geometry"].to_numpy()
    points[lacking] = shapely.point_on_surface(geometries[lacking])
    unknown = shapely.is_empty(points) | shapely.is_missing(points)
    if unknown.any():
        cell = rows["cell_id"].to_numpy()[unknown][0]
        raise ValueError(f"cell {cell!r} has an empty region and no site position")
    return np.asarray(points, dtype=object)


def country_of(areas: pd.DataFrame) -> shapely.Geometry:
    """The union of `areas` (WGS84): fast when they tile without overlaps, exact otherwise."""
    shapes = areas["geometry"].to_numpy()
    union = shapely.coverage_union_all(shapes)
    total = float(shapely.area(shapes).sum())
    if shapely.is_valid(union) and abs(float(shapely.area(union)) - total) <= 1e-9 * total:
        return union
    return shapely.union_all(shapes)


def footprint_allocation(
    *,
    cells: pd.DataFrame,
    areas: pd.DataFrame,
    model: FootprintModel = "signal",
    tile_m: float = DEFAULT_TILE_M,
    radio: RadioModel | None = None,
    grid_m: float | None = None,
    population: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Weights of each cell over areas from its footprint on a grid (see `footprint`).

    A cell's weight in an area is the share of its footprint (the sum over tiles of the
    probability that it serves the tile) lying in the area; overlap_km2 is that footprint in
    km2 (the expected served area), so sum over cells of a tile's overlap is the tile's area.
    With `population`, each tile counts in the weights by its population density instead of
    its area (a cell whose footprint holds no one keeps the area weights); overlap_km2 stays
    geometric.

    Args:
        cells: The cells table.
        areas: area_code and geometry (WGS84) of the areas the tiles fall in.
        model: ``sector`` (sector-aware Voronoi) or ``signal`` (signal strength).
        tile_m: Side of the tiles the footprint is evaluated on.
        radio: Parameters of the signal model.
        grid_m: Allocate to the INSPIRE grid of this resolution (e.g. 1000) instead of to
            `areas`: area codes are the standard tile ids, ``CRS3035RES1000mN...E...``.
        population: area_code, geometry and population of the areas whose density is the
            prior (see `tile_density`), or None for the uniform prior.

    Returns:
        cell_id, area_code, weight, overlap_km2, sorted; weights sum to 1 per cell.
    """
    allocator = _footprint_allocator(
        areas=areas, model=model, tile_m=tile_m, radio=radio, grid_m=grid_m, population=population
    )
    return allocator(cells)


def _footprint_allocator(
    *,
    areas: pd.DataFrame,
    model: FootprintModel,
    tile_m: float,
    radio: RadioModel | None,
    grid_m: float | None,
    population: pd.DataFrame | None,
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """`footprint_allocation` of any cells table, with the tiles and prior computed once."""
    tiles = grid_tiles(areas, size_m=tile_m)
    density = None if population is None else tile_density(tiles, population)
    if grid_m is not None:
        tiles = Tiles(
            x=tiles.x, y=tiles.y, area_code=inspire_ids(tiles.x, tiles.y, grid_m), size_m=tile_m
        )

    previous: Served | None = None  # the last state's: `served` recomputes what changed

    def allocate_cells(cells: pd.DataFrame) -> pd.DataFrame:
        nonlocal previous
        sectors = network_sectors(cells)
        if len(sectors.cell_id) == 0 or len(tiles.x) == 0:
            return _frame(cell_id=[], area_code=[], weight=[], overlap_km2=[])
        previous = served(
            sectors=sectors,
            tiles=tiles,
            model=model,
            radio=radio or RadioModel(),
            previous=previous,
        )
        return _footprint_weights(
            sectors=sectors, served=previous.table, tiles=tiles, density=density
        )

    return allocate_cells


def _footprint_weights(
    *,
    sectors: Sectors,
    served: pd.DataFrame,
    tiles: Tiles,
    density: npt.NDArray[np.float64] | None,
) -> pd.DataFrame:
    """Each cell's areas from its sector's `serving_probabilities` (`served`) on `tiles`."""
    tile = served["tile"].to_numpy()
    overlap = served["probability"].to_numpy() * tiles.km2
    per_sector = pd.DataFrame(
        {
            "sector": served["sector"].to_numpy(),
            "area_code": tiles.area_code[tile],
            "overlap_km2": overlap,
            "people": overlap if density is None else overlap * density[tile],
        }
    )
    per_sector = per_sector.groupby(["sector", "area_code"], as_index=False)[
        ["overlap_km2", "people"]
    ].sum()
    per_sector = pd.concat([per_sector, _orphan_sectors(sectors, tiles, per_sector)])
    per_sector["weight"] = _shares(per_sector, "people", fallback="overlap_km2")
    cell_sectors = pd.DataFrame({"cell_id": sectors.cell_id, "sector": sectors.cell_sector})
    allocation = cell_sectors.merge(per_sector, on="sector", how="inner")
    allocation = allocation.sort_values(["cell_id", "area_code"], kind="stable")
    return allocation[list(ALLOCATION_COLUMNS)].reset_index(drop=True)


def _shares(per_sector: pd.DataFrame, column: str, *, fallback: str) -> npt.NDArray[np.float64]:
    """Each row's share of its sector's `column`; of `fallback` where that sums to 0."""
    by_sector = per_sector.groupby("sector")
    total = by_sector[column].transform("sum").to_numpy()
    use = np.where(total > 0, per_sector[column].to_numpy(), per_sector[fallback].to_numpy())
    total = np.where(total > 0, total, by_sector[fallback].transform("sum").to_numpy())
    shares: npt.NDArray[np.float64] = np.divide(
        use, total, out=np.ones(len(total)), where=total > 0
    )
    return shares


def _orphan_sectors(sectors: Sectors, tiles: Tiles, per_sector: pd.DataFrame) -> pd.DataFrame:
    """Sectors serving no tile (abroad, always outshone): whole to the nearest tile's area."""
    orphans = np.setdiff1d(np.arange(len(sectors.site)), per_sector["sector"].to_numpy())
    site = sectors.site[orphans]
    _, nearest = tiles.tree.query(
        np.column_stack([sectors.site_x[site], sectors.site_y[site]]), k=1
    )
    return pd.DataFrame(
        {
            "sector": orphans,
            "area_code": tiles.area_code[np.asarray(nearest, dtype=np.intp)],
            "overlap_km2": np.zeros(len(orphans)),
            "people": np.zeros(len(orphans)),
        }
    )


def inspire_ids(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], resolution_m: float
) -> npt.NDArray[np.object_]:
    """INSPIRE grid cell identifiers (EPSG:3035, lower-left corner) of the points x, y."""
    size = int(resolution_m)
    north = (np.floor(y / size) * size).astype(np.int64)
    east = (np.floor(x / size) * size).astype(np.int64)
    return np.array(
        [f"CRS3035RES{size}mN{n}E{e}" for n, e in zip(north, east, strict=True)], dtype=object
    )


def build_allocation(
    *,
    store: Store | Path,
    areas: pd.DataFrame,
    level: str = "municipality",
    coverage: CoverageModel = DEFAULT_COVERAGE,
    grid_m: float | None = None,
    prior: AllocationPrior | None = None,
) -> Path:
    """Allocate the store's cells to `areas` and save it, with their boundaries, in the store.

    The boundaries (the grid's squares with `grid_m`) go to ``STORE/areas/LEVEL.geojson``
    (`boundaries`), where the service's GeoJSON releases find them.

    Args:
        store: The store (or its folder), holding ``cells.parquet`` from an ingest.
        areas: area_code and geometry (WGS84) of the areas of `level` (with `grid_m`: the
            areas whose tiles make up the grid's extent).
        level: The area level, which names the file (``allocation/{level}.parquet``).
        coverage: The coverage model: ``voronoi``, ``sector`` or ``signal``.
        grid_m: Allocate to the INSPIRE grid of this resolution (grid models only).
        prior: ``area`` (uniform) or ``population`` (register density; grid models only);
            None: `default_prior` of the coverage model.

    Returns:
        The path of the allocation file (`VERSIONED_COLUMNS`: see `versioned_allocation`).

    Raises:
        CellcensusError: If the Voronoi model is asked for the population prior or the grid
            (`check_coverage`), or a cell lies farther than `FARTHEST_SITE_KM` from every
            area.
    """
    store = store if isinstance(store, Store) else Store(store)
    path = store.allocation_path(level)  # a malformed level is refused before any work
    # Locked from reading the cells to recording their digest: an ingest in between would
    # have the allocation record cells it was not made from.
    with writing(store, writer="allocation"):
        allocation = versioned_allocation(
            cells=store.read_cells(),
            areas=areas,
            coverage=coverage,
            grid_m=grid_m,
            prior=prior or default_prior(coverage),
        )
        shapes = areas if grid_m is None else grid_squares(allocation["area_code"])
        save_boundaries(store, areas=shapes, level=level)
        return _save(allocation, path=path, cells=store.cells_digest())


def belgian_parents(level: str) -> pd.Series:
    """The `level` area of each 2011 municipality, indexed by municipality code.

    Arrondissements are those of 2019, the codes of the census commuting matrix the statistics
    office compares flows with (as the demo releases them); provinces and regions did not change.
    """
    if level == "arrondissement":
        return arrondissements_2019()
    if level not in ("province", "region"):
        raise CellcensusError(
            f"{level!r} is not made of municipalities; levels that are: "
            + ", ".join(ROLLED_UP_LEVELS)
        )
    frame = municipalities()
    return pd.Series(
        frame[level].astype(str).to_numpy(),
        index=pd.Index(frame["area_code"].astype(str), name="area_code"),
    )


def roll_up_allocation(
    *, store: Store, parent: pd.Series, level: str, source: str = "municipality"
) -> Path:
    """Sum the allocation of `source` into larger areas made of whole `source` areas.

    A cell's share of a union of areas is the sum of its shares of them: no geometry needed.
    The larger areas' boundaries are the unions of their parts' where `source` has some.

    Args:
        store: The store holding the allocation of `source`.
        parent: The larger area (e.g. 2019 arrondissement) of each `source` area code.
        level: The level to write (``allocation/{level}.parquet``).
        source: The level summed.

    Returns:
        The path of the allocation file, versioned as its source.

    Raises:
        CellcensusError: If an area of `source` has no parent.
    """
    with writing(store, writer="allocation"):
        frame = store.read_allocation(source)
        # Summed in Arrow, typed by _SCHEMA: a pandas group-by turns an all-null date column (a
        # network without validity dates) into float NaN, which cannot be written as dates.
        table = pa.Table.from_pandas(frame[_SCHEMA.names], schema=_SCHEMA, preserve_index=False)
        codes = table.column("area_code").to_pandas().astype(str).map(parent)
        if codes.isna().any():
            raise CellcensusError(f"the {source} allocation has area codes without a parent area")
        table = table.set_column(
            _SCHEMA.get_field_index("area_code"), "area_code", pa.array(codes, type=pa.string())
        )
        keys = ["cell_id", "valid_from", "valid_to", "area_code"]  # per version of each cell
        summed = table.group_by(keys, use_threads=False).aggregate(
            [("weight", "sum"), ("overlap_km2", "sum")]
        )
        summed = summed.rename_columns([*keys, "weight", "overlap_km2"])
        roll_up_boundaries(store, parent=parent, level=level, source=source)
        made_from = (pq.read_schema(store.allocation_path(source)).metadata or {}).get(
            CELLS_DIGEST_KEY
        )
        return _write(
            _sorted_versions(summed).select(_SCHEMA.names),
            path=store.allocation_path(level),
            cells=made_from.decode() if made_from else None,
        )


def _sorted_versions(table: pa.Table) -> pa.Table:
    """Rows by cell_id, valid_from (nulls first), area_code, as `versioned_allocation` sorts."""
    # A sort key of its own puts nulls first on every pyarrow the project supports.
    dated = table.append_column("dated", pc.is_valid(table.column("valid_from")))
    order = [(key, "ascending") for key in ("cell_id", "dated", "valid_from", "area_code")]
    return dated.sort_by(order).drop_columns(["dated"])


def _save(allocation: pd.DataFrame, *, path: Path, cells: str) -> Path:
    """Write an allocation frame atomically (aside, then renamed)."""
    table = pa.Table.from_pandas(allocation[_SCHEMA.names], schema=_SCHEMA, preserve_index=False)
    return _write(table, path=path, cells=cells)


def _write(table: pa.Table, *, path: Path, cells: str | None) -> Path:
    """Write an allocation table atomically, recording the digest of the `cells` it is of."""
    if cells is not None:
        table = table.replace_schema_metadata({CELLS_DIGEST_KEY: cells.encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, aside)
    aside.replace(path)
    return path


def versioned_allocation(
    *,
    cells: pd.DataFrame,
    areas: pd.DataFrame,
    coverage: CoverageModel = DEFAULT_COVERAGE,
    grid_m: float | None = None,
    prior: AllocationPrior = "area",
) -> pd.DataFrame:
    """The allocation of every state of the network, as versions of each cell's weights.

    The network is allocated once per distinct state (`network_states`: k change dates
    make k + 1 states), because a cell that appears, moves or goes reshapes its neighbours'
    footprints too. The grid tiles and the population prior are computed once for all
    states. A cell's weights make a new version only from the first state where they differ
    (by more than `SAME_WEIGHT`) from its previous one, so a cell far from every change has
    one version. Versions then tile the time line (see `VERSIONED_COLUMNS`). A network
    without validity dates gives one state and the unversioned allocation, with null dates.

    Args:
        cells: The cells table, one row per cell version (docs/schema.md).
        areas: area_code and geometry (WGS84), as for `build_allocation`.
        coverage: The coverage model: ``voronoi``, ``sector`` or ``signal``.
        grid_m: Allocate to the INSPIRE grid of this resolution (grid models only).
        prior: ``area`` (uniform) or ``population`` (grid models only).

    Returns:
        `VERSIONED_COLUMNS`, sorted by cell_id, valid_from (nulls first), area_code.

    Raises:
        CellcensusError: If the Voronoi model is asked for the population prior or the grid
            (`check_coverage`), or a cell lies farther than `FARTHEST_SITE_KM` from every
            area (`check_sites_near`).
    """
    check_coverage(coverage, prior=prior, grid_m=grid_m)
    check_sites_near(cells, areas=areas)
    allocate_state: Callable[[pd.DataFrame], pd.DataFrame]
    if coverage == "voronoi":
        country = country_of(areas)

        def allocate_state(state: pd.DataFrame) -> pd.DataFrame:
            return allocate(coverage=voronoi_coverage(cells=state, country=country), areas=areas)

    else:
        model: FootprintModel = "sector" if coverage == "sector" else "signal"
        population = register_population_areas() if prior == "population" else None
        allocate_state = _footprint_allocator(
            areas=areas,
            model=model,
            tile_m=DEFAULT_TILE_M,
            radio=None,
            grid_m=grid_m,
            population=population,
        )
    versions = [
        allocate_state(state.cells).assign(_state=number, valid_from=state.valid_from)
        for number, state in enumerate(network_states(cells))
    ]
    return _as_versions(versions)


def check_coverage(
    coverage: CoverageModel, *, prior: AllocationPrior | None, grid_m: float | None = None
) -> None:
    """Refuse what the coverage model cannot do, before anything is read or written.

    Raises:
        CellcensusError: If the population prior or the grid is asked of the Voronoi model
            (both need the footprint on tiles that only the grid models make).
    """
    if coverage == "voronoi" and prior == "population":
        raise CellcensusError(
            "the population prior needs a grid footprint: use --coverage sector or signal"
        )
    if coverage == "voronoi" and grid_m is not None:
        raise CellcensusError("the grid needs a grid footprint: use --coverage sector or signal")


def check_sites_near(cells: pd.DataFrame, *, areas: pd.DataFrame) -> None:
    """Refuse cells farther than `FARTHEST_SITE_KM` from every area, naming the first.

    Raises:
        CellcensusError: Naming the cell, its position and the likely mistakes.
    """
    sites = cells.drop_duplicates(["latitude", "longitude"]).sort_values("cell_id")
    points = to_metric(shapely.points(sites["longitude"], sites["latitude"]))
    tree = shapely.STRtree(to_metric(areas["geometry"].to_numpy()))
    near = tree.query_nearest(points, max_distance=FARTHEST_SITE_KM * 1000, all_matches=False)
    far = np.setdiff1d(np.arange(len(sites)), near[0])
    if not len(far):
        return
    first = sites.iloc[far[0]]
    others = f" (and {len(far) - 1} other site(s))" if len(far) > 1 else ""
    raise CellcensusError(
        f"cells: cell {first['cell_id']!r} at latitude {first['latitude']}, longitude "
        f"{first['longitude']} is more than {FARTHEST_SITE_KM:g} km from every area{others}, "
        "and its devices would be counted in the nearest one; correct the cells table's "
        "positions (latitude and longitude swapped? a sign lost?) and ingest it again, or "
        "allocate to areas that cover the whole network"
    )


def _as_versions(states: list[pd.DataFrame]) -> pd.DataFrame:
    """Per-state allocations (with _state, their order, and valid_from) as cell versions."""
    if not states:
        return pd.DataFrame({column: [] for column in VERSIONED_COLUMNS})
    if len(states) == 1:  # one state: the unversioned allocation, open at both ends
        frame = states[0].assign(valid_from=None, valid_to=None)
        return frame[list(VERSIONED_COLUMNS)].reset_index(drop=True)
    frame = pd.concat(states, ignore_index=True)
    frame = frame.sort_values(["cell_id", "_state", "area_code"], kind="stable")
    keys = ["cell_id", "_state"]
    frame = frame.merge(_version_starts(frame), on=keys, how="inner")
    # Tile the time line: the first version opens at the start, each runs to the next's start.
    firsts = frame.drop_duplicates(keys)[[*keys, "valid_from"]].copy()
    firsts["_next"] = firsts.groupby("cell_id")["valid_from"].shift(-1)
    first = firsts.groupby("cell_id").cumcount() == 0
    firsts.loc[first.to_numpy(), "valid_from"] = None
    firsts["valid_to"] = [
        None if pd.isna(day) else day - dt.timedelta(days=1) for day in firsts["_next"]
    ]
    frame = frame.drop(columns="valid_from").merge(
        firsts[[*keys, "valid_from", "valid_to"]], on=keys, how="inner"
    )
    frame = frame.sort_values(["cell_id", "_state", "area_code"], kind="stable")
    return frame[list(VERSIONED_COLUMNS)].reset_index(drop=True)


def _version_starts(frame: pd.DataFrame) -> pd.DataFrame:
    """The (cell_id, _state) pairs whose weights differ from the cell's previous state's.

    A cell's weights in a state are compared as one value: its areas with their weights and
    overlaps (the Bayesian estimator reads those too), each rounded to `SAME_WEIGHT`.
    Grouped in DuckDB: a national network's 20 states have 400,000 pairs.
    """
    rounded = frame[["cell_id", "_state", "area_code"]].assign(
        weight=np.round(frame["weight"].to_numpy() / SAME_WEIGHT).astype(np.int64),
        overlap=np.round(frame["overlap_km2"].to_numpy() / SAME_WEIGHT).astype(np.int64),
    )
    with duckdb.connect() as con:
        con.register("rounded", rounded)
        starts: pd.DataFrame = con.sql(
            """
            WITH states AS (
                SELECT cell_id, _state,
                       list((area_code, weight, overlap) ORDER BY area_code) AS weights
                FROM rounded GROUP BY cell_id, _state)
            SELECT cell_id, _state FROM states
            QUALIFY weights IS DISTINCT FROM
                    lag(weights) OVER (PARTITION BY cell_id ORDER BY _state)
            """
        ).df()
    return starts


def default_prior(coverage: CoverageModel) -> AllocationPrior:
    """The population prior where the coverage model has a grid to carry it, else area."""
    return "area" if coverage == "voronoi" else "population"


def register_population_areas(year: int = PRIOR_REGISTER_YEAR) -> pd.DataFrame:
    """Municipalities (area_code, geometry) with their register population: the prior."""
    counts = register_population(year)[["area_code", "population"]]
    return municipalities()[["area_code", "geometry"]].merge(counts, on="area_code")


def _frame(**columns: list[object]) -> pd.DataFrame:
    return pd.DataFrame(columns)[list(ALLOCATION_COLUMNS)]


def read_areas(path: Path, *, code_property: str = "code") -> pd.DataFrame:
    """Areas from a GeoJSON FeatureCollection of (multi)polygons in WGS84.

    Args:
        path: The GeoJSON file.
        code_property: The feature property that holds each area's code.

    Returns:
        area_code (text) and geometry, one row per feature.

    Raises:
        CellcensusError: The file is not GeoJSON polygons with that code property.
    """
    if not Path(path).is_file():
        raise CellcensusError(
            f"--areas {path}: no such file; give a GeoJSON file of the areas' polygons"
        )
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CellcensusError(
            f"--areas {path}: not a GeoJSON FeatureCollection ({error})"
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("features"), list):
        # A KeyError would print only the key's name: ('features').
        raise CellcensusError(
            f'--areas {path}: not a GeoJSON FeatureCollection (no "features" list); '
            "give a GeoJSON file of the areas' polygons"
        )
    features = document["features"]
    if not features:
        raise CellcensusError(f"--areas {path}: holds no features; give the areas' polygons")
    codes, shapes = [], []
    for number, feature in enumerate(features):
        if not isinstance(feature, dict):
            raise CellcensusError(f"--areas {path}: feature {number} is not a GeoJSON Feature")
        code = (feature.get("properties") or {}).get(code_property)
        if code is None:
            raise CellcensusError(
                f"--areas {path}: feature {number} has no property {code_property!r}; "
                "name the code property with --code-property"
            )
        codes.append(str(code))
        shapes.append(_area_shape(feature, where=f"--areas {path}: feature {number}"))
    if len(set(codes)) != len(codes):
        raise CellcensusError(f"--areas {path}: area codes repeat; each area needs its own")
    return pd.DataFrame({"area_code": codes, "geometry": shapes})


def _area_shape(feature: dict[str, Any], *, where: str) -> shapely.Geometry:
    """A feature's (multi)polygon, refused unless readable and in WGS84 degrees."""
    geometry = feature.get("geometry")
    if geometry is None:
        raise CellcensusError(f"{where} has no geometry; areas must be polygons")
    try:
        shape = shapely.from_geojson(json.dumps(geometry))
    except (GEOSException, TypeError, ValueError) as error:
        detail = str(error).strip().splitlines()[0]
        raise CellcensusError(f"{where} has no readable geometry ({detail})") from None
    if shape.geom_type not in ("Polygon", "MultiPolygon"):
        raise CellcensusError(f"{where} is a {shape.geom_type}; areas must be polygons")
    west, south, east, north = shape.bounds
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        # A projected file (e.g. Belgian Lambert 72) would put every cell outside every area.
        raise CellcensusError(
            f"{where} has coordinates outside WGS84 degrees ({west:.0f}, {south:.0f}); "
            "reproject the file to WGS84 (EPSG:4326)"
        )
    return shape
