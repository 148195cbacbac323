"""Jobs of certified submitted code: whatever the module does, the release is protected.

The module is certified as the steward would certify it (its manifest as a conformance run
describes it), then a job runs through the worker pool's own path (`WorkerPool.run_job`, a
worker subprocess). A hostile module that replaces the protection, writes the worker's result
line itself, or writes into the store or the state database must end in the protected
release of its counts, or in a failed job that releases nothing: never in exact counts.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from cellcensus.holder.algorithms import registered_algorithms
from cellcensus.holder.disclosure import DisclosurePolicy
from cellcensus.holder.enclave.compute import compute_release, open_tables
from cellcensus.holder.enclave.confined import period_view
from cellcensus.holder.enclave.conformance import load_submitted, manifest_summary, source_hash
from cellcensus.holder.enclave.service import EnclaveService, JobRequest, ServiceLimits
from cellcensus.holder.enclave.state import open_state
from cellcensus.holder.enclave.worker import WorkerPool
from cellcensus.holder.sandbox import landlock_abi
from cellcensus.holder.store import Store
from cellcensus.holder.store.device_days import positions_choice, summarise

pytestmark = [
    pytest.mark.slow,  # a worker and its confined child per job, a few seconds each
    pytest.mark.skipif(landlock_abi() < 1, reason="submitted code runs only under Landlock"),
]
CERTIFICATION_TESTS = Path(__file__).parents[1] / "api" / "test_certification.py"
MODULE = CERTIFICATION_TESTS.read_text().split("MODULE = '''")[1].split("'''")[0]
"""The benign submission of the certification tests (first_cell)."""
# No noise, so a protected release is one table; rounding to 7 moves every exact count.
POLICY = {"dp": None, "rounding_base": 7, "min_count": 10}
LEAK = """
def _leak(raw, *, key, **_ignored):
    return raw[[key, "device_count"]].sort_values(key).reset_index(drop=True)


def _patch():
    import cellcensus.holder.disclosure as disclosure
    import cellcensus.holder.disclosure.protection as protection
    import cellcensus.holder.enclave.compute as compute_module

    for module in (disclosure, protection, compute_module):
        module.protect = _leak
"""


def _in_compute(source: str, code: str) -> str:
    """`source` whose compute runs `code` first (one line, indented there)."""
    return source.replace(
        "    events = tables.events\n", f"    {code}\n    events = tables.events\n"
    )


@pytest.fixture
def holder(store: Path, tmp_path: Path) -> tuple[EnclaveService, Path]:
    """A copy of the tiny store with its state database inside, as the embedded default."""
    copy = Path(shutil.copytree(store, tmp_path / "store"))
    (copy / "enclave").mkdir(exist_ok=True)
    state = open_state(f"sqlite:///{copy / 'enclave' / 'state.db'}")
    service = EnclaveService(
        store=copy, state=state, limits=ServiceLimits(timeout_s=120, memory_mb=3072)
    )
    service.set_budget(analyst="alice", project="default", epsilon=1.0, delta=0.0, steward="s")
    return service, copy


def certify(service: EnclaveService, source: str, *, benign: str = MODULE) -> None:
    """Submit and certify `source`, its manifest the one of the `benign` module."""
    submissions = service.submissions
    draft = submissions.submit(
        source=source, analyst="alice", reserved=set(registered_algorithms())
    )
    algorithm = load_submitted(benign, sha256=source_hash(benign))
    report = {
        "sha256": draft.sha256,
        "passed": True,
        "checks": [],
        "manifest": manifest_summary(algorithm),
    }
    submissions.record_conformance(draft.id, report=report, steward="steward")
    submissions.certify(draft.id, steward="steward")
    name = algorithm.manifest.name
    service.policies.set(name, {"disclosure": POLICY}, steward="steward")


def run_job(
    service: EnclaveService, algorithm: str = "first_cell", parameters: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any] | None]:
    """Run one job as the worker pool does; its status and released body."""
    request = JobRequest(algorithm=algorithm, parameters=parameters or {})
    job = service.submit(analyst="alice", request=request).job
    claimed = service.book.claim(job.id)
    assert claimed is not None
    WorkerPool(service, workers=0, warm=False).run_job(claimed)
    done = service.book.get(job.id)
    assert done is not None
    if done.release_id is None:
        return done.status.value, None
    return done.status.value, json.loads(service.release_of(done))


def counts(body: dict[str, Any]) -> dict[str, Any]:
    return {row["area_code"]: row["device_count"] for row in body["table"]}


def exact_counts(store: Path) -> dict[str, Any]:
    """The benign module's exact output (the test process loads it: it is benign)."""
    algorithm = load_submitted(MODULE, sha256=source_hash(MODULE))
    exact = algorithm.exact(open_tables(Store(store)), algorithm.manifest.parse({}))
    return dict(zip(exact["area_code"], exact["device_count"], strict=True))


def protected_counts(store: Path) -> dict[str, Any]:
    """What protecting the benign module's output releases (the in-process path)."""
    release = compute_release(
        store=store,
        algorithm=load_submitted(MODULE, sha256=source_hash(MODULE)),
        parameters={},
        level="municipality",
        policy=DisclosurePolicy.from_dict(POLICY),
        engine="duckdb",
        job_id="reference",
    )
    return dict(zip(release.table["area_code"], release.table["device_count"], strict=True))


def test_a_benign_submission_releases_its_protected_counts(holder):
    service, store = holder
    certify(service, MODULE)
    status, body = run_job(service)
    assert status == "released" and body is not None
    assert counts(body) == protected_counts(store)
    assert counts(body) != exact_counts(store)
    assert body["provenance"]["parameters"] == {"min_events": 1}


DAILY = """
from cellcensus.holder.algorithms.base import (
    AREA_KEY, Algorithm, Certification, Key, KeyDomain, Manifest, PeriodParameters, in_period,
)


def compute(tables, params):
    events = in_period(tables.events, params)
    seen = events.group_by(["device_id", "local_date"]).agg(cell_id=events.cell_id.min())
    located = seen.join(tables.allocation, "cell_id")
    return located.group_by(["local_date", "area_code"]).agg(device_count=located.weight.sum())


daily_first_cell = Algorithm(
    manifest=Manifest(
        name="daily_first_cell",
        version="0.1.0",
        certification=Certification.DRAFT,
        summary="Devices per date and area of their smallest cell id that day.",
        parameters=PeriodParameters,
        keys=(Key("local_date", KeyDomain.DATE), AREA_KEY),
        privacy_unit="device and date",
        unit_keys=("local_date",),
        contribution_bound=1.0,
        reference="A submission keyed by date.",
    ),
    compute=compute,
)
"""


def test_a_benign_submission_keyed_by_date_releases_what_it_released_before(holder):
    service, store = holder
    certify(service, DAILY, benign=DAILY)
    parameters = {"start": "2011-03-08", "end": "2011-03-10"}
    status, body = run_job(service, "daily_first_cell", parameters)
    assert status == "released" and body is not None
    before = compute_release(
        store=store,
        algorithm=load_submitted(DAILY, sha256=source_hash(DAILY)),
        parameters=parameters,
        level="municipality",
        policy=DisclosurePolicy.from_dict(POLICY),
        engine="duckdb",
        job_id="reference",
    )
    released = pd.DataFrame(body["table"])
    assert len(released) == 3 * 3  # every date of the period by every area
    expected = before.table.assign(local_date=before.table["local_date"].astype(str))
    assert released.to_dict("records") == expected.to_dict("records")
    assert body["provenance"]["privacy_units"] == before.provenance.privacy_units == 3


PERIOD_PROBE = DAILY.replace("daily_first_cell", "period_probe").replace(
    "def compute(tables, params):\n",
    """def compute(tables, params):
    import os, pathlib
    seen = set(tables.events.local_date.cast("string").to_pandas().unique())
    if seen - {"2011-03-08", "2011-03-09", "2011-03-10"}:
        raise RuntimeError(f"read days outside the period: {sorted(seen)}")
    day = next(pathlib.Path(os.environ["TMPDIR"], "store", "events").iterdir()) / "part-0.parquet"
    other = pathlib.Path(os.readlink(day)).parents[1] / "date=2011-03-12" / "part-0.parquet"
    try:
        open(other, "rb").read(4)
    except PermissionError:
        pass
    else:
        raise RuntimeError(f"read {other}")
""",
)


def test_submitted_code_reads_the_days_of_its_jobs_period_and_no_other(holder):
    service, store = holder
    assert {"2011-03-07", "2011-03-12"} <= {str(day) for day in Store(store).days()}
    certify(service, PERIOD_PROBE, benign=PERIOD_PROBE)
    parameters = {"start": "2011-03-08", "end": "2011-03-10"}
    status, body = run_job(service, "period_probe", parameters)
    assert status == "released"
    assert body is not None and len(body["table"]) == 3 * 3


HOSTILE = {
    "patches_protect_at_import": MODULE + LEAK + "\n_patch()\n",
    "patches_protect_in_compute": _in_compute(MODULE + LEAK, "_patch()"),
}


@pytest.mark.parametrize("behaviour", sorted(HOSTILE))
def test_a_module_replacing_the_protection_still_gets_a_protected_release(holder, behaviour):
    service, store = holder
    certify(service, HOSTILE[behaviour])
    status, body = run_job(service)
    assert status == "released" and body is not None
    assert counts(body) == protected_counts(store)
    assert counts(body) != exact_counts(store)


WRITES = {
    "on_its_stdout": "import os, sys; print(LINE, flush=True); os._exit(0)",
    "on_its_parent's_stdout": (
        "import os; os.write(os.open(f'/proc/{os.getppid()}/fd/1', os.O_WRONLY), "
        "(LINE + '\\n').encode()); os._exit(0)"
    ),
}


@pytest.mark.parametrize("where", sorted(WRITES))
def test_a_module_writing_the_result_line_itself_releases_nothing(holder, where):
    service, store = holder
    forged = {
        "columns": [
            {"dtype": "str", "name": "area_code"},
            {"dtype": "Int64", "name": "device_count"},
        ],
        "provenance": {
            "algorithm": "first_cell",
            "created_at": "2011-03-14T00:00:00+00:00",
            "engine": "duckdb",
            "job_id": "forged",
            "parameters": {"min_events": 1},
            "policy": POLICY | {"secondary_suppression": True},
            "privacy_units": 1,
            "version": "0.1.0",
        },
        "published": {},
        "table": [
            {"area_code": area, "device_count": int(count)}
            for area, count in exact_counts(store).items()
        ],
    }
    line = json.dumps({"release": json.dumps(forged)})
    source = _in_compute(MODULE, WRITES[where].replace("LINE", repr(line)))
    certify(service, source)
    status, body = run_job(service)
    assert (status, body) == ("failed", None)


def test_a_module_cannot_write_into_the_store_or_the_state_database(holder):
    service, store = holder
    database = store / "enclave" / "state.db"
    attempts = (
        f"open({str(store / 'planted.txt')!r}, 'w').write('x')",
        f"open({str(store / 'events' / 'planted.txt')!r}, 'w').write('x')",
        f"open({str(store / 'enclave' / 'rounding.key')!r}, 'w').write('00' * 32)",
        f"sqlite3.connect({str(database)!r}).execute('CREATE TABLE planted (x)').connection"
        ".commit()",
    )
    tries = "".join(
        f"    try:\n        {attempt}\n    except Exception:\n        pass\n"
        for attempt in attempts
    )
    source = MODULE.replace(
        "    events = tables.events\n", f"    import sqlite3\n{tries}    events = tables.events\n"
    )
    protected_counts(store)  # makes the rounding key the module tries to overwrite
    key = (store / "enclave" / "rounding.key").read_bytes()
    certify(service, source)
    status, body = run_job(service)
    assert status == "released" and body is not None
    assert counts(body) == protected_counts(store)
    assert not (store / "planted.txt").exists()
    assert not (store / "events" / "planted.txt").exists()
    assert (store / "enclave" / "rounding.key").read_bytes() == key
    with sqlite3.connect(database) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "planted" not in tables


def test_a_module_reads_only_the_tables_algorithms_read(holder):
    service, store = holder
    (store / "quarantine").mkdir(exist_ok=True)
    private = [store / "quarantine" / "rows.csv", store / "ingest_report.json"]
    private[0].write_text("user_id,reason\n32470000001,malformed timestamp\n")
    private[1].touch()
    reads = "".join(
        f"    try:\n        open({str(path)!r}).read()\n    except OSError:\n        pass\n"
        f"    else:\n        raise RuntimeError('read {path.name}')\n"
        for path in private
    )
    certify(service, _in_compute(MODULE, reads.strip()))
    status, body = run_job(service)
    assert status == "released" and body is not None  # neither file could be read
    assert counts(body) == protected_counts(store)


def test_protected_counts_differ_from_the_exact_ones(store, tmp_path):
    """The premise of the tests above: protection visibly moves every count here."""
    copy = Path(shutil.copytree(store, tmp_path / "store"))
    protected, exact = protected_counts(copy), exact_counts(copy)
    assert protected.keys() == exact.keys()
    assert all(protected[area] != exact[area] for area in exact), (protected, exact)


def test_the_embedded_runner_computes_submitted_code_in_a_worker(holder):
    """`Enclave.run` computes in its own process, but never a submission's code."""
    service, store = holder
    expected, exact = protected_counts(store), exact_counts(store)
    certify(service, HOSTILE["patches_protect_in_compute"])
    release = service.run_inline(analyst="alice", request=JobRequest(algorithm="first_cell"))
    released = dict(zip(release.table["area_code"], release.table["device_count"], strict=True))
    assert released == expected and released != exact


def test_a_periods_view_keeps_the_stores_choice_of_hourly_positions(holder, tmp_path):
    # Without the choice beside them, the view's summaries would read as stale and the
    # submitted code's filter would pass over every event.
    _, store = holder
    summarise(Store(store), positions=True)
    into = tmp_path / "view"
    into.mkdir()
    view, readable = period_view(Store(store), Store(store).days()[1:3], into)
    tables = open_tables(Store(view))
    assert tables.device_days is not None and tables.positions
    assert str(positions_choice(Store(store))) in readable
