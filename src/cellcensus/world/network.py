"""The operator's radio network: sites placed like a real grid, one omnidirectional cell each."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from cellcensus.world.params import WorldParams
from cellcensus.world.streams import Stream, random_stream
from cellcensus.world.territory import Territory, sample_points, to_wgs84

TECHNOLOGY = "4G"


@dataclass(frozen=True)
class RadioNetwork:
    """Sites in the order of their identifiers (site i is ``S{i+1:05d}``, its cell ``C{i+1:05d}``).

    Attributes:
        site_area: Area each site stands in.
        site_xy: Site positions in metres.
        site_lonlat: Site positions as WGS84 longitude, latitude.
    """

    site_area: NDArray[np.intp]
    site_xy: NDArray[np.float64]
    site_lonlat: NDArray[np.float64]

    @property
    def size(self) -> int:
        """Number of sites (and of cells: one per site)."""
        return int(self.site_area.size)

    def serving_cells(self, xy: NDArray[np.float64]) -> NDArray[np.int32]:
        """The cell serving each point: the nearest site's cell (an idealised Voronoi coverage).

        Args:
            xy: (n, 2) points in metres.

        Returns:
            The index of the serving cell of each point.
        """
        _, nearest = cKDTree(self.site_xy).query(xy, k=1)
        return np.asarray(nearest, dtype=np.int32)


def sites_per_area(
    *, territory: Territory, sites: int, population_weight: float
) -> NDArray[np.int64]:
    """How many sites each area gets: one for coverage, the rest by population and land area.

    The sites beyond one per area are shared in proportion to a mix of population (capacity:
    cities need many sites) and land area (coverage: the Ardennes need some), by the largest
    remainder so that the total is exact and the result deterministic.

    Args:
        territory: The areas.
        sites: Total number of sites (at least one per area).
        population_weight: Weight of population against land area, in [0, 1].

    Returns:
        Sites per area, summing to `sites`.
    """
    weight = population_weight * territory.population / territory.population.sum() + (
        1 - population_weight
    ) * (territory.area_km2 / territory.area_km2.sum())
    quota = weight / weight.sum() * (sites - territory.size)
    counts = np.floor(quota).astype(np.int64)
    remainder_order = np.argsort(-(quota - counts), kind="stable")
    counts[remainder_order[: sites - territory.size - int(counts.sum())]] += 1
    with_coverage_site: NDArray[np.int64] = counts + 1
    return with_coverage_site


def build_network(*, territory: Territory, params: WorldParams) -> RadioNetwork:
    """Place the operator's sites uniformly inside their areas.

    Args:
        territory: The areas.
        params: The world's parameters (number of sites, population weight, seed).

    Returns:
        The network.
    """
    rng = random_stream(seed=params.seed, stream=Stream.NETWORK)
    counts = sites_per_area(
        territory=territory, sites=params.sites, population_weight=params.site_population_weight
    )
    site_area = np.repeat(np.arange(territory.size), counts)
    site_xy = sample_points(territory=territory, areas=site_area, rng=rng)
    return RadioNetwork(site_area=site_area, site_xy=site_xy, site_lonlat=to_wgs84(site_xy))
