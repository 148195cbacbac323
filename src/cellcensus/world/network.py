"""The holder's radio network: sites placed like a real grid, three sectors each, 2G/3G/4G cells.

Sites are shared between capacity (placed where people live, so cities get a site every few
hundred metres) and coverage (spread over the land, a site every several km in the Ardennes).
Each site has three sectors 120 degrees apart, and a cell per sector and technology it carries.
A few sites are switched on or off during the period (the cells' ``valid_from``/``valid_to``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from cellcensus.world.params import TECHNOLOGIES, WorldParams
from cellcensus.world.streams import Stream, random_stream
from cellcensus.world.territory import (
    Settlements,
    Territory,
    sample_points,
    settled_points,
    to_wgs84,
)

SECTORS = 3
"""Sectors per site (3gpp-36814's three-sector site)."""
OPEN = np.iinfo(np.int32).max
"""`valid_to` of a site that stays on (and, negated, `valid_from` of one that was always on)."""
TECHNOLOGY_RANGE = (1.0, 0.75, 0.6)
"""Nominal range of a 3G and 4G cell relative to a 2G cell of the same site (higher bands)."""


@dataclass(frozen=True)
class RadioNetwork:
    """Sites in the order of their identifiers (site i is ``S{i+1:05d}``).

    Sector ``s`` belongs to site ``s // 3`` and points ``azimuth_deg[s]``. Cells are numbered
    by site, then sector, then technology.

    Attributes:
        site_area: Area each site stands in.
        site_xy: Site positions in metres.
        site_lonlat: Site positions as WGS84 longitude, latitude.
        site_range_m: Nominal 2G coverage radius of each site.
        site_technologies: (sites, 3) whether the site carries 2G, 3G, 4G.
        valid_from: First day (ordinal) each site is on; ``-OPEN`` if on before the period.
        valid_to: Last day (ordinal) each site is on; ``OPEN`` if it stays on.
        azimuth_deg: Main direction of each sector, clockwise from north.
        beam_width_deg: Half-power beam width of every sector.
        sector_cell: (sectors, 3) cell serving a device that asks for each technology: the
            sector's cell of that technology, or of the best older one the site carries.
    """

    site_area: NDArray[np.intp]
    site_xy: NDArray[np.float64]
    site_lonlat: NDArray[np.float64]
    site_range_m: NDArray[np.float64]
    site_technologies: NDArray[np.bool_]
    valid_from: NDArray[np.int32]
    valid_to: NDArray[np.int32]
    azimuth_deg: NDArray[np.float64]
    beam_width_deg: float
    sector_cell: NDArray[np.int32]

    @property
    def size(self) -> int:
        """Number of sites."""
        return int(self.site_area.size)

    @property
    def cells(self) -> int:
        """Number of cells."""
        return int(self.site_technologies.sum()) * SECTORS

    @property
    def permanent(self) -> NDArray[np.bool_]:
        """Sites that are on for the whole period."""
        permanent: NDArray[np.bool_] = (self.valid_from == -OPEN) & (self.valid_to == OPEN)
        return permanent

    def sites_on(self, day: date) -> NDArray[np.bool_]:
        """Which sites are on during a local day."""
        ordinal = day.toordinal()
        on: NDArray[np.bool_] = (self.valid_from <= ordinal) & (ordinal <= self.valid_to)
        return on

    def cell_layout(self) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.intp]]:
        """Site, sector and technology index of each cell, in cell order."""
        per_site = self.site_technologies.sum(axis=1)
        cells_per_site = per_site * SECTORS
        cell_site = np.repeat(np.arange(self.size), cells_per_site)
        site_first = np.concatenate([[0], np.cumsum(cells_per_site)[:-1]])
        local = np.arange(cell_site.size) - site_first[cell_site]
        carried = np.argsort(~self.site_technologies, axis=1, kind="stable")
        technology = carried[cell_site, local % per_site[cell_site]]
        sector = cell_site * SECTORS + local // per_site[cell_site]
        return cell_site.astype(np.intp), sector.astype(np.intp), technology.astype(np.intp)


def sites_per_area(
    *, territory: Territory, sites: int, population_weight: float
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """How many capacity and coverage sites each area gets.

    Every area gets one coverage site; the other sites are shared, `population_weight` of
    them in proportion to population (capacity) and the rest to land area (coverage), each by
    the largest remainder so that the totals are exact and the result deterministic.

    Args:
        territory: The areas.
        sites: Total number of sites (at least one per area).
        population_weight: Share of the shared sites placed for capacity, in [0, 1].

    Returns:
        Capacity sites and coverage sites per area; together they sum to `sites`.
    """
    shared = sites - territory.size
    capacity_total = round(population_weight * shared)
    capacity = _largest_remainder(territory.population.astype(np.float64), capacity_total)
    coverage = _largest_remainder(territory.area_km2, shared - capacity_total) + 1
    return capacity, coverage


def _largest_remainder(weight: NDArray[np.float64], total: int) -> NDArray[np.int64]:
    quota = weight / weight.sum() * total
    counts: NDArray[np.int64] = np.floor(quota).astype(np.int64)
    order = np.argsort(-(quota - counts), kind="stable")
    counts[order[: total - int(counts.sum())]] += 1
    return counts


def build_network(
    *, territory: Territory, settlements: Settlements, params: WorldParams
) -> RadioNetwork:
    """Place the holder's sites, orient their sectors, equip them and schedule changes.

    Args:
        territory: The areas.
        settlements: Where people live (capacity sites follow them).
        params: The world's parameters.

    Returns:
        The network.
    """
    rng = random_stream(seed=params.seed, stream=Stream.NETWORK)
    capacity, coverage = sites_per_area(
        territory=territory, sites=params.sites, population_weight=params.site_population_weight
    )
    capacity_area = np.repeat(np.arange(territory.size), capacity).astype(np.intp)
    coverage_area = np.repeat(np.arange(territory.size), coverage).astype(np.intp)
    xy = np.concatenate(
        [
            settled_points(
                territory=territory,
                settlements=settlements,
                areas=capacity_area,
                rng=rng,
                concentration=1.5,
            ),
            sample_points(territory=territory, areas=coverage_area, rng=rng),
        ]
    )
    area = np.concatenate([capacity_area, coverage_area])
    order = np.lexsort((xy[:, 1], xy[:, 0], area))
    area, xy = area[order], xy[order]
    technologies = _equip(area=area, territory=territory, params=params, rng=rng)
    valid_from, valid_to = _site_changes(sites=area.size, params=params, rng=rng)
    base = rng.uniform(0, 360 / SECTORS, size=area.size)
    azimuth = (base[:, None] + np.arange(SECTORS)[None, :] * 360 / SECTORS).ravel()
    return RadioNetwork(
        site_area=area,
        site_xy=xy,
        site_lonlat=to_wgs84(xy),
        site_range_m=_nominal_range(xy),
        site_technologies=technologies,
        valid_from=valid_from,
        valid_to=valid_to,
        azimuth_deg=azimuth,
        beam_width_deg=params.beam_width_deg,
        sector_cell=_sector_cells(technologies),
    )


def _equip(
    *,
    area: NDArray[np.intp],
    territory: Territory,
    params: WorldParams,
    rng: np.random.Generator,
) -> NDArray[np.bool_]:
    """Which technologies each site carries: newer ones first where people are densest."""
    shares = dict(params.technology_shares)
    # Rank sites by the density of their area, with noise so that rural towns get some too.
    priority = np.log(territory.density[area]) + rng.normal(scale=1.0, size=area.size)
    rank = np.empty(area.size, dtype=np.int64)
    rank[np.argsort(-priority, kind="stable")] = np.arange(area.size)
    carries = np.column_stack(
        [rank < round(shares[technology] * area.size) for technology in TECHNOLOGIES]
    )
    carries[:, 0] = True
    return carries


def _site_changes(
    *, sites: int, params: WorldParams, rng: np.random.Generator
) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    """Switch a few sites on (new) or off (decommissioned) on a day inside the period."""
    valid_from = np.full(sites, -OPEN, dtype=np.int32)
    valid_to = np.full(sites, OPEN, dtype=np.int32)
    changes = round(params.site_change_share * sites) if params.days > 1 else 0
    if changes == 0:
        return valid_from, valid_to
    changed = rng.choice(sites, size=changes, replace=False)
    first = params.start.toordinal()
    removed, added = changed[: changes // 2], changed[changes // 2 :]
    # A removed site is on at least on the first day; an added one is off at least then.
    valid_to[removed] = first + rng.integers(0, params.days - 1, size=removed.size)
    valid_from[added] = first + rng.integers(1, params.days, size=added.size)
    return valid_from, valid_to


def _nominal_range(xy: NDArray[np.float64]) -> NDArray[np.float64]:
    """A 2G cell's nominal radius: 80% of the mean distance to the three nearest sites."""
    distance, _ = cKDTree(xy).query(xy, k=4)
    nominal: NDArray[np.float64] = np.clip(0.8 * distance[:, 1:].mean(axis=1), 300, 20_000)
    return np.round(nominal, -1)


def _sector_cells(technologies: NDArray[np.bool_]) -> NDArray[np.int32]:
    """(sectors, 3) cell a request for each technology gets, falling back to older ones."""
    per_site = technologies.sum(axis=1)
    site_first = np.concatenate([[0], np.cumsum(per_site * SECTORS)[:-1]])
    sites = technologies.shape[0]
    sector = np.arange(sites * SECTORS)
    site = sector // SECTORS
    # Position of each technology among the site's technologies (its cell offset in a sector).
    position = np.cumsum(technologies, axis=1) - 1
    served = np.zeros((sector.size, len(TECHNOLOGIES)), dtype=np.int32)
    best = np.zeros(sites, dtype=np.int64)
    for index in range(len(TECHNOLOGIES)):
        best = np.where(technologies[:, index], position[:, index], best)
        offset = site_first[site] + (sector % SECTORS) * per_site[site] + best[site]
        served[:, index] = offset
    return served
