"""usual_residence against scikit-mobility's `home_location` on the same events (issue 10).

Usage:
    python benchmarks/bench_skmob.py --setup                 # the separate environment, once
    python benchmarks/bench_skmob.py [--events 2000000] [--store STORE | --scale 0.03 --days 7]
Options: --skmob-venv /tmp/cellcensus-skmob-venv   --cache /tmp/cellcensus-bench-harness
         --repeat 2   --out FILE.json

scikit-mobility 1.3.1 needs ``numpy<2``, ``shapely<2`` and ``pyarrow<20``, so it lives in its
own virtual environment (`--setup` makes it) and runs in a child process there. The events are
the first devices of a store (in pseudonym order, so a random sample of devices) until
`--events` is reached, whole devices only. Both sides get them: scikit-mobility as a
TrajDataFrame (device, local time, the serving cell's site coordinates), cellcensus as a store
of those devices' day files with their device-day summaries (what an ingest writes; not
timed, as the TrajDataFrame's making is not).

Timed (best of `--repeat`, each after its input is in memory):

- ``skmob``: `skmob.measures.individual.home_location` with the same night (20:00-07:00
  local): for each device, the location with the most night-time points;
- ``certified``: the certified `usual_residence` end to end under the same rule
  (``most_night_activity``; at least one night), device filter and allocation to
  municipalities included;
- ``floor``: the bare DuckDB GROUP BY of the night events by device and cell.

Agreement: for the devices both place, the share whose cellcensus home cell stands at the
location scikit-mobility chose (the two differ where a device's night events split between the
sectors of one site, which scikit-mobility counts as one place). Target: certified at least
100x faster than scikit-mobility.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.harness import prepare  # noqa: E402

from cellcensus.holder.algorithms import get_algorithm  # noqa: E402
from cellcensus.holder.algorithms.usual_residence import (  # noqa: E402
    UsualResidenceParameters,
    homes,
)
from cellcensus.holder.enclave.compute import open_tables  # noqa: E402
from cellcensus.holder.store import Store  # noqa: E402
from cellcensus.holder.store.device_days import summarise  # noqa: E402

SKMOB_REQUIREMENTS = ("scikit-mobility==1.3.1", "numpy<2", "shapely<2", "pyarrow<20")
PARAMETERS: dict[str, Any] = {"rule": "most_night_activity", "min_nights": 1}
NIGHT = ("20:00", "07:00")
TARGET = 100.0

SKMOB_SCRIPT = """
import sys, time
import pandas as pd
from skmob import TrajDataFrame
from skmob.measures.individual import home_location

points = pd.read_parquet(sys.argv[1])
frame = TrajDataFrame(points, latitude="lat", longitude="lng", datetime="datetime", user_id="uid")
best = None
for _ in range(int(sys.argv[3])):
    started = time.perf_counter()
    found = home_location(frame, start_night=sys.argv[4], end_night=sys.argv[5],
                          show_progress=False)
    took = time.perf_counter() - started
    best = took if best is None else min(best, took)
pd.DataFrame(found).to_parquet(sys.argv[2])
print(best)
"""


def setup(venv: Path) -> None:
    """Make the separate environment scikit-mobility needs."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "pip"), "install", "-q", *SKMOB_REQUIREMENTS]
    subprocess.run(pip, check=True)


def sample_store(store: Store, events: int, out: Path) -> int:
    """A store of the first devices (pseudonym order) holding about `events` events.

    Its day files, cells, allocation and device-day summaries, as an ingest of those
    devices' events would have made them.
    """
    con = duckdb.connect()
    glob = str(store.events_dir / "**" / "*.parquet")
    con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet('{glob}', hive_partitioning=1)")
    con.execute(
        "CREATE TABLE chosen AS SELECT device_id FROM (SELECT device_id, sum(count(*)) OVER "
        "(ORDER BY device_id) AS running FROM events GROUP BY device_id) "
        f"WHERE running <= {int(events)}"
    )
    (out / "events").mkdir(parents=True)
    con.execute(
        "COPY (SELECT * FROM events SEMI JOIN chosen USING (device_id)) "
        f"TO '{out / 'events'}' "
        # part-0.parquet in each date= folder, as the store lays its days out.
        "(FORMAT parquet, PARTITION_BY (date), FILENAME_PATTERN 'part-{i}')"
    )
    for name in ("metadata.json", "cells.parquet"):
        (out / name).write_bytes((store.root / name).read_bytes())
    (out / "allocation").mkdir()
    for path in store.allocation_dir.glob("*.parquet"):
        (out / "allocation" / path.name).write_bytes(path.read_bytes())
    # The device-day summaries, as the ingest writes them: the device filter reads those.
    summarise(Store(out))
    counted = con.execute(f"SELECT count(*) FROM read_parquet('{out}/events/**/*.parquet')")
    return int(counted.fetchone()[0])  # type: ignore[index]


def skmob_points(store: Store, out: Path) -> Path:
    """The store's events as scikit-mobility points: uid, local datetime, site lat/lng."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Europe/Brussels'")
    glob = str(store.events_dir / "**" / "*.parquet")
    path = out / "points.parquet"
    con.execute(
        "COPY (SELECT e.device_id AS uid, CAST(e.timestamp AS TIMESTAMP) AS datetime, "
        "c.latitude AS lat, c.longitude AS lng "
        f"FROM read_parquet('{glob}') e JOIN read_parquet('{store.cells_path}') c USING (cell_id)) "
        f"TO '{path}' (FORMAT parquet)"
    )
    return path


def best_of(repeat: int, work: Any) -> tuple[float, Any]:
    """Best wall time of `repeat` runs of `work`, and its last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - started)
    return best, result


def floor(store: Store) -> None:
    glob = str(store.events_dir / "**" / "*.parquet")
    duckdb.connect().execute(
        "SELECT count(*) FROM (SELECT device_id, cell_id, count(*) FROM read_parquet("
        f"'{glob}') WHERE local_hour >= 20 OR local_hour < 7 GROUP BY ALL)"
    ).fetchall()


def agreement(store: Store, skmob_homes: pd.DataFrame) -> tuple[float, int]:
    """Share of commonly placed devices whose home cell is at scikit-mobility's location."""
    located = homes(open_tables(store), UsualResidenceParameters.model_validate(PARAMETERS))
    ours = located.to_pandas().sort_values(["device_id", "share", "cell_id"], ascending=[1, 0, 1])
    ours = ours.drop_duplicates("device_id")
    cells = pd.read_parquet(store.cells_path, columns=["cell_id", "latitude", "longitude"])
    ours = ours.merge(cells.drop_duplicates("cell_id"), on="cell_id")
    both = ours.merge(skmob_homes, left_on="device_id", right_on="uid")
    same = ((both["latitude"] - both["lat"]).abs() < 1e-9) & (
        (both["longitude"] - both["lng"]).abs() < 1e-9
    )
    return float(same.mean()), len(both)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setup", action="store_true")
    parser.add_argument("--skmob-venv", type=Path, default=Path("/tmp/cellcensus-skmob-venv"))
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--store", type=Path)
    parser.add_argument("--world", type=Path)
    parser.add_argument("--scale", type=float, default=0.03)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cache", default="/tmp/cellcensus-bench-harness")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    python = args.skmob_venv / "bin" / "python"
    if args.setup:
        setup(args.skmob_venv)
        return
    if not python.exists():
        raise SystemExit(f"no scikit-mobility environment at {args.skmob_venv}: run with --setup")
    source = Store(prepare(args, print))
    with tempfile.TemporaryDirectory(prefix="cellcensus-skmob-") as scratch:
        folder = Path(scratch)
        events = sample_store(source, args.events, folder / "store")
        store = Store(folder / "store")
        points = skmob_points(store, folder)
        run = [str(python), "-c", SKMOB_SCRIPT, str(points), str(folder / "homes.parquet")]
        done = subprocess.run(
            [*run, str(args.repeat), *NIGHT], check=True, capture_output=True, text=True
        )
        skmob_seconds = float(done.stdout.strip().splitlines()[-1])
        algorithm = get_algorithm("usual_residence")
        certified, _ = best_of(args.repeat, lambda: algorithm.run(open_tables(store), PARAMETERS))
        floor_seconds, _ = best_of(args.repeat, lambda: floor(store))
        same, compared = agreement(store, pd.read_parquet(folder / "homes.parquet"))
    figures = {
        "events": events,
        "skmob_seconds": skmob_seconds,
        "certified_seconds": certified,
        "floor_seconds": floor_seconds,
        "speedup_vs_skmob": skmob_seconds / certified,
        "certified_x_floor": certified / floor_seconds,
        "devices_compared": compared,
        "same_home_location": same,
        "target_speedup": TARGET,
    }
    for name, value in figures.items():
        print(f"{name:>20}: {value:,.3f}" if isinstance(value, float) else f"{name:>20}: {value:,}")
    verdict = "meets" if figures["speedup_vs_skmob"] >= TARGET else "misses"
    print(f"certified usual_residence {verdict} the {TARGET:.0f}x target")
    if args.out is not None:
        args.out.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
