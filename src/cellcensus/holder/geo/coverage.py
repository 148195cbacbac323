"""Where each cell serves: Voronoi regions of the antenna sites, clipped to the country.

A first-order coverage model (as in the Eurostat Multi-MNO pipeline's fallback and most
published work with CDRs): every point of the country is served by its nearest site. Cells of
one site (sectors, technologies) share the site's position, so they share its region; sites are
found by position, which also keeps duplicate positions from breaking the tessellation. The
tessellation is computed in metres (EPSG:3812), not in degrees, where a degree of longitude is
only two thirds of a degree of latitude at Belgian latitudes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from cellcensus.holder.geo.projection import to_metric, to_wgs84

POSITION_DECIMALS = 6
"""Positions are compared to 1e-6 degree (about 0.1 m): closer antennas count as one site."""

ENVELOPE_MARGIN_M = 50_000.0
"""How far beyond the country and the sites the Voronoi regions are extended before clipping."""


def current_cells(cells: pd.DataFrame) -> pd.DataFrame:
    """One row per cell_id: the version with the latest ``valid_from`` (all if no column).

    Args:
        cells: The cells table (cell_id, latitude, longitude, and optionally valid_from).

    Returns:
        The cells, one per cell_id, in cell_id order.
    """
    _require(cells, ("cell_id", "latitude", "longitude"), what="cells")
    frame = cells.copy()
    if "valid_from" in frame.columns:
        frame["_order"] = pd.to_datetime(frame["valid_from"]).fillna(pd.Timestamp.min)
        frame = frame.sort_values(["cell_id", "_order"], kind="stable").drop(columns="_order")
    frame = frame.drop_duplicates("cell_id", keep="last")
    return frame.sort_values("cell_id", kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class NetworkState:
    """The network as it stood between two consecutive change dates of the cells table.

    Attributes:
        valid_from: First local date of the state (None: open, since the beginning).
        valid_to: Last local date of the state, inclusive (None: open, until further notice).
        cells: The cells valid then, one version per cell_id (as `current_cells` gives).
    """

    valid_from: dt.date | None
    valid_to: dt.date | None
    cells: pd.DataFrame


def network_states(cells: pd.DataFrame) -> list[NetworkState]:
    """The distinct states of the network, in date order.

    A state changes on each date some cell version starts (``valid_from``) and on the day
    after one ends (``valid_to`` is inclusive, as at ingestion); k distinct change dates make
    k + 1 states, the first open at the start and the last open at the end. On a day two
    versions of a cell are both valid, the one with the latest ``valid_from`` counts. States
    where no cell is valid are left out. A table without validity dates is one state, the
    cells of `current_cells`.

    Args:
        cells: The cells table (cell_id, latitude, longitude; optionally valid_from, valid_to).

    Returns:
        The states, each with its cells.
    """
    _require(cells, ("cell_id", "latitude", "longitude"), what="cells")
    starts = _dates(cells, "valid_from")
    ends = _dates(cells, "valid_to")
    changes = sorted(
        {day.date() for day in starts.dropna()}
        | {(day + pd.Timedelta(days=1)).date() for day in ends.dropna()}
    )
    if not changes:
        return [NetworkState(valid_from=None, valid_to=None, cells=current_cells(cells))]
    bounds: list[dt.date | None] = [None, *changes]
    states = []
    for first, following in zip(bounds, [*changes, None], strict=True):
        # Validity is constant within a state: look at its first day (the last, if open).
        day = pd.Timestamp(first if first is not None else changes[0] - dt.timedelta(days=1))
        valid = (starts.isna() | (starts <= day)) & (ends.isna() | (day <= ends))
        if not valid.any():
            continue
        last = None if following is None else following - dt.timedelta(days=1)
        states.append(
            NetworkState(valid_from=first, valid_to=last, cells=current_cells(cells[valid]))
        )
    return states


def _dates(cells: pd.DataFrame, column: str) -> pd.Series:
    if column not in cells.columns:
        return pd.Series(pd.NaT, index=cells.index, dtype="datetime64[ns]")
    return pd.to_datetime(cells[column]).dt.normalize()


def voronoi_coverage(*, cells: pd.DataFrame, country: shapely.Geometry) -> pd.DataFrame:
    """The region each cell serves: its site's Voronoi region, clipped to the country.

    Args:
        cells: Cells with cell_id, latitude and longitude (WGS84); several versions of a cell
            are allowed, the one with the latest ``valid_from`` is used.
        country: The country (WGS84 polygon or multipolygon).

    Returns:
        One row per cell: cell_id, longitude, latitude (its site), geometry (WGS84 polygon,
        shared by the cells of a site; empty when the site's region misses the country).
    """
    current = current_cells(cells)
    columns = ["cell_id", "longitude", "latitude", "geometry"]
    if current.empty:
        return pd.DataFrame({column: [] for column in columns})
    positions = np.column_stack(
        [current["longitude"].to_numpy(dtype=float), current["latitude"].to_numpy(dtype=float)]
    )
    # One site per position (to 1e-6 degree); the site is the first cell's exact position.
    _, first_cell, site_of_cell = np.unique(
        positions.round(POSITION_DECIMALS), axis=0, return_index=True, return_inverse=True
    )
    sites = positions[first_cell]
    site_of_cell = site_of_cell.reshape(-1)
    points = to_metric(shapely.points(sites))
    country_m = to_metric([country])[0]
    regions = _voronoi(points=points, country=country_m)
    clipped = _clip(regions=regions, country=country_m)
    geometry = to_wgs84(clipped)
    return pd.DataFrame(
        {
            "cell_id": current["cell_id"].astype(str).to_numpy(),
            "longitude": sites[site_of_cell, 0],
            "latitude": sites[site_of_cell, 1],
            "geometry": geometry[site_of_cell],
        }
    )


def _voronoi(*, points: np.ndarray, country: shapely.Geometry) -> np.ndarray:
    """Voronoi regions of distinct `points`, in their order, reaching beyond `country`."""
    xmin, ymin, xmax, ymax = shapely.total_bounds(np.append(points, country))
    envelope = shapely.box(
        xmin - ENVELOPE_MARGIN_M,
        ymin - ENVELOPE_MARGIN_M,
        xmax + ENVELOPE_MARGIN_M,
        ymax + ENVELOPE_MARGIN_M,
    )
    if len(points) == 1:
        return np.array([envelope], dtype=object)
    diagram = shapely.voronoi_polygons(
        shapely.multipoints(points), extend_to=envelope, ordered=True
    )
    regions = shapely.get_parts(diagram)
    if len(regions) != len(points):  # collinear or degenerate input: match by location
        tree = shapely.STRtree(regions)
        point_index, region_index = tree.query(points, predicate="intersects")
        matched = np.full(len(points), None, dtype=object)
        for point, region in zip(point_index, region_index, strict=True):
            if matched[point] is None:
                matched[point] = regions[region]
        regions = matched
    return np.asarray(regions, dtype=object)


def _clip(*, regions: np.ndarray, country: shapely.Geometry) -> np.ndarray:
    """Regions intersected with the country; regions wholly inside are kept as they are."""
    shapely.prepare(country)
    inside = shapely.contains_properly(country, regions)
    clipped = regions.copy()
    border = ~inside
    if border.any():
        clipped[border] = shapely.intersection(regions[border], country)
    return clipped


def _require(frame: pd.DataFrame, columns: tuple[str, ...], *, what: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {', '.join(missing)}")
