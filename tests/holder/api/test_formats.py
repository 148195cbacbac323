"""Formats of a release: GeoJSON of areas or origin-destination lines (or a clear 406), CSV
with its provenance and published facts in headers."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest

from cellcensus.errors import CellcensusError
from cellcensus.holder.api.formats import NoGeoJSONError, ResultFormat, render
from cellcensus.holder.enclave.release_formats import (
    geojson_keys,
    offered_formats,
    release_columns,
)
from cellcensus.release import Provenance, Release

SQUARES = {
    "11001": {"type": "Polygon", "coordinates": [[[4, 50], [5, 50], [5, 51], [4, 51], [4, 50]]]},
    "21004": {"type": "Polygon", "coordinates": [[[6, 50], [8, 50], [8, 52], [6, 52], [6, 50]]]},
}


def body(table: pd.DataFrame, algorithm: str) -> str:
    provenance = Provenance(
        job_id="0" * 32,
        algorithm=algorithm,
        version="1.0.0",
        parameters={},
        policy={"dp": {"epsilon": 0.4}},
        created_at="2026-11-28T10:00:00+00:00",
        engine="duckdb",
    )
    return Release(table=table, provenance=provenance, published={"market_share": 0.4}).to_json()


def test_origin_destination_release_is_lines_between_area_centroids():
    flows = pd.DataFrame(
        {
            "home_area": ["11001", "11001", "21004"],
            "work_area": ["21004", "11001", "99999"],
            "device_count": [40, 120, 25],
        }
    )
    content, _ = render(body(flows, "home_work_flows"), ResultFormat.GEOJSON, geometries=SQUARES)
    collection = json.loads(content)
    assert collection["type"] == "FeatureCollection"
    assert collection["provenance"]["algorithm"] == "home_work_flows"
    features = collection["features"]
    assert [f["properties"]["device_count"] for f in features] == [40, 120, 25]
    assert features[0]["geometry"] == {
        "type": "LineString",
        "coordinates": [[4.5, 50.5], [7.0, 51.0]],
    }
    # Within one area: a zero-length line; an area without geometry: no geometry.
    assert features[1]["geometry"]["coordinates"] == [[4.5, 50.5], [4.5, 50.5]]
    assert features[2]["geometry"] is None


def test_trips_od_columns_are_placed_by_origin_and_destination():
    assert geojson_keys(["local_date", "origin", "destination", "device_count"]) == (
        "origin",
        "destination",
    )
    assert geojson_keys(["local_date", "slot", "area_code", "device_count"]) == ("area_code",)
    trips = pd.DataFrame(
        {
            "local_date": ["2011-03-07"],
            "origin": ["21004"],
            "destination": ["11001"],
            "device_count": [30],
        }
    )
    content, _ = render(body(trips, "trips_od"), ResultFormat.GEOJSON, geometries=SQUARES)
    (feature,) = json.loads(content)["features"]
    assert feature["geometry"]["coordinates"] == [[7.0, 51.0], [4.5, 50.5]]
    assert feature["properties"]["local_date"] == "2011-03-07"


def test_release_without_area_column_has_no_geojson_and_says_what_to_ask_for():
    reasons = pd.DataFrame({"reason": ["kept", "machine"], "device_count": [200, 20]})
    with pytest.raises(NoGeoJSONError, match=r"device_filter .* format=json, csv or parquet"):
        render(body(reasons, "device_filter"), ResultFormat.GEOJSON, geometries={})
    # The other formats of the same release are fine.
    content, headers = render(body(reasons, "device_filter"), ResultFormat.CSV)
    assert content.decode().splitlines()[0] == "reason,device_count"
    assert json.loads(headers["Cellcensus-Provenance"])["algorithm"] == "device_filter"
    assert json.loads(headers["Cellcensus-Published"]) == {"market_share": 0.4}


def test_the_formats_offered_are_those_render_serves():
    tables = {
        "usual_residence": pd.DataFrame({"area_code": ["11001"], "device_count": [50]}),
        "home_work_flows": pd.DataFrame(
            {"home_area": ["11001"], "work_area": ["21004"], "device_count": [40]}
        ),
        "device_filter": pd.DataFrame({"reason": ["kept"], "device_count": [200]}),
        "empty": pd.DataFrame({"reason": pd.Series([], dtype=str), "device_count": []}),
    }
    for algorithm, table in tables.items():
        released = body(table, algorithm)
        assert release_columns(released) == list(table.columns)
        offered = offered_formats(release_columns(released))
        for fmt in ResultFormat:
            if fmt in offered:
                render(released, fmt, geometries=SQUARES)
            else:
                with pytest.raises(NoGeoJSONError):
                    render(released, fmt, geometries=SQUARES)
        placed = algorithm in ("usual_residence", "home_work_flows")
        assert (ResultFormat.GEOJSON in offered) is placed, algorithm
        assert offered[:2] == (ResultFormat.JSON, ResultFormat.CSV)
    # A release archived before `columns` was written: the first row's names.
    legacy = json.loads(body(tables["device_filter"], "device_filter"))
    del legacy["columns"]
    assert release_columns(json.dumps(legacy)) == ["device_count", "reason"]


def test_geojson_feature_ids_tell_features_apart():
    by_area = pd.DataFrame({"area_code": ["11001", "21004"], "device_count": [50, 60]})
    content, _ = render(body(by_area, "usual_residence"), ResultFormat.GEOJSON, geometries=SQUARES)
    assert [f["id"] for f in json.loads(content)["features"]] == ["11001", "21004"]

    hourly = pd.DataFrame(
        {
            "local_date": ["2011-03-07"] * 4,
            "slot": [7, 7, 8, 8],
            "area_code": ["11001", "21004"] * 2,
            "device_count": [50, 60, 55, 65],
        }
    )
    content, _ = render(
        body(hourly, "present_population"), ResultFormat.GEOJSON, geometries=SQUARES
    )
    features = json.loads(content)["features"]
    ids = [f["id"] for f in features]
    assert len(set(ids)) == 4
    for feature in features:
        assert feature["id"].count("/") == 2 and feature["properties"]["area_code"] in feature["id"]
    assert features[0]["geometry"] == SQUARES["11001"]

    flows = pd.DataFrame(
        {"home_area": ["11001", "21004"], "work_area": ["21004", "21004"], "device_count": [5, 9]}
    )
    content, _ = render(body(flows, "home_work_flows"), ResultFormat.GEOJSON, geometries=SQUARES)
    assert [f["id"] for f in json.loads(content)["features"]] == ["11001/21004", "21004/21004"]


def test_http_geojson_of_flows_and_406_problem_without_areas(service):
    steward = service.auth("steward")
    granted = service.client.put("/users/alice/scopes", json={"scopes": ["*:*:*"]}, headers=steward)
    assert granted.status_code == 200, granted.text
    headers = service.auth("alice")  # a token issued after the grant carries the scope
    results, formats = {}, {}
    for algorithm in ("home_work_flows", "device_filter"):
        answer = service.client.post(
            "/jobs", json={"algorithm": algorithm, "parameters": {}}, headers=headers
        )
        assert answer.status_code == 202, answer.text
        done = service.wait(answer.json()["id"], headers)
        assert done["status"] == "released", done
        assert answer.json()["formats"] == []  # queued: nothing offered yet
        formats[algorithm] = done["formats"]
        for fmt in done["formats"]:  # each format the job offers is served
            served = service.client.get(
                done["links"]["result"], params={"format": fmt}, headers=headers
            )
            assert served.status_code == 200, (algorithm, fmt, served.text)
        results[algorithm] = service.client.get(
            done["links"]["result"], params={"format": "geojson"}, headers=headers
        )
    flows = results["home_work_flows"]
    assert flows.status_code == 200, flows.text
    assert flows.headers["content-type"].startswith("application/geo+json")
    features = flows.json()["features"]
    assert features and {"home_area", "work_area"} <= set(features[0]["properties"])
    refused = results["device_filter"]
    assert refused.status_code == 406, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["status"] == 406 and problem["title"] == "Not acceptable"
    assert "geojson" in problem["detail"].lower()
    assert "format=json, csv or parquet" in problem["detail"]
    assert formats == {
        "home_work_flows": ["json", "csv", "geojson", "parquet"],
        "device_filter": ["json", "csv", "parquet"],
    }
    listed = service.client.get("/jobs", headers=headers).json()["jobs"]
    assert sorted(job["formats"] for job in listed) == sorted(formats.values())
    seen = service.client.get("/jobs", headers=service.auth("steward")).json()["jobs"]
    assert sorted(job["formats"] for job in seen) == sorted(formats.values())


def test_a_restarted_service_lists_released_jobs_formats_without_reading_a_release(service):
    import sqlalchemy as sa
    from fastapi.testclient import TestClient

    from cellcensus.holder.api import create_app

    headers = service.auth("alice")
    job = {"algorithm": "usual_residence", "parameters": {"min_nights": 2}}
    answer = service.client.post("/jobs", json=job, headers=headers)
    assert answer.status_code == 202, answer.text
    assert service.wait(answer.json()["id"], headers)["status"] == "released"
    # A new process over the same database: nothing of the release in its memory.
    with TestClient(create_app(service.settings)) as restarted:
        engine = restarted.app.state.context.service.state.engine  # type: ignore[attr-defined]
        statements: list[str] = []

        def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            statements.append(statement)

        sa.event.listen(engine, "before_cursor_execute", record)
        try:
            listed = restarted.get("/jobs", headers=headers)
            one = restarted.get(f"/jobs/{answer.json()['id']}", headers=headers)
        finally:
            sa.event.remove(engine, "before_cursor_execute", record)
    assert listed.status_code == 200, listed.text
    assert [item["formats"] for item in listed.json()["jobs"]] == [
        ["json", "csv", "geojson", "parquet"]
    ]
    assert one.json()["formats"] == ["json", "csv", "geojson", "parquet"]
    assert statements and not any("releases.body" in text for text in statements)


def _exteriors_and_holes(geometry: dict[str, Any]) -> list[tuple[bool, bool]]:
    """(is exterior, is counter-clockwise) of each ring of a GeoJSON (multi)polygon."""
    import shapely.geometry

    shape = shapely.geometry.shape(geometry)
    polygons = shape.geoms if shape.geom_type == "MultiPolygon" else [shape]
    return [
        (index == 0, ring.is_ccw)
        for polygon in polygons
        for index, ring in enumerate((polygon.exterior, *polygon.interiors))
    ]


def test_served_boundaries_follow_the_right_hand_rule(tmp_path):
    import shapely

    from cellcensus.holder.api.formats import area_geometries
    from cellcensus.holder.geo.boundaries import roll_up_boundaries, save_boundaries
    from cellcensus.holder.store import Store

    store = Store(tmp_path / "store")
    ring = shapely.box(4.0, 50.0, 5.0, 51.0).difference(shapely.box(4.4, 50.4, 4.6, 50.6))
    areas = pd.DataFrame(
        {"area_code": ["W", "E"], "geometry": [ring, shapely.box(5.0, 50.0, 6.0, 51.0)]}
    )
    save_boundaries(store, areas=areas, level="municipality")
    roll_up_boundaries(
        store, parent=pd.Series({"W": "ALL", "E": "ALL"}), level="all", source="municipality"
    )
    # RFC 7946 3.1.6: exterior rings counter-clockwise, holes clockwise.
    for level in ("municipality", "all"):
        saved = json.loads((store.root / "areas" / f"{level}.geojson").read_text("utf-8"))
        served = area_geometries(store.root, level).values()
        for geometry in [feature["geometry"] for feature in saved["features"]] + list(served):
            rings = _exteriors_and_holes(geometry)
            assert all(exterior == ccw for exterior, ccw in rings), (level, rings)


def test_a_downloaded_parquet_or_json_is_read_back_as_the_release(tmp_path):
    # What an analyst saves from GET /jobs/{id}/result is what the NSO side reads in.
    table = pd.DataFrame(
        {
            "area_code": ["01001", "21004"],
            "device_count": pd.array([40, None], dtype="Int64"),
            "ci95": [7.49, 7.49],
        }
    )
    wire = body(table, "usual_residence")
    original = Release.from_json(wire)
    for fmt in (ResultFormat.PARQUET, ResultFormat.JSON):
        content, _ = render(wire, fmt)
        path = tmp_path / f"release.{fmt.value}"
        path.write_bytes(content)
        read = Release.read(path)
        pd.testing.assert_frame_equal(read.table, original.table)
        assert read.provenance == original.provenance and read.published == original.published
    content, _ = render(wire, ResultFormat.CSV)
    (tmp_path / "release.csv").write_bytes(content)
    with pytest.raises(CellcensusError, match=r"format=json or format=parquet"):
        Release.read(tmp_path / "release.csv")  # its provenance came in headers, not a file
