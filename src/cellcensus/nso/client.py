"""The NSO's view of the enclave: submit a job, receive a release. Nothing else crosses.

Two clients with the same `run(algorithm=, parameters=) -> Release`: `InProcessClient` for the
embedded default (the enclave in this process), `HttpClient` for the enclave as a service
(`cellcensus serve`), which also submits, waits with progress, and fetches a release as a
pandas (or GeoPandas) frame that carries its provenance.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Protocol

import httpx
import pandas as pd
from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

from cellcensus.console import err_console, live_progress
from cellcensus.errors import CellcensusError
from cellcensus.release import Release

FINAL = ("released", "failed", "rejected")
RETRIES = 4
"""Tries again after a refusal for rate (429) or a connection that failed, before giving up."""
LONGEST_RETRY_S = 60.0
"""A 429 asking to wait longer (a daily quota used up) is raised, not waited for."""
LONGEST_POLL_S = 5.0
"""Polling slows from `poll_s` to this, so a long job costs few requests of the quota."""


class Runner(Protocol):
    """Anything that runs a catalogue algorithm for an analyst and returns its release."""

    def __call__(
        self, *, algorithm: str, parameters: dict[str, Any], analyst: str, level: str
    ) -> Release:
        """Run one job at an area level (an allocation of the store, e.g. ``municipality``)."""
        ...


class InProcessClient:
    """The embedded default: the enclave runs in this process, behind the same interface.

    Holds only a callable that returns releases, so NSO code never touches the holder's store.
    """

    def __init__(self, *, runner: Runner, analyst: str) -> None:
        self._runner = runner
        self.analyst = analyst

    def run(
        self,
        *,
        algorithm: str,
        parameters: dict[str, Any] | None = None,
        level: str = "municipality",
    ) -> Release:
        """Run `algorithm` in the enclave at area `level` and return what it released."""
        return self._runner(
            algorithm=algorithm, parameters=parameters or {}, analyst=self.analyst, level=level
        )


class ServiceError(CellcensusError):
    """The service refused a request; the message is its problem document's detail."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"service answered {status}: {detail}")
        self.status = status
        self.detail = detail


class HttpClient:
    """An analyst's client of the enclave service (synchronous, for scripts and notebooks).

    Args:
        base_url: The service, e.g. ``http://127.0.0.1:8000``.
        username: Analyst name; with `password`, the client logs in and logs in again when
            its short-lived token expires.
        password: The analyst's password.
        token: A bearer token to use instead of logging in.
        level: Area level of the jobs (default ``municipality``).
        project: Budget account of the jobs.
        progress: Show a spinner with the job's stage while waiting.
        timeout_s: Timeout of each HTTP request.
        transport: An httpx transport (tests use an ASGI one).
    """

    def __init__(
        self,
        *,
        base_url: str,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        level: str = "municipality",
        project: str = "default",
        progress: bool = True,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=timeout_s, transport=transport)
        self._credentials = (username, password) if username and password else None
        self._token = token
        self.must_change_password = False
        """Whether the last login's password was set by a steward (`change_password` first)."""
        self.level = level
        self.project = project
        self.progress = progress

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def login(self) -> str:
        """Get a fresh token with the stored credentials."""
        if self._credentials is None:
            raise CellcensusError("no credentials: pass username and password, or a token")
        username, password = self._credentials
        answer = self._http.post("/auth/token", json={"username": username, "password": password})
        token = _checked(answer).json()
        self._token = str(token["access_token"])
        self.must_change_password = bool(token.get("must_change_password", False))
        return self._token

    def change_password(self, current: str, new: str) -> None:
        """Change the user's password; the service revokes the user's other tokens.

        The client logs in with `new` from now on.
        """
        self._request(
            "POST", "/auth/password", json={"current_password": current, "new_password": new}
        )
        self.must_change_password = False
        if self._credentials is not None:
            self._credentials = (self._credentials[0], new)

    def me(self) -> dict[str, Any]:
        """Who the service knows the client as (`GET /me`).

        Name and role; an analyst's scopes, budget left per project and quotas too.
        """
        answer: dict[str, Any] = self._request("GET", "/me").json()
        return answer

    def logout(self) -> None:
        """Revoke the client's token at the service (the next request logs in again)."""
        if self._token is not None:
            _checked(self._http.post("/auth/logout", headers=self._headers()))
            self._token = None

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self._token is None:
            self.login()
        answer = self._send(method, path, **kwargs)
        if answer.status_code == 401 and self._credentials is not None:
            self.login()  # the short-lived token expired: log in again, once
            answer = self._send(method, path, **kwargs)
        return _checked(answer)

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request, tried again where that cannot do it twice.

        A 429 was refused before any work (the service's rate limits), so any method is sent
        again after its ``Retry-After``; a connection that never opened likewise. A read that
        failed midway is sent again for GET only: a POST may have been done.
        """
        for attempt in range(RETRIES + 1):
            last = attempt == RETRIES
            try:
                answer = self._http.request(method, path, headers=self._headers(), **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout):
                if last:
                    raise
                time.sleep(0.5 * 2**attempt)
                continue
            except httpx.TransportError:
                if method != "GET" or last:
                    raise
                time.sleep(0.5 * 2**attempt)
                continue
            wait = _retry_after(answer)
            if wait is None or wait > LONGEST_RETRY_S or last:
                return answer
            time.sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    def submit(
        self,
        *,
        algorithm: str,
        parameters: dict[str, Any] | None = None,
        level: str | None = None,
        project: str | None = None,
    ) -> str:
        """Submit a job and return its id (an identical earlier job's release is reused)."""
        body = {
            "algorithm": algorithm,
            "parameters": parameters or {},
            "level": level or self.level,
            "project": project or self.project,
        }
        return str(self._request("POST", "/jobs", json=body).json()["id"])

    def status(self, job_id: str) -> dict[str, Any]:
        """The job as the service describes it (status, stage, links, ...)."""
        found: dict[str, Any] = self._request("GET", f"/jobs/{job_id}").json()
        return found

    def wait(
        self, job_id: str, *, timeout_s: float = 3600.0, poll_s: float = 0.5
    ) -> dict[str, Any]:
        """Poll until the job is released, every `poll_s` at first, then slower; show its stage.

        Raises:
            CellcensusError: the job failed or was rejected, or `timeout_s` passed.
        """
        deadline = time.monotonic() + timeout_s
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        with live_progress(*columns, on=err_console, shown=self.progress) as bar:
            task = bar.add_task(f"job {job_id[:8]}", total=None)
            pause = poll_s
            while True:
                job = self.status(job_id)
                bar.update(task, description=f"job {job_id[:8]}: {job['stage']}")
                if job["status"] in FINAL:
                    return _finished(job)
                if time.monotonic() > deadline:
                    raise CellcensusError(f"job {job_id} still {job['status']} after {timeout_s} s")
                # Not past the deadline: the last poll comes at it, not a long pause after.
                time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
                pause = max(pause, min(pause * 1.5, LONGEST_POLL_S))

    def fetch(self, job_id: str) -> Release:
        """The release of a released job, with its provenance."""
        answer = self._request("GET", f"/jobs/{job_id}/result", params={"format": "json"})
        return Release.from_json(answer.text)

    def fetch_frame(self, job_id: str, *, geo: bool = False) -> pd.DataFrame:
        """The released table as a DataFrame (GeoDataFrame with ``geo``); provenance in attrs.

        ``frame.attrs["provenance"]`` and ``frame.attrs["published"]`` carry what the release
        says about itself. With ``geo``, geometries come from the service (null where it has
        none) and GeoPandas must be installed.
        """
        if not geo:
            release = self.fetch(job_id)
            frame = release.table.copy()
            frame.attrs["provenance"] = asdict(release.provenance)
            frame.attrs["published"] = dict(release.published)
            return frame
        return self._geo_frame(job_id)

    def _geo_frame(self, job_id: str) -> pd.DataFrame:
        try:
            import geopandas  # type: ignore[import-untyped,import-not-found,unused-ignore]
        except ImportError:
            raise CellcensusError(
                "fetch_frame(geo=True) needs GeoPandas: pip install geopandas"
            ) from None
        answer = self._request("GET", f"/jobs/{job_id}/result", params={"format": "geojson"})
        collection = answer.json()
        frame: pd.DataFrame = geopandas.GeoDataFrame.from_features(
            collection["features"], crs="EPSG:4326"
        )
        frame.attrs["provenance"] = collection["provenance"]
        frame.attrs["published"] = collection["published"]
        return frame

    def fetch_bytes(self, job_id: str, *, fmt: str) -> bytes:
        """The release as CSV, GeoJSON, Parquet or JSON bytes, to save as a file."""
        return self._request("GET", f"/jobs/{job_id}/result", params={"format": fmt}).content

    def run(
        self,
        *,
        algorithm: str,
        parameters: dict[str, Any] | None = None,
        level: str | None = None,
    ) -> Release:
        """Submit, wait, fetch: the same call as `InProcessClient.run`."""
        job_id = self.submit(algorithm=algorithm, parameters=parameters, level=level)
        self.wait(job_id)
        return self.fetch(job_id)


def _checked(answer: httpx.Response) -> httpx.Response:
    if answer.status_code < 400:
        return answer
    try:
        detail = str(answer.json().get("detail", answer.text))
    except ValueError:
        detail = answer.text[:500]
    raise ServiceError(answer.status_code, detail)


def _retry_after(answer: httpx.Response) -> float | None:
    """Seconds a 429 asks to wait (1 if it does not say); None for any other answer.

    ``Retry-After`` is seconds (what the service sends) or an HTTP date (what a proxy in
    front of it may send): a date is waited for until it comes, as the seconds would be.
    """
    if answer.status_code != 429:
        return None
    said = answer.headers.get("Retry-After", "1").strip()
    try:
        return max(0.0, float(said))
    except ValueError:
        pass
    try:
        until = parsedate_to_datetime(said)
    except (TypeError, ValueError):  # neither: wait as if it said nothing
        return 1.0
    if until.tzinfo is None:  # "-0000": UTC, as HTTP dates are
        until = until.replace(tzinfo=UTC)
    return max(0.0, (until - datetime.now(UTC)).total_seconds())


def _finished(job: dict[str, Any]) -> dict[str, Any]:
    if job["status"] == "released":
        return job
    reason = job.get("error") or job.get("stage") or "no reason given"
    raise CellcensusError(f"job {job['id']} {job['status']}: {reason}")
