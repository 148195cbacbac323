"""The HTTP client's patience: rate refusals waited out, lost connections tried again, slower polls.

The service is played by an httpx transport answering as the service does (its 429 with
``Retry-After``, `holder.api.limits`); the client under test is the real one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from cellcensus.errors import CellcensusError
from cellcensus.nso.client import LONGEST_POLL_S, HttpClient, ServiceError

JOB = {"id": "j1", "status": "running", "stage": "computing"}


def client(answer: Callable[[httpx.Request, int], httpx.Response]) -> tuple[HttpClient, list[str]]:
    """A client whose every request goes to `answer` (with its number); the requests seen."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        return answer(request, len(seen))

    transport = httpx.MockTransport(handler)
    made = HttpClient(base_url="http://service", token="t", progress=False, transport=transport)
    return made, seen


def test_a_refusal_for_rate_is_waited_out_and_the_request_sent_again():
    def answer(request: httpx.Request, number: int) -> httpx.Response:
        if number == 1:
            return httpx.Response(429, headers={"Retry-After": "1"}, json={"detail": "slow down"})
        return httpx.Response(200, json={"id": "j1"})

    nso, seen = client(answer)
    started = time.monotonic()
    assert nso.submit(algorithm="usual_residence") == "j1"  # a POST too: 429 did no work
    assert time.monotonic() - started >= 1.0
    assert seen == ["POST /jobs", "POST /jobs"]


def test_a_daily_quota_used_up_is_said_at_once_not_waited_for():
    def answer(request: httpx.Request, number: int) -> httpx.Response:
        return httpx.Response(
            429, headers={"Retry-After": "30000"}, json={"detail": "daily quota of 50 jobs used"}
        )

    nso, seen = client(answer)
    started = time.monotonic()
    with pytest.raises(ServiceError, match="daily quota of 50 jobs used"):
        nso.submit(algorithm="usual_residence")
    assert time.monotonic() - started < 1.0 and len(seen) == 1


def test_a_read_cut_midway_is_tried_again_for_a_get_but_not_for_a_post():
    def answer(request: httpx.Request, number: int) -> httpx.Response:
        if number == 1 or request.method == "POST":
            raise httpx.ReadError("connection reset by peer", request=request)
        return httpx.Response(200, json=JOB)

    nso, seen = client(answer)
    assert nso.status("j1")["stage"] == "computing"
    assert seen == ["GET /jobs/j1", "GET /jobs/j1"]
    with pytest.raises(httpx.ReadError):  # the job may have been queued: not sent twice
        nso.submit(algorithm="usual_residence")
    assert seen[2:] == ["POST /jobs"]


def test_a_long_job_is_polled_ever_less_often():
    def answer(request: httpx.Request, number: int) -> httpx.Response:
        return httpx.Response(200, json={**JOB, "status": "released"} if number == 8 else JOB)

    nso, seen = client(answer)
    started = time.monotonic()
    nso.wait("j1", poll_s=0.05)
    waited = time.monotonic() - started
    # Seven pauses growing by half from 0.05 s: 1.6 s in all, where a steady poll waits 0.35 s.
    expected = sum(min(0.05 * 1.5**k, LONGEST_POLL_S) for k in range(7))
    assert len(seen) == 8
    assert expected <= waited < expected + 1.0


def test_a_refusal_for_rate_until_an_http_date_is_waited_for_until_then():
    # A proxy in front of the service may write Retry-After as a date: an hour ahead is a
    # quota used up, said at once; not five requests a second apart into more 429s.
    def answer_until(when: datetime) -> Callable[[httpx.Request, int], httpx.Response]:
        def answer(request: httpx.Request, number: int) -> httpx.Response:
            if number == 1 or when > datetime.now(UTC) + timedelta(minutes=1):
                date = format_datetime(when, usegmt=True)
                return httpx.Response(429, headers={"Retry-After": date}, json={"detail": "quota"})
            return httpx.Response(200, json=JOB)

        return answer

    nso, seen = client(answer_until(datetime.now(UTC) + timedelta(hours=1)))
    with pytest.raises(ServiceError, match="quota"):
        nso.status("j1")
    assert len(seen) == 1
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    nso, seen = client(answer_until(soon))
    assert nso.status("j1")["stage"] == "computing"
    assert datetime.now(UTC) >= soon - timedelta(seconds=0.01)
    assert len(seen) == 2


def test_a_job_still_running_at_its_timeout_is_said_then_not_a_long_pause_after():
    nso, seen = client(lambda request, number: httpx.Response(200, json=JOB))
    started = time.monotonic()
    with pytest.raises(CellcensusError, match=r"still running after 0\.3 s"):
        nso.wait("j1", timeout_s=0.3, poll_s=LONGEST_POLL_S)
    assert time.monotonic() - started < 1.0
    assert len(seen) == 2  # at the start, and at the deadline
