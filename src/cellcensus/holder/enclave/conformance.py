"""Submitted code in the service: loading it by pinned hash, and its conformance report.

`load_submitted` turns a submitted module's source into its `Algorithm`, refusing any source
whose SHA-256 is not the pinned one. `conformance_report` runs the catalogue's own
conformance suite (`holder.algorithms.conformance`, the one every built-in passes) check by
check, so the steward sees which check failed and why. Both run only in confined processes
(`sandbox.confine`): a conformance worker, or the child that computes a job
(`enclave.confined`); never in the service process, nor in a worker that protects a release.
"""

from __future__ import annotations

import hashlib
import re
import sys
import types
from collections.abc import Callable
from typing import Any

import ibis

from cellcensus.errors import CellcensusError
from cellcensus.holder.algorithms import Algorithm
from cellcensus.holder.algorithms import conformance as suite
from cellcensus.holder.algorithms.base import Manifest

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
VERSION_PATTERN = re.compile(r"^\d+\.\d+\.\d+$")
CHECK_NAMES = ("manifest", "parameters_refused", "schema", "deterministic", "contribution_bound")
"""The conformance checks, in the order they run."""
ADVERSARY_EVENTS = 100_000
"""Events of the adversarial device in the service's bound check (the test suite uses 1e6)."""
_DEFAULT_BOUND_FOR = Manifest.__dataclass_fields__["bound_for"].default


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
    except MemoryError:
        raise  # the worker reports its memory limit
    except Exception as error:
        raise CellcensusError(f"submitted module fails to import: {error!r}") from None
    found = [value for value in vars(module).values() if isinstance(value, Algorithm)]
    if len(found) != 1:
        raise CellcensusError(f"a submitted module must define one Algorithm, found {len(found)}")
    return found[0]


def conformance_report(algorithm: Algorithm, *, sha256: str) -> dict[str, Any]:
    """Run each conformance check; stop at the first failure (later checks need earlier ones)."""
    world = suite.conformance_world()
    con = ibis.duckdb.connect()
    checks: list[tuple[str, Callable[[], None]]] = [
        ("manifest", lambda: suite.check_manifest(algorithm)),
        ("parameters_refused", lambda: suite.check_parameters_refused(algorithm)),
        ("schema", lambda: suite.check_schema(algorithm, world, con)),
        ("deterministic", lambda: suite.check_deterministic(algorithm, world, con)),
        (
            "contribution_bound",
            lambda: suite.check_contribution_bound(
                algorithm, world, con, n_events=ADVERSARY_EVENTS
            ),
        ),
    ]
    results = []
    for name, check in checks:
        try:
            check()
        except MemoryError:
            raise  # the worker reports its memory limit
        except Exception as error:
            detail = str(error)[:2000] or type(error).__name__
            results.append({"name": name, "passed": False, "detail": detail})
            break
        results.append({"name": name, "passed": True, "detail": "ok"})
    assert tuple(name for name, _ in checks) == CHECK_NAMES
    passed = len(results) == len(checks) and all(item["passed"] for item in results)
    return {
        "sha256": sha256,
        "passed": passed,
        "checks": results,
        "manifest": manifest_summary(algorithm),
    }


def analyst_report(report: dict[str, Any]) -> dict[str, Any]:
    """What the submitting analyst may read of a conformance report.

    Everything else in a report was written by the submitted code or its worker: check
    details, the import error, the manifest. That code ran on the operator's machine and
    could have read what it should not (the store), so only the steward reads the full report
    (as only the steward reads a failed job's details). The analyst gets whether it passed and
    which of the known checks passed.
    """
    checks = [
        {"name": check["name"], "passed": check.get("passed") is True}
        for check in report.get("checks", [])
        if isinstance(check, dict) and check.get("name") in CHECK_NAMES
    ]
    return {
        "sha256": report.get("sha256"),
        "passed": report.get("passed") is True,
        "checks": checks,
        "note": "the data steward can read the full report",
    }


def manifest_summary(algorithm: Algorithm) -> dict[str, Any]:
    """The public description recorded with a submission once it has been loaded.

    It says whether the algorithm has a finish step or a callable bound: certification
    refuses both (`manifests.refuse_code`).
    """
    described: dict[str, Any] = algorithm.manifest.describe()
    described["parameters_schema"] = described.pop("parameters")
    described["finish"] = algorithm.finish is not None
    described["bound_for"] = algorithm.manifest.bound_for is not _DEFAULT_BOUND_FOR
    return described
