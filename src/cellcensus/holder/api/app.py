"""The HTTP service: `create_app(settings)` builds the FastAPI application over one store.

Start-up opens (and migrates) the state database, reads the signing key, re-queues or fails
jobs a previous run left unfinished, and starts the worker pool; shutdown stops the pool.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import unquote_plus

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cellcensus import __version__
from cellcensus.holder.api import problems
from cellcensus.holder.api.deps import ServiceContext
from cellcensus.holder.api.limits import BodySizeLimit, RateLimiter
from cellcensus.holder.api.routes import (
    account,
    audit,
    certification,
    jobs,
    portal,
    public,
    steward,
)
from cellcensus.holder.api.settings import ServiceSettings, signing_key
from cellcensus.holder.api.tokens import TokenIssuer
from cellcensus.holder.api.users import Users
from cellcensus.holder.enclave.service import EnclaveService, ServiceLimits
from cellcensus.holder.enclave.state import open_state
from cellcensus.holder.enclave.transparency import STYLE_SOURCE
from cellcensus.holder.enclave.worker import WorkerPool

DESCRIPTION = """\
The cellcensus safe environment: NSO analysts run certified algorithms on the operator's
network data and receive only disclosure-protected aggregates; the operator's steward governs
users, scopes, budgets, policies, certification and approvals; auditors verify the
hash-chained audit log. Jobs: `POST /jobs` (202 + Location) -> `GET /jobs/{id}` ->
`GET /jobs/{id}/result`. Errors are RFC 9457 problem documents.
"""
log = logging.getLogger("cellcensus.api")


def build_context(settings: ServiceSettings) -> ServiceContext:
    """Open the state database and wire the service's parts (nothing starts yet)."""
    state = open_state(settings.resolved_database_url)
    limits = ServiceLimits(
        timeout_s=settings.job_timeout_s,
        memory_mb=settings.job_memory_mb,
        max_attempts=settings.max_attempts,
    )
    service = EnclaveService(
        store=settings.store,
        state=state,
        engine=settings.engine,  # type: ignore[arg-type]
        limits=limits,
        reader="analyst",  # the service's clients cannot run the holder's commands
    )
    issuer = TokenIssuer(
        key=signing_key(settings),
        issuer=settings.issuer,
        audience=settings.audience,
        minutes=settings.token_minutes,
    )
    return ServiceContext(
        settings=settings,
        service=service,
        users=Users(state),
        issuer=issuer,
        pool=WorkerPool(service, workers=settings.workers, warm=settings.warm_worker),
        limiter=RateLimiter(),
        login_limiter=RateLimiter(),
    )


def create_app(settings: ServiceSettings) -> FastAPI:
    """The FastAPI application of the service over `settings.store`."""
    ctx = build_context(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        recovered = ctx.service.recover()
        ctx.service.audit.append(
            actor="service",
            action="service.started",
            details={"version": __version__, "recovered_jobs": recovered},
        )
        ctx.pool.start()
        access_log.addFilter(QUERY_REDACTION)  # after uvicorn configured its loggers
        try:
            yield
        finally:
            access_log.removeFilter(QUERY_REDACTION)
            ctx.pool.stop()
            ctx.service.audit.append(actor="service", action="service.stopped")

    app = FastAPI(
        title="cellcensus safe environment",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs" if settings.interactive_docs else None,
        redoc_url="/redoc" if settings.interactive_docs else None,
    )
    app.state.context = ctx
    problems.install(app)
    for module in (certification, public, account, jobs, steward, audit, portal):
        app.include_router(module.router)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated schema, with every validation error documented as a problem document."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        for path in schema["paths"].values():
            for operation in path.values():
                _document_problems(operation)
        schema["components"]["schemas"].pop("HTTPValidationError", None)
        schema["components"]["schemas"].pop("ValidationError", None)
        app.openapi_schema = schema
    return app.openapi_schema


def _document_problems(operation: dict[str, Any]) -> None:
    answers = operation.setdefault("responses", {})
    statuses = ["422"] + (["413"] if "requestBody" in operation else [])
    for status in statuses:
        answers[status] = {
            "description": problems.TITLES[int(status)],
            "content": {
                problems.PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}
            },
        }


LOGGED_QUERY = frozenset({"after", "format", "limit"})
"""Query parameters the API reads, which the access log keeps. Any other is written ``...``:
a password or token that a client put in the URL must not reach the log."""


def redacted_path(path: str) -> str:
    """A request's path and query with the query parameters the API does not read hidden."""
    base, mark, query = path.partition("?")
    if not mark:
        return path
    # An unknown name is hidden too: a token sent as ``?TOKEN`` is all name.
    kept = [
        pair if unquote_plus(pair.partition("=")[0]) in LOGGED_QUERY else "..."
        for pair in query.split("&")
    ]
    return f"{base}?{'&'.join(kept)}"


class QueryRedaction(logging.Filter):
    """Hides unknown query parameters in uvicorn's access log lines (`redacted_path`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the path of an access log record; keep every record."""
        args = record.args
        # uvicorn's access record: (client, method, path with query, HTTP version, status)
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (*args[:2], redacted_path(args[2]), *args[3:])
        return True


QUERY_REDACTION = QueryRedaction()
access_log = logging.getLogger("uvicorn.access")


CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src {STYLE_SOURCE}; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
"""A browser runs no script and loads nothing on the service's pages, and styles the
transparency page with its own style sheet only: should escaping ever miss, an injected script
or form still does nothing."""

PORTAL_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "
    "require-trusted-types-for 'script'; trusted-types 'none'"
)
"""The portal's pages run the service's own script and style sheet, which call its API
(`connect-src`), and nothing else: no inline script or style, no other origin, no form
submitted by the browser, and (Trusted Types) no HTML parsed from a string by the script, so
that data can only ever become text."""

UNGUARDED_PAGES = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
"""FastAPI's interactive documentation (off unless `interactive_docs`), which runs scripts from
a public CDN: the policy would stop them."""


class SecurityHeaders:
    """ASGI middleware: no caching, no content sniffing, no framing, no scripts but the portal's."""

    HEADERS = (
        (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
    )
    POLICY = ((b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),)
    PORTAL_POLICY = ((b"content-security-policy", PORTAL_POLICY.encode()),)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add the headers to every HTTP response."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        path = scope["path"]
        policy = self.PORTAL_POLICY if path in portal.ADDRESSES else self.POLICY
        headers = [*self.HEADERS, *(policy if path not in UNGUARDED_PAGES else ())]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)
