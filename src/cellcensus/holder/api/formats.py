"""A release in the format the analyst asks for: JSON (wire format), CSV, GeoJSON, Parquet.

Every format carries the provenance and the holder's published facts: inside the document for
JSON, GeoJSON (foreign members) and Parquet (schema metadata), and in the
``Cellcensus-Provenance`` and ``Cellcensus-Published`` headers for CSV.

GeoJSON needs a place for each row: a table of areas (an ``area_code`` column) gives one
feature per row with the area's geometry; an origin-destination table (a pair of area columns
in `FLOW_KEYS`) gives one line per row from the centroid of the origin area to the centroid of
the destination area. Any other table has no GeoJSON representation (`NoGeoJSONError`).
That rule (`offered_formats`) lives in `holder.enclave.release_formats`, which also works out
the formats stored with each release when it is made.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import shapely
from shapely.geometry import mapping

from cellcensus.holder.enclave.release_formats import (
    FLOW_KEYS,
    ResultFormat,
    geojson_keys,
    offered_formats,
    release_columns,
)
from cellcensus.release import PARQUET_KEYS, Release

__all__ = [
    "MEDIA_TYPES",
    "NoGeoJSONError",
    "ResultFormat",
    "area_geometries",
    "negotiate",
    "render",
]


MEDIA_TYPES = {
    ResultFormat.JSON: "application/json",
    ResultFormat.CSV: "text/csv; charset=utf-8",
    ResultFormat.GEOJSON: "application/geo+json",
    ResultFormat.PARQUET: "application/vnd.apache.parquet",
}
_BY_ACCEPT = {
    "text/csv": ResultFormat.CSV,
    "application/geo+json": ResultFormat.GEOJSON,
    "application/vnd.apache.parquet": ResultFormat.PARQUET,
    "application/json": ResultFormat.JSON,
}


class NoGeoJSONError(ValueError):
    """The release has no area column to place its rows on a map."""


def _words(formats: Sequence[ResultFormat]) -> str:
    names = [fmt.value for fmt in formats]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def negotiate(requested: ResultFormat | None, accept: str) -> ResultFormat:
    """The `format` query parameter if given, else the first known type in Accept, else JSON."""
    if requested is not None:
        return requested
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in _BY_ACCEPT:
            return _BY_ACCEPT[media]
    return ResultFormat.JSON


def render(
    body: str, fmt: ResultFormat, *, geometries: dict[str, Any] | None = None
) -> tuple[bytes, dict[str, str]]:
    """The release JSON `body` as bytes of `fmt`, with extra response headers."""
    if fmt is ResultFormat.JSON:
        return body.encode(), {}
    release = Release.from_json(body)
    release = Release(
        table=_ordered(release.table), provenance=release.provenance, published=release.published
    )
    if fmt is ResultFormat.CSV:
        document = json.loads(body)
        headers = {
            f"Cellcensus-{name.title()}": json.dumps(document[name], sort_keys=True)
            for name in ("provenance", "published")
        }
        return release.to_csv().encode(), headers
    if fmt is ResultFormat.PARQUET:
        return _parquet(release, body), {}
    columns = release_columns(body)
    placed_by = geojson_keys(columns)
    if placed_by is None:
        raise NoGeoJSONError(
            f"release of {release.provenance.algorithm} has no area column (area_code, or "
            f"{' or '.join('/'.join(pair) for pair in FLOW_KEYS)}) to place its rows on a map: "
            f"there is no GeoJSON of it; ask for format={_words(offered_formats(columns))}"
        )
    return _geojson(body, geometries or {}, placed_by=placed_by), {}


def _ordered(table: pd.DataFrame) -> pd.DataFrame:
    """Key columns first, then the count and its interval (the wire format sorts names)."""
    last = [name for name in ("device_count", "ci95") if name in table.columns]
    return table[[name for name in table.columns if name not in last] + last]


def _parquet(release: Release, body: str) -> bytes:
    document = json.loads(body)
    table = pa.Table.from_pandas(release.table, preserve_index=False)
    table = table.replace_schema_metadata(
        {
            **(table.schema.metadata or {}),
            **{
                key: json.dumps(document[name], sort_keys=True).encode()
                for name, key in PARQUET_KEYS.items()
            },
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _geojson(body: str, geometries: dict[str, Any], *, placed_by: tuple[str, ...]) -> bytes:
    document = json.loads(body)
    if placed_by == ("area_code",):
        features = [
            {
                "type": "Feature",
                "id": feature_id,
                "properties": row,
                "geometry": geometries.get(str(row["area_code"])),
            }
            for feature_id, row in zip(
                _feature_ids(document["table"], placed_by), document["table"], strict=True
            )
        ]
    else:
        origin, destination = placed_by
        centroids = _centroids(geometries)
        features = [
            {
                "type": "Feature",
                "id": feature_id,
                "properties": row,
                "geometry": _line(
                    centroids.get(str(row[origin])), centroids.get(str(row[destination]))
                ),
            }
            for feature_id, row in zip(
                _feature_ids(document["table"], placed_by), document["table"], strict=True
            )
        ]
    collection = {
        "type": "FeatureCollection",
        "features": features,
        "provenance": document["provenance"],
        "published": document["published"],
    }
    return json.dumps(collection).encode()


def _feature_ids(rows: list[dict[str, Any]], placed_by: tuple[str, ...]) -> list[str]:
    """The codes placing each row (area, or origin/destination) if unique, else every key.

    Every key is joined with "/" (date/slot/area). Feature ids must tell features apart: a
    release by area and hour holds each area once per slot, one of trips per date each pair
    once per date.
    """
    codes = ["/".join(str(row[name]) for name in placed_by) for row in rows]
    if len(set(codes)) == len(codes):
        return codes
    keys = [name for name in rows[0] if name not in ("device_count", "ci95")]
    return ["/".join(str(row[name]) for name in keys) for row in rows]


def _centroids(geometries: dict[str, Any]) -> dict[str, list[float]]:
    """Each area's centroid, to 1e-6 like the geometries."""
    found = {}
    for code, geometry in geometries.items():
        centroid = shapely.geometry.shape(geometry).centroid
        if not centroid.is_empty:
            found[code] = [round(centroid.x, 6), round(centroid.y, 6)]
    return found


def _line(start: list[float] | None, end: list[float] | None) -> dict[str, Any] | None:
    """A flow from `start` to `end` (zero-length within one area); null if either is unknown."""
    if start is None or end is None:
        return None
    return {"type": "LineString", "coordinates": [start, end]}


def area_geometries(store: Path, level: str) -> dict[str, Any]:
    """GeoJSON geometries of the areas of `level`, from ``STORE/areas/LEVEL.geojson``.

    The file is a FeatureCollection whose features carry ``area_code`` in their properties.
    Without it, features are released with ``geometry: null`` (valid GeoJSON) and the
    analyst joins the boundaries they hold.
    """
    path = Path(store) / "areas" / f"{level}.geojson"
    if not path.is_file():
        return {}
    return _read_geometries(str(path), path.stat().st_mtime_ns)


@lru_cache(maxsize=8)
def _read_geometries(path: str, _mtime: int) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:  # noqa: PTH123 - cached by path string
        collection = json.load(handle)
    found = {}
    for feature in collection.get("features", []):
        code = str(feature.get("properties", {}).get("area_code", ""))
        if code and feature.get("geometry") is not None:
            geometry = shapely.set_precision(shapely.geometry.shape(feature["geometry"]), 1e-6)
            # set_precision turns rings clockwise; RFC 7946 wants exteriors counter-clockwise.
            found[code] = mapping(shapely.orient_polygons(geometry))
    return found
