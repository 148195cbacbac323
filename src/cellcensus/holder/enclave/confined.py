"""The computation of a submitted algorithm's job, in a confined child of the worker.

The worker that protects a release must never execute submitted code: a module imported
there could replace the protection, or write the worker's result line itself. So for a job
of a certified submission the worker (service code only) starts a child (``python -m
cellcensus.holder.untrusted``), which confines itself, then runs this module's computation
(`sandbox.confine`: it may read Python's files and the store's tables of the job's period,
write only in a scratch folder, reach no network; not the quarantine, the state database or
the rounding key, nor any other day), loads the submitted module, computes its exact
output on DuckDB and writes it as an Arrow IPC file in the scratch folder. Its stdout goes
nowhere. The worker reads back that table and nothing else, checks it against the manifest
recorded at certification and protects it (`compute.compute_submitted_release`).

Where the kernel has no Landlock, the child refuses to run: submitted code reads the store
only confined.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from cellcensus.errors import CellcensusError
from cellcensus.holder.algorithms.base import StoreLayout
from cellcensus.holder.enclave.compute import job_period, open_tables
from cellcensus.holder.enclave.conformance import load_submitted
from cellcensus.holder.enclave.manifests import FINISH_REFUSED
from cellcensus.holder.enclave.worker import DETAIL_CHARS, UNTRUSTED_MODULE
from cellcensus.holder.geo.tile_footprint import has_footprint
from cellcensus.holder.store import Store
from cellcensus.holder.store.device_days import positions_choice

OUTPUT = "exact.arrow"
"""The file, in the scratch folder, the child writes its exact output to."""
STORE_TABLES = ("cells.parquet", "allocation", "footprint", "metadata.json")
"""Store entries the child may read beside the period's day files: what `open_tables` opens.
Not the quarantine (malformed rows as delivered), the reports and records, the key record or
the enclave's state."""


def period_view(store: Store, days: Sequence[date], into: Path) -> tuple[Path, list[str]]:
    """A store folder of links to `store`'s tables with only `days` of its day files.

    Returns the folder (in `into`) and the linked paths, the only ones of the store the
    child may read: submitted code reads the job's period, which its scope and noise are of.
    """
    view = into / "store"
    view.mkdir()
    readable = []
    for name in STORE_TABLES:
        if (store.root / name).exists():
            (view / name).symlink_to(store.root / name)
            readable.append(str(store.root / name))
    # The period's day files and summaries, and the summaries' schema the store chose.
    files = [positions_choice(store)]
    files += [path for day in days for path in (store.day_path(day), store.device_day_path(day))]
    for path in files:
        if path.exists():  # links to files: DuckDB's glob lists real folders only
            link = view / path.relative_to(store.root)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(path)
            readable.append(str(path))
    return view, readable


def exact_output(
    *,
    source: str,
    sha256: str,
    store: Path,
    level: str,
    parameters: dict[str, Any],
    memory_mb: int,
    timeout_s: float,
) -> pd.DataFrame:
    """The submitted computation's exact output, computed in a confined child.

    Raises:
        CellcensusError: the child failed, timed out or wrote no readable table (the message,
            with the tail of its stderr, is for the steward's job diagnostics).
    """
    with tempfile.TemporaryDirectory(prefix="cellcensus-submitted-") as scratch:
        opened = Store(store)
        start, end = job_period(opened, parameters)
        days = [day for day in opened.days() if start <= day <= end]
        view, readable = period_view(opened, days, Path(scratch))
        spec = {
            "kind": "submitted_job",
            "source": source,
            "sha256": sha256,
            "store": str(view),
            "read_only": readable,
            "level": level,
            "parameters": parameters,
            "memory_mb": memory_mb,
            "timeout_s": timeout_s,
            "scratch": scratch,
        }
        returncode, stderr = _run_child(spec, cwd=scratch, timeout_s=timeout_s)
        if returncode != 0:
            raise CellcensusError(
                f"the submitted computation failed (exit code {returncode}): {stderr}"
            )
        return read_output(Path(scratch) / OUTPUT)


def _run_child(spec: dict[str, Any], *, cwd: str, timeout_s: float) -> tuple[int, str]:
    """Run the child on `spec`; its exit code and the tail of its stderr."""
    process = subprocess.Popen(
        [sys.executable, "-m", UNTRUSTED_MODULE],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,  # never the worker's protocol stream
        stderr=subprocess.PIPE,
        cwd=cwd,  # DuckDB spills beneath it
        text=True,
        errors="replace",
    )
    tail: collections.deque[str] = collections.deque(maxlen=DETAIL_CHARS // 1024 + 1)
    drain = threading.Thread(target=_drain, args=(process.stderr, tail), daemon=True)
    drain.start()
    assert process.stdin is not None
    with contextlib.suppress(BrokenPipeError):  # it ended already: its exit code says why
        process.stdin.write(json.dumps(spec))
        process.stdin.close()
    try:
        process.wait(timeout=timeout_s + 5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise CellcensusError(f"the submitted computation exceeded {timeout_s:g} s") from None
    finally:
        drain.join(timeout=5)
        assert process.stderr is not None
        process.stderr.close()
    return process.returncode, "".join(tail)[-DETAIL_CHARS:]


def _drain(stream: Any, tail: collections.deque[str]) -> None:
    """Read the child's stderr to its end, keeping only the last blocks."""
    try:
        while block := stream.read(1024):
            tail.append(block)
    except (OSError, ValueError):
        return


def read_output(path: Path) -> pd.DataFrame:
    """The table the child wrote, read without following links (it controls the folder)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        raise CellcensusError("the submitted computation wrote no output table") from None
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise CellcensusError("the submitted computation's output is not a file")
        try:
            table = pa.ipc.open_file(handle).read_all()
            table.validate(full=True)
        except (pa.ArrowException, OSError, ValueError) as error:
            raise CellcensusError(
                f"the submitted computation's output is not an Arrow table: {error}"
            ) from None
    exact: pd.DataFrame = table.to_pandas()
    return exact


def write_output(exact: pd.DataFrame, path: Path) -> None:
    """Write the exact output as an Arrow IPC file (in the child)."""
    table = pa.Table.from_pandas(exact, preserve_index=False)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def compute_exact(spec: dict[str, Any]) -> pd.DataFrame:
    """Load the submitted module and collect its exact output (in the confined child)."""
    algorithm = load_submitted(spec["source"], sha256=spec["sha256"])
    if algorithm.finish is not None:
        raise CellcensusError(FINISH_REFUSED)
    store = Store(Path(spec["store"]))
    layout = StoreLayout(
        level=spec["level"], footprint=has_footprint(store), days=tuple(store.days())
    )
    algorithm.check(spec["parameters"], layout)
    memory_limit = f"{max(256, int(spec['memory_mb']) // 2)}MB"
    tables = open_tables(store, engine="duckdb", level=spec["level"], memory_limit=memory_limit)
    return algorithm.exact(tables, algorithm.manifest.parse(spec["parameters"]))
