"""Time the synthetic world generator: wall time, peak memory, events per second.

Usage: python benchmarks/bench_world.py [SCALE:DAYS ...]   (default: 0.03:7 0.1:14)

Each configuration runs in a fresh process so that its peak RSS is its own.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGURATIONS = ("0.03:7", "0.1:14")


def run_one(scale: float, days: int) -> dict[str, float]:
    from cellcensus.world import WorldParams, synthesize

    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        summary = synthesize(out=Path(folder) / "world", params=WorldParams(scale=scale, days=days))
        seconds = time.perf_counter() - started
        size = sum(p.stat().st_size for p in (Path(folder) / "world").rglob("*") if p.is_file())
    return {
        "scale": scale,
        "days": days,
        "seconds": seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "persons": summary.persons,
        "devices": summary.devices,
        "events": summary.events,
        "output_mb": size / 1e6,
    }


def main(configurations: list[str]) -> None:
    print(
        f"{'scale':>6} {'days':>5} {'seconds':>8} {'peak MB':>8} {'devices':>9} "
        f"{'events':>12} {'events/s':>10} {'output MB':>10}"
    )
    for configuration in configurations:
        scale, days = configuration.split(":")
        child = subprocess.run(
            [sys.executable, __file__, "--one", scale, days],
            check=True,
            capture_output=True,
            text=True,
        )
        r = json.loads(child.stdout)
        print(
            f"{r['scale']:>6} {r['days']:>5} {r['seconds']:>8.1f} {r['peak_rss_mb']:>8.0f} "
            f"{r['devices']:>9,} {r['events']:>12,} {r['events'] / r['seconds']:>10,.0f} "
            f"{r['output_mb']:>10.0f}"
        )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        print(json.dumps(run_one(float(sys.argv[2]), int(sys.argv[3]))))
    else:
        main(sys.argv[1:] or list(CONFIGURATIONS))
