"""Nested areas (municipality -> arrondissement -> province -> region) and released cells.

A release covers the public keys of the finest level (the leaves) and, when a hierarchy is
given, every coarser level's totals. `Layout` lists those cells in a fixed order, leaves first,
and knows which cells are the children of which.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from cellcensus.errors import CellcensusError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Hierarchy:
    """Each leaf area's parent at every coarser level.

    Attributes:
        leaf_level: Name of the finest level (e.g. ``"municipality"``).
        parents: One row per leaf key: the key column, then one column per coarser level,
            finest first (e.g. arrondissement, province, region); codes as strings.
    """

    leaf_level: str
    parents: pd.DataFrame

    @property
    def levels(self) -> tuple[str, ...]:
        """The coarser levels, finest first."""
        return tuple(str(column) for column in self.parents.columns[1:])


def belgian_hierarchy() -> Hierarchy:
    """Belgium's 589 municipalities with their arrondissement, province and region.

    Brussels-Capital has no province; its region code stands in for one (as in
    `cellcensus.reference.municipalities`).
    """
    from cellcensus.reference import municipalities

    frame = municipalities()[["area_code", "arrondissement", "province", "region"]]
    return Hierarchy(leaf_level="municipality", parents=frame.reset_index(drop=True))


@dataclass(frozen=True)
class Layout:
    """Every cell of a release, leaves first, then each coarser level in order.

    Attributes:
        level: Level name of each cell.
        code: Area code of each cell.
        parent_of_leaf: Per coarser level, each leaf's cell index in that level's block.
        offsets: Index of the first cell of each level (leaves at 0).
        children: For each cell, the cells of the next finer level that add up to it.
    """

    level: tuple[str, ...]
    code: tuple[str, ...]
    parent_of_leaf: tuple[IntArray, ...]
    offsets: tuple[int, ...]
    children: tuple[tuple[int, ...], ...]

    @property
    def n_leaves(self) -> int:
        """Number of leaf cells."""
        return self.offsets[1] if len(self.offsets) > 1 else len(self.code)

    @property
    def n_levels(self) -> int:
        """Number of levels, the leaves included."""
        return len(self.offsets)

    def totals(self, leaves: FloatArray) -> FloatArray:
        """Values of every cell from the leaf values (parents are sums of their leaves)."""
        blocks = [leaves]
        for index, parent in enumerate(self.parent_of_leaf):
            size = self._level_size(index + 1)
            blocks.append(np.bincount(parent, weights=leaves, minlength=size).astype(np.float64))
        return np.concatenate(blocks)

    def aggregation_matrix(self) -> FloatArray:
        """Matrix A with A @ leaves == totals(leaves) (dense: for reconciliation)."""
        matrix = np.zeros((len(self.code), self.n_leaves))
        matrix[np.arange(self.n_leaves), np.arange(self.n_leaves)] = 1.0
        for index, parent in enumerate(self.parent_of_leaf):
            matrix[self.offsets[index + 1] + parent, np.arange(self.n_leaves)] = 1.0
        return matrix

    def _level_size(self, index: int) -> int:
        end = self.offsets[index + 1] if index + 1 < len(self.offsets) else len(self.code)
        return end - self.offsets[index]


def layout(*, leaves: Sequence[str], leaf_level: str, hierarchy: Hierarchy | None = None) -> Layout:
    """Lay out the cells of a release.

    Args:
        leaves: The public leaf keys, sorted.
        leaf_level: Name given to the leaf level (ignored when `hierarchy` names one).
        hierarchy: Parents of each leaf; None releases the leaves only.

    Raises:
        CellcensusError: A leaf without parents, or levels that do not nest.
    """
    n = len(leaves)
    if hierarchy is None:
        return Layout(
            level=(leaf_level,) * n,
            code=tuple(leaves),
            parent_of_leaf=(),
            offsets=(0,),
            children=((),) * n,
        )
    parents = _parents_of(leaves=leaves, hierarchy=hierarchy)
    levels, codes, groups, offsets = [hierarchy.leaf_level] * n, list(leaves), [], [0]
    for name in hierarchy.levels:
        labels, index = np.unique(parents[name].to_numpy(dtype=str), return_inverse=True)
        offsets.append(len(codes))
        groups.append(index.astype(np.int64))
        levels += [name] * len(labels)
        codes += [str(label) for label in labels]
    children = _children(n_cells=len(codes), groups=groups, offsets=offsets, n_leaves=n)
    return Layout(
        level=tuple(levels),
        code=tuple(codes),
        parent_of_leaf=tuple(groups),
        offsets=tuple(offsets),
        children=children,
    )


def _parents_of(*, leaves: Sequence[str], hierarchy: Hierarchy) -> pd.DataFrame:
    frame = hierarchy.parents.astype(str)
    key = frame.columns[0]
    if frame[key].duplicated().any():
        raise CellcensusError(f"hierarchy lists some {key} more than once")
    parents = frame.set_index(key).reindex(list(leaves))
    missing = parents.index[parents.isna().any(axis=1)]
    if len(missing):
        raise CellcensusError(f"hierarchy has no parents for {key} {list(missing)[:5]}")
    return parents


def _children(
    *, n_cells: int, groups: list[IntArray], offsets: list[int], n_leaves: int
) -> tuple[tuple[int, ...], ...]:
    children: list[list[int]] = [[] for _ in range(n_cells)]
    finer = np.arange(n_leaves, dtype=np.int64)  # each leaf's cell index
    for level, parent in enumerate(groups):
        cells = offsets[level + 1] + parent
        for child in np.unique(finer):
            owners = np.unique(cells[finer == child])
            if len(owners) != 1:
                raise CellcensusError(
                    f"hierarchy levels do not nest: a level-{level} area has {len(owners)} parents"
                )
            children[int(owners[0])].append(int(child))
        finer = cells
    return tuple(tuple(sorted(kids)) for kids in children)
