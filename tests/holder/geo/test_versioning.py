"""The allocation is versioned with the network: known answers on hand-made networks."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import shapely

from cellcensus.holder.geo import (
    ALLOCATION_COLUMNS,
    VERSIONED_COLUMNS,
    allocate,
    build_allocation,
    country_of,
    footprint_allocation,
    network_states,
    to_metric,
    to_wgs84,
    versioned_allocation,
    voronoi_coverage,
)
from cellcensus.holder.store import Store
from cellcensus.reference import municipalities

ORIGIN = to_metric([shapely.Point(4.5, 50.6)])[0]
MOVE = dt.date(2011, 3, 10)
DAY = dt.timedelta(days=1)


def _wgs84(shapes: list[shapely.Geometry]) -> list[shapely.Geometry]:
    moved = [shapely.affinity.translate(shape, ORIGIN.x, ORIGIN.y) for shape in shapes]
    return list(to_wgs84(shapely.segmentize(np.array(moved), 50)))


# Area A is the western half of a 12 km x 6 km country, B the eastern half.
AREAS = pd.DataFrame(
    {
        "area_code": ["A", "B"],
        "geometry": _wgs84([shapely.box(-6000, -3000, 0, 3000), shapely.box(0, -3000, 6000, 3000)]),
    }
)


def _site(x_m: float) -> tuple[float, float]:
    point = to_wgs84([shapely.Point(ORIGIN.x + x_m, ORIGIN.y)])[0]
    return point.x, point.y


def _cells(rows):
    """Cells from (cell_id, x in metres, valid_from, valid_to) rows."""
    frame = pd.DataFrame(rows, columns=["cell_id", "x", "valid_from", "valid_to"])
    positions = [_site(x) for x in frame["x"]]
    return frame.assign(
        longitude=[p[0] for p in positions], latitude=[p[1] for p in positions]
    ).drop(columns="x")


def _versions(allocation, cell):
    rows = allocation[allocation.cell_id == cell]
    return {
        (row.valid_from, row.valid_to, row.area_code): round(row.weight, 4)
        for row in rows.itertuples()
    }


def test_network_states_split_at_each_start_and_after_each_end():
    cells = _cells(
        [
            ("W", -3000, None, None),
            ("M", -3000, None, MOVE - DAY),
            ("M", 3000, MOVE, None),
            ("N", 0, MOVE + 5 * DAY, MOVE + 9 * DAY),
        ]
    )
    states = network_states(cells)
    assert [(state.valid_from, state.valid_to) for state in states] == [
        (None, MOVE - DAY),
        (MOVE, MOVE + 4 * DAY),
        (MOVE + 5 * DAY, MOVE + 9 * DAY),
        (MOVE + 10 * DAY, None),
    ]
    assert [sorted(state.cells.cell_id) for state in states] == [
        ["M", "W"],
        ["M", "W"],
        ["M", "N", "W"],
        ["M", "W"],
    ]
    # M's version of each state is the one valid then.
    assert states[0].cells.set_index("cell_id").longitude["M"] == pytest.approx(_site(-3000)[0])
    assert states[1].cells.set_index("cell_id").longitude["M"] == pytest.approx(_site(3000)[0])


def test_a_cell_that_moves_from_a_to_b_gets_b_weights_from_its_date():
    # Sites W (in A) and E (in B) split the country at the border; M moves from W's mast
    # to E's on MOVE, so it has A's weights before and B's from that day; W and E keep theirs.
    cells = _cells(
        [
            ("W", -3000, None, None),
            ("E", 3000, None, None),
            ("M", -3000, None, MOVE - DAY),
            ("M", 3000, MOVE, None),
        ]
    )
    allocation = versioned_allocation(cells=cells, areas=AREAS, coverage="voronoi")
    assert tuple(allocation.columns) == VERSIONED_COLUMNS
    assert _versions(allocation, "M") == {(None, MOVE - DAY, "A"): 1.0, (MOVE, None, "B"): 1.0}
    assert _versions(allocation, "W") == {(None, None, "A"): 1.0}
    assert _versions(allocation, "E") == {(None, None, "B"): 1.0}


def test_a_new_site_reshapes_its_neighbours_from_its_first_day():
    # N appears between W and E on MOVE: it takes the middle 3 km (half in A, half in B),
    # and W and E get new versions (smaller overlaps, same areas) from that day.
    cells = _cells([("W", -3000, None, None), ("E", 3000, None, None), ("N", 0, MOVE, None)])
    allocation = versioned_allocation(cells=cells, areas=AREAS, coverage="voronoi")
    # N's only version holds for all time (versions tile the time line), in halves.
    assert _versions(allocation, "N") == {(None, None, "A"): 0.5, (None, None, "B"): 0.5}
    west = allocation[allocation.cell_id == "W"].set_index("valid_to", drop=False)
    assert list(west.valid_from) == [None, MOVE]
    assert list(west.weight) == [1.0, 1.0]
    assert list(west.overlap_km2) == pytest.approx([36.0, 27.0], rel=1e-3)


def test_versions_of_a_cell_tile_the_time_line():
    cells = _cells(
        [
            ("W", -3000, None, None),
            ("E", 3000, None, None),
            ("M", -3000, MOVE, MOVE + 2 * DAY),  # a gap: M is away for a week
            ("M", 3000, MOVE + 10 * DAY, None),
        ]
    )
    allocation = versioned_allocation(cells=cells, areas=AREAS, coverage="voronoi")
    # Before it is first seen M has its first weights, in the gap its last ones.
    assert _versions(allocation, "M") == {
        (None, MOVE + 10 * DAY - DAY, "A"): 1.0,
        (MOVE + 10 * DAY, None, "B"): 1.0,
    }
    for _, rows in allocation.groupby(["cell_id", "valid_from"], dropna=False):
        assert rows.weight.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("coverage", ["voronoi", "sector"])
def test_a_network_without_changes_gives_todays_allocation(coverage):
    cells = _cells([("W", -3000, None, None), ("E", 3000, None, None), ("N", 500, None, None)])
    versioned = versioned_allocation(cells=cells, areas=AREAS, coverage=coverage)
    if coverage == "voronoi":
        today = allocate(
            coverage=voronoi_coverage(cells=cells, country=country_of(AREAS)), areas=AREAS
        )
    else:
        today = footprint_allocation(cells=cells, areas=AREAS, model="sector")
    assert versioned[list(ALLOCATION_COLUMNS)].equals(today)
    assert versioned.valid_from.isna().all()
    assert versioned.valid_to.isna().all()


def test_build_allocation_writes_the_versions(tmp_path):
    # Masts in Brussels (B), Ghent (G) and Liege (L); cell M moves from Brussels to Ghent.
    store = Store(tmp_path)
    cells = pd.DataFrame(
        {
            "cell_id": ["B", "G", "L", "M", "M"],
            "latitude": [50.8466, 51.0543, 50.6326, 50.8466, 51.0543],
            "longitude": [4.3528, 3.7174, 5.5797, 4.3528, 3.7174],
            "valid_from": [None, None, None, None, MOVE],
            "valid_to": [None, None, None, MOVE - DAY, None],
        }
    )
    cells.to_parquet(store.cells_path)
    path = build_allocation(store=tmp_path, areas=municipalities(), coverage="voronoi")
    assert pq.read_table(path).schema.names == list(VERSIONED_COLUMNS)
    allocation = store.read_allocation()
    moved = allocation[allocation.cell_id == "M"]
    assert set(zip(moved.valid_from, moved.valid_to, strict=True)) == {
        (None, MOVE - DAY),
        (MOVE, None),
    }

    def weights(rows):
        return rows.set_index("area_code").weight.sort_index()

    # Before its move M shares Brussels' region, from it Ghent's; the masts keep one version.
    assert weights(moved[moved.valid_from.isna()]).equals(
        weights(allocation[allocation.cell_id == "B"])
    )
    assert weights(moved[moved.valid_from.notna()]).equals(
        weights(allocation[allocation.cell_id == "G"])
    )
    assert allocation[allocation.cell_id != "M"].valid_from.isna().all()
