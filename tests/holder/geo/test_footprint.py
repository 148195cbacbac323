"""Grid footprints (sector-aware Voronoi, signal strength) against answers known by geometry."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from typer.testing import CliRunner

from cellcensus.cli import app
from cellcensus.errors import CellcensusError
from cellcensus.holder.commands import _refuse_a_misspelt_level
from cellcensus.holder.geo import build_allocation, footprint, footprint_allocation
from cellcensus.holder.geo.footprint import (
    RadioModel,
    grid_tiles,
    network_sectors,
    points_in_areas,
    serving_probabilities,
)
from cellcensus.holder.geo.tile_footprint import tile_parts
from cellcensus.holder.store import Store
from cellcensus.reference import municipalities

# A point in the middle of Belgium in EPSG:3035 metres, on the 1 km grid: shapes are built
# around it, in metres, and handed over in WGS84 as every caller does.
ORIGIN_X, ORIGIN_Y = 3_930_000.0, 3_080_000.0
runner = CliRunner()
ALLOCATE = ["store", "allocate", "--store"]
SECTOR_ZONES = ["--code-property", "zone", "--coverage", "sector"]
TO_WGS84 = pyproj.Transformer.from_crs("EPSG:3035", "EPSG:4326", always_xy=True)


def _areas(**boxes: tuple[float, float, float, float]) -> pd.DataFrame:
    """Areas from boxes in metres around ORIGIN (densified so borders stay straight)."""
    shapes = [
        shapely.affinity.translate(shapely.box(*box), ORIGIN_X, ORIGIN_Y) for box in boxes.values()
    ]
    dense = shapely.segmentize(np.array(shapes), 100)
    wgs84 = shapely.transform(dense, lambda xy: np.column_stack(TO_WGS84.transform(*xy.T)))
    return pd.DataFrame({"area_code": list(boxes), "geometry": list(wgs84)})


def _cells(*cells: tuple[str, float, float, float | None]) -> pd.DataFrame:
    """Cells (id, x, y metres around ORIGIN, azimuth or None for omnidirectional)."""
    ids, xs, ys, azimuths = zip(*cells, strict=True)
    lon, lat = TO_WGS84.transform(np.array(xs) + ORIGIN_X, np.array(ys) + ORIGIN_Y)
    return pd.DataFrame(
        {
            "cell_id": list(ids),
            "longitude": lon,
            "latitude": lat,
            "azimuth_deg": [np.nan if a is None else a for a in azimuths],
            "beam_width_deg": 65.0,
        }
    )


def _weights(allocation: pd.DataFrame, cell: str) -> dict[str, float]:
    rows = allocation[allocation.cell_id == cell]
    return dict(zip(rows.area_code, rows.weight, strict=True))


def test_a_site_splits_its_region_between_sectors_by_azimuth():
    # One three-sector site at the centre of a 20 km square cut into a north and a south half.
    # Sector 0 (beam north) covers bearings -60..60: all of it lies north. Sector 120 covers
    # 60..180: the triangle 60..90 (0.5 * L * L / tan 60) north of the site, and the whole
    # south-east quadrant (L * L) south of it; sector 240 mirrors it.
    half = 10_000.0
    areas = _areas(N=(-half, 0, half, half), S=(-half, -half, half, 0))
    cells = _cells(("a0", 0, 0, 0.0), ("a120", 0, 0, 120.0), ("a240", 0, 0, 240.0))
    allocation = footprint_allocation(cells=cells, areas=areas, model="sector", tile_m=100)
    north = 0.5 / math.tan(math.radians(60))
    assert _weights(allocation, "a0") == pytest.approx({"N": 1.0})
    for cell in ("a120", "a240"):
        assert _weights(allocation, cell) == pytest.approx(
            {"N": north / (north + 1), "S": 1 / (north + 1)}, abs=0.01
        )
    assert allocation.groupby("area_code").overlap_km2.sum().to_dict() == pytest.approx(
        {"N": 200.0, "S": 200.0}, rel=1e-3
    )


def test_cells_of_one_sector_share_its_footprint_and_the_nearest_site_wins():
    # Two omnidirectional sites 4 km apart on the border of two areas: each takes its half.
    areas = _areas(W=(-10_000, -5_000, 0, 5_000), E=(0, -5_000, 10_000, 5_000))
    cells = _cells(("w2g", -2_000, 0, None), ("w3g", -2_000, 0, None), ("e", 2_000, 0, None))
    allocation = footprint_allocation(cells=cells, areas=areas, model="sector", tile_m=100)
    assert _weights(allocation, "w2g") == _weights(allocation, "w3g") == {"W": 1.0}
    assert _weights(allocation, "e") == {"E": 1.0}


def test_signal_model_is_symmetric_and_prefers_the_antenna_pointing_at_a_tile():
    areas = _areas(W=(-10_000, -5_000, 0, 5_000), E=(0, -5_000, 10_000, 5_000))
    # Mirror-image omnidirectional sites: mirror-image weights, half of each tile's serving
    # probability for the tiles on the axis.
    omni = _cells(("w", -2_000, 0, None), ("e", 2_000, 0, None))
    allocation = footprint_allocation(cells=omni, areas=areas, model="signal", tile_m=250)
    west, east = _weights(allocation, "w"), _weights(allocation, "e")
    assert west["W"] == pytest.approx(east["E"], abs=1e-9)
    assert 0.6 < west["W"] < 1.0  # shadowing spills some of each footprint over the border
    # Two sectors at the same distance from the centre, one facing it, one facing away:
    # the facing one serves the tiles near the centre.
    facing = _cells(("towards", -2_000, 0, 90.0), ("away", 2_000, 0, 90.0))
    sectors = network_sectors(facing)
    tiles = grid_tiles(areas, size_m=250)
    served = serving_probabilities(sectors=sectors, tiles=tiles, model="signal", radio=RadioModel())
    assert np.allclose(served.groupby("tile").probability.sum(), 1.0)
    near_centre = np.flatnonzero(np.hypot(tiles.x - ORIGIN_X, tiles.y - ORIGIN_Y) < 300)
    at_centre = served[served.tile.isin(near_centre)]
    by_cell = at_centre.groupby("sector").probability.mean()
    towards = sectors.cell_sector[list(sectors.cell_id).index("towards")]
    assert by_cell[towards] > 0.9


@pytest.mark.parametrize("model", ["signal", "sector"])
def test_serving_probabilities_do_not_depend_on_how_many_tiles_are_taken_at_once(
    model, monkeypatch
):
    # Sites of one, two and three sectors (padded where fewer), one omnidirectional.
    areas = _areas(A=(-6_000, -4_000, 6_000, 4_000))
    cells = _cells(
        ("a1", -3_000, 0, 0.0),
        ("a2", -3_000, 0, 120.0),
        ("a3", -3_000, 0, 240.0),
        ("b1", 3_000, 1_000, 90.0),
        ("b2", 3_000, 1_000, 270.0),
        ("c", 0, -2_000, None),
        ("d", 500, 2_500, 180.0),
    )
    sectors, tiles = network_sectors(cells), grid_tiles(areas, size_m=250)

    def served() -> pd.DataFrame:
        return serving_probabilities(sectors=sectors, tiles=tiles, model=model, radio=RadioModel())

    whole = served()
    monkeypatch.setattr(footprint, "CHUNK_PAIRS", 60)  # 5 or 20 tiles at once, the last fewer
    pd.testing.assert_frame_equal(served(), whole)
    assert whole.tile.is_monotonic_increasing and whole.tile.nunique() == len(tiles.x)
    assert np.allclose(whole.groupby("tile").probability.sum(), 1.0)
    if model == "signal":  # every sector serves somewhere; no padding is taken for one
        assert sorted(whole.sector.unique()) == list(range(7))


@pytest.mark.parametrize("model", ["sector", "signal"])
def test_a_network_state_served_from_the_last_one_is_the_one_computed_afresh(model, monkeypatch):
    # Twenty sites of three sectors, 3.5 km apart: a tile's eight nearest are a part of them.
    areas = _areas(west=(-8_000, -6_000, 0, 6_000), east=(0, -6_000, 8_000, 6_000))
    first = _cells(
        *(
            (f"{x}/{y}/{azimuth}", x, y, float(azimuth))
            for x in range(-7_000, 7_001, 3_500)
            for y in range(-5_250, 5_251, 3_500)
            for azimuth in (0, 120, 240)
        ),
        ("omni", 1_000, 1_000, None),
    )
    states = [
        first,
        pd.concat([first, _cells(("new", -7_500, 5_500, 45.0))], ignore_index=True),  # a site
        first[first["cell_id"] != "7000/5250/120"],  # a sector, and the new site, gone
        first.assign(  # a sector turned
            azimuth_deg=np.where(first["cell_id"] == "-7000/-5250/0", 30.0, first["azimuth_deg"])
        ),
    ]
    tiles = grid_tiles(areas, size_m=250)
    radio = RadioModel()
    recomputed: list[int] = []
    served_tiles = footprint._served_tiles

    def counted(**arguments):
        recomputed.append(len(arguments["tile"]))
        return served_tiles(**arguments)

    monkeypatch.setattr(footprint, "_served_tiles", counted)
    previous = None
    for cells in states:
        sectors = network_sectors(cells)
        afresh = footprint.served(sectors=sectors, tiles=tiles, model=model, radio=radio)
        recomputed.clear()
        previous = footprint.served(
            sectors=sectors, tiles=tiles, model=model, radio=radio, previous=previous
        )
        pd.testing.assert_frame_equal(previous.table, afresh.table)
        if cells is not first:  # each change reaches some tiles, not all
            assert 0 < sum(recomputed) < len(tiles.x)


def test_sharper_shadowing_concentrates_the_footprint():
    areas = _areas(W=(-10_000, -5_000, 0, 5_000), E=(0, -5_000, 10_000, 5_000))
    omni = _cells(("w", -2_000, 0, None), ("e", 2_000, 0, None))
    spill = {
        shadowing: 1
        - _weights(
            footprint_allocation(
                cells=omni,
                areas=areas,
                model="signal",
                radio=RadioModel(shadowing_db=shadowing),
            ),
            "w",
        )["W"]
        for shadowing in (2.0, 6.0, 10.0)
    }
    assert spill[2.0] < spill[6.0] < spill[10.0]


def test_points_in_areas_finds_what_an_r_tree_finds_and_gives_overlaps_to_the_first():
    rng = np.random.default_rng(3)
    shapes = np.array(
        [
            shapely.box(0, 0, 2, 2),
            shapely.box(2, 0, 4, 2),  # shares the border x = 2 with the first
            shapely.Polygon([(1, 1), (3, 3), (1, 3)]),  # overlaps both
            shapely.box(1.5, -0.8, 2.5, 0.5).buffer(0.3),  # curved, half outside
        ]
    )
    x, y = rng.uniform(-1, 5, 20_000), rng.uniform(-1, 4, 20_000)
    x[:3], y[:3] = (2.0, 0.0, 4.5), (1.9, 1.0, 1.0)  # on a border, on the edge, outside
    point_at, area_at = points_in_areas(shapes, x, y)
    hit_point, hit_area = shapely.STRtree(shapes).query(shapely.points(x, y), predicate="within")
    first = pd.Series(hit_area).groupby(hit_point).min()
    assert point_at.tolist() == first.index.tolist()
    assert area_at.tolist() == first.tolist()
    assert not {0, 1, 2} & set(point_at.tolist())  # a border is no area's inside
    assert len(first) > 5_000 and (first == 2).any() and (first == 3).any()


def test_inspire_grid_allocation_uses_standard_tile_ids():
    areas = _areas(A=(0, 0, 3_000, 2_000))
    cells = _cells(("c", 1_500, 1_000, None))
    allocation = footprint_allocation(cells=cells, areas=areas, model="sector", grid_m=1000)
    expected = {
        f"CRS3035RES1000mN{int(ORIGIN_Y) + dy}E{int(ORIGIN_X) + dx}": 1 / 6
        for dx in (0, 1000, 2000)
        for dy in (0, 1000)
    }
    assert _weights(allocation, "c") == pytest.approx(expected, abs=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("coverage", ["sector", "signal"])
def test_footprints_on_belgium_cover_every_municipality(tmp_path, coverage):
    areas = municipalities()
    rng = np.random.default_rng(1)
    inside = areas.geometry.sample(600, replace=True, random_state=1).to_numpy()
    points = shapely.point_on_surface(inside)
    jitter = rng.normal(scale=0.01, size=(len(points), 2))
    lon, lat = shapely.get_x(points) + jitter[:, 0], shapely.get_y(points) + jitter[:, 1]
    cells = pd.DataFrame(
        {
            "cell_id": [f"c{i:04d}" for i in range(3 * len(points))],
            "longitude": np.repeat(lon, 3),
            "latitude": np.repeat(lat, 3),
            "azimuth_deg": np.tile([0.0, 120.0, 240.0], len(points)),
        }
    )
    store = Store(tmp_path)
    cells.to_parquet(store.cells_path)
    build_allocation(store=store, areas=areas, coverage=coverage)
    allocation = store.read_allocation()
    assert set(allocation.cell_id) == set(cells.cell_id)
    assert np.allclose(allocation.groupby("cell_id").weight.sum(), 1.0)
    assert set(allocation.area_code) == set(areas.area_code)
    # Footprints tile the country: their km2 add up to Belgium's 30,528 km2 (to the grid).
    assert allocation.overlap_km2.sum() == pytest.approx(areas.area_km2.sum(), rel=0.005)


def _geojson(areas: pd.DataFrame, path, *, code: str = "code"):
    features = [
        {
            "type": "Feature",
            "properties": {code: area_code},
            "geometry": json.loads(shapely.to_geojson(shape)),
        }
        for area_code, shape in zip(areas.area_code, areas.geometry, strict=True)
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def _two_zone_store(tmp_path):
    """Zones N and S split by a site whose two sectors face north and south: areas, store,
    the zones' GeoJSON file."""
    areas = _areas(N=(-5_000, 0, 5_000, 5_000), S=(-5_000, -5_000, 5_000, 0))
    store = Store(tmp_path / "store")
    store.root.mkdir()
    _cells(("a0", 0, 0, 0.0), ("a180", 0, 0, 180.0)).to_parquet(store.cells_path)
    zones = _geojson(areas, tmp_path / "zones.geojson", code="zone")
    return areas, store, zones


def test_store_allocate_command_takes_any_geojson_and_the_grid(tmp_path):
    _, store, zones = _two_zone_store(tmp_path)
    result = runner.invoke(
        app,
        [*ALLOCATE, str(store.root), "--areas", str(zones), *SECTOR_ZONES],
    )
    assert result.exit_code == 0, result.output
    allocation = store.read_allocation("zones")
    assert _weights(allocation, "a0") == pytest.approx({"N": 1.0})
    assert _weights(allocation, "a180") == pytest.approx({"S": 1.0})

    result = runner.invoke(app, ["store", "allocate", "--store", str(store.root), "--grid"])
    assert result.exit_code == 0, result.output
    grid = store.read_allocation("inspire_1km")
    assert grid.area_code.str.fullmatch(r"CRS3035RES1000mN\d{7}E\d{7}").all()
    assert np.allclose(grid.groupby("cell_id").weight.sum(), 1.0)


def test_store_allocate_names_a_missing_code_property(tmp_path):
    store = Store(tmp_path / "store")
    store.root.mkdir()
    _cells(("a0", 0, 0, 0.0)).to_parquet(store.cells_path)
    zones = _geojson(_areas(A=(0, 0, 1_000, 1_000)), tmp_path / "zones.geojson")
    result = runner.invoke(
        app,
        [*ALLOCATE, str(store.root), "--areas", str(zones), "--code-property", "nis"],
    )
    assert result.exit_code != 0
    assert "has no property 'nis'" in result.output
    assert "Traceback" not in result.output


def test_store_allocate_asks_for_a_level_when_the_file_name_is_none_before_any_work(tmp_path):
    # The level defaults to the file's name, which need not be a level name ("Zones-2024").
    _, store, zones = _two_zone_store(tmp_path)
    named = zones.rename(tmp_path / "Zones-2024.geojson")
    command = [*ALLOCATE, str(store.root), "--areas", str(named), "--code-property", "zone"]
    result = runner.invoke(app, command)
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert "'Zones-2024' is not a level name" in said and "--level" in said
    assert not store.allocation_dir.exists() and not (store.root / "areas").exists()
    with pytest.raises(CellcensusError, match="'Zones-2024' is not a level name"):
        build_allocation(store=store, areas=municipalities(), level="Zones-2024")
    assert not (store.root / "areas").exists()

    result = runner.invoke(app, [*command, "--level", "zones_2024"])
    assert result.exit_code == 0, result.output
    assert store.area_levels() == ["zones_2024"]


def test_the_population_prior_splits_a_cell_by_people_not_by_ground():
    # One omnidirectional site on the border of two equal squares: by area it is half in each.
    # The west square holds 9 people per 1 the east one holds (two population areas that
    # are not the allocation's areas: the west one spans W and the east one's half).
    areas = _areas(W=(-4_000, -2_000, 0, 2_000), E=(0, -2_000, 4_000, 2_000))
    cells = _cells(("c", 0, 0, None))
    by_area = footprint_allocation(cells=cells, areas=areas, model="sector", tile_m=100)
    assert _weights(by_area, "c") == pytest.approx({"W": 0.5, "E": 0.5}, abs=1e-9)
    population = _areas(P=(-4_000, -2_000, 0, 2_000), Q=(0, -2_000, 4_000, 2_000))
    population["population"] = [9_000, 1_000]
    by_people = footprint_allocation(
        cells=cells, areas=areas, model="sector", tile_m=100, population=population
    )
    assert _weights(by_people, "c") == pytest.approx({"W": 0.9, "E": 0.1}, abs=1e-9)
    # The footprint itself does not move: overlap_km2 stays the ground served.
    assert by_people.overlap_km2.tolist() == pytest.approx(by_area.overlap_km2.tolist())


def test_a_tile_on_a_border_is_shared_by_its_sample_points_and_their_people():
    # The border runs 50 m into a column of tiles (centred 125 m east of ORIGIN, in E): a
    # fifth of each tile's sample points lie west. W holds 1,000 people per km², E 100.
    areas = _areas(W=(-1_000, -500, 50, 500), E=(50, -500, 1_000, 500))
    population = areas.assign(population=[1_050.0, 95.0])  # 1.05 and 0.95 km²
    tiles = grid_tiles(areas, size_m=250)
    parts = tile_parts(tiles, areas, population)
    straddling = tiles.x - ORIGIN_X == 125
    assert straddling.sum() == 4  # one column of four tiles
    on_border = parts[parts.tile.isin(np.flatnonzero(straddling))]
    assert on_border.groupby("area_code").share.unique().map(list).to_dict() == {
        "W": [pytest.approx(0.2)],
        "E": [pytest.approx(0.8)],
    }
    prior = np.exp(on_border.groupby("area_code").log_prior.first())
    assert prior.to_dict() == pytest.approx({"W": 200.0, "E": 80.0})  # density x share
    whole = parts[~parts.tile.isin(np.flatnonzero(straddling))]
    assert (whole.share == 1).all() and whole.tile.is_unique
    by_area = np.exp(whole.log_prior).groupby(whole.area_code).unique().map(list).to_dict()
    assert by_area == {"W": [pytest.approx(1_000.0)], "E": [pytest.approx(100.0)]}
    assert set(parts.tile) == set(range(len(tiles.x)))


def test_a_footprint_where_no_one_is_known_keeps_the_area_weights():
    areas = _areas(W=(-4_000, -2_000, 0, 2_000), E=(0, -2_000, 4_000, 2_000))
    cells = _cells(("c", 0, 0, None))
    elsewhere = _areas(P=(50_000, 50_000, 60_000, 60_000))
    elsewhere["population"] = [1_000]
    allocation = footprint_allocation(
        cells=cells, areas=areas, model="sector", tile_m=100, population=elsewhere
    )
    assert _weights(allocation, "c") == pytest.approx({"W": 0.5, "E": 0.5}, abs=1e-9)


def test_the_population_prior_needs_a_grid_footprint(tmp_path):
    store = Store(tmp_path / "store")
    store.root.mkdir()
    _cells(("a0", 0, 0, 0.0)).to_parquet(store.cells_path)
    result = runner.invoke(
        app, [*ALLOCATE, str(store.root), "--coverage", "voronoi", "--prior", "population"]
    )
    assert result.exit_code != 0
    assert "--coverage sector or signal" in result.output


def test_a_misspelt_level_is_refused_not_made_of_municipalities(tmp_path):
    store = Store(tmp_path / "store")
    store.root.mkdir()
    _cells(("a0", 0, 0, 0.0)).to_parquet(store.cells_path)
    result = runner.invoke(app, [*ALLOCATE, str(store.root), "--level", "provnce"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    said = " ".join(result.output.split())
    assert "--level provnce: not one of the levels" in said and "'province'?" in said
    assert not store.allocation_path("provnce").exists()
    for another in ("municipality_voronoi", "province_2", "voronoi", "sectors", "arrondissement"):
        _refuse_a_misspelt_level(another)  # names of allocations of their own
    for misspelt in ("regoin", "provinces", "municipalites"):
        with pytest.raises(CellcensusError, match="did you mean"):
            _refuse_a_misspelt_level(misspelt)


@pytest.mark.slow
def test_store_allocate_keeps_the_tile_footprint_of_belgium(tmp_path):
    areas = municipalities()
    points = shapely.point_on_surface(areas.geometry.sample(300, random_state=2).to_numpy())
    cells = pd.DataFrame(
        {
            "cell_id": [f"c{i:04d}" for i in range(3 * len(points))],
            "longitude": np.repeat(shapely.get_x(points), 3),
            "latitude": np.repeat(shapely.get_y(points), 3),
            "azimuth_deg": np.tile([0.0, 120.0, 240.0], len(points)),
        }
    )
    store = Store(tmp_path / "store")
    store.root.mkdir()
    cells.to_parquet(store.cells_path)
    result = runner.invoke(app, [*ALLOCATE, str(store.root), "--tile-footprint"])
    assert result.exit_code == 0, result.output
    folder = store.root / "footprint"
    sectors = pd.read_parquet(folder / "cells.parquet")
    serving = pd.read_parquet(folder / "serving.parquet")
    tiles = pd.read_parquet(folder / "tiles.parquet")
    assert set(sectors.cell_id) == set(cells.cell_id)
    assert sectors.sector.nunique() == len(cells)  # three azimuths per site: three sectors
    assert np.allclose(serving.groupby("tile").probability.sum(), 1.0)
    assert serving.probability.min() >= 1e-3
    assert set(serving.tile) == set(tiles.tile)
    assert set(tiles.area_code) == set(areas.area_code)
    # 250 m tiles: 16 per km² of Belgium's 30,528 km², to the grid; about one in ten on a
    # border, shared among the municipalities it overlaps.
    assert tiles.tile.nunique() == pytest.approx(16 * areas.area_km2.sum(), rel=0.01)
    assert np.allclose(tiles.groupby("tile").share.sum(), 1.0)
    assert 0.05 < (tiles.share < 1).mean() < 0.25
    prior = tiles[tiles.share == 1].groupby("area_code").log_prior.first()
    assert prior["21004"] > prior["82036"] + 3  # Brussels city vs rural Vaux-sur-Sûre

    result = runner.invoke(app, [*ALLOCATE, str(store.root), "--grid", "--tile-footprint"])
    assert result.exit_code != 0
    assert "leave out --areas and --grid" in result.output


def test_allocated_levels_keep_the_boundaries_the_service_maps_with(tmp_path):
    from cellcensus.holder.api.formats import area_geometries
    from cellcensus.holder.geo import roll_up_allocation

    areas, store, zones = _two_zone_store(tmp_path)
    for options in (["--areas", str(zones), *SECTOR_ZONES], ["--grid"]):
        result = runner.invoke(app, [*ALLOCATE, str(store.root), *options])
        assert result.exit_code == 0, result.output

    shapes = area_geometries(store.root, "zones")
    assert set(shapes) == {"N", "S"}
    for code, shape in zip(areas.area_code, areas.geometry, strict=True):
        assert shapely.hausdorff_distance(shapely.geometry.shape(shapes[code]), shape) < 1e-5
    squares = area_geometries(store.root, "inspire_1km")
    assert set(squares) == set(store.read_allocation("inspire_1km").area_code)
    one = shapely.geometry.shape(next(iter(squares.values())))
    assert one.geom_type == "Polygon" and 1e-4 < one.area < 3e-4  # 1 km2 at 50.8 N, in deg2
    # A level summed from whole zones is mapped by their union.
    roll_up_allocation(
        store=store, parent=pd.Series({"N": "ALL", "S": "ALL"}), level="all", source="zones"
    )
    union = shapely.geometry.shape(area_geometries(store.root, "all")["ALL"])
    assert shapely.hausdorff_distance(union, shapely.union_all(areas.geometry.to_numpy())) < 1e-5


def test_store_allocate_sums_municipalities_into_the_named_larger_levels(tmp_path):
    # Without --areas, a province level must hold provinces, not the municipalities named so.
    areas = municipalities()
    points = shapely.point_on_surface(areas.geometry.sample(40, random_state=3).to_numpy())
    cells = pd.DataFrame(
        {
            "cell_id": [f"c{i:02d}" for i in range(len(points))],
            "longitude": shapely.get_x(points),
            "latitude": shapely.get_y(points),
        }
    )
    store = Store(tmp_path / "store")
    store.root.mkdir()
    cells.to_parquet(store.cells_path)
    for level in ("province", "arrondissement", "region"):
        result = runner.invoke(app, [*ALLOCATE, str(store.root), "--level", level])
        assert result.exit_code != 0
        assert "run `cellcensus store allocate --store" in " ".join(result.output.split())
    result = runner.invoke(app, [*ALLOCATE, str(store.root), "--coverage", "voronoi"])
    assert result.exit_code == 0, result.output
    by_municipality = store.read_allocation("municipality")

    from cellcensus.reference import arrondissements_2019

    parents = {
        "province": areas.set_index("area_code")["province"].astype(str),
        "region": areas.set_index("area_code")["region"].astype(str),
        "arrondissement": arrondissements_2019(),  # the codes the demo and the NSO's flows use
    }
    for level, parent in parents.items():
        result = runner.invoke(app, [*ALLOCATE, str(store.root), "--level", level])
        assert result.exit_code == 0, result.output
        rolled = store.read_allocation(level)
        assert set(rolled.area_code) <= set(parent)
        assert np.allclose(rolled.groupby("cell_id").weight.sum(), 1.0)
        expected = (
            by_municipality.assign(area_code=by_municipality.area_code.map(parent))
            .groupby(["cell_id", "area_code"])
            .weight.sum()
        )
        got = rolled.set_index(["cell_id", "area_code"]).weight.sort_index()
        pd.testing.assert_series_equal(got, expected.sort_index(), check_names=False)
    assert set(store.area_levels()) == {"municipality", *parents}
