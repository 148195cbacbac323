"""Limits that keep one client from exhausting the service: body size and request rates."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import defaultdict, deque
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cellcensus.holder.api.problems import PROBLEM_TYPE, TITLES, ApiError, oauth_members


class RateLimiter:
    """At most `limit` events per key in any sliding window of `window_s` seconds."""

    def __init__(self, *, window_s: float = 60.0) -> None:
        self.window_s = window_s
        self._events: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._swept = time.monotonic()

    def allow(self, key: str, *, limit: int) -> float:
        """Record an event; 0 if allowed, else seconds until one is."""
        moment = time.monotonic()
        with self._lock:
            self._forget_idle(moment)
            events = self._events[key]
            while events and events[0] <= moment - self.window_s:
                events.popleft()
            if len(events) >= limit:
                return max(0.1, events[0] + self.window_s - moment)
            events.append(moment)
            return 0.0

    def __len__(self) -> int:
        """Keys tracked."""
        with self._lock:
            return len(self._events)

    def _forget_idle(self, moment: float) -> None:
        """Drop the keys without an event in the window, at most once a window.

        Keys are made of what clients send (user names at login): unswept, names tried once
        and never again would pile up in memory.
        """
        if moment - self._swept < self.window_s:
            return
        self._swept = moment
        cutoff = moment - self.window_s
        idle = [key for key, events in self._events.items() if not events or events[-1] <= cutoff]
        for key in idle:
            del self._events[key]

    def count(self, key: str) -> int:
        """Events of `key` in the current window."""
        moment = time.monotonic()
        with self._lock:
            return sum(1 for stamp in self._events.get(key, ()) if stamp > moment - self.window_s)


class BodySizeLimit:
    """ASGI middleware answering 413 to request bodies larger than `max_bytes`."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, or count a streamed body, before the app reads it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, send)
            return
        if declared is not None:
            await self.app(scope, receive, send)
            return
        body, too_big = await _read_body(receive, self.max_bytes)
        if too_big:
            await self._refuse(scope, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        detail = f"request body larger than {self.max_bytes} bytes; send less"
        path = scope.get("path", "")
        body = json.dumps(
            {
                "type": "about:blank",
                "title": TITLES[413],
                "status": 413,
                "detail": detail,
                "instance": path,
            }
            | oauth_members(path, 413, detail)
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _read_body(receive: Receive, max_bytes: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            return b"", True
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks), False


def _replay(body: bytes, original: Receive) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await original()

    return receive


def retry_after(seconds: float) -> dict[str, Any]:
    """Headers telling a client when to retry."""
    return {"Retry-After": str(max(1, int(seconds + 0.999)))}


def utc_midnight() -> dt.datetime:
    """The start of the current UTC day, from which daily quotas count."""
    return dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def refuse_beyond_daily_quota(*, used: int, limit: int, what: str) -> None:
    """Answer 429 until the next UTC day once `used` reached `limit` (of `what`, plural)."""
    if used >= limit:
        wait = (utc_midnight() + dt.timedelta(days=1) - dt.datetime.now(dt.UTC)).total_seconds()
        raise ApiError(
            429,
            f"daily quota of {limit} {what} used; retry tomorrow (UTC)",
            headers=retry_after(wait),
        )
