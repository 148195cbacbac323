"""No release path bypasses the disclosure policy: every algorithm through every output route.

For every algorithm of the registry (so a new one is covered without editing this file) and
every route by which a release leaves the enclave:

- ``cli``: ``cellcensus run ALGORITHM --out release.json`` (and ``.csv``);
- ``python``: the embedded default, ``InProcessClient(runner=Enclave(...).run)`` (the demo's
  route);
- ``http``: the FastAPI service (submit, worker subprocess, poll, result in JSON, CSV,
  Parquet and GeoJSON),

a release is made on a small store (the conformance world, written in the store's layout,
with one more area that holds only a sliver of one cell) where every algorithm has cells of
0 < devices <= 15 and cells well above it. Two policies: the default policy of the
algorithm (differential privacy, threshold 15, rounding to 5) and a steward's exact policy
(threshold 15, rounding to 5, no noise); every algorithm meets both in process and one each
on the CLI and over HTTP (see `kinds_for`). The exact output of the
algorithm, computed here inside the holder, is the oracle the released table is checked
against: complete public key set, nothing at or below the threshold released (exactly, when
there is no noise), every count a multiple of the rounding base and never below the
threshold, noise where the policy asks for it, the ledger charged, and provenance (job,
algorithm, version, parameters, policy with its epsilon, engine) that says what was applied.
"""

from __future__ import annotations

import io
import json
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cellcensus.cli import app as cli_app
from cellcensus.holder.algorithms import Algorithm, Certification, get_algorithm
from cellcensus.holder.algorithms.conformance import (
    START,
    World,
    conformance_world,
    parameter_sets,
)
from cellcensus.holder.algorithms.registry import registered_algorithms
from cellcensus.holder.api import create_app
from cellcensus.holder.disclosure import DisclosurePolicy, policy_for
from cellcensus.holder.enclave import Enclave, EnclaveService, open_state
from cellcensus.holder.enclave.compute import job_period, key_domain, open_tables
from cellcensus.holder.enclave.conformance import load_submitted, manifest_summary, source_hash
from cellcensus.holder.enclave.policies import ReleasePolicy
from cellcensus.holder.enclave.release_formats import geojson_keys
from cellcensus.holder.enclave.state import default_state_url
from cellcensus.holder.enclave.worker import SUBMITTED_JOB_FAILED, run_in_subprocess
from cellcensus.holder.store import Store
from cellcensus.nso.client import InProcessClient
from cellcensus.release import Release

sys.path.insert(0, str(Path(__file__).parent / "api"))

from tiny_store import PASSWORD, add_users, settings_for  # type: ignore[import-not-found]

pytestmark = pytest.mark.slow  # dozens of releases; about half a minute

ALGORITHMS = sorted(registered_algorithms())
ROUTES = ("cli", "python", "http")
KINDS = ("default", "exact")
"""`default`: the algorithm's shipped policy (no steward policy stored); `exact`: `EXACT`."""


def kinds_for(route: str, name: str) -> tuple[str, ...]:
    """Which policies `name` is released under on `route`.

    In process, both. The CLI and HTTP cost more per release (HTTP starts a worker
    subprocess per job), so there each algorithm gets one policy, alternating, and the
    other one on the other route: every algorithm meets both policies on at least two
    routes, and every route meets both policies.
    """
    if route == "python":
        return KINDS
    index = ALGORITHMS.index(name) + (1 if route == "http" else 0)
    return (KINDS[index % 2],)


EXACT = DisclosurePolicy(min_count=15, rounding_base=5, secondary_suppression=True, dp=None)
ANALYST = "route_analyst"
BUDGET = 500.0
DELTA_BUDGET = 1e-3  # the Gaussian releases (present_population, trips_od) spend delta
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
SLIVER_AREA = "A5"


# --- the store ---------------------------------------------------------------------------


def small_world() -> World:
    """The conformance world with 400 residents, 60 roamers, and a sliver area.

    Cell C11 gives 10 % of its weight to area A5, so every area-keyed output has a cell of a
    few devices beside cells of dozens: both sides of the threshold.
    """
    world = conformance_world(residents=400, roamers=60)
    allocation = world.allocation
    sliver = pd.DataFrame(
        {"cell_id": ["C11", "C11"], "area_code": ["A2", SLIVER_AREA], "weight": [0.9, 0.1]}
    )
    allocation = pd.concat([allocation[allocation["cell_id"] != "C11"], sliver], ignore_index=True)
    return World(events=world.events, cells=world.cells, allocation=allocation)


def write_store(world: World, root: Path) -> Path:
    """Write `world` in the holder's store layout (day files, cells, allocation, metadata)."""
    store = Store(root)
    events = world.arrow["events"]
    for day in world.dates:
        path = store.day_path(day)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(events.filter(pc.equal(events["local_date"], day)), path)
    pq.write_table(world.arrow["cells"], store.cells_path)
    store.allocation_path("municipality").parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(world.arrow["allocation"], store.allocation_path("municipality"))
    metadata = {
        "period": {"start": START.isoformat(), "end": world.dates[-1].isoformat()},
        "timezone": "Europe/Brussels",
        "market_share": 0.4,
        "sampling_fraction": 1.0,
    }
    store.metadata_path.write_text(json.dumps(metadata))
    return root


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_store(small_world(), tmp_path_factory.mktemp("release-paths-store"))


# --- the oracle: exact outputs, computed inside the holder ---------------------------------

Key = tuple[str, ...]


def key_text(value: Any) -> str:
    """One key value as text, the same whatever format carried it (date, int, str)."""
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def counts_by_key(table: pd.DataFrame, keys: tuple[str, ...]) -> dict[Key, float | None]:
    """{key tuple: device_count (None where withheld)}, refusing repeated keys."""
    found: dict[Key, float | None] = {}
    for row in table.to_dict("records"):
        key = tuple(key_text(row[name]) for name in keys)
        assert key not in found, f"key {key} appears twice in the released table"
        value = row["device_count"]
        found[key] = None if value is None or pd.isna(value) else float(value)
    return found


@dataclass(frozen=True)
class Case:
    """One algorithm as the test runs it: parameters, public keys, exact counts."""

    algorithm: Algorithm
    parameters: dict[str, Any]
    public: frozenset[Key]
    exact: Mapping[Key, float]

    @property
    def name(self) -> str:
        return self.algorithm.manifest.name

    @property
    def certified(self) -> bool:
        return self.algorithm.manifest.certification is Certification.CERTIFIED

    def policy(self, kind: str) -> DisclosurePolicy:
        return policy_for(algorithm=self.name) if kind == "default" else EXACT


@pytest.fixture(scope="session")
def cases(store: Path) -> dict[str, Case]:
    opened = Store(store)
    tables = open_tables(opened)
    found = {}
    for name in ALGORITHMS:
        algorithm = get_algorithm(name)
        parameters = parameter_sets(algorithm)[0]  # the defaults, else the first example
        parsed = algorithm.manifest.parse(parameters)
        period = job_period(opened, parsed.model_dump(mode="json"))
        domains = [
            [
                key_text(value)
                for value in key_domain(k, tables=tables, parsed=parsed, period=period)
            ]
            for k in algorithm.manifest.keys
        ]
        public = frozenset(pd.MultiIndex.from_product(domains).tolist())
        exact = {
            key: value or 0.0
            for key, value in counts_by_key(
                algorithm.run(tables, parameters), algorithm.manifest.key_names
            ).items()
        }
        found[name] = Case(algorithm, parameters, public, exact)
    return found


# --- the routes --------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one route gave for one algorithm under one policy.

    Attributes:
        release: The release (None when the route refused the job).
        refusal: Why the route refused, when it did.
        charged: Epsilon the route's own ledger or job record charged for this job.
        job_id: The job id the route reported beside the release.
        other_tables: The same release in the route's other formats (CSV, Parquet, ...).
        other_provenance: The provenance those formats carry, by format.
    """

    release: Release | None = None
    refusal: str | None = None
    charged: float | None = None
    job_id: str | None = None
    other_tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    other_provenance: dict[str, dict[str, Any]] = field(default_factory=dict)


Outcomes = dict[tuple[str, str], Outcome]


def exact_policy_body() -> dict[str, Any]:
    return ReleasePolicy(disclosure=EXACT).to_dict()


def cli_params(parameters: dict[str, Any]) -> list[str]:
    return [
        arg
        for name, value in parameters.items()
        for arg in ("--param", f"{name}={json.dumps(value)}")
    ]


@pytest.fixture(scope="session")
def cli_outcomes(
    store: Path, cases: dict[str, Case], tmp_path_factory: pytest.TempPathFactory
) -> Outcomes:
    """`cellcensus run`: releases under the default policy, then under a steward's one."""
    out_dir = tmp_path_factory.mktemp("cli-releases")
    service = EnclaveService(store=store, state=open_state(default_state_url(store)))
    service.set_budget(
        analyst=ANALYST, project="default", epsilon=BUDGET, delta=DELTA_BUDGET, steward="test"
    )
    runner = CliRunner()
    outcomes: Outcomes = {}
    for kind in KINDS:
        if kind == "exact":
            for name in cases:
                service.policies.set(name, exact_policy_body(), steward="test")
        for name, case in cases.items():
            if kind not in kinds_for("cli", name):
                continue
            outcome = Outcome()
            # Then as CSV: the same request, so the same (cached) release.
            for suffix in (".json", ".csv"):
                path = out_dir / f"{name}-{kind}{suffix}"
                before, _ = service.budget_left(analyst=ANALYST, project="default")
                result = runner.invoke(
                    cli_app,
                    [
                        "run",
                        name,
                        "--store",
                        str(store),
                        "--out",
                        str(path),
                        "--analyst",
                        ANALYST,
                        *cli_params(case.parameters),
                    ],
                )
                after, _ = service.budget_left(analyst=ANALYST, project="default")
                if result.exit_code != 0:
                    assert not path.exists(), f"{name}: a refused run wrote {path}"
                    outcome.refusal = result.output
                    break
                if suffix == ".json":
                    outcome.release = Release.from_json(path.read_text())
                    outcome.charged = before - after
                    printed = re.search(r"job\s+([0-9a-f]{32})", result.output)
                    assert printed, f"{name}: the CLI names no job: {result.output}"
                    outcome.job_id = printed[1]
                else:
                    # The same request again: the same release, nothing charged again.
                    assert after == before, f"{name}: a repeated request was charged again"
                    outcome.other_tables["cli-csv"] = pd.read_csv(path, dtype=str)
                    sidecar = path.with_suffix(".provenance.json")
                    assert sidecar.is_file(), f"{name}: the CSV release has no {sidecar.name}"
                    document = json.loads(sidecar.read_text())
                    outcome.other_provenance["cli-csv"] = document["provenance"]
                    assert outcome.release is not None
                    assert document["published"] == outcome.release.published, name
            outcomes[(name, kind)] = outcome
    return outcomes


@pytest.fixture(scope="session")
def python_outcomes(
    store: Path, cases: dict[str, Case], tmp_path_factory: pytest.TempPathFactory
) -> Outcomes:
    """`InProcessClient` over `Enclave.run`: the default policy, then `Enclave(policy=EXACT)`."""
    state_url = f"sqlite:///{tmp_path_factory.mktemp('python-state') / 'state.db'}"
    outcomes: Outcomes = {}
    for kind in KINDS:
        enclave = Enclave(
            store=store,
            state_url=state_url,
            policy=None if kind == "default" else EXACT,
            embedded_epsilon=None,
        )
        enclave.grant_budget(analyst=ANALYST, epsilon=BUDGET, delta=DELTA_BUDGET)
        client = InProcessClient(runner=enclave.run, analyst=ANALYST)
        for name, case in cases.items():
            before, _ = enclave.service.budget_left(analyst=ANALYST, project="default")
            try:
                release = client.run(algorithm=name, parameters=case.parameters)
            except Exception as error:
                outcomes[(name, kind)] = Outcome(refusal=repr(error))
                continue
            after, _ = enclave.service.budget_left(analyst=ANALYST, project="default")
            outcomes[(name, kind)] = Outcome(
                release=release, charged=before - after, job_id=release.provenance.job_id
            )
    return outcomes


class Http:
    """A user of the in-process service."""

    def __init__(self, client: TestClient, username: str) -> None:
        self.client = client
        answer = client.post("/auth/token", json={"username": username, "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        self.headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.client.request(method, path, headers=self.headers, **kwargs)


def http_user(steward: Http) -> None:
    """An analyst allowed every algorithm, with budget for all the releases of this module."""
    first = "the steward's first passphrase"  # which the analyst changes at once
    created = steward.call(
        "POST", "/users", json={"username": ANALYST, "role": "analyst", "password": first}
    )
    assert created.status_code == 201, created.text
    token = steward.client.post("/auth/token", json={"username": ANALYST, "password": first})
    changed = steward.client.post(
        "/auth/password",
        json={"current_password": first, "new_password": PASSWORD},
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
    )
    assert changed.status_code == 204, changed.text
    scoped = steward.call("PUT", f"/users/{ANALYST}/scopes", json={"scopes": ["*:*:*"]})
    assert scoped.status_code == 200, scoped.text
    funded = steward.call(
        "PUT", f"/users/{ANALYST}/budget", json={"epsilon": BUDGET, "delta": DELTA_BUDGET}
    )
    assert funded.status_code == 200, funded.text


def fetch_formats(analyst: Http, job_id: str, outcome: Outcome) -> None:
    """The release as JSON, and the same release as CSV, Parquet and GeoJSON (or its 406)."""
    body = analyst.call("GET", f"/jobs/{job_id}/result", params={"format": "json"})
    assert body.status_code == 200, body.text
    outcome.release = Release.from_json(body.text)
    csv = analyst.call("GET", f"/jobs/{job_id}/result", params={"format": "csv"})
    assert csv.status_code == 200, csv.text
    outcome.other_tables["http-csv"] = pd.read_csv(io.StringIO(csv.text), dtype=str)
    outcome.other_provenance["http-csv"] = json.loads(csv.headers["Cellcensus-Provenance"])
    parquet = analyst.call("GET", f"/jobs/{job_id}/result", params={"format": "parquet"})
    assert parquet.status_code == 200, parquet.text
    table = pq.read_table(io.BytesIO(parquet.content))
    outcome.other_tables["http-parquet"] = table.to_pandas()
    metadata = table.schema.metadata or {}
    outcome.other_provenance["http-parquet"] = json.loads(metadata[b"cellcensus.provenance"])
    geo = analyst.call("GET", f"/jobs/{job_id}/result", params={"format": "geojson"})
    if geojson_keys(list(outcome.release.table.columns)) is None:
        # No area to place a row on: a problem naming the formats to ask for, never a 500.
        assert geo.status_code == 406, geo.text
        assert "format=json, csv or parquet" in geo.json()["detail"]
    else:
        assert geo.status_code == 200, geo.text
        collection = geo.json()
        outcome.other_tables["http-geojson"] = pd.DataFrame(
            [feature["properties"] for feature in collection["features"]]
        )
        outcome.other_provenance["http-geojson"] = collection["provenance"]


@pytest.fixture(scope="session")
def http_outcomes(
    store: Path, cases: dict[str, Case], tmp_path_factory: pytest.TempPathFactory
) -> Outcomes:
    """The service: jobs under the default policy, then under a steward's `*` policy."""
    settings = settings_for(
        store, tmp_path_factory.mktemp("http-state"), workers=2, warm_worker=True
    )
    add_users(settings)
    outcomes: Outcomes = {}
    with TestClient(create_app(settings)) as client:
        steward = Http(client, "steward")
        http_user(steward)
        analyst = Http(client, ANALYST)
        submitted: dict[tuple[str, str], str] = {}
        for kind in KINDS:
            if kind == "exact":
                # Jobs record their policy when submitted: the default ones keep theirs.
                answer = steward.call("PUT", "/policies/*", json=exact_policy_body())
                assert answer.status_code == 200, answer.text
            for name, case in cases.items():
                if kind not in kinds_for("http", name):
                    continue
                body = {"algorithm": name, "parameters": case.parameters}
                answer = analyst.call("POST", "/jobs", json=body)
                if answer.status_code != 202:
                    outcomes[(name, kind)] = Outcome(refusal=answer.text)
                    continue
                submitted[(name, kind)] = answer.json()["id"]
        jobs = {key: wait_for(analyst, job_id) for key, job_id in submitted.items()}
        charged = ledger_charges(Http(client, "auditor"))
        for (name, kind), job in jobs.items():
            assert float(job["epsilon"]) == charged.get(job["id"], 0.0), (
                f"{name}: the job says epsilon {job['epsilon']}, the ledger charged "
                f"{charged.get(job['id'])}"
            )
            outcome = Outcome(job_id=job["id"], charged=charged.get(job["id"], 0.0))
            outcomes[(name, kind)] = outcome
            if job["status"] != "released":
                outcome.refusal = f"job {job['status']}: {job['error']}"
                continue
            fetch_formats(analyst, job["id"], outcome)
    return outcomes  # the service is stopped: everything was fetched


def ledger_charges(auditor: Http) -> dict[str, float]:
    """Epsilon charged to the ledger per job, as the audit log records it."""
    charged: dict[str, float] = {}
    after = 0
    while True:
        page = auditor.call("GET", "/audit", params={"after": after, "limit": 5000})
        assert page.status_code == 200, page.text
        entries = page.json()["entries"]
        if not entries:
            return charged
        for entry in entries:
            if entry["action"] == "budget.charged":
                job_id = entry["target"].removeprefix("job:")
                charged[job_id] = charged.get(job_id, 0.0) + float(entry["details"]["epsilon"])
        after = page.json()["next_after"]


def wait_for(analyst: Http, job_id: str, timeout_s: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job: dict[str, Any] = analyst.call("GET", f"/jobs/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.25)
    raise AssertionError(f"job {job_id} did not finish in {timeout_s} s")


def route_outcomes(request: pytest.FixtureRequest, route: str) -> Outcomes:
    """One route's outcomes (each route's fixture runs once, on first use)."""
    found: Outcomes = request.getfixturevalue(f"{route}_outcomes")
    return found


# --- the checks --------------------------------------------------------------------------


def released_counts(case: Case, table: pd.DataFrame) -> dict[Key, float | None]:
    keys = case.algorithm.manifest.key_names
    assert set(keys) <= set(table.columns), f"{case.name}: released {list(table.columns)}"
    found = counts_by_key(table, keys)
    assert set(found) == case.public, (
        f"{case.name}: the release is not one row per public key "
        f"({len(found)} rows, {len(case.public)} public keys)"
    )
    return found


def check_protected(case: Case, table: pd.DataFrame, *, kind: str, where: str) -> None:
    """The released table is what the policy lets out of the exact counts, nothing more."""
    policy = case.policy(kind)
    released = released_counts(case, table)
    shown = {key: value for key, value in released.items() if value is not None}
    for key, value in shown.items():
        assert value >= 0 and value % policy.rounding_base == 0, (
            f"{where}: {case.name} {key} = {value} is not a multiple of {policy.rounding_base}"
        )
        # Suppression applies to the (noisy) count before rounding: what survives is above
        # the threshold, so after rounding it is more than one base below it at worst.
        assert value > policy.min_count - policy.rounding_base, (
            f"{where}: {case.name} {key} = {value} released below the threshold"
        )
    if policy.dp is None:
        assert "ci95" not in table.columns, f"{where}: {case.name} says noise was added"
        for key, shown_value in released.items():
            exact = case.exact.get(key, 0.0)
            if exact <= policy.min_count:
                assert shown_value is None, (
                    f"{where}: {case.name} {key} has {exact:g} devices, at or below the "
                    f"threshold {policy.min_count:g}, yet {shown_value} was released"
                )
            else:
                assert shown_value is not None, f"{where}: {case.name} {key} ({exact:g}) withheld"
                assert abs(shown_value - exact) < policy.rounding_base, (
                    f"{where}: {case.name} {key}: released {shown_value} for {exact:g} devices, "
                    f"more than rounding to {policy.rounding_base} explains"
                )
    else:
        assert "ci95" in table.columns, f"{where}: {case.name} released without noise"
        assert (pd.to_numeric(table["ci95"]) > 0).all(), f"{where}: {case.name} noise of 0"


def check_provenance(
    case: Case, provenance: Mapping[str, Any], *, kind: str, where: str, job_id: str | None
) -> None:
    policy = case.policy(kind)
    parsed = case.algorithm.manifest.parse(case.parameters).model_dump(mode="json")
    assert provenance["algorithm"] == case.name, where
    assert provenance["version"] == case.algorithm.manifest.version, where
    assert provenance["parameters"] == parsed, where
    assert provenance["policy"] == policy.to_dict(), (
        f"{where}: {case.name} released under {provenance['policy']}, not {policy.to_dict()}"
    )
    dp = provenance["policy"]["dp"]
    assert (0.0 if dp is None else dp["epsilon"]) == policy.epsilon, where
    assert JOB_ID.match(provenance["job_id"]), f"{where}: job id {provenance['job_id']!r}"
    if job_id is not None:
        assert provenance["job_id"] == job_id, f"{where}: release of another job"
    assert provenance["engine"] == "duckdb", where
    assert provenance["created_at"], where
    assert provenance["privacy_units"] == units_spanned(case), (
        f"{where}: {case.name} says it spans {provenance['privacy_units']} privacy units"
    )


def units_spanned(case: Case) -> int:
    """Distinct values of the manifest's unit keys among the public keys (1 without any)."""
    names = case.algorithm.manifest.key_names
    positions = [names.index(name) for name in case.algorithm.manifest.unit_keys]
    return len({tuple(key[i] for i in positions) for key in case.public}) if positions else 1


def noise_visible(case: Case, released: Mapping[Key, float | None]) -> int:
    """Cells whose release no threshold-and-rounding of the exact count explains."""
    changed = 0
    for key, value in released.items():
        exact = case.exact.get(key, 0.0)
        if value is None:
            changed += exact > case.policy("default").min_count + 10
        else:
            changed += abs(value - exact) >= case.policy("default").rounding_base
    return changed


# --- the tests ---------------------------------------------------------------------------


def test_the_store_has_cells_on_both_sides_of_the_threshold(cases: dict[str, Case]) -> None:
    for name, case in cases.items():
        small = [key for key, value in case.exact.items() if 0 < value <= EXACT.min_count]
        large = [key for key, value in case.exact.items() if value > EXACT.min_count + 5]
        assert small, f"{name}: no cell of 1..{EXACT.min_count:g} devices to suppress"
        assert large, f"{name}: no cell above the threshold to release"


def check_outcome(case: Case, outcome: Outcome, *, route: str, kind: str) -> None:
    """One route's release of one algorithm under one policy, checked against the oracle."""
    where = f"{route}/{kind}"
    if not case.certified:
        # Only certified algorithms run for analysts: the route must refuse, releasing nothing.
        assert outcome.release is None and outcome.refusal, f"{where}: {case.name} was released"
        return
    assert outcome.release is not None, f"{where}: {case.name} refused: {outcome.refusal}"
    release = outcome.release
    check_protected(case, release.table, kind=kind, where=where)
    provenance = json.loads(release.to_json())["provenance"]
    check_provenance(case, provenance, kind=kind, where=where, job_id=outcome.job_id)
    assert outcome.charged == pytest.approx(case.policy(kind).epsilon), (
        f"{where}: {case.name} charged epsilon {outcome.charged}, the policy spends "
        f"{case.policy(kind).epsilon}"
    )
    assert release.published["market_share"] == 0.4, where
    expected = released_counts(case, release.table)
    for fmt, table in outcome.other_tables.items():
        assert released_counts(case, table) == expected, f"{where}: {fmt} differs from JSON"
        check_protected(case, table, kind=kind, where=f"{where}/{fmt}")
    for fmt, other in outcome.other_provenance.items():
        check_provenance(case, other, kind=kind, where=f"{where}/{fmt}", job_id=outcome.job_id)


@pytest.mark.parametrize("route", ROUTES)
def test_every_release_goes_through_disclosure(
    route: str, cases: dict[str, Case], request: pytest.FixtureRequest
) -> None:
    """Every algorithm of the registry, released on `route`, under the policies it meets there.

    One test per route (its releases are made once, by its fixture): the failures of all
    algorithms are reported together. Then noise must show on the route's default releases:
    cells released further from the exact count than rounding moves them. Per release that
    chance is not small for an algorithm of a few cells, so it is counted over the route's
    releases (hundreds of cells): a route that skipped the noise would show none.
    """
    outcomes = route_outcomes(request, route)
    planned = {(name, kind) for name in ALGORITHMS for kind in kinds_for(route, name)}
    assert set(outcomes) == planned
    failures = []
    for name, kind in sorted(planned):
        try:
            check_outcome(cases[name], outcomes[(name, kind)], route=route, kind=kind)
        except AssertionError as error:
            failures.append(f"{name}: {error}")
    assert not failures, "\n".join(failures)
    changed = sum(
        noise_visible(cases[name], released_counts(cases[name], outcome.release.table))
        for (name, kind), outcome in outcomes.items()
        if kind == "default" and outcome.release is not None
    )
    assert changed > 0, f"{route}: every default release equals its exact counts, rounded"


@pytest.mark.parametrize("name", ALGORITHMS)
def test_the_checks_catch_a_release_that_bypassed_disclosure(
    name: str, cases: dict[str, Case]
) -> None:
    """The exact output, released as is, fails the checks under either policy."""
    case = cases[name]
    keys = case.algorithm.manifest.key_names
    raw = pd.DataFrame(
        [(*key, case.exact.get(key, 0.0)) for key in sorted(case.public)],
        columns=[*keys, "device_count"],
    )
    for kind in KINDS:
        with pytest.raises(AssertionError):
            check_protected(case, raw, kind=kind, where="raw")
    thresholded = raw.assign(
        device_count=raw["device_count"].where(raw["device_count"] > EXACT.min_count)
    )
    with pytest.raises(AssertionError):  # suppressed but neither rounded nor noisy
        check_protected(case, thresholded, kind="default", where="thresholded")


LEAKY_MODULE = '''
"""Counts devices per area, and on failure tells the exact counts in its error message."""
from cellcensus.errors import CellcensusError
from cellcensus.holder.algorithms.base import (
    AREA_KEY, Algorithm, Certification, Manifest, Parameters,
)


def compute(tables, params):
    located = tables.events.select("device_id", "cell_id").distinct().join(
        tables.allocation, "cell_id"
    )
    exact = located.group_by("area_code").agg(device_count=located.weight.sum())
    raise CellcensusError("exact counts: " + exact.to_pandas().to_json(orient="records"))


leaky = Algorithm(
    manifest=Manifest(
        name="leaky",
        version="0.1.0",
        certification=Certification.DRAFT,
        summary="Devices per area.",
        parameters=Parameters,
        keys=(AREA_KEY,),
        privacy_unit="device over the period",
        contribution_bound=1.0,
        reference="A test of the error route.",
    ),
    compute=compute,
)
'''


def test_a_submitted_algorithm_cannot_release_through_its_error_message(store: Path) -> None:
    """A job's error reaches the analyst (GET /jobs/{id}): submitted code's text must not."""
    leaky_hash = source_hash(LEAKY_MODULE)
    spec = {
        "kind": "job",
        "job_id": "0" * 32,
        "store": str(store),
        "engine": "duckdb",
        "algorithm": "leaky",
        "version": "0.1.0",
        "code_hash": leaky_hash,
        "source": LEAKY_MODULE,
        "manifest": manifest_summary(load_submitted(LEAKY_MODULE, sha256=leaky_hash)),
        "level": "municipality",
        "parameters": {},
        "policy": exact_policy_body(),
        "charge": None,
        "memory_mb": 4096,
        "timeout_s": 120.0,
        "reader": "analyst",
    }
    outcome = run_in_subprocess(spec, timeout_s=120.0, on_stage=lambda _stage: None)
    assert outcome.result is None
    assert outcome.error == SUBMITTED_JOB_FAILED
    assert "exact counts" in outcome.detail  # for the steward, in the audit log
