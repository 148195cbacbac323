"""Short-lived signed access tokens (JWT, HS256 pinned).

A token names its user (``sub``), role and scopes, and carries ``iss``, ``aud``, ``iat``,
``nbf``, ``exp`` and a unique ``jti``. Decoding accepts only HS256 (so ``alg: none`` and
algorithm-confusion tokens are refused), requires every claim, and checks issuer, audience,
expiry and not-before. Tokens are recorded (not their text) so they can be revoked.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt
import sqlalchemy as sa

from cellcensus.holder.enclave.audit import append_entry
from cellcensus.holder.enclave.state import State, now, tokens

if TYPE_CHECKING:  # users.py revokes tokens when a password changes
    from cellcensus.holder.api.users import User

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("iss", "aud", "sub", "role", "scopes", "iat", "nbf", "exp", "jti")
LEEWAY_S = 5
AGAIN = "log in again for a new one (POST /auth/token)"
"""What a client refused for its token does: the refusal says so."""


class TokenError(Exception):
    """A bearer token that must be refused; the message says why (never echoes the token)."""


@dataclass(frozen=True)
class Claims:
    """The checked claims of an access token."""

    username: str
    role: str
    scopes: tuple[str, ...]
    jti: str
    expires_at: dt.datetime


@dataclass(frozen=True)
class TokenIssuer:
    """Issues and checks tokens with one key, issuer and audience."""

    key: bytes
    issuer: str
    audience: str
    minutes: int

    def issue(self, user: User, *, state: State) -> tuple[str, Claims]:
        """A new token for `user`, recorded and audited."""
        issued = dt.datetime.now(dt.UTC).replace(microsecond=0)
        expires = issued + dt.timedelta(minutes=self.minutes)
        jti = uuid.uuid4().hex
        payload = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": user.username,
            "role": user.role.value,
            "scopes": list(user.scopes),
            "iat": issued,
            "nbf": issued,
            "exp": expires,
            "jti": jti,
        }
        token = jwt.encode(payload, self.key, algorithm=ALGORITHM)
        with state.write() as conn:
            conn.execute(
                tokens.insert().values(
                    jti=jti,
                    username=user.username,
                    issued_at=issued.isoformat(),
                    expires_at=expires.isoformat(),
                    revoked=False,
                )
            )
            append_entry(
                conn,
                actor=user.username,
                action="token.issued",
                target=f"token:{jti}",
                details={"expires_at": expires.isoformat(), "scopes": list(user.scopes)},
            )
        return token, Claims(user.username, user.role.value, tuple(user.scopes), jti, expires)

    def decode(self, token: str) -> Claims:
        """Check a token's signature and claims.

        Raises:
            TokenError: bad signature or algorithm, expired, not yet valid, wrong issuer or
                audience, or a claim missing.
        """
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                self.key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_S,
                options={"require": list(REQUIRED_CLAIMS), "verify_signature": True},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError(f"the access token has expired; {AGAIN}") from None
        except jwt.ImmatureSignatureError:
            raise TokenError(f"the access token is not valid yet; {AGAIN}") from None
        except jwt.InvalidAudienceError:
            raise TokenError(
                f"the access token is for another service (audience); {AGAIN}"
            ) from None
        except jwt.InvalidIssuerError:
            raise TokenError(
                f"the access token was issued by someone else (issuer); {AGAIN}"
            ) from None
        except jwt.PyJWTError:
            raise TokenError(f"the access token is invalid; {AGAIN}") from None
        return _claims(payload)


def _claims(payload: dict[str, Any]) -> Claims:
    scopes = payload["scopes"]
    if not isinstance(scopes, list) or not all(isinstance(item, str) for item in scopes):
        raise TokenError(f"the access token is invalid; {AGAIN}")
    return Claims(
        username=str(payload["sub"]),
        role=str(payload["role"]),
        scopes=tuple(scopes),
        jti=str(payload["jti"]),
        expires_at=dt.datetime.fromtimestamp(payload["exp"], dt.UTC),
    )


def is_revoked(state: State, jti: str, *, username: str) -> bool:
    """Whether the token `jti` was not issued to `username` by the service, or was revoked.

    The user is part of the question: with a leaked key, the `jti` of one's own token must
    not make a token for another user.
    """
    with state.read() as conn:
        row = conn.execute(
            sa.select(tokens.c.revoked).where(tokens.c.jti == jti, tokens.c.username == username)
        ).first()
    return row is None or bool(row.revoked)


def revoke_all(state: State, username: str, *, actor: str) -> int:
    """Revoke every token of `username` (e.g. when the user is deactivated)."""
    with state.write() as conn:
        return revoke_tokens(conn, username, actor=actor)


def revoke_tokens(
    conn: sa.Connection, username: str, *, actor: str, keep: str | None = None
) -> int:
    """Revoke the tokens of `username` but the one `keep`, in an open write transaction."""
    chosen = tokens.c.username == username
    if keep is not None:
        chosen &= tokens.c.jti != keep
    result = conn.execute(tokens.update().where(chosen).values(revoked=True))
    append_entry(
        conn,
        actor=actor,
        action="token.revoked",
        target=f"user:{username}",
        details={"count": result.rowcount, "at": now()},
    )
    return int(result.rowcount)


def revoke(state: State, claims: Claims) -> None:
    """Revoke one token (its user logs out)."""
    with state.write() as conn:
        conn.execute(
            tokens.update()
            .where(tokens.c.jti == claims.jti, tokens.c.username == claims.username)
            .values(revoked=True)
        )
        append_entry(
            conn,
            actor=claims.username,
            action="token.revoked",
            target=f"token:{claims.jti}",
            details={"reason": "logout", "at": now()},
        )
