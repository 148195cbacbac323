"""Time catalogue algorithms against the physical floor of a bare DuckDB GROUP BY.

Usage: python benchmarks/bench_algorithms.py [--scale 0.1] [--days 30]
       [--cache /tmp/cellcensus-bench-algorithms] [--algorithms usual_residence,present_population]
       [--repeat 2] [--spark] [--positions | --no-positions]

An entry of --algorithms may set parameters after a colon, ``NAME:P=V:P=V`` (as ``--param``
takes them), e.g. ``present_population:usual_place_after_minutes=180``, to time a variant
beside the defaults.

A synthetic world (`cellcensus synth`) is generated and ingested into a store once, then
cached. Each algorithm runs end to end on the store's Parquet events (DuckDB reads the day
files, the result is collected) and is compared with the floor: ``GROUP BY device_id, cell_id,
local_date`` over the same events in the same run, the least any per-device algorithm must do.
Target: each algorithm within 4x of the floor. With --spark, the same work (and the floor) on
PySpark local mode, intermediate stages cached by `staging.SparkStaging`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ibis.expr.types as ir

from cellcensus.holder.algorithms import StoreTables, get_algorithm
from cellcensus.holder.algorithms.commands import parse_parameters
from cellcensus.holder.enclave.compute import open_tables
from cellcensus.holder.store import Store

CLI = [sys.executable, "-c", "from cellcensus.cli import app; app()"]


def prepare(cache: Path, *, scale: float, days: int, positions: bool | None = None) -> Path:
    """A store of a synthetic world of `scale` and `days`, generated and ingested once.

    `positions`: whether its device-day summaries list hourly positions (None: as they are).
    """
    world = cache / f"world-{scale}-{days}"
    store = cache / f"store-{scale}-{days}"
    if not (world / "metadata.json").is_file():
        command = [*CLI, "synth", "--out", str(world), "--scale", str(scale), "--days", str(days)]
        subprocess.run(command, check=True)
    if not (store / "metadata.json").is_file():
        subprocess.run([*CLI, "ingest", "--store", str(store), "--dataset", str(world)], check=True)
    if positions is not None:
        choice = "--positions" if positions else "--no-positions"
        subprocess.run([*CLI, "store", "summarise", "--store", str(store), choice], check=True)
    return store


def best_of(repeat: int, work: Callable[[], Any]) -> float:
    """Best wall time of `repeat` runs of `work`."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def floor_query(tables: StoreTables) -> ir.Table:
    """The physical floor: distinct (device, cell, day) with their event counts."""
    events = tables.events
    grouped = events.group_by(["device_id", "cell_id", "local_date"]).agg(n=events.count())
    return grouped.aggregate(groups=grouped.count(), events=grouped.n.sum())


def run_engine(engine: str, store: Store, names: list[str], repeat: int) -> dict[str, float]:
    """Seconds per algorithm (and 'floor') on `engine`."""
    tables = open_tables(store, engine="spark" if engine == "spark" else "duckdb")
    results = {"floor": best_of(repeat, lambda: floor_query(tables).to_pandas())}
    for entry in names:
        name, *pairs = entry.split(":")
        algorithm = get_algorithm(name)
        parsed = algorithm.manifest.parse(parse_parameters(pairs))

        def work(algorithm: Any = algorithm, parsed: Any = parsed) -> None:
            algorithm.exact(tables, parsed)

        results[entry] = best_of(repeat, work)
    return results


def report(engine: str, results: dict[str, float], events: int) -> None:
    """Print seconds, events per second and the ratio to the floor."""
    floor = results["floor"]
    print(f"\n{engine}: {events:,} events")
    width = max(28, *(len(name) + 2 for name in results))
    print(f"{'work':<{width}}{'seconds':>10}{'events/s':>14}{'x floor':>10}")
    for name, seconds in results.items():
        ratio = seconds / floor
        mark = "" if name == "floor" or ratio <= 4 else "  (above the 4x target)"
        print(f"{name:<{width}}{seconds:>10.2f}{events / seconds:>14,.0f}{ratio:>10.2f}{mark}")


def main() -> None:
    """Parse arguments, prepare the store, time each engine."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/cellcensus-bench-algorithms"))
    parser.add_argument("--algorithms", default="usual_residence,present_population")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--spark", action="store_true", help="Also time PySpark local mode.")
    parser.add_argument(
        "--positions",
        dest="hourly_positions",
        action=argparse.BooleanOptionalAction,
        help="The store's summaries with hourly positions, or without (default: as they are).",
    )
    args = parser.parse_args()
    store = Store(
        prepare(args.cache, scale=args.scale, days=args.days, positions=args.hourly_positions)
    )
    names = [name.strip() for name in args.algorithms.split(",") if name.strip()]
    events = int(open_tables(store).events.count().to_pandas())
    report("duckdb", run_engine("duckdb", store, names, args.repeat), events)
    if args.spark:
        report("spark (local)", run_engine("spark", store, names, args.repeat), events)


if __name__ == "__main__":
    main()
