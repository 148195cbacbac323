"""A user's own account: change one's password, log out."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from cellcensus.holder.api import schemas
from cellcensus.holder.api.deps import AccountHolder, Context, client_address
from cellcensus.holder.api.problems import ApiError, responses
from cellcensus.holder.api.routes.public import limit_logins
from cellcensus.holder.api.tokens import revoke
from cellcensus.holder.api.users import WrongPasswordError

router = APIRouter(tags=["auth"])


@router.post("/auth/password", status_code=204, responses=responses(401, 403, 422, 429))
def change_password(
    ctx: Context, caller: AccountHolder, body: schemas.PasswordChange, request: Request
) -> Response:
    """Change your password, giving the current one; your other tokens are revoked.

    The token of this request stays valid. A wrong current password answers 403 and counts
    as a failed login attempt: a stolen token must not become a way to guess the password.
    """
    client = client_address(request)
    limit_logins(ctx, username=caller.name, client=client)
    try:
        ctx.users.change_password(
            caller.name,
            current=body.current_password,
            new=body.new_password,
            keep_token=caller.claims.jti,
        )
    except WrongPasswordError as error:
        raise ApiError(403, str(error)) from None
    ctx.revocations.clear()
    return Response(status_code=204)


@router.post("/auth/logout", status_code=204, responses=responses(401, 429))
def logout(ctx: Context, caller: AccountHolder) -> Response:
    """Revoke the token of this request (log in again for a new one)."""
    revoke(ctx.service.state, caller.claims)
    ctx.revocations.clear()
    return Response(status_code=204)
