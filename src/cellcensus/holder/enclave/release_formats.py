"""Which formats a release is served in: the one rule of the result route and the job table.

A release is served as JSON, CSV and Parquet; as GeoJSON only where its rows have a place: a
table of areas (an ``area_code`` column) or an origin-destination table (a pair of area columns
in `FLOW_KEYS`). Each release's formats are stored with it when it is made (`jobs.JobBook`,
the ``releases.formats`` column), so listing jobs reads no release body; the service's result
route (`holder.api.formats.render`) refuses GeoJSON by the same rule.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from enum import StrEnum


class ResultFormat(StrEnum):
    """Formats of `GET /jobs/{id}/result`."""

    JSON = "json"
    CSV = "csv"
    GEOJSON = "geojson"
    PARQUET = "parquet"


FLOW_KEYS = (("origin", "destination"), ("home_area", "work_area"))
"""Pairs of area columns (from, to) of origin-destination releases, drawn as lines."""


def geojson_keys(columns: Sequence[str]) -> tuple[str, ...] | None:
    """The area column(s) a GeoJSON feature is placed by, or None when there are none.

    ``("area_code",)`` for a table of areas, a pair of `FLOW_KEYS` for an origin-destination
    table (a line between the two areas' centroids).
    """
    if "area_code" in columns:
        return ("area_code",)
    for pair in FLOW_KEYS:
        if all(name in columns for name in pair):
            return pair
    return None


def release_columns(body: str) -> list[str]:
    """The column names of a release's JSON `body`: its ``columns``, else its first row's."""
    document = json.loads(body)
    if "columns" in document:
        return [str(column["name"]) for column in document["columns"]]
    rows = document.get("table") or [{}]
    return [str(name) for name in rows[0]]


def offered_formats(columns: Sequence[str]) -> tuple[ResultFormat, ...]:
    """The formats a release with `columns` is served in: GeoJSON only where rows have a place.

    The one rule of both `GET /jobs/{id}/result` (`holder.api.formats.render`) and the
    formats stored with each release.
    """
    placed = geojson_keys(columns) is not None
    return tuple(fmt for fmt in ResultFormat if placed or fmt is not ResultFormat.GEOJSON)


def release_formats(body: str) -> list[str]:
    """The names of the formats the release JSON `body` is served in, as its row keeps them."""
    return [fmt.value for fmt in offered_formats(release_columns(body))]
