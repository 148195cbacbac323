"""`cellcensus synth --report`: how a written world compares with published figures.

Reads a dataset folder (events, cells, ground truth, world.json) with DuckDB, over its first
`REPORT_DAYS` days, and sets each statistic beside the published figure it should resemble.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import shapely

from cellcensus.reference import belgium
from cellcensus.world.evidence import SOURCES
from cellcensus.world.holidays import public_holidays

REPORT_DAYS = 7
"""Days of events the report reads (all of them if the period is shorter)."""
NIGHT = (22, 6)
"""Local hours that count as night in the report: ``hour >= 22 or hour < 6``."""


@dataclass(frozen=True)
class Figure:
    """One line of the realism report.

    Attributes:
        measure: What is measured.
        world: The world's value, formatted.
        published: The published figure or the model's target, formatted.
        source: Key of `SOURCES` (or ``parameter`` for a model target).
    """

    measure: str
    world: str
    published: str
    source: str


def realism_report(folder: Path) -> list[Figure]:
    """The realism figures of a written world.

    Args:
        folder: A dataset folder written by `synthesize`.

    Returns:
        The figures, in reading order.
    """
    document = json.loads((folder / "world.json").read_text(encoding="utf-8"))
    parameters = document["parameters"]
    con = _connect()
    days = sorted(path.name.removeprefix("date=") for path in (folder / "events").iterdir())
    chosen = days[:REPORT_DAYS]
    files = [str(folder / "events" / f"date={day}" / "*.parquet") for day in chosen]
    con.execute(
        "CREATE VIEW events AS SELECT *, "
        "hour(timezone('Europe/Brussels', timestamp)) AS local_hour, "
        "CAST(timezone('Europe/Brussels', timestamp) AS DATE) AS local_date "
        f"FROM read_parquet({files!r})"
    )
    devices = folder / "truth" / "devices.parquet"
    con.execute(f"CREATE VIEW devices AS SELECT * FROM read_parquet('{devices}')")
    figures = [
        *_activity(con),
        *_rhythm(con),
        *_devices(con, document, parameters),
        *_network(folder),
        *_mobility(folder, document, parameters),
    ]
    con.close()
    return figures


def _activity(con: duckdb.DuckDBPyConnection) -> list[Figure]:
    row = con.execute(
        "WITH per AS (SELECT user_id, local_date, count(*) AS n FROM events GROUP BY ALL) "
        "SELECT median(n), quantile_cont(n, 0.9), quantile_cont(n, 0.99) FROM per"
    ).fetchone()
    median, p90, p99 = row if row else (0, 0, 0)
    share = con.execute(
        "WITH per AS (SELECT user_id, count(*) AS n FROM events GROUP BY ALL), "
        "ranked AS (SELECT n, row_number() OVER (ORDER BY n DESC) AS r, count(*) OVER () AS c "
        "FROM per) SELECT sum(n) FILTER (WHERE r <= c / 10) / sum(n) FROM ranked"
    ).fetchone()
    return [
        Figure(
            "events per device-day: median / p90 / p99",
            f"{median:.0f} / {p90:.0f} / {p99:.0f}",
            "skewed, close to lognormal",
            "seshadri-2008",
        ),
        Figure(
            "share of events made by the most active 10% of devices",
            f"{float(share[0] if share else 0):.0%}",
            "a few devices make most events",
            "gonzalez-2008",
        ),
    ]


def _rhythm(con: duckdb.DuckDBPyConnection) -> list[Figure]:
    night = f"(local_hour >= {NIGHT[0]} OR local_hour < {NIGHT[1]})"
    seen = con.execute(
        "WITH daily AS (SELECT local_date, count(DISTINCT user_id) AS seen, "
        f"count(DISTINCT user_id) FILTER (WHERE {night}) AS at_night FROM events GROUP BY ALL) "
        "SELECT avg(at_night / seen) FROM daily"
    ).fetchone()
    hours = con.execute(
        f"SELECT count(*) FILTER (WHERE {night}) / 8.0, count(*) FILTER (WHERE NOT {night}) / 16.0 "
        "FROM events"
    ).fetchone()
    night_rate, day_rate = hours if hours else (0.0, 1.0)
    figures = [
        Figure(
            "share of a day's devices seen at night (22:00-06:00)",
            f"{float(seen[0] if seen else 0):.0%}",
            "most phones are used at home in the evening",
            "candia-2008",
        ),
        Figure(
            "events per hour, day (06-22) / night",
            f"{day_rate / max(night_rate, 1e-9):.1f}",
            "several times more by day",
            "candia-2008",
        ),
    ]
    weekly = con.execute(
        "SELECT dayofweek(local_date) IN (0, 6) AS weekend, count(*) / count(DISTINCT local_date) "
        "FROM events GROUP BY ALL ORDER BY weekend"
    ).fetchall()
    if len(weekly) == 2:
        figures.append(
            Figure(
                "events per weekend day / per weekday",
                f"{weekly[1][1] / weekly[0][1]:.2f}",
                "lower at weekends",
                "candia-2008",
            )
        )
    return figures


def _devices(
    con: duckdb.DuckDBPyConnection, document: dict[str, Any], parameters: dict[str, Any]
) -> list[Figure]:
    kinds = dict(
        con.execute(
            "SELECT d.kind, count(DISTINCT e.user_id) FROM events e JOIN devices d USING (user_id) "
            "GROUP BY ALL"
        ).fetchall()
    )
    seen = max(sum(kinds.values()), 1)
    totals = document["totals"]
    by_kind = totals["devices_by_kind"]
    persons = max(totals["persons"], 1)
    scale = parameters["scale"]
    arrivals = parameters["roamer_arrivals_per_day"] * scale * parameters["market_share"]
    return [
        Figure(
            "holder's residents with a first SIM / persons",
            f"{by_kind['primary'] / persons:.0%}",
            f"{parameters['market_share']:.0%} of phone owners; ~87% own one",
            "bitkom-2011",
        ),
        Figure(
            "holder SIMs in residents' hands per resident subscriber",
            f"{(by_kind['primary'] + by_kind['secondary']) / max(by_kind['primary'], 1):.2f}",
            "about 1.1: 13 M SIMs, ~20% inactive, for ~9.4 M owners",
            "sudinfo-2013",
        ),
        Figure(
            "share of devices seen that are M2M",
            f"{kinds.get('m2m', 0) / seen:.1%}",
            "about 5-6% (Proximus 2015: 300 k M2M SIMs)",
            "bemobile-2016",
        ),
        Figure(
            "share of devices seen that are inbound roamers",
            f"{kinds.get('roamer', 0) / seen:.1%}",
            f"{arrivals:,.0f} arrivals a day at this scale",
            "tourismprof-2016",
        ),
    ]


def _network(folder: Path) -> list[Figure]:
    con = _connect()
    sites = con.execute(
        "SELECT DISTINCT site_id, longitude, latitude FROM "
        f"read_parquet('{folder / 'cells.parquet'}')"
    ).fetchnumpy()
    cells = con.execute(
        "SELECT count(*), count(DISTINCT site_id) FILTER "
        "(WHERE valid_from IS NOT NULL OR valid_to IS NOT NULL) "
        f"FROM read_parquet('{folder / 'cells.parquet'}')"
    ).fetchone()
    con.close()
    cell_count, changed = cells if cells else (0, 0)
    areas = belgium.municipalities()
    tree = shapely.STRtree(areas["geometry"].to_numpy())
    points = shapely.points(sites["longitude"], sites["latitude"])
    hit_point, hit_area = tree.query(points, predicate="within")
    province = np.full(points.size, "", dtype=object)
    province[hit_point] = areas["province"].to_numpy()[hit_area]

    def density(code: str) -> float:
        km2 = float(areas.loc[areas["province"] == code, "area_km2"].sum())
        return float(np.count_nonzero(province == code)) / km2

    return [
        Figure(
            "sites of the holder / cells",
            f"{sites['site_id'].size:,} / {cell_count:,}",
            "some thousands (Mobistar: 4,611 masts; ~7,000 sites in all)",
            "datanews-2011",
        ),
        Figure(
            "sites per km2, Brussels / Luxembourg province",
            f"{density('4000'):.2f} / {density('80000'):.3f}",
            "a site every few hundred m in cities, every several km in the Ardennes",
            "assumption",
        ),
        Figure(
            "sites switched on or off during the period",
            f"{changed / max(sites['site_id'].size, 1):.0%} of sites",
            "a few",
            "assumption",
        ),
    ]


def _mobility(folder: Path, document: dict[str, Any], parameters: dict[str, Any]) -> list[Figure]:
    totals = document["totals"]
    days = len(document["events_by_day"])
    yearly = totals["migrations"] / max(totals["persons"], 1) * 365 / max(days, 1)
    stays = (
        _connect()
        .execute(
            "SELECT avg(nights), avg(CAST(nights = 0 AS INTEGER)) FROM "
            f"read_parquet('{folder / 'truth' / 'roamer_stays.parquet'}')"
        )
        .fetchone()
    )
    nights, day_visits = stays if stays and stays[0] is not None else (0.0, 0.0)
    return [
        Figure(
            "movers to another municipality, per year",
            f"{yearly:.1%}",
            "close to 5% a year",
            "lecho-2006",
        ),
        Figure(
            "inbound roamers: mean nights / day visitors",
            f"{nights:.1f} / {day_visits:.0%}",
            "a few nights; many business and day visits",
            "tourismprof-2016",
        ),
        Figure(
            "period",
            f"{document['parameters']['start']}, {days} days",
            f"public holidays {_holidays_in(document)}",
            "belgian-holidays",
        ),
    ]


def _holidays_in(document: dict[str, Any]) -> str:
    days = [date.fromisoformat(day) for day in document["events_by_day"]]
    found = sorted({d for d in days if d in public_holidays(d.year)})
    return ", ".join(d.isoformat() for d in found) or "none in the period"


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    return con


def cited(figures: list[Figure]) -> dict[str, str]:
    """The citation of each source the figures use."""
    return {figure.source: SOURCES[figure.source] for figure in figures}
