"""Benchmark harness: certified algorithms vs their DuckDB floor, Polars and pandas (issue 10).

Usage:
    python benchmarks/harness.py --scale 0.1 --days 30 --out bench.json
    python benchmarks/harness.py --store STORE          # reuse an ingested store
    python benchmarks/harness.py --world DIR            # reuse a generated world (ingest it)
Options: --algorithms usual_residence,present_population
         --implementations floor,certified,polars,pandas   --engines duckdb[,spark]
         --repeat 2   --seed 1   --cache /tmp/cellcensus-bench-harness   --markdown FILE
         --positions (or --no-positions): the store's summaries so, first

One run generates a synthetic world (`cellcensus synth`) and ingests it into a store (both
cached under --cache by scale, days and seed), or reuses the given ones; then, on the same
events, it times for each algorithm (default parameters):

- ``certified``: the certified algorithm end to end as the enclave runs it (`Algorithm.run`
  on the store's tables: DuckDB reads the day files, the result is collected), before
  disclosure control;
- ``floor``: the least that algorithm must do, as one bare DuckDB GROUP BY of the events it
  reads (usual_residence: the domestic night events by device, cell and night;
  present_population: all events by device, local date, hour and cell, one query per date
  as the certified run does), reduced to one row;
- ``polars``: the same rule in Polars (lazy, streaming engine), `baselines/polars_rules.py`;
- ``pandas``: the same rule in pandas, day file by day file, `baselines/pandas_rules.py`;
- with ``--engines duckdb,spark``: the certified algorithm and the floor on PySpark local
  mode (stages cached by `SparkStaging`), Spark session start excluded.

Every step runs in a fresh subprocess, `--repeat` times; the best wall time counts. Peak
memory is the step's process peak resident set (VmHWM, reset after imports and setup, so it
includes DuckDB's and Polars' native memory; Spark's JVM is a separate process and is not
counted). The Polars and pandas results are checked against the certified one (same keys,
counts within 1e-6). It prints a Rich table (seconds, events per second, peak memory, ratio
to the floor and to Polars) and writes everything as JSON with --out.

Target: each certified algorithm within 1.5x of its floor and no slower than Polars.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `benchmarks.baselines`, however the script is started

from benchmarks.baselines import StoreFiles, differences  # noqa: E402

from cellcensus.holder.algorithms import get_algorithm  # noqa: E402
from cellcensus.holder.store import Store  # noqa: E402
from cellcensus.holder.store.device_days import keeps_positions  # noqa: E402

CLI = [sys.executable, "-c", "from cellcensus.cli import app; app()"]
ALGORITHMS = ("usual_residence", "present_population")
IMPLEMENTATIONS = ("floor", "certified", "polars", "pandas")
KEYS = {"usual_residence": ["area_code"], "present_population": ["local_date", "slot", "area_code"]}
TARGET_FLOOR = 1.5


@dataclass
class Step:
    """One timed step: an implementation of an algorithm on an engine."""

    algorithm: str
    implementation: str
    engine: str
    seconds: float
    all_seconds: list[float]
    cpu_seconds: float
    all_cpu_seconds: list[float]
    peak_rss_mib: float | None
    rss_before_mib: float | None
    rows: int
    events_per_second: float = 0.0
    ratio_floor: float | None = None
    ratio_polars: float | None = None
    same_as_certified: bool | None = None
    difference: str | None = None


# --- preparing the world and the store -------------------------------------------------------


def prepare(args: argparse.Namespace, say: Callable[[str], None]) -> Path:
    """The store to benchmark: --store, or --world ingested, or a world generated and ingested."""
    if args.store is not None:
        if not (args.store / "metadata.json").is_file():
            raise SystemExit(f"--store {args.store}: no metadata.json (run `cellcensus ingest`)")
        return Path(args.store)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    if args.world is not None:
        world = Path(args.world)
        if not (world / "metadata.json").is_file():
            raise SystemExit(f"--world {world}: no metadata.json (run `cellcensus synth`)")
        store = cache / f"store-of-{world.resolve().name}"
    else:
        world = cache / f"world-{args.scale}-{args.days}-s{args.seed}"
        store = cache / f"store-{args.scale}-{args.days}-s{args.seed}"
        if not (world / "metadata.json").is_file():
            say(f"generating the world (scale {args.scale}, {args.days} days) in {world}")
            synth = ["synth", "--out", str(world), "--scale", str(args.scale)]
            synth += ["--days", str(args.days), "--seed", str(args.seed)]
            subprocess.run([*CLI, *synth], check=True, stdout=subprocess.DEVNULL)
    if not (store / "metadata.json").is_file():
        say(f"ingesting {world} into {store}")
        ingest = ["ingest", "--dataset", str(world), "--store", str(store)]
        ingest += ["--key-file", str(cache / "pseudonym.key")]
        subprocess.run([*CLI, *ingest], check=True, stdout=subprocess.DEVNULL)
    return store


def choose_positions(store: Path, positions: bool, say: Callable[[str], None]) -> None:
    """The store's summaries with hourly positions or without, as a holder chooses them.

    Summarising them costs the ingest, not the jobs timed here (bench_ingest.py times it).
    """
    say(f"device-day summaries {'with' if positions else 'without'} hourly positions")
    choice = "--positions" if positions else "--no-positions"
    summarise = ["store", "summarise", "--store", str(store), choice]
    subprocess.run([*CLI, *summarise], check=True, stdout=subprocess.DEVNULL)


def warm_page_cache(store: Store) -> None:
    """Read every event file once, so that the first timed step does not pay for the disk."""
    for path in sorted(store.events_dir.glob("**/*.parquet")):
        with path.open("rb") as handle:
            while handle.read(1 << 24):
                pass


def count_events(store: Store) -> int:
    """Events in the store (from the Parquet footers)."""
    import duckdb

    glob = str(store.events_dir / "**" / "*.parquet")
    rows = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{glob}')").fetchall()
    return int(rows[0][0])


# --- the steps (run in a child process) ------------------------------------------------------


def floor_sql(algorithm: str, events: str, *, spark: bool = False) -> str:
    """The bare GROUP BY of the events `algorithm` reads, reduced to one row."""
    if algorithm == "usual_residence":
        params: Any = get_algorithm(algorithm).manifest.parse({})
        start, end, mcc = params.night_start_hour, params.night_end_hour, params.filters.home_mcc
        night = f"CASE WHEN local_hour >= {start} THEN local_date ELSE date_add(local_date, -1) END"
        if not spark:
            night = f"CASE WHEN local_hour >= {start} THEN local_date ELSE local_date - 1 END"
        inner = (
            f"SELECT device_id, cell_id, {night} AS night, count(*) AS n FROM {events} "
            f"WHERE mcc = {mcc} AND (local_hour >= {start} OR local_hour < {end}) "
            f"GROUP BY device_id, cell_id, {night}"
        )
    else:
        inner = (
            f"SELECT device_id, local_date, local_hour, cell_id, count(*) AS n FROM {events} "
            "GROUP BY device_id, local_date, local_hour, cell_id"
        )
    return f"SELECT count(*) AS n_groups, sum(n) AS n_events FROM ({inner}) AS grouped"


def step_work(algorithm: str, implementation: str, engine: str, store: Store) -> Callable[[], Any]:
    """Set up one step (imports, connections) and return the work to time."""
    import pandas as pd

    files = StoreFiles.of(store)
    params = get_algorithm(algorithm).manifest.parse({})
    if implementation == "floor" and engine == "duckdb":
        import duckdb

        con = duckdb.connect()
        con.execute("SET memory_limit='4GB'")  # as the certified run (`open_tables`)
        if algorithm == "usual_residence":  # a night spans two dates
            sql = floor_sql(algorithm, f"read_parquet('{store.events_dir / '**' / '*.parquet'}')")
            return lambda: con.sql(sql).df()
        # Grouped by date: one query per date, as the certified run (`Scope.daily`), which
        # holds a day's groups where the whole period's would spill past DuckDB's 4 GB.
        days = [
            floor_sql(algorithm, f"read_parquet('{folder / '*.parquet'}')")
            for folder in sorted(store.events_dir.glob("date=*"))
        ]
        return lambda: pd.concat([con.sql(sql).df() for sql in days]).sum().to_frame().T
    if implementation == "floor":
        from cellcensus.holder.engines import spark_session

        session = spark_session()
        sql = floor_sql(algorithm, f"parquet.`{store.events_dir}`", spark=True)
        return lambda: session.sql(sql).toPandas()
    if implementation == "certified":
        from cellcensus.holder.enclave.compute import open_tables

        tables = open_tables(store, engine="spark" if engine == "spark" else "duckdb")
        certified = get_algorithm(algorithm)
        return lambda: certified.run(tables, {})  # stages on the engine, released after
    if implementation == "polars":
        from benchmarks.baselines import polars_rules

        rule = getattr(polars_rules, algorithm)
        return lambda: rule(files, params).to_pandas()
    from benchmarks.baselines import pandas_rules

    rule = getattr(pandas_rules, algorithm)
    return lambda: rule(files, params)


def memory_kib(field: str) -> float | None:
    """A field of /proc/self/status in KiB (VmRSS, VmHWM), None where there is none."""
    status = Path("/proc/self/status")
    if not status.is_file():
        return None
    for line in status.read_text().splitlines():
        if line.startswith(f"{field}:"):
            return float(line.split()[1])
    return None


def reset_peak() -> bool:
    """Reset the peak resident set (VmHWM) to the current one (Linux); False if impossible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def cpu_seconds() -> float:
    """CPU time of this process, all threads, user and system."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_step(args: argparse.Namespace) -> None:
    """Child process: time one step `--repeat` times, write its figures and its result."""
    import resource

    algorithm, implementation, engine = args.step.split(":")
    work = step_work(algorithm, implementation, engine, Store(args.store))
    before = memory_kib("VmRSS")
    resettable = reset_peak()
    times, cpu_times, result = [], [], None
    for _ in range(args.repeat):
        started, cpu = time.perf_counter(), cpu_seconds()
        result = work()
        times.append(time.perf_counter() - started)
        cpu_times.append(cpu_seconds() - cpu)
    peak = memory_kib("VmHWM") if resettable else None
    if peak is None:  # no /proc: the peak since the process started
        peak = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    if result is None:
        raise SystemExit("--repeat must be at least 1")
    out = Path(args.step_out)
    result.to_parquet(out.with_suffix(".parquet"))
    figures = {
        "all_seconds": times,
        "all_cpu_seconds": cpu_times,
        "peak_rss_mib": None if peak is None else peak / 1024,
        "rss_before_mib": None if before is None else before / 1024,
        "rows": len(result),
    }
    out.with_suffix(".json").write_text(json.dumps(figures))


# --- the parent: run every step, compare, report ---------------------------------------------


def spawn(step: tuple[str, str, str], store: Path, repeat: int, scratch: Path) -> tuple[Step, Any]:
    """Run one step in a fresh process; its figures and result."""
    import pandas as pd

    algorithm, implementation, engine = step
    out = scratch / f"{algorithm}-{implementation}-{engine}"
    command = [sys.executable, str(Path(__file__).resolve()), "--step", ":".join(step)]
    command += ["--store", str(store), "--repeat", str(repeat), "--step-out", str(out)]
    subprocess.run(command, check=True)
    figures = json.loads(out.with_suffix(".json").read_text())
    result = pd.read_parquet(out.with_suffix(".parquet"))
    return (
        Step(
            algorithm=algorithm,
            implementation=implementation,
            engine=engine,
            seconds=min(figures["all_seconds"]),
            cpu_seconds=min(figures["all_cpu_seconds"]),
            **figures,
        ),
        result,
    )


def compare(steps: list[Step], results: dict[tuple[str, str, str], Any], events: int) -> None:
    """Fill in events per second, ratios and the equality with the certified result."""
    for step in steps:
        step.events_per_second = events / step.seconds if step.seconds else 0.0
        floor = next(
            (s for s in steps if (s.algorithm, s.implementation, s.engine)
             == (step.algorithm, "floor", step.engine)),
            None,
        )  # fmt: skip
        polars = next(
            (s for s in steps if (s.algorithm, s.implementation) == (step.algorithm, "polars")),
            None,
        )
        if floor is not None:
            step.ratio_floor = step.seconds / floor.seconds
        if polars is not None:
            step.ratio_polars = step.seconds / polars.seconds
        certified = results.get((step.algorithm, "certified", "duckdb"))
        if step.implementation in {"certified", "polars", "pandas"} and certified is not None:
            mine = results[(step.algorithm, step.implementation, step.engine)]
            step.difference = differences(certified, mine, keys=KEYS[step.algorithm])
            step.same_as_certified = step.difference is None


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    from importlib.metadata import PackageNotFoundError, version

    memory = None
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        total = meminfo.read_text().splitlines()[0].split()[1]
        memory = round(int(total) / 1024**2, 1)
    versions: dict[str, str | None] = {}
    for package in ("duckdb", "ibis-framework", "polars", "pandas", "pyarrow", "pyspark"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return {
        "cpus": os.cpu_count(),
        "memory_gib": memory,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "versions": versions,
    }


def print_table(steps: list[Step], events: int) -> None:
    """The Rich table of every step."""
    from rich.console import Console
    from rich.table import Table

    def ratio(value: float | None) -> str:
        return "" if value is None else f"{value:.2f}"

    table = Table(title=f"{events:,} events; best of the repeats")
    for column in ("algorithm", "implementation", "engine"):
        table.add_column(column)
    for column in ("seconds", "CPU s", "events/s", "peak MiB", "x floor", "x Polars"):
        table.add_column(column, justify="right")
    table.add_column("same result")
    for step in steps:
        over = (
            step.implementation == "certified"
            and step.ratio_floor is not None
            and step.ratio_floor > TARGET_FLOOR
        )
        same = {None: "", True: "yes", False: "NO"}[step.same_as_certified]
        table.add_row(
            step.algorithm,
            step.implementation,
            step.engine if step.implementation in {"floor", "certified"} else step.implementation,
            f"{step.seconds:.2f}",
            f"{step.cpu_seconds:.2f}",
            f"{step.events_per_second:,.0f}",
            "" if step.peak_rss_mib is None else f"{step.peak_rss_mib:,.0f}",
            ratio(step.ratio_floor) + (" !" if over else ""),
            ratio(step.ratio_polars),
            same,
        )
    console = Console(width=max(Console().width, 150))
    console.print(table)
    console.print(
        f"! above the {TARGET_FLOOR}x target. Ratios are of wall seconds. CPU s: the step "
        "process's user + system time (Spark: the driver only). Peak MiB: its peak RSS."
    )
    for step in steps:
        if step.difference:
            console.print(f"[red]{step.algorithm} {step.implementation}: {step.difference}[/red]")


def markdown(steps: list[Step]) -> str:
    """The table as Markdown (for the README's Performance section)."""
    lines = [
        "| algorithm | implementation | seconds | CPU s | events/s | peak MiB | x floor "
        "| x Polars | same result |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for step in steps:
        name = step.implementation
        if step.engine == "spark":
            name += " (Spark)"
        cells = [
            step.algorithm,
            name,
            f"{step.seconds:.1f}",
            f"{step.cpu_seconds:.1f}",
            f"{step.events_per_second:,.0f}",
            "" if step.peak_rss_mib is None else f"{step.peak_rss_mib:,.0f}",
            "" if step.ratio_floor is None else f"{step.ratio_floor:.2f}",
            "" if step.ratio_polars is None else f"{step.ratio_polars:.2f}",
            {None: "", True: "yes", False: "no"}[step.same_as_certified],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def check_installed(implementations: list[str], engines: list[str]) -> None:
    """Refuse a run whose implementations or engines lack their package, saying what to install."""
    needed = {"polars": ("polars", "bench"), "spark": ("pyspark", "spark")}
    asked = [*implementations, *engines]
    missing = [
        (module, extra)
        for name, (module, extra) in needed.items()
        if name in asked and importlib.util.find_spec(module) is None
    ]
    if missing:
        extras = ",".join(extra for _, extra in missing)
        modules = ", ".join(module for module, _ in missing)
        raise SystemExit(
            f"{modules} not installed: run `.venv/bin/pip install -c constraints.txt "
            f"-e '.[{extras}]'` (or leave its implementation or engine out)"
        )


def main() -> None:
    """Parse arguments; run as the parent (prepare, time, report) or as one step's child."""
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join((__doc__ or "").splitlines()[1:]),
    )
    parser.add_argument("--scale", type=float, default=0.1, help="World scale (synth --scale).")
    parser.add_argument("--days", type=int, default=30, help="Days of events (synth --days).")
    parser.add_argument("--seed", type=int, default=1, help="World seed (synth --seed).")
    parser.add_argument("--world", type=Path, help="Reuse this generated world (ingest it).")
    parser.add_argument("--store", type=Path, help="Reuse this ingested store.")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/cellcensus-bench-harness"))
    parser.add_argument(
        "--positions",
        dest="hourly_positions",
        action=argparse.BooleanOptionalAction,
        help="Have the store's summaries list hourly positions, or not, before timing "
        "(`cellcensus store summarise --positions`; default: as they are).",
    )
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS))
    parser.add_argument("--implementations", default=",".join(IMPLEMENTATIONS))
    parser.add_argument("--engines", default="duckdb", help="duckdb, or duckdb,spark")
    parser.add_argument("--repeat", type=int, default=2, help="Runs per step; the best counts.")
    parser.add_argument("--out", type=Path, help="Write the figures as JSON here.")
    parser.add_argument("--markdown", type=Path, help="Write the table as Markdown here.")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--step-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        run_step(args)
        return

    from rich.console import Console

    implementations = [name.strip() for name in args.implementations.split(",") if name.strip()]
    engines = [name.strip() for name in args.engines.split(",") if name.strip()]
    check_installed(implementations, engines)  # before a world is made for them
    console = Console(stderr=True)
    store_path = prepare(args, lambda message: console.log(message))
    if args.hourly_positions is not None:
        choose_positions(store_path, args.hourly_positions, lambda message: console.log(message))
    store = Store(store_path)
    console.log("warming the page cache")
    warm_page_cache(store)
    events = count_events(store)
    algorithms = [name.strip() for name in args.algorithms.split(",") if name.strip()]
    plan = [(a, i, "duckdb") for a in algorithms for i in implementations]
    if "spark" in engines:
        plan += [(a, i, "spark") for a in algorithms for i in ("floor", "certified")]
    steps: list[Step] = []
    results: dict[tuple[str, str, str], Any] = {}
    with tempfile.TemporaryDirectory(prefix="cellcensus-harness-") as scratch:
        for number, step in enumerate(plan, start=1):
            console.log(f"[{number}/{len(plan)}] {' '.join(step)} (x{args.repeat})")
            timed, result = spawn(step, store_path, args.repeat, Path(scratch))
            console.log(f"    {timed.seconds:.2f} s, peak {timed.peak_rss_mib or 0:,.0f} MiB")
            steps.append(timed)
            results[step] = result
    compare(steps, results, events)
    print_table(steps, events)
    if args.out:
        report = {
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "store": str(store_path),
            "scale": None if args.store or args.world else args.scale,
            "days": None if args.store or args.world else args.days,
            "events": events,
            "hourly_positions": keeps_positions(store),
            "repeat": args.repeat,
            "target_ratio_floor": TARGET_FLOOR,
            "machine": machine(),
            "floors": {name: floor_sql(name, "events") for name in algorithms},
            "steps": [asdict(step) for step in steps],
        }
        args.out.write_text(json.dumps(report, indent=2, default=str))
        console.log(f"wrote {args.out}")
    if args.markdown:
        args.markdown.write_text(markdown(steps))
    failed = [step for step in steps if step.same_as_certified is False]
    if failed:
        raise SystemExit(f"{len(failed)} implementation(s) disagree with the certified result")


if __name__ == "__main__":
    main()
