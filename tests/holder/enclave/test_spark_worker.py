"""A service on Spark: a job's worker starts Spark's JVM outside the worker's own limits.

The JVM reserves its whole heap (`SPARK_DRIVER_MEMORY`) and more as address space at once, and
spends CPU time on several threads; under the worker's `RLIMIT_AS` and `RLIMIT_CPU` it could
not start, or would be killed by CPU time well before the job's wall-clock limit.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cellcensus.holder.enclave.service import EnclaveService, JobRequest, ServiceLimits
from cellcensus.holder.enclave.state import open_state
from cellcensus.holder.enclave.worker import WorkerPool

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def test_a_spark_job_runs_with_a_driver_heap_above_the_memory_limit(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPARK_DRIVER_MEMORY", "4g")
    copy = Path(shutil.copytree(store, tmp_path / "store"))
    (copy / "enclave").mkdir(exist_ok=True)
    service = EnclaveService(
        store=copy,
        state=open_state(f"sqlite:///{copy / 'enclave' / 'state.db'}"),
        engine="spark",
        limits=ServiceLimits(timeout_s=240, memory_mb=3072),
    )
    service.set_budget(analyst="alice", project="default", epsilon=1.0, delta=0.0, steward="s")
    request = JobRequest(algorithm="usual_residence", parameters={"min_nights": 2})
    job = service.submit(analyst="alice", request=request).job
    claimed = service.book.claim(job.id)
    assert claimed is not None
    WorkerPool(service, workers=0, warm=False).run_job(claimed)
    done = service.book.get(job.id)
    assert done is not None
    assert done.status.value == "released", done.error
    release = json.loads(service.release_of(done))
    assert release["provenance"]["engine"] == "spark"
    assert release["table"]
