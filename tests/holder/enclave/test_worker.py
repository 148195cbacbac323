"""Worker subprocesses: a time limit and a memory limit, and nothing released on failure."""

from __future__ import annotations

import pytest

from cellcensus.holder.enclave.worker import run_in_subprocess

SPEC = {"kind": "conformance", "source": "x = 1\n", "sha256": "0" * 64}


def test_a_job_over_its_time_limit_is_killed():
    outcome = run_in_subprocess(
        {**SPEC, "memory_mb": 4096, "timeout_s": 60}, timeout_s=0.2, on_stage=lambda _stage: None
    )
    assert outcome.result is None and "time limit" in (outcome.error or "")


@pytest.mark.slow
def test_a_job_over_its_memory_limit_fails():
    outcome = run_in_subprocess(
        {**SPEC, "memory_mb": 64, "timeout_s": 60}, timeout_s=60, on_stage=lambda _stage: None
    )
    assert outcome.result is None and outcome.error
