"""The entry point of every process that runs submitted code: confine first, import after.

Landlock and seccomp bind the threads a process has when it confines itself and those they
start later (`sandbox`). The worker's own imports (the enclave, NumPy, Arrow, Polars) start
threads, which would stay unconfined: a submitted module could run code on one of them (a
signal handler) and read the store. So this module imports only the standard library and
`sandbox` before it confines its process, then loads the rest, then the submitted module:

- ``conformance``: a steward's conformance run of a submission (the worker's protocol lines
  on stdout, as `enclave.worker` writes them);
- ``submitted_job``: the exact output of a job of certified submitted code, written as an
  Arrow file in the scratch folder (`enclave.confined`); it refuses to run without Landlock.

Run as ``python -m cellcensus.holder.untrusted`` with the spec as JSON on stdin.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cellcensus.holder.sandbox import confine, landlock_abi, limit_resources

CONFORMANCE_FILE_MB = 64
"""Largest file a conformance run may write (``RLIMIT_FSIZE``): its world is in memory."""
OUTPUT_FILE_MB = 16 * 1024
"""Largest file a job's child may write: its output and DuckDB's spill file, which on a large
store outgrows the memory limit as a built-in job's does."""
NOT_CONFINED = "no Landlock in this kernel: submitted code runs only confined"
MAX_SPEC_CHARS = 64 * 1024 * 1024


def main() -> int:
    """Read the spec, limit and confine this process, then run what the spec asks."""
    spec = json.loads(sys.stdin.read(MAX_SPEC_CHARS))
    conformance = spec["kind"] == "conformance"
    limit_resources(
        memory_mb=int(spec["memory_mb"]),
        timeout_s=float(spec["timeout_s"]),
        file_mb=CONFORMANCE_FILE_MB if conformance else OUTPUT_FILE_MB,
    )
    if not conformance and landlock_abi() < 1:
        sys.stderr.write(NOT_CONFINED + "\n")
        return 3
    try:
        sandbox = confine(spec["scratch"], read_only=spec.get("read_only", ()))
    except OSError as error:
        what = "the conformance run" if conformance else "the submitted computation"
        if conformance:
            sys.stdout.write(json.dumps({"error": f"could not confine {what}: {error}"}) + "\n")
        else:
            sys.stderr.write(f"could not confine {what}: {error}\n")
        return 1
    if conformance:
        from cellcensus.holder.enclave.worker import conformance_main

        return conformance_main(spec, sandbox)
    from cellcensus.holder.enclave.confined import OUTPUT, compute_exact, write_output

    write_output(compute_exact(spec), Path(spec["scratch"]) / OUTPUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
