"""Time the synthetic world generator: wall and CPU time, peak memory, events per second.

Usage: python benchmarks/bench_world.py [--national] [SCALE:DAYS ...]

Default configurations: 0.01:30 and 0.1:30 (so that the growth with scale is visible);
``--national`` adds the whole of Belgium, 1.0:30 (about 1.4 billion events, 15-25 minutes and
~15 GB of Parquet). Each configuration runs in a fresh process so that its peak RSS is its own;
the world is written to a temporary folder and removed.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGURATIONS = ("0.01:30", "0.1:30")
NATIONAL = "1.0:30"


def run_one(scale: float, days: int) -> dict[str, float]:
    from cellcensus.world import WorldParams, synthesize

    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "world"
        started, cpu = time.perf_counter(), time.process_time()
        summary = synthesize(out=out, params=WorldParams(scale=scale, days=days))
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {
        "scale": scale,
        "days": days,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "persons": summary.persons,
        "devices": summary.devices,
        "events": summary.events,
        "output_mb": size / 1e6,
    }


def main(configurations: list[str]) -> None:
    print(
        f"{'scale':>6} {'days':>5} {'seconds':>8} {'cpu s':>7} {'peak MB':>8} {'devices':>10} "
        f"{'events':>14} {'events/s':>10} {'output MB':>10}"
    )
    results: list[dict[str, float]] = []
    for configuration in configurations:
        scale, days = configuration.split(":")
        child = subprocess.run(
            [sys.executable, __file__, "--one", scale, days],
            check=True,
            capture_output=True,
            text=True,
        )
        r = json.loads(child.stdout.strip().splitlines()[-1])
        print(
            f"{r['scale']:>6} {r['days']:>5} {r['seconds']:>8.1f} {r['cpu_seconds']:>7.0f} "
            f"{r['peak_rss_mb']:>8.0f} {r['devices']:>10,} {r['events']:>14,} "
            f"{r['events'] / r['seconds']:>10,.0f} {r['output_mb']:>10,.0f}",
            flush=True,
        )
        results.append(r)
    if len(results) > 1:
        base = results[0]["seconds"] / results[0]["events"]
        print("time per event relative to the first configuration (1.0 = linear growth):")
        for r in results[1:]:
            print(f"  scale {r['scale']}: {r['seconds'] / r['events'] / base:.2f}")


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if arguments[:1] == ["--one"]:
        print(json.dumps(run_one(float(arguments[1]), int(arguments[2]))))
    else:
        national = "--national" in arguments
        chosen = [a for a in arguments if a != "--national"] or list(CONFIGURATIONS)
        main(chosen + ([NATIONAL] if national else []))
