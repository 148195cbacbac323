"""Cost against the length of the period: generation and ingest seconds and peak memory by days.

Usage: python benchmarks/bench_scale.py [--scale 0.1] [--days 7,14,30] [--seed 1]
       [--work /tmp/cellcensus-bench-scale] [--memory-limit 4GB] [--keep]

For each number of days, one world is generated (`cellcensus synth --scale S --days D`, CDR only,
one operator at 40 %), copied as plain Parquet (the ingest's yardstick, as in `bench_ingest.py`)
and ingested (`ingest_dataset`), each step in its own process, whose wall-clock seconds, CPU
seconds and peak resident set (`wait4`'s ru_maxrss: the process and what it waited for) are
recorded. Worlds and stores are deleted after their row unless `--keep`.

It prints one row per period and, against the shortest period, the ratios of days, events,
seconds and peak memory: a linear cost has seconds growing like days (ratio of seconds per day
near 1) and peak memory flat (bounded by a day, not the period). Issue 10's national bar:
scale 1.0 x 30 days generated in <= 20 min, ingested within 3x a plain copy, all under 8 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

COPY = """
import sys, duckdb
duckdb.connect().execute(
    f"COPY (SELECT * FROM read_parquet('{sys.argv[1]}/events/**/*.parquet')) "
    f"TO '{sys.argv[2]}' (FORMAT parquet, COMPRESSION snappy)"
)
"""
INGEST = """
import sys
from pathlib import Path
from cellcensus.holder.store import ingest_dataset
report = ingest_dataset(
    dataset=Path(sys.argv[1]), store=Path(sys.argv[2]), key_file=Path(sys.argv[3]),
    memory_limit=sys.argv[4],
)
print(report.rows_read)
"""


@dataclass(frozen=True)
class Measure:
    """One step in its own process."""

    seconds: float
    cpu_seconds: float
    peak_gib: float
    output: str


def measured(command: list[str]) -> Measure:
    """Run `command`; its wall-clock and CPU seconds and peak resident set."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command[:4])} ... failed (status {status})")
    return Measure(
        seconds=seconds,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_gib=usage.ru_maxrss / 2**20,  # KiB on Linux
        output=output,
    )


def one_period(*, days: int, args: argparse.Namespace) -> dict[str, float]:
    """Generate, copy and ingest a world of `days` days; its measures."""
    world = args.work / f"world-{args.scale}-{days}"
    store = args.work / f"store-{args.scale}-{days}"
    shutil.rmtree(world, ignore_errors=True)
    shutil.rmtree(store, ignore_errors=True)
    synth = [sys.executable, "-m", "cellcensus", "synth", "--out", str(world)]
    synth += ["--scale", str(args.scale), "--days", str(days), "--seed", str(args.seed)]
    generate = measured(synth)
    copy = measured([sys.executable, "-c", COPY, str(world), str(args.work / "copy.parquet")])
    (args.work / "copy.parquet").unlink()
    key = args.work / "key" / "pseudonym.key"
    ingest = measured(
        [sys.executable, "-c", INGEST, str(world), str(store), str(key), args.memory_limit]
    )
    events = int(ingest.output.split()[-1])  # the rows read, printed last
    if not args.keep:
        shutil.rmtree(world, ignore_errors=True)
        shutil.rmtree(store, ignore_errors=True)
    return {
        "days": days,
        "events": events,
        "generate_s": generate.seconds,
        "generate_cpu_s": generate.cpu_seconds,
        "generate_peak_gib": generate.peak_gib,
        "copy_s": copy.seconds,
        "copy_cpu_s": copy.cpu_seconds,
        "ingest_s": ingest.seconds,
        "ingest_cpu_s": ingest.cpu_seconds,
        "ingest_peak_gib": ingest.peak_gib,
    }


def print_rows(rows: list[dict[str, float]]) -> None:
    """The measures, then their ratios to the shortest period."""
    print(
        f"{'days':>5} {'events':>13} {'gen s':>8} {'gen GiB':>8} {'copy s':>8} "
        f"{'ingest s':>9} {'x copy':>7} {'cpu x copy':>10} {'ingest GiB':>10}"
    )
    for row in rows:
        print(
            f"{row['days']:>5} {row['events']:>13,} {row['generate_s']:>8.1f} "
            f"{row['generate_peak_gib']:>8.2f} {row['copy_s']:>8.1f} {row['ingest_s']:>9.1f} "
            f"{row['ingest_s'] / row['copy_s']:>7.2f} "
            f"{row['ingest_cpu_s'] / row['copy_cpu_s']:>10.2f} {row['ingest_peak_gib']:>10.2f}"
        )
    first = rows[0]
    print(f"ratios to {first['days']} days (linear: seconds like days, memory flat)")
    print(
        f"{'days':>5} {'x days':>7} {'x events':>9} {'x gen s':>8} {'x gen GiB':>9} "
        f"{'x ingest s':>10} {'x ingest GiB':>12} {'ingest s/day, x':>15}"
    )
    for row in rows:
        days = row["days"] / first["days"]
        print(
            f"{row['days']:>5} {days:>7.2f} {row['events'] / first['events']:>9.2f} "
            f"{row['generate_s'] / first['generate_s']:>8.2f} "
            f"{row['generate_peak_gib'] / first['generate_peak_gib']:>9.2f} "
            f"{row['ingest_s'] / first['ingest_s']:>10.2f} "
            f"{row['ingest_peak_gib'] / first['ingest_peak_gib']:>12.2f} "
            f"{row['ingest_s'] / first['ingest_s'] / days:>15.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--days", default="7,14,30", help="Comma-separated numbers of days.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("/tmp/cellcensus-bench-scale"))
    parser.add_argument("--memory-limit", default="4GB", help="DuckDB's limit during ingest.")
    parser.add_argument("--keep", action="store_true", help="Keep the worlds and stores.")
    parser.add_argument("--out", type=Path, default=None, help="Also write the rows as JSON.")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for days in sorted(int(text) for text in args.days.split(",")):
        rows.append(one_period(days=days, args=args))
        print(json.dumps(rows[-1]), flush=True)
    print_rows(rows)
    if args.out is not None:
        args.out.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
