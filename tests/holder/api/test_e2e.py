"""The real server on loopback (uvicorn in a subprocess), driven through the HttpClient."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import typer
from typer.testing import CliRunner

from cellcensus.holder.api.commands import register
from cellcensus.holder.disclosure import DisclosurePolicy
from cellcensus.holder.enclave import Enclave
from cellcensus.holder.enclave.audit import AuditLog
from cellcensus.holder.enclave.state import open_state
from cellcensus.nso.client import HttpClient

pytestmark = pytest.mark.slow
PASSWORD = "correct horse battery staple"
EXACT = {"min_count": 15, "rounding_base": 5, "dp": None}


def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LiveServer:
    def __init__(self, store: Path, state: Path, url: str = "") -> None:
        self.store, self.state = store, state
        self.url = url or f"sqlite:///{state / 'state.db'}"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def args(self, *more: str) -> list[str]:
        return ["--store", str(self.store), "--database-url", self.url, *more]

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "cellcensus.holder.api",
            "serve",
            "--port",
            str(self.port),
            "--jwt-key-file",
            str(self.state / "jwt.key"),
            "--workers",
            "1",
            *self.args(),
        ]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError("the server did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def live(
    tiny_store: Path, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> Iterator[LiveServer]:
    url = "" if backend == "sqlite" else str(request.getfixturevalue("postgres_url"))
    server = LiveServer(tiny_store, tmp_path, url)
    runner = CliRunner()
    env = {"CELLCENSUS_PASSWORD": PASSWORD}
    # As the holder makes users at the command line (one made by a steward through the
    # service would have to choose a password first, and log in once more to do so).
    for name, role in (("steward", "steward"), ("alice", "analyst")):
        added = runner.invoke(
            cli(), ["users", "add", name, "--role", role, *server.args()], env=env
        )
        assert added.exit_code == 0, added.output
    server.start()
    steward = HttpClient(
        base_url=server.base, username="steward", password=PASSWORD, progress=False
    )
    steward._request("PUT", "/users/alice/scopes", json={"scopes": ["usual_residence:*:*"]})
    steward._request("PUT", "/users/alice/budget", json={"epsilon": 2.0})
    steward._request("PUT", "/policies/usual_residence", json={"disclosure": EXACT})
    steward.close()
    yield server
    server.kill()


def test_http_client_gets_the_same_release_as_in_process(live, tiny_store, tmp_path):
    with HttpClient(
        base_url=live.base, username="alice", password=PASSWORD, progress=False
    ) as client:
        remote = client.run(algorithm="usual_residence", parameters={"min_nights": 2})
        frame = client.fetch_frame(remote.provenance.job_id)
    enclave = Enclave(
        store=tiny_store,
        policy=DisclosurePolicy.from_dict(EXACT),
        state_url=f"sqlite:///{tmp_path / 'inprocess.db'}",
    )
    local = enclave.run(algorithm="usual_residence", parameters={"min_nights": 2}, analyst="alice")
    expected = local.table.astype({"device_count": "float64"}).reset_index(drop=True)
    got = remote.table[expected.columns].astype({"device_count": "float64"})
    assert got.equals(expected)
    for field in ("algorithm", "version", "parameters", "policy", "engine"):
        assert getattr(remote.provenance, field) == getattr(local.provenance, field)
    assert remote.published == local.published
    assert frame.attrs["provenance"]["job_id"] == remote.provenance.job_id


def charges_of(url: str, job_id: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        found = conn.execute(
            sa.text("SELECT count(*) FROM privacy_charge WHERE job_id = :j"), {"j": job_id}
        ).scalar()
    engine.dispose()
    return int(found or 0)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_kill_9_mid_job_then_restart(live):
    noisy = {**EXACT, "dp": {"epsilon": 0.5}, "rounding_base": 1}
    with HttpClient(
        base_url=live.base, username="steward", password=PASSWORD, progress=False
    ) as steward:
        steward._request("PUT", "/policies/usual_residence", json={"disclosure": noisy})
    client = HttpClient(base_url=live.base, username="alice", password=PASSWORD, progress=False)
    job_id = client.submit(algorithm="usual_residence", parameters={"min_nights": 3})
    deadline = time.monotonic() + 30
    while client.status(job_id)["status"] != "running":
        assert time.monotonic() < deadline, "job never started"
        time.sleep(0.05)
    live.kill()
    assert charges_of(live.url, job_id) <= 1
    live.start()
    client = HttpClient(base_url=live.base, username="alice", password=PASSWORD, progress=False)
    final = wait_final(client, job_id)
    assert final in ("released", "failed")
    assert charges_of(live.url, job_id) <= 1
    if final == "released":
        assert len(client.fetch(job_id).table) == 3
        left = client._request("GET", "/me").json()["budget"][0]["epsilon_left"]
        assert left == pytest.approx(1.5)  # charged once, not once per run
    client.close()
    verdict = AuditLog(open_state(live.url)).verify()
    assert verdict.ok, verdict
    result = CliRunner().invoke(cli(), ["audit", "verify", *live.args()])
    assert result.exit_code == 0 and "audit log ok" in result.output


def wait_final(client: HttpClient, job_id: str) -> str:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        status = str(client.status(job_id)["status"])
        if status in ("released", "failed"):
            return status
        time.sleep(0.2)
    raise AssertionError("job never finished after the restart")


def test_a_client_cannot_name_itself_in_x_forwarded_for(live):
    # No proxy is configured: a client of the loopback service that sends another address
    # per attempt is still one client, limited as such and audited at its own address.
    statuses = [
        httpx.post(
            f"{live.base}/auth/token",
            json={"username": "alice", "password": f"guess number {attempt}"},
            headers={"X-Forwarded-For": f"203.0.113.{attempt}"},
        ).status_code
        for attempt in range(12)
    ]
    assert statuses == [401] * 10 + [429] * 2
    failed = [
        entry
        for entry in AuditLog(open_state(live.url)).entries(limit=5000)
        if entry.action == "login.failed"
    ]
    assert {entry.target for entry in failed} == {"client:127.0.0.1"}


def test_a_proxy_the_operator_names_is_believed(live, monkeypatch):
    live.kill()
    monkeypatch.setenv("CELLCENSUS_FORWARDED_ALLOW_IPS", "127.0.0.1")
    live.start()
    answer = httpx.post(
        f"{live.base}/auth/token",
        json={"username": "alice", "password": "a wrong password"},
        headers={"X-Forwarded-For": "203.0.113.5"},
    )
    assert answer.status_code == 401
    failed = [
        entry
        for entry in AuditLog(open_state(live.url)).entries(limit=5000)
        if entry.action == "login.failed"
    ]
    assert [entry.target for entry in failed] == ["client:203.0.113.5"]
