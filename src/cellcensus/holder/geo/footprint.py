"""Cell footprints on a grid: the probability that each cell serves each small tile.

Two models beside the site Voronoi of `coverage`, both evaluated at the centres of square
tiles of the ETRS89-LAEA grid (EPSG:3035, the INSPIRE grid) that fall inside the areas:

``sector``
    Sector-aware Voronoi: a tile is served by its nearest site, and of that site by the sector
    whose main beam points closest to the tile (a site's sectors split its region by azimuth).

``signal``
    A signal-strength model in the spirit of Eurostat's mobloc and the Multi-MNO cell
    footprints. The received power from a sector is a log-distance path loss plus the 3GPP
    horizontal antenna pattern (3GPP TR 36.814: ``-min(12 (phi / phi_3dB)^2, A_m)``); which
    sector serves is decided by the strongest signal under log-normal shadowing. The argmax
    of powers perturbed by independent Gumbel noise of scale ``b`` is exactly a softmax of the
    powers with temperature ``b``; the Gumbel that matches a Gaussian shadowing of standard
    deviation ``sigma`` has ``b = sigma * sqrt(6) / pi``. So the serving probability of
    sector ``s`` on a tile is ``softmax_s(power_s / b)`` over the sectors of the tile's
    nearest sites: mobloc's "dominance", with the temperature tied to a physical figure.

Cells of one sector (technologies, carriers) share its footprint. Only what docs/schema.md's cells
table carries is used (position, azimuth, beam width), none of the operator's radio planning.

References: Tennekes & Gootzen (2022), "Bayesian location estimation of mobile devices using a
signal strength model", Journal of Spatial Information Science 25; 3GPP TR 36.814 (2010), table
A.2.1.1-2; Ricciato & Coluccia (2023), IEEE TMC (the use of P(cell | tile) for estimation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from cellcensus.holder.geo.coverage import current_cells
from cellcensus.holder.geo.projection import GRID_CRS, project_points, to_grid

FootprintModel = Literal["sector", "signal"]

DEFAULT_BEAM_WIDTH_DEG = 65.0
"""Half-power beam width assumed for a directional cell that does not state one (the usual
three-sector macro antenna)."""

MIN_DISTANCE_M = 30.0
"""Distances below this count as this: the near field of an antenna, where path loss is flat."""


@dataclass(frozen=True)
class RadioModel:
    """Parameters of the ``signal`` footprint model (defaults: typical macro-cell values).

    Attributes:
        path_loss_exponent: Exponent of distance in the path loss (3.5: suburban macro cells).
        shadowing_db: Standard deviation of log-normal shadowing (6 dB: 3GPP urban macro, LOS
            and NLOS between 4 and 8 dB).
        front_to_back_db: Attenuation of a sector antenna behind it (3GPP: 20 dB).
        nearest_sites: Sites whose sectors compete for a tile.
        min_probability: Serving probabilities below this are dropped (then renormalised).
    """

    path_loss_exponent: float = 3.5
    shadowing_db: float = 6.0
    front_to_back_db: float = 20.0
    nearest_sites: int = 8
    min_probability: float = 1e-3

    @property
    def temperature_db(self) -> float:
        """Softmax temperature: the Gumbel scale matching the shadowing's variance."""
        return self.shadowing_db * math.sqrt(6) / math.pi


@dataclass(frozen=True)
class Tiles:
    """Grid tiles inside the areas: centres in EPSG:3035 metres and the area holding each.

    Attributes:
        x: Easting of each tile's centre.
        y: Northing of each tile's centre.
        area_code: The area containing the centre.
        size_m: Side of a tile.
    """

    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    area_code: npt.NDArray[np.object_]
    size_m: float

    @property
    def km2(self) -> float:
        """Area of one tile."""
        return (self.size_m / 1000) ** 2

    @cached_property
    def tree(self) -> cKDTree:
        """A k-d tree of the centres, built once for every state of a network."""
        return cKDTree(np.column_stack([self.x, self.y]))


@dataclass(frozen=True)
class Sectors:
    """The distinct sectors of a network, and the sector of each cell.

    Attributes:
        cell_id: The cells (current version of each).
        cell_sector: Index of each cell's sector.
        site: Index of each sector's site.
        azimuth_deg: Main beam direction of each sector (NaN: omnidirectional).
        beam_width_deg: Half-power beam width of each sector.
        site_x, site_y: Site positions in EPSG:3035 metres.
    """

    cell_id: npt.NDArray[np.object_]
    cell_sector: npt.NDArray[np.intp]
    site: npt.NDArray[np.intp]
    azimuth_deg: npt.NDArray[np.float64]
    beam_width_deg: npt.NDArray[np.float64]
    site_x: npt.NDArray[np.float64]
    site_y: npt.NDArray[np.float64]


def grid_tiles(areas: pd.DataFrame, *, size_m: float) -> Tiles:
    """The tiles of the EPSG:3035 grid of side `size_m` whose centre lies in an area.

    Args:
        areas: area_code and geometry (WGS84 polygons).
        size_m: Tile side in metres (the grid is aligned on multiples of it, as INSPIRE's).

    Returns:
        The tiles, row by row from the south-west.
    """
    shapes = to_grid(areas["geometry"].to_numpy())
    xmin, ymin, xmax, ymax = shapely.total_bounds(shapes)
    xs = np.arange(math.floor(xmin / size_m), math.ceil(xmax / size_m)) * size_m + size_m / 2
    ys = np.arange(math.floor(ymin / size_m), math.ceil(ymax / size_m)) * size_m + size_m / 2
    gx, gy = np.meshgrid(xs, ys)
    x, y = gx.ravel(), gy.ravel()
    point_at, area_at = points_in_areas(shapes, x, y)
    codes = areas["area_code"].astype(str).to_numpy()
    return Tiles(x=x[point_at], y=y[point_at], area_code=codes[area_at], size_m=float(size_m))


def tile_density(tiles: Tiles, population: pd.DataFrame) -> npt.NDArray[np.float64]:
    """People per km2 at each tile: that of the populated area its centre lies in, else 0.

    Args:
        tiles: The tiles.
        population: area_code, geometry (WGS84) and population of areas with a known count
            (e.g. municipalities with their register population); they need not be the
            areas the tiles are allocated to.

    Returns:
        The density at each tile, uniform within each populated area.
    """
    shapes = to_grid(population["geometry"].to_numpy())
    km2 = shapely.area(shapes) / 1e6
    density = population["population"].to_numpy(dtype=float) / np.where(km2 > 0, km2, np.inf)
    point_at, area_at = points_in_areas(shapes, tiles.x, tiles.y)
    found = np.zeros(len(tiles.x))
    found[point_at] = density[area_at]
    return found


def points_in_areas(
    shapes: npt.NDArray[np.object_], x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """The points (x, y) inside an area (not on its border), and the area of each.

    A point inside several areas (they overlap) belongs to the first. Each prepared polygon
    tests only the points of its bounding box: about ten times faster than an R-tree of the
    polygons queried by the tile centres of Belgium (`benchmarks/bench_footprint.py`).

    Returns:
        The points' indices, ascending, and the index in `shapes` of each one's area.
    """
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    area_at = np.full(len(x), -1, dtype=np.intp)
    for index in range(len(shapes) - 1, -1, -1):  # backwards: the first area is written last
        xmin, ymin, xmax, ymax = shapely.bounds(shapes[index])
        low = np.searchsorted(sorted_x, xmin, side="left")
        high = np.searchsorted(sorted_x, xmax, side="right")
        near = order[low:high]
        near = near[(y[near] >= ymin) & (y[near] <= ymax)]
        shapely.prepare(shapes[index])
        area_at[near[shapely.contains_xy(shapes[index], x[near], y[near])]] = index
    point_at = np.flatnonzero(area_at >= 0)
    return point_at, area_at[point_at]


def network_sectors(cells: pd.DataFrame) -> Sectors:
    """Group the current cells into sectors: one per site position and azimuth."""
    current = current_cells(cells)
    lon = current["longitude"].to_numpy(dtype=float)
    lat = current["latitude"].to_numpy(dtype=float)
    azimuth = _column(current, "azimuth_deg", default=np.nan)
    beam = _column(current, "beam_width_deg", default=DEFAULT_BEAM_WIDTH_DEG)
    beam = np.where(np.isnan(beam) | (beam <= 0), DEFAULT_BEAM_WIDTH_DEG, beam)
    keys = pd.DataFrame({"lon": lon.round(6), "lat": lat.round(6), "az": azimuth.round(1)})
    sector_of_cell, first_cell = _factorize(keys)
    site_keys = keys.iloc[first_cell][["lon", "lat"]]
    site_of_sector, first_sector = _factorize(site_keys)
    site_x, site_y = project_points(lon[first_cell][first_sector], lat[first_cell][first_sector])
    return Sectors(
        cell_id=current["cell_id"].astype(str).to_numpy(dtype=object),
        cell_sector=sector_of_cell,
        site=site_of_sector,
        azimuth_deg=azimuth[first_cell],
        beam_width_deg=beam[first_cell],
        site_x=site_x,
        site_y=site_y,
    )


def serving_probabilities(
    *, sectors: Sectors, tiles: Tiles, model: FootprintModel, radio: RadioModel
) -> pd.DataFrame:
    """P(sector serves | tile) for the pairs that matter.

    Returns:
        tile, sector, probability: per tile the probabilities sum to 1; rows by tile, then
        by the tile's nearest sites, then by sector.
    """
    return served(sectors=sectors, tiles=tiles, model=model, radio=radio).table


@dataclass(frozen=True)
class Served:
    """A network's `serving_probabilities` (``table``) and what they were computed from."""

    sectors: Sectors
    nearest: npt.NDArray[np.intp]
    """Each tile's nearest sites, nearest first."""
    table: pd.DataFrame


def served(
    *,
    sectors: Sectors,
    tiles: Tiles,
    model: FootprintModel,
    radio: RadioModel,
    previous: Served | None = None,
) -> Served:
    """`serving_probabilities`, recomputed only for the tiles a change of network reaches.

    A tile's probabilities depend on its nearest sites and their sectors alone: where those
    are as in `previous` (another state of the network on the same tiles), its rows are
    taken from there, the sectors renumbered. The table is the one computed afresh.
    """
    nearest = min(radio.nearest_sites if model == "signal" else 1, len(sectors.site_x))
    tree = cKDTree(np.column_stack([sectors.site_x, sectors.site_y]))
    _, site = tree.query(np.column_stack([tiles.x, tiles.y]), k=nearest)
    site = np.asarray(site, dtype=np.intp).reshape(len(tiles.x), nearest)
    members = _site_sectors(sectors)
    same = np.zeros(len(tiles.x), dtype=bool)
    parts = []
    if previous is not None and previous.nearest.shape == site.shape:
        sector_number, site_unchanged, site_number = _renumbered(previous, sectors, members)
        same_sites = (site_number[previous.nearest] == site).all(axis=1)
        same = same_sites & site_unchanged[site].all(axis=1)
        kept = previous.table[same[previous.table["tile"].to_numpy()]]
        parts.append(kept.assign(sector=sector_number[kept["sector"].to_numpy()]))
    changed = np.flatnonzero(~same)
    chunk = max(CHUNK_PAIRS // (nearest * members.shape[1]), 1)  # tiles at once
    parts += [
        _served_tiles(
            sectors=sectors,
            tiles=tiles,
            tile=changed[first : first + chunk],
            candidates=members[site[changed[first : first + chunk]]],
            model=model,
            radio=radio,
        )
        for first in range(0, len(changed), chunk)
    ]
    table = pd.concat(parts, ignore_index=True) if parts else _served([], [], [])
    if same.any() and len(changed):  # by tile, each tile's rows in order (as the sums add)
        order = np.argsort(table["tile"].to_numpy(), kind="stable")
        table = table.iloc[order].reset_index(drop=True)
    return Served(sectors=sectors, nearest=site, table=table)


def _renumbered(
    previous: Served, sectors: Sectors, members: npt.NDArray[np.intp]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_], npt.NDArray[np.intp]]:
    """How `previous`'s sectors and sites are numbered in `sectors`.

    Returns:
        The new number of each previous sector of an unchanged site (-1 otherwise); whether
        each new site is unchanged (at a previous site's position, with the same sectors,
        azimuths and beam widths in the same order); and the new number of each previous
        site (-1 where none is at its position).
    """
    old = previous.sectors
    old_members = _site_sectors(old)
    width = max(members.shape[1], old_members.shape[1])
    members = np.pad(members, ((0, 0), (0, width - members.shape[1])), constant_values=-1)
    old_members = np.pad(
        old_members, ((0, 0), (0, width - old_members.shape[1])), constant_values=-1
    )
    new_sites = pd.DataFrame(
        {"x": sectors.site_x, "y": sectors.site_y, "new": np.arange(len(sectors.site_x))}
    )
    old_sites = pd.DataFrame({"x": old.site_x, "y": old.site_y, "old": np.arange(len(old.site_x))})
    pairs = new_sites.merge(old_sites, on=["x", "y"], how="inner")
    new, was = pairs["new"].to_numpy(), pairs["old"].to_numpy()
    now, then = members[new], old_members[was]
    present = now >= 0
    alike = (present == (then >= 0)) & (
        ~present
        | (
            _same(sectors.azimuth_deg[now], old.azimuth_deg[then])
            & _same(sectors.beam_width_deg[now], old.beam_width_deg[then])
        )
    )
    unchanged = alike.all(axis=1)
    site_unchanged = np.zeros(len(sectors.site_x), dtype=bool)
    site_unchanged[new[unchanged]] = True
    site_number = np.full(len(old.site_x), -1, dtype=np.intp)
    site_number[was] = new
    sector_number = np.full(len(old.site), -1, dtype=np.intp)
    kept = then[unchanged] >= 0
    sector_number[then[unchanged][kept]] = now[unchanged][kept]
    return sector_number, site_unchanged, site_number


def _same(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Elementwise equality, NaN equal to NaN (an omnidirectional sector's azimuth)."""
    equal: npt.NDArray[np.bool_] = (a == b) | (np.isnan(a) & np.isnan(b))
    return equal


CHUNK_PAIRS = 2**21
"""Candidate (tile, sector) pairs evaluated at once: 16 MB per array of them."""


def _site_sectors(sectors: Sectors) -> npt.NDArray[np.intp]:
    """Each site's sectors, ascending, padded with -1: site by most sectors at a site."""
    order = np.argsort(sectors.site, kind="stable")
    per_site = np.bincount(sectors.site, minlength=len(sectors.site_x))
    start = np.cumsum(per_site) - per_site
    position = np.arange(len(order)) - np.repeat(start, per_site)
    members = np.full((len(per_site), max(int(per_site.max(initial=0)), 1)), -1, dtype=np.intp)
    members[sectors.site[order], position] = order
    return members


def _served_tiles(
    *,
    sectors: Sectors,
    tiles: Tiles,
    tile: npt.NDArray[np.intp],
    candidates: npt.NDArray[np.intp],
    model: FootprintModel,
    radio: RadioModel,
) -> pd.DataFrame:
    """`serving_probabilities` of the tiles `tile`, one per row of `candidates`.

    `candidates` holds each tile's sectors: by nearest site, then the site's sectors, -1
    where a site has fewer than the most.
    """
    candidates = candidates.reshape(len(candidates), -1)
    valid = candidates >= 0
    sector = np.where(valid, candidates, 0)
    dx = tiles.x[tile][:, None] - sectors.site_x[sectors.site[sector]]
    dy = tiles.y[tile][:, None] - sectors.site_y[sectors.site[sector]]
    off_axis = _off_axis(sectors=sectors, sector=sector, dx=dx, dy=dy)
    if model == "sector":  # nearest site; the sector pointing closest (in beam widths)
        score = -np.nan_to_num(np.abs(off_axis) / sectors.beam_width_deg[sector])
        best = np.argmax(np.where(valid, score, -np.inf), axis=1)
        rows = np.arange(len(tile))
        return _served(tile, sector[rows, best], np.ones(len(tile)))
    attenuation = np.minimum(
        12 * (off_axis / sectors.beam_width_deg[sector]) ** 2, radio.front_to_back_db
    )
    gain = np.where(np.isnan(off_axis), 0.0, -attenuation)  # 3GPP pattern; omni: 0 dB
    distance = np.maximum(np.hypot(dx, dy), MIN_DISTANCE_M)
    power = gain - 10 * radio.path_loss_exponent * np.log10(distance)
    # Softmax over each tile's candidates; small values dropped, then renormalised.
    score = np.where(valid, power / radio.temperature_db, -np.inf)
    weight = np.exp(score - score.max(axis=1, keepdims=True))
    probability = weight / weight.sum(axis=1, keepdims=True)
    keep = valid & (probability >= radio.min_probability)
    kept = np.where(keep, probability, 0.0)
    probability = kept / kept.sum(axis=1, keepdims=True)
    tile = np.broadcast_to(tile[:, None], sector.shape)
    return _served(tile[keep], sector[keep], probability[keep])


def _served(tile: npt.ArrayLike, sector: npt.ArrayLike, probability: npt.ArrayLike) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "tile": np.asarray(tile, dtype=np.intp),
            "sector": np.asarray(sector, dtype=np.intp),
            "probability": np.asarray(probability, dtype=np.float64),
        }
    )


def _off_axis(
    *,
    sectors: Sectors,
    sector: npt.NDArray[np.intp],
    dx: npt.NDArray[np.float64],
    dy: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Angle between each sector's main beam and the tile, in -180..180 (NaN: omni)."""
    bearing = np.degrees(np.arctan2(dx, dy)) % 360
    result: npt.NDArray[np.float64] = (bearing - sectors.azimuth_deg[sector] + 180) % 360 - 180
    return result


def _column(frame: pd.DataFrame, name: str, *, default: float) -> npt.NDArray[np.float64]:
    if name not in frame.columns:
        return np.full(len(frame), default)
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)


def _factorize(keys: pd.DataFrame) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Each row's distinct key (numbered by first appearance) and each key's first row."""
    codes = keys.groupby(list(keys.columns), sort=False, dropna=False).ngroup().to_numpy()
    first = np.unique(codes, return_index=True)[1]
    return codes.astype(np.intp), first.astype(np.intp)


__all__ = [
    "GRID_CRS",
    "FootprintModel",
    "RadioModel",
    "Sectors",
    "Served",
    "Tiles",
    "grid_tiles",
    "network_sectors",
    "points_in_areas",
    "served",
    "serving_probabilities",
]
