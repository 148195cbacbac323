"""The conformance suite a submitted algorithm must pass before a steward may certify it.

In the spirit of scikit-learn's `check_estimator`: the manifest is complete, parameters are
typed and refuse unknown or out-of-range values, the computation is deterministic, returns the
declared columns, only keys of the public key set, non-negative counts, and respects its
declared contribution bound. It runs on a small fixed synthetic store on DuckDB, inside a
worker subprocess (never in the service process).

`load_submitted` turns a submitted module's source into its `Algorithm`, refusing any source
whose SHA-256 is not the pinned one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ibis
import pandas as pd

from cellcensus.errors import CellcensusError
from cellcensus.holder.algorithms import Algorithm, StoreTables

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
VERSION_PATTERN = re.compile(r"^\d+\.\d+\.\d+$")
AREAS = ("A1", "A2", "A3")
CELLS = ("C1", "C2", "C3", "C4")


@dataclass(frozen=True)
class Check:
    """One conformance check's outcome."""

    name: str
    passed: bool
    detail: str


def source_hash(source: str) -> str:
    """SHA-256 of a module's source text (UTF-8): what certification pins."""
    return hashlib.sha256(source.encode()).hexdigest()


def load_submitted(source: str, *, sha256: str) -> Algorithm:
    """Execute a submitted module and return the one `Algorithm` it defines.

    Raises:
        CellcensusError: the source does not match the pinned hash, fails to import, or does
            not define exactly one Algorithm.
    """
    if source_hash(source) != sha256:
        raise CellcensusError("submitted source does not match its pinned SHA-256; refused")
    name = f"cellcensus_submitted_{sha256[:16]}"
    module = types.ModuleType(name)
    sys.modules[name] = module  # pydantic resolves annotations through sys.modules
    try:
        exec(compile(source, f"<submission {sha256[:12]}>", "exec"), module.__dict__)
    except Exception as error:
        raise CellcensusError(f"submitted module fails to import: {error!r}") from None
    found = [value for value in vars(module).values() if isinstance(value, Algorithm)]
    if len(found) != 1:
        raise CellcensusError(f"a submitted module must define one Algorithm, found {len(found)}")
    return found[0]


def check_algorithm(algorithm: Algorithm) -> list[Check]:
    """Run every conformance check on `algorithm`; each returns a Check."""
    checks: list[Callable[[Algorithm], str]] = [
        _manifest_complete,
        _defaults_accepted,
        _unknown_parameter_refused,
        _output_conforms,
        _deterministic,
    ]
    return [_run(check, algorithm) for check in checks]


def manifest_summary(algorithm: Algorithm) -> dict[str, Any]:
    """The public description recorded with a submission once it has been loaded."""
    manifest = algorithm.manifest
    return {
        "name": manifest.name,
        "version": manifest.version,
        "summary": manifest.summary,
        "outputs": list(manifest.outputs),
        "privacy_unit": manifest.privacy_unit,
        "contribution_bound": manifest.contribution_bound,
        "reference": manifest.reference,
        "parameters_schema": manifest.parameters_schema(),
    }


def _run(check: Callable[[Algorithm], str], algorithm: Algorithm) -> Check:
    name = check.__name__.lstrip("_")
    try:
        problem = check(algorithm)
    except Exception as error:
        problem = f"raised {error!r}"
    return Check(name=name, passed=not problem, detail=problem or "ok")


def _manifest_complete(algorithm: Algorithm) -> str:
    manifest = algorithm.manifest
    if not NAME_PATTERN.match(manifest.name):
        return f"name {manifest.name!r} is not lowercase letters, digits and _"
    if not VERSION_PATTERN.match(manifest.version):
        return f"version {manifest.version!r} is not semantic (MAJOR.MINOR.PATCH)"
    if not {"area_code", "device_count"} <= set(manifest.outputs):
        return "outputs must include area_code and device_count"
    if not manifest.contribution_bound > 0:
        return "contribution_bound must be positive"
    if not manifest.summary or not manifest.reference:
        return "summary and reference are required"
    return ""


def _defaults_accepted(algorithm: Algorithm) -> str:
    algorithm.manifest.parse({})
    return ""


def _unknown_parameter_refused(algorithm: Algorithm) -> str:
    try:
        algorithm.manifest.parse({"__unknown_parameter__": 1})
    except CellcensusError:
        return ""
    return "an unknown parameter was accepted; parameter models must forbid extra keys"


def _output_conforms(algorithm: Algorithm) -> str:
    tables, n_devices = synthetic_tables()
    result = algorithm.expression(tables, {}).to_pandas()
    if not {"area_code", "device_count"} <= set(result.columns):
        return f"output columns {list(result.columns)} lack area_code/device_count"
    if not set(result["area_code"]) <= set(AREAS):
        return "output has keys outside the public key set"
    if (result["device_count"] < 0).any():
        return "output has negative counts"
    bound = algorithm.manifest.contribution_bound * n_devices
    if float(result["device_count"].sum()) > bound + 1e-9:
        return f"total {result['device_count'].sum()} exceeds contribution bound x devices {bound}"
    return ""


def _deterministic(algorithm: Algorithm) -> str:
    first = _sorted(algorithm.expression(synthetic_tables()[0], {}).to_pandas())
    second = _sorted(algorithm.expression(synthetic_tables()[0], {}).to_pandas())
    return "" if first.equals(second) else "two runs on the same data differ"


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def synthetic_tables() -> tuple[StoreTables, int]:
    """A small fixed store (40 devices, 4 cells, 3 areas, 4 days) and its device count."""
    con = ibis.duckdb.connect()
    start = dt.datetime(2020, 3, 2, tzinfo=dt.UTC)
    rows = []
    for device in range(40):
        for day in range(4):
            for hour in (2, 9, 14, 21, 23):
                stamp = start + dt.timedelta(days=day, hours=hour)
                cell = CELLS[(device + (hour > 8 and hour < 20) * (day + 1)) % len(CELLS)]
                rows.append(_event(device, stamp, cell))
    events = pd.DataFrame(rows).astype({"device_id": "int64", "local_hour": "int8"})
    cells = pd.DataFrame({"cell_id": list(CELLS), "lon": [4.0, 4.1, 4.2, 4.3],
                          "lat": [50.0, 50.1, 50.2, 50.3]})
    allocation = pd.DataFrame({"cell_id": ["C1", "C2", "C3", "C3", "C4"],
                               "area_code": ["A1", "A1", "A2", "A3", "A3"],
                               "weight": [1.0, 1.0, 0.5, 0.5, 1.0]})
    tables = StoreTables(
        events=con.create_table("events", events, overwrite=True),
        cells=con.create_table("cells", cells, overwrite=True),
        allocation=con.create_table("allocation", allocation, overwrite=True),
    )
    return tables, 40


def _event(device: int, stamp: dt.datetime, cell: str) -> dict[str, Any]:
    return {
        "device_id": device,
        "timestamp": stamp,
        "local_date": stamp.date(),
        "local_hour": stamp.hour,
        "cell_id": cell,
        "event_type": "data",
        "mcc": 206,
        "mnc": 1,
        "tac": "35000000",
    }
