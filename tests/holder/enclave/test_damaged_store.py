"""A job whose store holds a damaged day file: failed, charged, nothing released, file named.

The damaged day is the fourth of seven: on Spark the job has computed and cached its
device filter's stages before the events' scan reaches that file.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from cellcensus.errors import CellcensusError
from cellcensus.holder.enclave import Enclave, EnclaveService, JobRequest, JobStatus
from cellcensus.holder.enclave.compute import reading
from cellcensus.holder.enclave.state import State
from cellcensus.holder.enclave.worker import INTERNAL_ERROR
from cellcensus.holder.store import Store

REQUEST = JobRequest(algorithm="usual_residence", parameters={"min_nights": 2})


def damaged_copy(store: Path, tmp_path: Path) -> tuple[Path, str]:
    """A copy of `store` whose fourth day file is cut in half; that file, within the store."""
    copy = Path(shutil.copytree(store, tmp_path / "store"))
    day = sorted((copy / "events").iterdir())[3]
    (damaged,) = day.glob("*.parquet")
    data = damaged.read_bytes()
    damaged.write_bytes(data[: len(data) // 2])
    return copy, str(damaged.relative_to(copy))


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def test_a_damaged_day_fails_the_job_charged_naming_the_file(
    engine: str, state: State, store: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    session = request.getfixturevalue("small_spark") if engine == "spark" else None
    if session is not None:
        session.catalog.clearCache()
    copy, damaged = damaged_copy(store, tmp_path)
    service = EnclaveService(store=copy, state=state, engine=engine, limits=None)  # type: ignore[arg-type]
    service.set_budget(analyst="alice", project="default", epsilon=2.0, delta=0.0, steward="s")
    with pytest.raises(CellcensusError, match="could not be read") as failed:
        service.run_inline(analyst="alice", request=REQUEST)
    (job,) = service.book.recent()
    assert job.status is JobStatus.FAILED and job.release_id is None
    assert job.error == str(failed.value)
    assert damaged in job.error  # named within the store, for the holder to restore
    assert str(copy) not in job.error and "org.apache" not in job.error
    assert charged(state, job.id) == 1  # no refund: the failure came after the charge
    assert service.budget_left(analyst="alice", project="default") == pytest.approx((1.6, 0.0))
    with state.read() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM releases")).scalar() == 0
    if session is not None:
        assert cache_is_empty(session)  # the stages computed before the failure were freed


def charged(state: State, job_id: str) -> Any:
    with state.read() as conn:
        return conn.execute(
            sa.text("SELECT count(*) FROM privacy_charge WHERE job_id = :j"), {"j": job_id}
        ).scalar()


def cache_is_empty(session: Any) -> bool:
    return bool(session._jsparkSession.sharedState().cacheManager().isEmpty())


def test_a_failed_read_is_named_by_what_the_file_is_now(store: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(store, tmp_path / "store"))
    day = sorted((copy / "events").glob("date=*/part-0.parquet"))[0]
    named = str(day.relative_to(copy))

    def failure() -> str:
        with pytest.raises(CellcensusError) as failed, reading(Store(copy)):
            raise OSError(f"IO Error: No files found that match the pattern {day}")
        assert named in str(failed.value) and str(copy) not in str(failed.value)
        return str(failed.value)

    # Readable now: an ingest's commit replaced it while the job read it.
    assert "changed while the job read it" in failure()
    data = day.read_bytes()
    # Readable but without a day file's columns: submitting again would fail again.
    pq.write_table(pq.read_table(day).drop_columns(["cell_id"]), day)
    assert "lacks the day file column(s) cell_id" in failure()
    day.write_bytes(data[: len(data) // 2])
    assert "could not be read (damaged" in failure()
    day.unlink()
    assert "is gone" in failure()


def test_an_engine_error_of_a_job_run_in_process_is_not_the_analysts_to_read(
    store: Path, tmp_path: Path
) -> None:
    # `cellcensus run --analyst NAME` records the job in the service's table, where its
    # analyst reads its error: an engine's own message (which may quote a value it read)
    # goes to the steward's job diagnostics only, as the worker's does (not the audit log,
    # which auditors read and no purge reaches).
    copy = Path(shutil.copytree(store, tmp_path / "store"))
    allocation = copy / "allocation" / "municipality.parquet"
    pd.read_parquet(allocation).assign(weight="1007919").to_parquet(allocation, index=False)
    enclave = Enclave(store=copy, state_url=f"sqlite:///{tmp_path / 'state.db'}")
    with pytest.raises(TypeError) as raised:
        enclave.run(algorithm="usual_residence", parameters={}, analyst="alice")
    (job,) = enclave.service.book.recent()
    assert job.status is JobStatus.FAILED
    assert job.error == INTERNAL_ERROR
    failed = [entry for entry in enclave.service.audit.entries() if entry.action == "job.failed"]
    assert str(raised.value) not in str(failed[-1].details)
    diagnostics = enclave.service.diagnostics.get(job.id)
    assert diagnostics is not None and str(raised.value) in diagnostics.detail
    assert diagnostics.matches(failed[-1].details["detail_sha256"])
