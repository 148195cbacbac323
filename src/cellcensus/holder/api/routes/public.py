"""Routes anyone may call: health, the catalogue, the transparency log, and login."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from cellcensus import __version__
from cellcensus.holder.api import oauth, schemas
from cellcensus.holder.api.deps import Anonymous, Context, ServiceContext, client_address
from cellcensus.holder.api.limits import retry_after
from cellcensus.holder.api.problems import TOKEN_PATH, ApiError, responses
from cellcensus.holder.api.users import USERNAME_PATTERN
from cellcensus.holder.enclave.transparency import PAGE_LIMIT, render_page, transparency_log

router = APIRouter()


ENTRY_POINTS = {
    "health": "/health",
    "transparency_page": "/transparency/page",
    "portal": "/portal/",
    "catalogue": "/algorithms",
    "login": TOKEN_PATH,
    "openapi": "/openapi.json",
}
"""Where a client (or a browser opened on the service's address) goes from `GET /`."""


@router.get(
    "/",
    tags=["public"],
    response_model=None,
    responses={303: {"description": "A browser (asking for HTML, not JSON) goes to the portal."}},
)
def index(request: Request) -> dict[str, object] | RedirectResponse:
    """The service's entry points, so that its bare address answers with more than a 404.

    A person opening the address in a browser is sent to the portal instead of a JSON
    document; a client asking for JSON, or for anything (``*/*``), gets the entry points.
    """
    accept = request.headers.get("accept", "")
    if "text/html" in accept and "application/json" not in accept:
        return RedirectResponse("portal/", status_code=303)  # relative: behind a proxy's prefix too
    return {"service": "cellcensus", "version": __version__, "links": ENTRY_POINTS}


@router.get("/health", response_model=schemas.Health, tags=["public"])
def health(ctx: Context) -> schemas.Health:
    """Liveness, package version and database schema version."""
    return schemas.Health(
        status="ok", version=__version__, schema_version=ctx.service.state.schema_version()
    )


@router.get(
    "/algorithms",
    response_model=schemas.Catalogue,
    tags=["public"],
    dependencies=[Anonymous],
    responses=responses(429),
)
def algorithms(ctx: Context) -> schemas.Catalogue:
    """The runnable algorithms (with their parameter schemas) and the store's area levels."""
    entries = ctx.service.catalogue.entries().values()
    return schemas.Catalogue(
        algorithms=[schemas.AlgorithmOut(**entry.to_dict()) for entry in entries],
        levels=ctx.service.levels(),
    )


@router.get(
    "/algorithms/{name}",
    response_model=schemas.AlgorithmOut,
    tags=["public"],
    dependencies=[Anonymous],
    responses=responses(404, 429),
)
def algorithm(ctx: Context, name: str) -> schemas.AlgorithmOut:
    """One algorithm of the catalogue."""
    entries = ctx.service.catalogue.entries()
    if name not in entries:
        raise ApiError(404, f"no algorithm {name[:64]!r}; GET /algorithms lists them")
    return schemas.AlgorithmOut(**entries[name].to_dict())


@router.get(
    "/transparency",
    response_model=schemas.TransparencyLog,
    tags=["public"],
    dependencies=[Anonymous],
    responses=responses(429),
)
def transparency(
    ctx: Context, limit: int = Query(default=1000, ge=1, le=10000)
) -> schemas.TransparencyLog:
    """Every job (who, what, parameters, epsilon, when, outcome), never results."""
    seq, digest = ctx.service.audit.head()
    entries = transparency_log(ctx.service.book, limit=limit)
    return schemas.TransparencyLog(
        jobs=[schemas.TransparencyEntry(**entry) for entry in entries],
        audit_head_seq=seq,
        audit_head_hash=digest,
    )


@router.get(
    "/transparency/page",
    response_class=HTMLResponse,
    tags=["public"],
    dependencies=[Anonymous],
    responses=responses(429),
)
def transparency_page(ctx: Context) -> HTMLResponse:
    """The transparency log as a web page."""
    entries = transparency_log(ctx.service.book, limit=PAGE_LIMIT)
    page = render_page(
        entries,
        head=ctx.service.audit.head(),
        limit=PAGE_LIMIT,
        defaults=ctx.service.catalogue.defaults(),
    )
    return HTMLResponse(page)


WRONG_CREDENTIALS = "unknown user name or wrong password"
BEARER = {"WWW-Authenticate": 'Bearer realm="cellcensus"'}


def login(
    ctx: Context, body: schemas.LoginRequest, request: Request, response: Response
) -> schemas.TokenResponse:
    """Exchange a user's name and password for a short-lived bearer token.

    The body is a JSON object, or an OAuth 2.0 password grant (RFC 6749 section 4.3) as OAuth
    2.0 clients send it: `grant_type=password&username=...&password=...`, form-encoded, whose
    refusals are OAuth 2.0 error responses (`error`, `error_description`). Both count against
    the same login limits.
    """
    token = issue_token(ctx, body, client=client_address(request))
    if token is None:
        raise ApiError(401, WRONG_CREDENTIALS, headers=BEARER)
    response.headers.update(oauth.NO_CACHE)
    return token


async def form_login(request: Request) -> Response:
    """`login` for an OAuth 2.0 password grant (`TokenRoute` sends the forms here)."""
    try:
        oauth.refuse_other_sites(request)
        grant = oauth.read_grant(await request.body())
    except oauth.GrantError as refusal:
        return refusal.response()
    ctx: ServiceContext = request.app.state.context
    # Hashing the password takes a while: not on the event loop, as FastAPI runs `login`.
    token = await run_in_threadpool(issue_token, ctx, grant, client=client_address(request))
    if token is None:
        wrong = oauth.GrantError("invalid_grant", WRONG_CREDENTIALS, status=401, headers=BEARER)
        return wrong.response()
    return JSONResponse(token.model_dump(mode="json"), headers=oauth.NO_CACHE)


class TokenRoute(APIRoute):
    """The route of POST /auth/token: a form to `form_login`, JSON to FastAPI's `login`.

    FastAPI reads one kind of body per route; this one reads two, told apart by their
    Content-Type. JSON (or a body without a Content-Type) goes through FastAPI's handling of
    `login` untouched; any other media type is refused, naming both.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """FastAPI's handler of `login`, with forms and other media types taken aside."""
        json_login = super().get_route_handler()

        async def handler(request: Request) -> Response:
            kind = oauth.media_type(request)
            if kind == oauth.FORM:
                return await form_login(request)
            if kind and not oauth.is_json(kind):
                raise oauth.unsupported(kind)
            return await json_login(request)

        return handler


router.add_api_route(
    TOKEN_PATH,
    login,
    methods=["POST"],
    response_model=schemas.TokenResponse,
    tags=["auth"],
    summary="Login",
    responses={**oauth.responses(), **responses(415, 429)},
    openapi_extra=oauth.REQUEST_BODY,
    route_class_override=TokenRoute,
)


def issue_token(
    ctx: ServiceContext, credentials: schemas.LoginRequest, *, client: str
) -> schemas.TokenResponse | None:
    """A token for the user of `credentials`, or None when they are wrong (audited).

    Within the login limits (429 beyond them), whichever body the credentials came in.
    """
    limit_logins(ctx, username=credentials.username, client=client)
    user = None
    if _is_username(credentials.username):
        user = ctx.users.authenticate(credentials.username, credentials.password)
    if user is None:
        ctx.service.audit.append(
            actor=_failed_login_actor(ctx, credentials.username),
            action="login.failed",
            target=f"client:{client}",
        )
        return None
    ctx.service.audit.append(actor=user.username, action="login", target=f"client:{client}")
    token, claims = ctx.issuer.issue(user, state=ctx.service.state)
    seconds = int((claims.expires_at - dt.datetime.now(dt.UTC)).total_seconds())
    return schemas.TokenResponse(
        access_token=token,
        expires_in=seconds,
        expires_at=int(claims.expires_at.timestamp()),
        username=user.username,
        role=claims.role,
        scopes=list(claims.scopes),
        must_change_password=user.must_change_password,
    )


def limit_logins(ctx: Context, *, username: str, client: str) -> None:
    """Refuse a login beyond the client's rates.

    One rate across user names (one password sprayed over many names), one per name
    (guessing its password), and one per name across clients (guessing it from many
    addresses at once).
    """
    settings = ctx.settings
    limits = (
        (f"client:{client}", settings.login_attempts_per_client_per_minute),
        (f"user:{username}@{client}", settings.login_attempts_per_minute),
        (f"user:{username}", settings.login_attempts_per_user_per_minute),
    )
    for key, limit in limits:
        wait = ctx.login_limiter.allow(key, limit=limit)
        if wait:
            raise ApiError(
                429, "too many login attempts; wait and retry", headers=retry_after(wait)
            )


def _failed_login_actor(ctx: Context, username: str) -> str:
    """The user a failed login tried, or "?" when nobody has that name.

    What was typed as a user name is often a password: it must not stay in the audit log,
    which cannot be edited.
    """
    known = _is_username(username) and ctx.users.cached(username) is not None
    return username if known else "?"


def _is_username(text: str) -> bool:
    return USERNAME_PATTERN.fullmatch(text) is not None
