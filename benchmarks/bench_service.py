"""Load test of the service on loopback: 20 concurrent analysts fetching cached results.

Starts `cellcensus serve` (uvicorn, one process) over the tests' tiny store, releases one
`usual_residence` job, lets 20 analysts ask the identical question (each gets the cached
release: no recomputation, no budget), then has all 20 fetch their result concurrently for a
few seconds. Prints the request count, throughput and latency percentiles; the bar is p99 under
100 ms. Bounded in time (``--seconds``, default 4) and count (``--max-requests``); loopback only.

    .venv/bin/python benchmarks/bench_service.py [--analysts 20] [--seconds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "holder" / "api"))

from tiny_store import PASSWORD, build_store  # type: ignore[import-not-found]  # noqa: E402

from cellcensus.holder.api.users import Role, Users  # noqa: E402
from cellcensus.holder.enclave.service import EnclaveService  # noqa: E402
from cellcensus.holder.enclave.state import open_state  # noqa: E402

JOB = {"algorithm": "usual_residence", "parameters": {"min_nights": 2}}
TARGET_P99_MS = 100.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def prepare(folder: Path, analysts: int) -> tuple[Path, str]:
    store = build_store(folder / "store")
    url = f"sqlite:///{folder / 'state.db'}"
    state = open_state(url)
    users = Users(state)
    service = EnclaveService(store=store, state=state)
    for index in range(analysts):
        name = f"analyst{index:02d}"
        users.add(username=name, role=Role.ANALYST, password=PASSWORD, actor="bench")
        users.set_scopes(name, ["usual_residence:*:*"], actor="bench")
        service.set_budget(analyst=name, project="default", epsilon=1.0, delta=0.0, steward="bench")
    return store, url


def start_server(store: Path, url: str, folder: Path, port: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "cellcensus.holder.api",
        "serve",
        "--store",
        str(store),
        "--database-url",
        url,
        "--port",
        str(port),
        "--jwt-key-file",
        str(folder / "jwt.key"),
        "--workers",
        "1",
    ]
    env = {
        **os.environ,
        "CELLCENSUS_REQUESTS_PER_MINUTE": "1000000",
        "CELLCENSUS_LOGIN_ATTEMPTS_PER_CLIENT_PER_MINUTE": "1000000",  # every analyst logs in here
    }
    server = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not start within 60 s")


def login(base: str, name: str) -> dict[str, str]:
    answer = httpx.post(f"{base}/auth/token", json={"username": name, "password": PASSWORD})
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def release_for_everyone(base: str, analysts: int) -> list[tuple[dict[str, str], str]]:
    """The first analyst's job is computed; the others' identical requests hit the cache."""
    sessions = []
    for index in range(analysts):
        headers = login(base, f"analyst{index:02d}")
        answer = httpx.post(f"{base}/jobs", json=JOB, headers=headers)
        if answer.status_code != 202:
            raise SystemExit(f"submission refused: {answer.text}")
        job = answer.json()
        deadline = time.monotonic() + 120
        while job["status"] not in ("released", "failed"):
            if time.monotonic() > deadline:
                raise SystemExit("the job did not finish within 120 s")
            time.sleep(0.2)
            job = httpx.get(f"{base}/jobs/{job['id']}", headers=headers).json()
        if job["status"] != "released":
            raise SystemExit(f"the job failed: {job['error']}")
        sessions.append((headers, job["id"]))
    return sessions


async def analyst(
    base: str, headers: dict[str, str], path: str, until: float, budget: int
) -> list[float]:
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=base, headers=headers) as client:
        while time.monotonic() < until and len(latencies) < budget:
            started = time.perf_counter()
            answer = await client.get(path)
            latencies.append((time.perf_counter() - started) * 1000)
            if answer.status_code != 200:
                raise SystemExit(f"fetch failed: {answer.status_code} {answer.text[:200]}")
    return latencies


async def load(
    base: str,
    sessions: list[tuple[dict[str, str], str]],
    seconds: float,
    max_requests: int,
    *,
    health: bool = False,
) -> tuple[list[float], float]:
    started = time.monotonic()
    until = started + seconds
    per_analyst = max(1, max_requests // len(sessions))
    paths = ["/health" if health else f"/jobs/{job_id}/result" for _, job_id in sessions]
    results = await asyncio.gather(
        *(
            analyst(base, headers, path, until, per_analyst)
            for (headers, _), path in zip(sessions, paths, strict=True)
        )
    )
    return [value for values in results for value in values], time.monotonic() - started


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--analysts", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--max-requests", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store, url = prepare(folder, args.analysts)
        port = free_port()
        server = start_server(store, url, folder, port)
        try:
            base = f"http://127.0.0.1:{port}"
            sessions = release_for_everyone(base, args.analysts)
            asyncio.run(load(base, sessions[:1], 0.5, 50))  # warm up connections and caches
            latencies, elapsed = asyncio.run(load(base, sessions, args.seconds, args.max_requests))
            floor, _ = asyncio.run(
                load(base, sessions, min(2.0, args.seconds), args.max_requests, health=True)
            )
        finally:
            server.terminate()
            server.wait(timeout=10)
    p99 = percentile(latencies, 0.99)
    print(f"cached result fetches by {args.analysts} concurrent analysts on loopback")
    print(f"  requests      {len(latencies)} in {elapsed:.1f} s ({len(latencies) / elapsed:.0f}/s)")
    print(f"  p50           {statistics.median(latencies):.1f} ms")
    print(f"  p90           {percentile(latencies, 0.90):.1f} ms")
    print(
        f"  p99           {p99:.1f} ms (target < {TARGET_P99_MS:.0f} ms: "
        f"{'met' if p99 < TARGET_P99_MS else 'NOT met'}, ratio {p99 / TARGET_P99_MS:.2f})"
    )
    print(f"  max           {max(latencies):.1f} ms")
    print(
        f"machine floor: GET /health under the same load: p50 {statistics.median(floor):.1f} ms,"
        f" p99 {percentile(floor, 0.99):.1f} ms (load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} cores)"
    )


if __name__ == "__main__":
    main()
