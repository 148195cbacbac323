"""Roads for moving machines: the Delaunay graph of municipality centres, a point every km.

Belgium's main roads link neighbouring towns; the Delaunay triangulation of the 589
municipality centroids is a fair stand-in at the scale of cells (a few km). Vehicles drive
along its edges and report from the nearest road point, whose serving cells are computed once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import Delaunay

from cellcensus.world.territory import Territory

POINT_SPACING_M = 1000.0
"""Distance between road points."""
LONGEST_EDGE_M = 30_000.0
"""Edges of the triangulation longer than this (across the hull) are not roads."""


@dataclass(frozen=True)
class Roads:
    """The road graph.

    Node i is the centroid of area i and road point i; edge points follow.

    Attributes:
        point_xy: Road points in metres (nodes first).
        point_area: Area of each road point (nearest centroid).
        edge_from: First node of each edge (smaller index).
        edge_to: Second node of each edge.
        edge_length_m: Length of each edge.
        edge_first_point: Road point of each edge's first interior point.
        edge_points: Interior points of each edge.
        neighbour_start: CSR offsets: node i's neighbours are
            ``neighbours[neighbour_start[i]:neighbour_start[i + 1]]``.
        neighbours: Neighbouring nodes.
    """

    point_xy: NDArray[np.float64]
    point_area: NDArray[np.intp]
    edge_from: NDArray[np.intp]
    edge_to: NDArray[np.intp]
    edge_length_m: NDArray[np.float64]
    edge_first_point: NDArray[np.intp]
    edge_points: NDArray[np.intp]
    neighbour_start: NDArray[np.intp]
    neighbours: NDArray[np.intp]

    @property
    def nodes(self) -> int:
        """Number of nodes (areas)."""
        return int(self.neighbour_start.size - 1)

    def edge_of(self, first: NDArray[np.intp], second: NDArray[np.intp]) -> NDArray[np.intp]:
        """Index of the edge between each pair of neighbouring nodes."""
        key = np.minimum(first, second) * self.nodes + np.maximum(first, second)
        edge_key = self.edge_from * self.nodes + self.edge_to
        found: NDArray[np.intp] = np.searchsorted(edge_key, key).astype(np.intp)
        return found

    def point_along(
        self, *, first: NDArray[np.intp], second: NDArray[np.intp], fraction: NDArray[np.float64]
    ) -> NDArray[np.intp]:
        """The road point a `fraction` of the way from node `first` to node `second`."""
        edge = self.edge_of(first, second)
        forward = np.where(first < second, fraction, 1.0 - fraction)
        inner = self.edge_points[edge]
        position = np.rint(forward * (inner + 1)).astype(np.intp)
        at_point = self.edge_first_point[edge] + position - 1
        start = np.minimum(first, second)
        end = np.maximum(first, second)
        point: NDArray[np.intp] = np.where(
            position <= 0, start, np.where(position > inner, end, at_point)
        ).astype(np.intp)
        return point


def build_roads(territory: Territory) -> Roads:
    """The road graph of a territory."""
    centres = territory.centroids
    triangles = Delaunay(centres).simplices
    pairs = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [0, 2]]])
    pairs = np.unique(np.sort(pairs, axis=1), axis=0)
    length = np.hypot(*(centres[pairs[:, 1]] - centres[pairs[:, 0]]).T)
    pairs, length = pairs[length <= LONGEST_EDGE_M], length[length <= LONGEST_EDGE_M]
    inner = np.maximum(np.ceil(length / POINT_SPACING_M).astype(np.intp) - 1, 0)
    first_point = territory.size + np.concatenate([[0], np.cumsum(inner)[:-1]])
    edge = np.repeat(np.arange(pairs.shape[0]), inner)
    step = np.arange(edge.size) - (first_point[edge] - territory.size) + 1
    fraction = step / (inner[edge] + 1)
    start, end = centres[pairs[edge, 0]], centres[pairs[edge, 1]]
    along = start + (end - start) * fraction[:, None]
    nearer_end = fraction > 0.5
    point_area = np.concatenate(
        [np.arange(territory.size), np.where(nearer_end, pairs[edge, 1], pairs[edge, 0])]
    )
    both = np.concatenate([pairs, pairs[:, ::-1]])
    both = both[np.lexsort((both[:, 1], both[:, 0]))]
    counts = np.bincount(both[:, 0], minlength=territory.size)
    return Roads(
        point_xy=np.concatenate([centres, along]),
        point_area=point_area.astype(np.intp),
        edge_from=pairs[:, 0].astype(np.intp),
        edge_to=pairs[:, 1].astype(np.intp),
        edge_length_m=length,
        edge_first_point=first_point.astype(np.intp),
        edge_points=inner,
        neighbour_start=np.concatenate([[0], np.cumsum(counts)]).astype(np.intp),
        neighbours=both[:, 1].astype(np.intp),
    )
