"""Cell coverage (Voronoi) and cell -> area allocation, against answers known by construction."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely

from cellcensus.errors import CellcensusError
from cellcensus.holder.enclave.compute import check_level
from cellcensus.holder.geo import (
    ALLOCATION_COLUMNS,
    VERSIONED_COLUMNS,
    allocate,
    build_allocation,
    current_cells,
    read_areas,
    roll_up_allocation,
    to_metric,
    to_wgs84,
    voronoi_coverage,
)
from cellcensus.holder.store import Store
from cellcensus.reference import arrondissements_2019, country_outline, municipalities

# A point in the middle of Belgium, in EPSG:3812 metres: hand-made shapes are built around it.
ORIGIN = to_metric([shapely.Point(4.5, 50.6)])[0]


def _wgs84(shapes):
    """Shapes drawn in metres around ORIGIN, as WGS84 (densified so borders stay put)."""
    moved = [shapely.affinity.translate(shape, ORIGIN.x, ORIGIN.y) for shape in shapes]
    return list(to_wgs84(shapely.segmentize(np.array(moved), 50)))


def _km2(geometries):
    return shapely.area(to_metric(np.asarray(geometries))) / 1e6


def test_a_cell_straddling_two_areas_three_to_one_gets_those_weights():
    # A 4 km x 1 km region: 3 km of it in area A, 1 km in area B.
    coverage = pd.DataFrame({"cell_id": ["c"], "geometry": _wgs84([shapely.box(0, 0, 4000, 1000)])})
    areas = pd.DataFrame(
        {
            "area_code": ["A", "B"],
            "geometry": _wgs84(
                [shapely.box(-5000, -5000, 3000, 5000), shapely.box(3000, -5000, 9000, 5000)]
            ),
        }
    )
    result = allocate(coverage=coverage, areas=areas)
    assert tuple(result.columns) == ALLOCATION_COLUMNS
    weights = dict(zip(result.area_code, result.weight, strict=True))
    assert weights == pytest.approx({"A": 0.75, "B": 0.25}, abs=1e-4)
    assert result.overlap_km2.sum() == pytest.approx(4.0, rel=1e-3)


def test_a_cell_whose_region_misses_every_area_goes_whole_to_the_nearest():
    site = to_wgs84([shapely.Point(ORIGIN.x + 20_000, ORIGIN.y)])[0]
    coverage = pd.DataFrame(
        {
            "cell_id": ["far"],
            "longitude": [site.x],
            "latitude": [site.y],
            "geometry": [shapely.Polygon()],
        }
    )
    areas = pd.DataFrame(
        {
            "area_code": ["near0", "near15"],
            "geometry": _wgs84(
                [shapely.box(0, 0, 1000, 1000), shapely.box(15_000, 0, 16_000, 1000)]
            ),
        }
    )
    result = allocate(coverage=coverage, areas=areas)
    assert result[["cell_id", "area_code", "weight", "overlap_km2"]].to_dict("records") == [
        {"cell_id": "far", "area_code": "near15", "weight": 1.0, "overlap_km2": 0.0}
    ]


def test_voronoi_splits_a_square_country_between_its_sites():
    # Country 10 x 10 km; sites at x = 2.5 km and 7.5 km: each serves half. Cells A1, A2 share
    # the first site (one position given twice, which must not break the tessellation).
    country = _wgs84([shapely.box(0, 0, 10_000, 10_000)])[0]
    sites = to_wgs84(
        shapely.points([[ORIGIN.x + 2500, ORIGIN.y + 5000], [ORIGIN.x + 7500, ORIGIN.y + 5000]])
    )
    cells = pd.DataFrame(
        {
            "cell_id": ["A1", "A2", "B"],
            "longitude": [sites[0].x, sites[0].x, sites[1].x],
            "latitude": [sites[0].y, sites[0].y, sites[1].y],
        }
    )
    coverage = voronoi_coverage(cells=cells, country=country)
    assert list(coverage.cell_id) == ["A1", "A2", "B"]
    assert _km2(coverage.geometry) == pytest.approx([50, 50, 50], rel=1e-3)
    assert shapely.equals(coverage.geometry[0], coverage.geometry[1])
    west = to_wgs84([shapely.Point(ORIGIN.x + 1000, ORIGIN.y + 5000)])[0]
    assert coverage.geometry[0].contains(west) and not coverage.geometry[2].contains(west)

    halves = pd.DataFrame(
        {
            "area_code": ["W", "E"],
            "geometry": _wgs84(
                [shapely.box(0, 0, 5000, 10_000), shapely.box(5000, 0, 10_000, 10_000)]
            ),
        }
    )
    result = allocate(coverage=coverage, areas=halves)
    assert result[["cell_id", "area_code"]].to_dict("records") == [
        {"cell_id": "A1", "area_code": "W"},
        {"cell_id": "A2", "area_code": "W"},
        {"cell_id": "B", "area_code": "E"},
    ]
    assert result.weight.to_list() == pytest.approx([1.0, 1.0, 1.0])


def test_a_site_outside_the_country_gets_an_empty_region_and_the_nearest_area():
    country = _wgs84([shapely.box(0, 0, 10_000, 10_000)])[0]
    sites = to_wgs84(
        shapely.points([[ORIGIN.x + 5000, ORIGIN.y + 5000], [ORIGIN.x + 80_000, ORIGIN.y + 5000]])
    )
    cells = pd.DataFrame(
        {
            "cell_id": ["in", "out"],
            "longitude": [p.x for p in sites],
            "latitude": [p.y for p in sites],
        }
    )
    coverage = voronoi_coverage(cells=cells, country=country).set_index("cell_id")
    assert coverage.loc["out", "geometry"].is_empty
    assert _km2([coverage.loc["in", "geometry"]])[0] == pytest.approx(100, rel=1e-3)
    areas = pd.DataFrame({"area_code": ["only"], "geometry": [country]})
    result = allocate(coverage=coverage.reset_index(), areas=areas)
    assert result[["cell_id", "area_code", "weight"]].to_dict("records") == [
        {"cell_id": "in", "area_code": "only", "weight": 1.0},
        {"cell_id": "out", "area_code": "only", "weight": 1.0},
    ]


def test_a_single_site_serves_the_whole_country():
    country = _wgs84([shapely.box(0, 0, 10_000, 10_000)])[0]
    cells = pd.DataFrame({"cell_id": ["solo"], "longitude": [4.5], "latitude": [50.6]})
    coverage = voronoi_coverage(cells=cells, country=country)
    assert shapely.equals_exact(coverage.geometry[0], country, tolerance=1e-9) or (
        _km2(coverage.geometry)[0] == pytest.approx(100, rel=1e-6)
    )


def test_the_latest_version_of_a_moved_cell_is_used():
    cells = pd.DataFrame(
        {
            "cell_id": ["m", "m", "n"],
            "longitude": [4.0, 5.0, 4.5],
            "latitude": [50.5, 50.5, 50.8],
            "valid_from": [None, pd.Timestamp("2011-03-23").date(), None],
        }
    )
    current = current_cells(cells)
    assert current[["cell_id", "longitude"]].to_dict("records") == [
        {"cell_id": "m", "longitude": 5.0},
        {"cell_id": "n", "longitude": 4.5},
    ]


@pytest.mark.slow
def test_voronoi_allocation_on_belgium_covers_every_municipality():
    areas = municipalities()
    outline = country_outline()
    rng = np.random.default_rng(0)
    lon = rng.uniform(2.5, 6.5, 5000)
    lat = rng.uniform(49.4, 51.6, 5000)
    inside = shapely.contains_xy(outline, lon, lat)
    lon, lat = lon[inside][:2000], lat[inside][:2000]
    cells = pd.DataFrame(
        {"cell_id": [f"c{i}" for i in range(len(lon))], "longitude": lon, "latitude": lat}
    )
    shared = cells.head(5).assign(cell_id=lambda frame: frame.cell_id + "b")  # same sites
    cells = pd.concat([cells, shared], ignore_index=True)

    coverage = voronoi_coverage(cells=cells, country=outline)
    result = allocate(coverage=coverage, areas=areas)

    sums = result.groupby("cell_id").weight.sum()
    assert len(sums) == len(cells) == 2005
    assert np.allclose(sums, 1.0)
    assert set(result.area_code) == set(areas.area_code)
    assert (result.weight > 0).all()
    pairs = result.set_index(["cell_id", "area_code"]).weight
    for cell in shared.cell_id:
        assert pairs.loc[cell].to_dict() == pairs.loc[cell[:-1]].to_dict()
    # Regions tile the country: overlaps add up to Belgium's area (30,528 km2), once per cell
    # of the shared sites too.
    once = result[~result.cell_id.isin(shared.cell_id)]
    assert once.overlap_km2.sum() == pytest.approx(areas.area_km2.sum(), rel=0.005)


def test_build_allocation_writes_the_store_file(tmp_path):
    store = Store(tmp_path)
    cells = pd.DataFrame(
        {
            "cell_id": ["A", "B", "C"],
            "latitude": [50.8466, 50.8466, 51.0543],
            "longitude": [4.3528, 4.3528, 3.7174],
            "valid_from": [None, None, None],
        }
    )
    cells.to_parquet(store.cells_path)
    path = build_allocation(store=tmp_path, areas=municipalities())
    assert path == store.allocation_path("municipality")
    table = pq.read_table(path)
    assert table.schema.names == list(VERSIONED_COLUMNS)  # one version: null dates
    assert table.column("valid_from").null_count == table.num_rows
    allocation = store.read_allocation()
    assert np.allclose(allocation.groupby("cell_id").weight.sum(), 1.0)
    assert set(allocation.cell_id) == {"A", "B", "C"}
    assert [p.name for p in path.parent.iterdir()] == ["municipality.parquet"]


@pytest.mark.parametrize(
    ("mistake", "latitude", "longitude"),
    [("swapped", 4.3528, 50.8466), ("sign lost", 50.8466, -4.3528)],
)
def test_cells_far_from_every_area_are_refused_naming_the_cell(
    tmp_path, mistake, latitude, longitude
):
    # A site abroad serving the border is allocated to the nearest area; one hundreds of km
    # from every area has a wrong position, and its devices would be counted at the border.
    store = Store(tmp_path)
    cells = pd.DataFrame(
        {
            "cell_id": ["ok", "near_abroad", "wrong"],
            "latitude": [50.8466, 50.60, latitude],
            "longitude": [4.3528, 6.45, longitude],  # near_abroad: Germany, 13 km out
        }
    )
    cells.to_parquet(store.cells_path)
    with pytest.raises(CellcensusError, match=r"cell 'wrong' .* latitude .* longitude"):
        build_allocation(store=store, areas=municipalities())
    assert not store.allocation_path("municipality").exists()

    cells.iloc[:2].to_parquet(store.cells_path)
    build_allocation(store=store, areas=municipalities())
    assert set(store.read_allocation().cell_id) == {"ok", "near_abroad"}


def test_the_grid_is_refused_to_the_voronoi_model_rather_than_made_by_another(tmp_path):
    # The grid is allocated from tile footprints, which the Voronoi model does not make.
    store = Store(tmp_path)
    cells = pd.DataFrame({"cell_id": ["A"], "latitude": [50.8466], "longitude": [4.3528]})
    cells.to_parquet(store.cells_path)
    with pytest.raises(CellcensusError, match="the grid needs a grid footprint"):
        build_allocation(store=store, areas=municipalities(), coverage="voronoi", grid_m=1000.0)
    assert not store.allocation_path("municipality").exists()


def test_an_allocation_of_cells_since_changed_is_refused_until_made_again(tmp_path):
    store = Store(tmp_path)
    cells = pd.DataFrame(
        {"cell_id": ["A", "B"], "latitude": [50.8466, 51.0543], "longitude": [4.3528, 3.7174]}
    )
    cells.to_parquet(store.cells_path)
    build_allocation(store=store, areas=municipalities(), coverage="voronoi")
    parent = arrondissements_2019()
    roll_up_allocation(store=store, parent=parent, level="arrondissement")
    cells.to_parquet(store.cells_path)  # the same cells written again by a later ingest
    check_level(store, "arrondissement")

    cells.assign(latitude=[50.8466, 51.2]).to_parquet(store.cells_path)  # B moved
    for level in ("municipality", "arrondissement"):
        assert store.allocation_made_from_other_cells(level)
        with pytest.raises(CellcensusError, match=f"the {level} allocation .* another cells"):
            check_level(store, level)
    build_allocation(store=store, areas=municipalities(), coverage="voronoi")
    check_level(store, "municipality")


def _undated_cells(validity: str) -> pa.Table:
    """Three cells whose validity columns are absent, null-typed, or dates that are all null."""
    cells = pa.table(
        {
            "cell_id": ["A", "B", "C"],
            "latitude": [50.8466, 50.8466, 51.0543],
            "longitude": [4.3528, 4.3528, 3.7174],
        }
    )
    if validity == "absent":
        return cells
    kind = pa.null() if validity == "null" else pa.date32()
    return cells.append_column("valid_from", pa.nulls(3, kind)).append_column(
        "valid_to", pa.nulls(3, kind)
    )


@pytest.mark.parametrize("validity", ["absent", "null", "null dates"])
def test_roll_up_of_a_network_without_validity_dates_keeps_them_dates(tmp_path, validity):
    store = Store(tmp_path)
    pq.write_table(_undated_cells(validity), store.cells_path)
    build_allocation(store=store, areas=municipalities(), coverage="voronoi")

    path = roll_up_allocation(store=store, parent=arrondissements_2019(), level="arrondissement")

    table = pq.read_table(path)
    assert table.schema.field("valid_from").type == pa.date32()
    assert table.schema.field("valid_to").type == pa.date32()
    assert table.column("valid_from").null_count == table.num_rows
    rolled = store.read_allocation("arrondissement")
    assert np.allclose(rolled.groupby("cell_id").weight.sum(), 1.0)
    assert set(rolled.area_code) <= set(arrondissements_2019())


def test_roll_up_sums_each_cell_version_into_its_parent_areas(tmp_path):
    store = Store(tmp_path)
    moved = pd.Timestamp("2011-03-10").date()
    rows = pd.DataFrame(
        {
            "cell_id": ["A", "A", "A", "A"],
            "area_code": ["11001", "11002", "21004", "11001"],
            "weight": [0.25, 0.25, 0.5, 1.0],
            "overlap_km2": [1.0, 2.0, 3.0, 4.0],
            "valid_from": [None, None, None, moved],
            "valid_to": [moved - pd.Timedelta(days=1)] * 3 + [None],
        }
    )
    store.allocation_path("municipality").parent.mkdir(parents=True)
    rows.to_parquet(store.allocation_path("municipality"))
    parent = pd.Series({"11001": "11000", "11002": "11000", "21004": "21000"})

    roll_up_allocation(store=store, parent=parent, level="arrondissement")

    rolled = store.read_allocation("arrondissement")
    assert list(rolled.columns) == list(VERSIONED_COLUMNS)
    first = rolled[rolled.valid_to.notna()].set_index("area_code")
    assert first.weight.to_dict() == {"11000": 0.5, "21000": 0.5}
    assert first.overlap_km2.to_dict() == {"11000": 3.0, "21000": 3.0}
    later = rolled[rolled.valid_from.notna()]
    assert later[["area_code", "weight"]].values.tolist() == [["11000", 1.0]]
    with pytest.raises(CellcensusError, match="without a parent"):
        roll_up_allocation(store=store, parent=parent.iloc[:2], level="arrondissement")


def _feature(geometry: object) -> dict[str, object]:
    return {"type": "Feature", "properties": {"code": "Z1"}, "geometry": geometry}


SQUARE = [[[4.0, 50.5], [5.0, 50.5], [5.0, 51.0], [4.0, 51.0], [4.0, 50.5]]]
LAMBERT_SQUARE = [[[140e3, 160e3], [160e3, 160e3], [160e3, 180e3], [140e3, 180e3], [140e3, 160e3]]]


@pytest.mark.parametrize(
    ("features", "match"),
    [
        ([], "holds no features"),
        ([_feature(None)], "feature 0 has no geometry"),
        ([_feature({"type": "Polygon", "coordinates": [[[4.0, 50.0]]]})], "no readable geometry"),
        ([_feature({"type": "Point", "coordinates": [4.0, 50.0]})], "is a Point"),
        ([_feature({"type": "Polygon", "coordinates": LAMBERT_SQUARE})], "reproject the file"),
    ],
)
def test_areas_that_cannot_be_allocated_to_are_refused_in_one_line(tmp_path, features, match):
    path = tmp_path / "areas.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    with pytest.raises(CellcensusError, match=match) as refused:
        read_areas(path)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("document", [{"operator": "x"}, [], {"features": "none"}])
def test_json_that_is_not_a_feature_collection_is_refused_saying_what_it_lacks(tmp_path, document):
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps(document))
    with pytest.raises(CellcensusError, match='no "features" list') as refused:
        read_areas(path)
    assert "\n" not in str(refused.value)


def test_a_missing_areas_file_is_named_as_missing(tmp_path):
    with pytest.raises(CellcensusError, match=r"areas\.geojson: no such file; give a GeoJSON"):
        read_areas(tmp_path / "areas.geojson")


def test_areas_in_wgs84_are_read_with_their_codes(tmp_path):
    path = tmp_path / "areas.geojson"
    feature = _feature({"type": "Polygon", "coordinates": SQUARE})
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    areas = read_areas(path)
    assert list(areas["area_code"]) == ["Z1"]
    assert areas["geometry"][0].bounds == (4.0, 50.5, 5.0, 51.0)
