"""Time `ingest_dataset` against a plain DuckDB Parquet copy of the same events.

Usage: python benchmarks/bench_ingest.py [--rows 10000000] [--devices 300000] [--days 7]
       [--repeat 2] [--cache /tmp/cellcensus-bench-ingest] [--sites 4000] [--dataset DIR]
       [--engine duckdb|spark]

With `--dataset`, the delivery is that folder instead (e.g. a world from `cellcensus synth
--scale 0.1 --days 30`, whose 131 M events are the issue's measure); if its events are CSV,
the plain copy reads them as text (`read_csv`) into Parquet.

The synthetic delivery (random devices, cells and times over a week spanning the spring DST
change, with 0.5% unknown cells, 0.2% exact duplicates and 0.1% rows with a missing field) is
generated once and cached. Baseline and ingest run alternately, `--repeat` times each, and
the best time of each is compared: the target is an ingest within 3x of the plain copy.
With `--engine spark` the ingest's per-row pass runs on Spark (local mode unless SPARK_MASTER
says otherwise); the session starts before the runs, so no run pays for the JVM's start. The
peak resident memory of this process and its children (Spark's JVM), summed, is sampled
throughout the runs.
Then the cell -> municipality allocation is timed for `--sites` random sites in Belgium with
three cells each (Voronoi coverage, then allocation to the 589 municipalities).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import duckdb

START = date(2011, 3, 21)
CELLS = 12_000


def generate(*, folder: Path, rows: int, devices: int, days: int) -> None:
    """A dataset folder in the SCHEMA.md layout, events hive-partitioned by UTC day."""
    if (folder / "metadata.json").is_file():
        return
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "events").mkdir(parents=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    span_us = days * 86_400 * 1_000_000
    con.execute(
        f"""
        CREATE TABLE events AS
        SELECT
            CASE WHEN hash(i, 9) % 1000 = 0 THEN NULL
                 ELSE '3247' || lpad(CAST(hash(i, 1) % {devices} AS VARCHAR), 7, '0')
            END AS user_id,
            TIMESTAMPTZ '{START} 00:00:00+01' - INTERVAL 1 HOUR
                + to_microseconds(CAST(hash(i, 2) % {span_us} AS BIGINT)) AS timestamp,
            CASE WHEN hash(i, 8) % 200 = 0 THEN 'X' || CAST(hash(i, 3) % 100 AS VARCHAR)
                 ELSE 'C' || lpad(CAST(hash(i, 3) % {CELLS} AS VARCHAR), 5, '0')
            END AS cell_id,
            (['call_out', 'call_in', 'sms_out', 'sms_in', 'data', 'location_update'])
                [1 + CAST(hash(i, 4) % 6 AS INTEGER)] AS event_type,
            CASE WHEN hash(i, 5) % 50 = 0 THEN 208 ELSE 206 END AS mcc,
            10 AS mnc,
            '35' || lpad(CAST(hash(i, 6) % 5000 AS VARCHAR), 6, '0') AS tac
        FROM range({rows}) AS t(i)
        """
    )
    con.execute(f"INSERT INTO events SELECT * FROM events USING SAMPLE {rows // 500} ROWS")
    con.execute(
        f"COPY (SELECT *, CAST(timestamp AS DATE) AS date FROM events ORDER BY timestamp) "
        f"TO '{folder / 'events'}' (FORMAT parquet, PARTITION_BY (date))"
    )
    con.execute(
        f"""
        COPY (SELECT 'C' || lpad(CAST(i AS VARCHAR), 5, '0') AS cell_id,
                     'S' || CAST(i // 3 AS VARCHAR) AS site_id,
                     49.5 + (hash(i, 10) % 10000) / 10000.0 * 2 AS latitude,
                     2.6 + (hash(i, 11) % 10000) / 10000.0 * 3.5 AS longitude,
                     CAST(NULL AS DOUBLE) AS azimuth_deg, CAST(NULL AS DOUBLE) AS beam_width_deg,
                     CAST(NULL AS DOUBLE) AS range_m, '4G' AS technology,
                     CAST(NULL AS DATE) AS valid_from, CAST(NULL AS DATE) AS valid_to
              FROM range({CELLS}) AS t(i))
        TO '{folder / "cells.parquet"}' (FORMAT parquet)
        """
    )
    end = START + timedelta(days=days - 1)
    metadata = {
        "operator": "bench",
        "mcc": 206,
        "mnc": 10,
        "period": {"start": START.isoformat(), "end": end.isoformat()},
        "timezone": "Europe/Brussels",
        "market_share": 0.4,
        "sampling_fraction": 1.0,
    }
    (folder / "metadata.json").write_text(json.dumps(metadata, indent=2))


class PeakMemory:
    """Peak resident memory of this process and its descendants together, sampled (Linux)."""

    def __init__(self, every_s: float = 0.2) -> None:
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(every_s,), daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            self.peak_kib = max(self.peak_kib, sum(_rss_kib(pid) for pid in _tree(os.getpid())))


def _tree(pid: int) -> list[int]:
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children = task.read_text().split()
        except OSError:  # the thread ended since the listing (the JVM's come and go)
            continue
        for child in children:
            found += _tree(int(child))
    return found


def _rss_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next(
        (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")), 0
    )


def timed(run: Callable[[Path], object]) -> tuple[float, float]:
    """Wall-clock and CPU seconds (all threads) of one run in a scratch folder."""
    with tempfile.TemporaryDirectory(dir="/tmp") as scratch:
        wall, cpu = time.perf_counter(), time.process_time()
        run(Path(scratch))
        return time.perf_counter() - wall, time.process_time() - cpu


def bench_allocation(*, sites: int) -> None:
    """Time voronoi_coverage and allocate on Belgium for `sites` random sites (3 cells each)."""
    import numpy as np
    import pandas as pd
    import shapely

    from cellcensus.holder.geo import allocate, country_of, voronoi_coverage
    from cellcensus.reference import municipalities

    areas = municipalities()
    started = time.perf_counter()
    country = country_of(areas)
    outline_seconds = time.perf_counter() - started
    rng = np.random.default_rng(1)
    lon, lat = rng.uniform(2.5, 6.5, 4 * sites), rng.uniform(49.4, 51.6, 4 * sites)
    inside = shapely.contains_xy(country, lon, lat)
    lon, lat = lon[inside][:sites], lat[inside][:sites]
    cells = pd.DataFrame(
        {
            "cell_id": [f"c{i}" for i in range(3 * len(lon))],
            "longitude": np.tile(lon, 3),
            "latitude": np.tile(lat, 3),
        }
    )
    started = time.perf_counter()
    coverage = voronoi_coverage(cells=cells, country=country)
    coverage_seconds = time.perf_counter() - started
    started = time.perf_counter()
    allocation = allocate(coverage=coverage, areas=areas)
    allocate_seconds = time.perf_counter() - started
    print(
        f"allocation: {len(lon):,} sites, {len(cells):,} cells x {len(areas)} municipalities: "
        f"outline {outline_seconds:.2f} s, coverage {coverage_seconds:.2f} s, "
        f"allocate {allocate_seconds:.2f} s ({len(allocation):,} cell-area pairs)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--devices", type=int, default=300_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/cellcensus-bench-ingest"))
    parser.add_argument("--sites", type=int, default=4000)
    parser.add_argument("--dataset", type=Path, default=None, help="An existing dataset folder.")
    parser.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb")
    args = parser.parse_args()
    if args.engine == "spark":
        from cellcensus.holder.engines import spark_session

        spark_session()

    from cellcensus.holder.store import ingest_dataset

    dataset = args.dataset or args.cache / f"rows{args.rows}-devices{args.devices}-days{args.days}"
    started = time.perf_counter()
    if args.dataset is None:
        generate(folder=dataset, rows=args.rows, devices=args.devices, days=args.days)
    print(f"dataset {dataset} ready in {time.perf_counter() - started:.1f} s")
    csv = not any((dataset / "events").rglob("*.parquet"))
    scan = (
        f"read_csv('{dataset / 'events'}/**/*.csv*', all_varchar=true)"
        if csv
        else f"read_parquet('{dataset / 'events'}/**/*.parquet')"
    )

    def copy(codec: str) -> Callable[[Path], object]:
        def run(scratch: Path) -> object:
            return duckdb.connect().execute(
                f"COPY (SELECT * FROM {scan}) "
                f"TO '{scratch / 'copy.parquet'}' (FORMAT parquet, COMPRESSION {codec})"
            )

        return run

    reports = []

    def ingest(scratch: Path) -> object:
        report = ingest_dataset(
            dataset=dataset,
            store=scratch / "store",
            key_file=scratch / "key" / "pseudonym.key",
            engine=args.engine,
        )
        reports.append(report)
        return report

    runs = {"copy_snappy": copy("snappy"), "copy_zstd": copy("zstd"), "ingest": ingest}
    wall = dict.fromkeys(runs, float("inf"))
    cpu = dict.fromkeys(runs, float("inf"))
    peak_kib = dict.fromkeys(runs, 0)
    for _ in range(args.repeat):  # interleaved, so that a busy machine hurts all alike
        for name, run in runs.items():
            with PeakMemory() as memory:
                seconds, cpu_seconds = timed(run)
            wall[name] = min(wall[name], seconds)
            cpu[name] = min(cpu[name], cpu_seconds)
            peak_kib[name] = max(peak_kib[name], memory.peak_kib)
    report = reports[-1]
    rows = report.rows_read
    print(f"rows read {rows:,}, stored {report.rows_stored:,}, quarantined:")
    for reason, count in report.rows_quarantined_by_reason.items():
        if count:
            print(f"  {reason:<20} {count:>10,}")
    print(f"best of {args.repeat}: wall-clock and CPU seconds (all threads); ratio to copy_snappy")
    print(f"{'step':<12} {'wall s':>8} {'rows/s':>12} {'x copy':>7} {'cpu s':>8} {'x copy':>7}")
    for name in runs:
        print(
            f"{name:<12} {wall[name]:>8.2f} {rows / wall[name]:>12,.0f} "
            f"{wall[name] / wall['copy_snappy']:>7.2f} {cpu[name]:>8.2f} "
            f"{cpu[name] / cpu['copy_snappy']:>7.2f}"
        )
    print(
        f"ingest on {args.engine}: peak resident memory of the process and its children "
        f"{peak_kib['ingest'] / 1024:,.0f} MiB (copy_zstd: {peak_kib['copy_zstd'] / 1024:,.0f}"
        " MiB); CPU seconds are this process's, not Spark's JVM's"
    )
    bench_allocation(sites=args.sites)


if __name__ == "__main__":
    main()
