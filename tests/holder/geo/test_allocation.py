import numpy as np
import pandas as pd
import pytest
import shapely

from cellcensus.holder.geo import allocate, to_metric, voronoi_coverage
from cellcensus.reference import country_outline, municipalities


def test_a_cell_straddling_two_areas_three_to_one_gets_those_weights():
    # Metric footprint 4 km wide; area A holds 3 km of it, area B 1 km.
    footprint = shapely.box(0, 0, 4000, 1000)
    coverage = pd.DataFrame(
        {"cell_id": ["c"], "site": [shapely.Point(2000, 500)], "geometry": [footprint]}
    )
    # Areas are given in WGS84: build them in metres and invert the projection by search.
    areas_metric = [shapely.box(-5000, -5000, 3000, 5000), shapely.box(3000, -5000, 9000, 5000)]
    areas = pd.DataFrame({"area_code": ["A", "B"], "geometry": _to_wgs84(areas_metric)})
    result = allocate(coverage=coverage, areas=areas)
    weights = dict(zip(result.area_code, result.weight, strict=True))
    assert weights == pytest.approx({"A": 0.75, "B": 0.25}, abs=1e-3)
    assert result.overlap_km2.sum() == pytest.approx(4.0, rel=1e-3)


def test_a_cell_outside_every_area_goes_whole_to_the_nearest():
    coverage = pd.DataFrame(
        {"cell_id": ["far"], "site": [shapely.Point(20_000, 0)], "geometry": [shapely.Polygon()]}
    )
    areas_metric = [shapely.box(0, 0, 1000, 1000), shapely.box(15_000, 0, 16_000, 1000)]
    areas = pd.DataFrame({"area_code": ["near0", "near15"], "geometry": _to_wgs84(areas_metric)})
    result = allocate(coverage=coverage, areas=areas)
    assert result[["area_code", "weight"]].to_dict("records") == [
        {"area_code": "near15", "weight": 1.0}
    ]


@pytest.mark.slow
def test_voronoi_allocation_on_belgium_covers_every_municipality():
    areas = municipalities()
    rng = np.random.default_rng(0)
    outline = country_outline()
    lon = rng.uniform(2.6, 6.3, 6000)
    lat = rng.uniform(49.5, 51.5, 6000)
    inside = shapely.contains_xy(outline, lon, lat)
    cells = pd.DataFrame(
        {
            "cell_id": [f"c{i}" for i in range(inside.sum())],
            "longitude": lon[inside],
            "latitude": lat[inside],
        }
    )
    cells = pd.concat(
        [cells, cells.head(5).assign(cell_id=lambda d: d.cell_id + "b")]
    )  # shared sites
    coverage = voronoi_coverage(cells=cells, country=outline)
    result = allocate(coverage=coverage, areas=areas)
    sums = result.groupby("cell_id").weight.sum()
    assert len(sums) == len(cells)
    assert np.allclose(sums, 1.0)
    assert set(result.area_code) == set(areas.area_code)
    # Footprints tile the country: their overlaps add up to Belgium's area (30,528 km2).
    assert result.overlap_km2.sum() == pytest.approx(areas.area_km2.sum(), rel=0.01)


def _to_wgs84(shapes):
    from pyproj import Transformer

    back = Transformer.from_crs("EPSG:3812", "EPSG:4326", always_xy=True)
    # Densify so the curved projection does not move the borders by more than centimetres.
    dense = shapely.segmentize(np.array(shapes), 50)
    out = shapely.transform(dense, lambda xy: np.column_stack(back.transform(xy[:, 0], xy[:, 1])))
    assert np.allclose(shapely.area(to_metric(out)), shapely.area(dense), rtol=1e-4)
    return list(out)
