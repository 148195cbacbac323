"""What every route may depend on: the service context and the authenticated caller."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, NoReturn

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, OAuth2PasswordBearer

from cellcensus.holder.api.limits import RateLimiter, retry_after
from cellcensus.holder.api.problems import ApiError
from cellcensus.holder.api.settings import ServiceSettings
from cellcensus.holder.api.tokens import Claims, TokenError, TokenIssuer, is_revoked
from cellcensus.holder.api.users import Role, User, Users
from cellcensus.holder.enclave.service import EnclaveService
from cellcensus.holder.enclave.worker import WorkerPool

BEARER = {"WWW-Authenticate": 'Bearer realm="cellcensus"'}
INVALID = {"WWW-Authenticate": 'Bearer realm="cellcensus", error="invalid_token"'}
bearer = HTTPBearer(auto_error=False, description="Access token from POST /auth/token")
password_flow = OAuth2PasswordBearer(
    tokenUrl="auth/token",  # relative to the schema's address: right behind a path prefix too
    auto_error=False,
    description="The same access token, from POST /auth/token as an OAuth 2.0 password grant "
    "(what Swagger UI's Authorize and OAuth 2.0 clients send)",
)
"""Declares, beside `bearer`, how OAuth 2.0 clients get a token; reads the same header."""


@dataclass
class ServiceContext:
    """Everything the routes share, built once by `create_app`."""

    settings: ServiceSettings
    service: EnclaveService
    users: Users
    issuer: TokenIssuer
    pool: WorkerPool
    limiter: RateLimiter
    login_limiter: RateLimiter
    revocations: dict[str, tuple[float, bool]] = field(default_factory=dict)

    def revoked(self, claims: Claims, *, ttl_s: float = 2.0) -> bool:
        """Whether the token is revoked or unknown as its user's (cached for `ttl_s` seconds)."""
        key = f"{claims.jti}:{claims.username}"
        hit = self.revocations.get(key)
        if hit is not None and time.monotonic() - hit[0] < ttl_s:
            return hit[1]
        answer = is_revoked(self.service.state, claims.jti, username=claims.username)
        if len(self.revocations) > 100_000:
            self.revocations.clear()
        self.revocations[key] = (time.monotonic(), answer)
        return answer


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    user: User
    claims: Claims

    @property
    def name(self) -> str:
        """User name."""
        return self.user.username


async def context(request: Request) -> ServiceContext:
    """The app's service context."""
    found: ServiceContext = request.app.state.context
    return found


Context = Annotated[ServiceContext, Depends(context)]


async def account_holder(
    ctx: Context,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    _flow: Annotated[str | None, Depends(password_flow)],  # OpenAPI's other way to the token
) -> Principal:
    """The caller behind a valid bearer token, within its request rate.

    Async and answered from short-lived caches (user, revocation), so that authenticating a
    request costs no thread hop and, most of the time, no database query. A request refused
    for its token counts against its client address's rate, as one without a token would:
    made-up tokens are no way around the limits.
    """
    if credentials is None or credentials.scheme.lower() != "bearer":
        refuse_token(
            ctx, request, "send an access token: Authorization: Bearer TOKEN (POST /auth/token)"
        )
    try:
        claims = ctx.issuer.decode(credentials.credentials)
    except TokenError as error:
        refuse_token(ctx, request, str(error), headers=INVALID)
    user = ctx.users.cached(claims.username)
    if user is None or not user.active or user.role.value != claims.role:
        refuse_token(
            ctx, request, "the access token's user is no longer active; log in again", INVALID
        )
    if ctx.revoked(claims):
        refuse_token(ctx, request, "the access token was revoked; log in again", INVALID)
    _hold_to_rate(ctx, user.username, user.requests_per_minute or ctx.settings.requests_per_minute)
    return Principal(user=user, claims=claims)


def refuse_token(
    ctx: ServiceContext, request: Request, message: str, headers: dict[str, str] = BEARER
) -> NoReturn:
    """Answer 401 with `message`, or 429 once the client is beyond its anonymous rate."""
    _hold_to_rate(ctx, f"client:{client_address(request)}", ctx.settings.requests_per_minute)
    raise ApiError(401, message, headers=headers)


AccountHolder = Annotated[Principal, Depends(account_holder)]
"""A caller who may also be due to change a password: for the account's own routes."""


async def principal(caller: AccountHolder) -> Principal:
    """`account_holder`, unless a steward set the caller's password and it was not changed."""
    if caller.user.must_change_password:
        raise ApiError(
            403,
            "a steward set your password: choose your own first (POST /auth/password, or "
            "change_password in the NSO client), then repeat this request",
        )
    return caller


Caller = Annotated[Principal, Depends(principal)]


def client_address(request: Request) -> str:
    """The address of the client of `request` (a proxy's only when not believed)."""
    return request.client.host if request.client else "unknown"


async def anonymous_rate(ctx: Context, request: Request) -> None:
    """Hold a client without a token to `requests_per_minute` (its address for a name)."""
    _hold_to_rate(ctx, f"client:{client_address(request)}", ctx.settings.requests_per_minute)


def _hold_to_rate(ctx: ServiceContext, key: str, limit: int) -> None:
    """Record a request of `key`; 429 beyond `limit` requests per minute."""
    wait = ctx.limiter.allow(key, limit=limit)
    if wait:
        raise ApiError(
            429, f"more than {limit} requests per minute; slow down", headers=retry_after(wait)
        )


Anonymous = Depends(anonymous_rate)


def role(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency admitting only callers with one of `roles`."""
    names = ", ".join(item.value for item in roles)

    async def check(caller: Caller) -> Principal:
        if caller.user.role not in roles:
            raise ApiError(403, f"this needs the role {names}; you are {caller.user.role.value}")
        return caller

    return check


Analyst = Annotated[Principal, Depends(role(Role.ANALYST))]
Steward = Annotated[Principal, Depends(role(Role.STEWARD))]
Reader = Annotated[Principal, Depends(role(Role.AUDITOR, Role.STEWARD))]
AnalystOrSteward = Annotated[Principal, Depends(role(Role.ANALYST, Role.STEWARD))]
