"""A failed job of submitted code that prints a pseudonym: only the steward reads it.

The module is certified on the service's own database (as a steward would, after
conformance), run through the service's worker, and fails after writing a pseudonym to its
stderr. Its ``job.failed`` audit entry, which auditors read and no purge reaches, holds only a
hash of the detail; the steward reads the detail, and the store's purge deletes it.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_certification import MODULE  # type: ignore[import-not-found]
from tiny_store import PASSWORD, add_users, settings_for  # type: ignore[import-not-found]
from typer.testing import CliRunner

from cellcensus.cli import app
from cellcensus.holder.algorithms import registered_algorithms
from cellcensus.holder.api import ServiceSettings, create_app
from cellcensus.holder.enclave import EnclaveService
from cellcensus.holder.enclave.conformance import load_submitted, manifest_summary, source_hash
from cellcensus.holder.enclave.state import open_state
from cellcensus.holder.enclave.worker import SUBMITTED_JOB_FAILED
from cellcensus.holder.sandbox import landlock_abi

pytestmark = [
    pytest.mark.slow,  # a worker and its confined child
    pytest.mark.skipif(landlock_abi() < 1, reason="submitted code runs only under Landlock"),
]
FAKE = "ps-5b8e0d27c1a9f4"  # stands for a pseudonym the module read in the store
LOUD = MODULE.replace(
    "def compute(tables, params):\n",
    "def compute(tables, params):\n"
    "    import sys\n"
    # Written reversed, so that only what the module prints holds it (not its stored source).
    f"    sys.stderr.write('device ' + '{FAKE[::-1]}'[::-1])\n"
    "    raise RuntimeError('giving up')\n",
)


@pytest.fixture
def settings(tiny_store: Path, tmp_path: Path) -> ServiceSettings:
    """A store of its own (it is purged) with the state database in its default place."""
    store = Path(shutil.copytree(tiny_store, tmp_path / "store"))
    made: ServiceSettings = settings_for(store, store / "enclave")
    add_users(made)
    certify(made, LOUD)
    return made


def certify(settings: ServiceSettings, source: str) -> None:
    """Submit and certify `source` with its manifest, as the steward would."""
    state = open_state(settings.resolved_database_url)
    service = EnclaveService(store=settings.store, state=state)
    draft = service.submissions.submit(
        source=source, analyst="alice", reserved=set(registered_algorithms())
    )
    algorithm = load_submitted(source, sha256=source_hash(source))
    report = {"sha256": draft.sha256, "passed": True, "checks": []}
    report["manifest"] = manifest_summary(algorithm)
    service.submissions.record_conformance(draft.id, report=report, steward="steward")
    service.submissions.certify(draft.id, steward="steward")
    service.policies.set("first_cell", {"disclosure": {"dp": None}}, steward="steward")
    state.engine.dispose()


def auth(client: TestClient, username: str) -> dict[str, str]:
    answer = client.post("/auth/token", json={"username": username, "password": PASSWORD})
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def failed_job(client: TestClient) -> dict[str, Any]:
    """Alice's job of the loud module, once it has ended."""
    scopes = {"scopes": ["first_cell:*:*"]}
    client.put("/users/alice/scopes", json=scopes, headers=auth(client, "steward"))
    alice = auth(client, "alice")
    job = {"algorithm": "first_cell", "parameters": {}}
    job_id = client.post("/jobs", json=job, headers=alice).json()["id"]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        seen = client.get(f"/jobs/{job_id}", headers=alice)
        if seen.json()["status"] not in ("queued", "running"):
            assert FAKE not in seen.text
            return dict(seen.json())
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not end")


def test_only_the_steward_reads_a_failed_jobs_stderr_and_the_purge_deletes_it(settings):
    with TestClient(create_app(settings)) as client:
        job = failed_job(client)
        assert (job["status"], job["error"]) == ("failed", SUBMITTED_JOB_FAILED)
        committed = audited_commitment(client, job["id"])
        steward = auth(client, "steward")
        path = f"/jobs/{job['id']}/diagnostics"
        found = client.get(path, headers=steward).json()
        assert FAKE in found["detail"] and found["sha256"] == committed
        salted = bytes.fromhex(found["salt"]) + found["detail"].encode()
        assert hashlib.sha256(salted).hexdigest() == committed
        for other in ("auditor", "alice"):
            assert client.get(path, headers=auth(client, other)).status_code == 403
    assert_purged(settings, job["id"])


def audited_commitment(client: TestClient, job_id: str) -> str:
    """What the auditor reads of the failure: no pseudonym, a chain that checks, a hash."""
    auditor = auth(client, "auditor")
    page = client.get("/audit", params={"limit": 5000}, headers=auditor)
    assert FAKE not in page.text
    (entry,) = [
        e
        for e in page.json()["entries"]
        if e["target"] == f"job:{job_id}" and e["action"] == "job.failed"
    ]
    assert set(entry["details"]) == {"error", "detail_sha256"}
    assert client.get("/audit/verify", headers=auditor).json()["ok"]
    return str(entry["details"]["detail_sha256"])


def assert_purged(settings: ServiceSettings, job_id: str) -> None:
    """The steward's CLI shows the detail until a purge; the chain checks before and after."""
    runner, store = CliRunner(), str(settings.store)
    shown = runner.invoke(app, ["audit", "diagnostics", job_id, "--store", store])
    assert shown.exit_code == 0 and FAKE in shown.output, shown.output
    purged = runner.invoke(app, ["store", "purge", "--before", "2011-03-22", "--store", store])
    assert purged.exit_code == 0 and "diagnostics deleted" in purged.output, purged.output
    gone = runner.invoke(app, ["audit", "diagnostics", job_id, "--store", store])
    assert gone.exit_code != 0 and "deleted them" in gone.output
    verified = runner.invoke(app, ["audit", "verify", "--store", store])
    assert verified.exit_code == 0 and "audit log ok" in verified.output
    state_files = settings.store.glob("enclave/state.db*")
    assert not any(FAKE.encode() in path.read_bytes() for path in state_files)
