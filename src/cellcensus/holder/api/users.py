"""Registered users, their roles, passwords, scopes and quotas.

Roles: ``analyst`` runs permitted algorithms and reads its own jobs and budget; ``steward``
governs users, scopes, budgets, policies, certification and approvals; ``auditor`` reads the
audit and transparency logs. Passwords are kept as scrypt hashes (standard library); a hash
made with older parameters is verified by them and replaced at the user's next login.

A scope is readable: ``ALGORITHM:LEVEL:PERIOD``, e.g.
``usual_residence:municipality:2011-03-01..2011-03-31``; ``*`` stands for any algorithm, any
level or any period. A scope allows exactly its level: a ``province`` scope does not allow a
finer ``municipality`` release.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from cellcensus.errors import CellcensusError, did_you_mean
from cellcensus.holder.api.tokens import revoke_tokens
from cellcensus.holder.enclave.audit import append_entry
from cellcensus.holder.enclave.compute import allocate_command
from cellcensus.holder.enclave.state import State, now, scopes, users
from cellcensus.holder.geo.allocation import NAMED_LEVELS
from cellcensus.holder.store import Store

USERNAME_PATTERN = re.compile(r"^[a-z][a-z0-9_.-]{1,63}$")
SCOPE_PATTERN = re.compile(
    r"^(?P<algorithm>\*|[a-z][a-z0-9_]{0,63}):(?P<level>\*|[a-z][a-z0-9_]{0,31}):"
    r"(?P<period>\*|\d{4}-\d{2}-\d{2}\.\.\d{4}-\d{2}-\d{2})$"
)
SCOPE_FORM = "ALGORITHM:LEVEL:YYYY-MM-DD..YYYY-MM-DD"
MIN_PASSWORD = 12
# One of the OWASP Password Storage Cheat Sheet's equivalent scrypt minimums (N=2^17 r=8 p=1,
# ..., N=2^14 r=8 p=5, N=2^13 r=8 p=10): 16 MiB per hash (128 * r * N), not 2^17's 128 MiB, as
# logins at once share a 2-core host with jobs; it also fits hashlib's default 32 MiB maxmem.
SCRYPT = {"n": 2**14, "r": 8, "p": 5}


class Role(StrEnum):
    """What a user may do."""

    ANALYST = "analyst"
    STEWARD = "steward"
    AUDITOR = "auditor"


@dataclass(frozen=True)
class Scope:
    """Permission to run one algorithm at one area level over one period."""

    algorithm: str
    level: str
    start: dt.date | None
    end: dt.date | None

    @classmethod
    def parse(cls, text: str) -> Scope:
        """Read ``ALGORITHM:LEVEL:PERIOD``, naming what is wrong."""
        match = SCOPE_PATTERN.match(text)
        if match is None:
            raise CellcensusError(
                f"scope {text[:80]!r} is not ALGORITHM:LEVEL:PERIOD, e.g. "
                "usual_residence:municipality:2011-03-01..2011-03-31 (* for any)"
            )
        period = match["period"]
        if period == "*":
            return cls(match["algorithm"], match["level"], None, None)
        first, last = (_scope_date(text, part) for part in period.split(".."))
        if first > last:
            raise CellcensusError(
                f"scope {text!r}: the period starts ({first}) after it ends ({last}); "
                f"expected {SCOPE_FORM} with the first date not after the last"
            )
        return cls(match["algorithm"], match["level"], first, last)

    def allows(self, *, algorithm: str, level: str, period: tuple[dt.date, dt.date] | None) -> bool:
        """Whether a job of `algorithm` at `level` over `period` (None: some) is in scope."""
        if self.algorithm not in ("*", algorithm) or self.level not in ("*", level):
            return False
        if period is None or self.start is None or self.end is None:
            return True
        return self.start <= period[0] and period[1] <= self.end


def _scope_date(scope: str, text: str) -> dt.date:
    """One end of a scope's period; the pattern checked its shape, not that it is a date."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError as error:
        raise CellcensusError(
            f"scope {scope[:80]!r}: {text} is not a date ({error}); expected {SCOPE_FORM}, "
            "e.g. usual_residence:municipality:2011-03-01..2011-03-31 (* for any part)"
        ) from None


@dataclass(frozen=True)
class User:
    """A registered user (without the password hash)."""

    username: str
    role: Role
    active: bool
    created_at: str
    scopes: tuple[str, ...]
    jobs_per_day: int | None
    requests_per_minute: int | None
    must_change_password: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "username": self.username,
            "role": self.role.value,
            "active": self.active,
            "created_at": self.created_at,
            "scopes": list(self.scopes),
            "jobs_per_day": self.jobs_per_day,
            "requests_per_minute": self.requests_per_minute,
            "must_change_password": self.must_change_password,
        }


def check_scopes(granted: Sequence[str], *, algorithms: Collection[str], store: Store) -> list[str]:
    """Refuse scopes naming an algorithm or a level that does not exist; return warnings.

    A level is known when the store has an allocation for it, or when it is one of the
    project's `NAMED_LEVELS`: granting one of those ahead of its allocation is allowed, with
    a warning, as jobs at it are refused until it is allocated. Any other name is refused, as
    a misspelling would otherwise grant nothing and say nothing.
    """
    allocated = store.area_levels()
    warnings = []
    for text in granted:
        scope = Scope.parse(text)
        if scope.algorithm != "*" and scope.algorithm not in algorithms:
            raise CellcensusError(
                f"scope {text!r}: unknown algorithm {scope.algorithm!r}"
                f"{did_you_mean(scope.algorithm, algorithms)}; known algorithms: "
                f"{', '.join(sorted(algorithms))}"
            )
        if scope.level == "*" or scope.level in allocated:
            continue
        if scope.level not in NAMED_LEVELS:
            known = ", ".join(sorted({*allocated, *NAMED_LEVELS}))
            raise CellcensusError(
                f"scope {text!r}: unknown area level {scope.level!r}"
                f"{did_you_mean(scope.level, {*allocated, *NAMED_LEVELS})}; known levels: {known} "
                f"(a level of your own exists once allocated: "
                f"`{allocate_command(store, scope.level)}`)"
            )
        warnings.append(
            f"scope {text!r}: store {store.root} has no {scope.level} allocation yet; jobs at "
            f"it are refused until `{allocate_command(store, scope.level)}`"
        )
    return warnings


class LastStewardError(CellcensusError):
    """A change would leave no active steward to govern users, budgets and approvals."""


def _keep_a_steward(conn: sa.Connection, username: str) -> None:
    """Refuse deactivating `username` if it is the last active steward.

    Read in the write transaction that deactivates, so two stewards deactivating each other
    at once cannot both pass.
    """
    active_stewards = (
        conn.execute(
            sa.select(users.c.username).where(
                users.c.role == Role.STEWARD.value, users.c.active.is_(True)
            )
        )
        .scalars()
        .all()
    )
    if list(active_stewards) == [username]:
        raise LastStewardError(
            f"{username} is the only active steward: deactivating it would leave nobody to "
            "govern users, budgets and approvals; add or activate another steward first "
            "(`cellcensus users add NAME --role steward`, `cellcensus users activate NAME`)"
        )


def hash_password(password: str) -> str:
    """An scrypt hash with a random salt, as ``scrypt$n$r$p$salt$hash``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **SCRYPT)
    encoded = [base64.b64encode(part).decode() for part in (salt, digest)]
    return "scrypt${n}${r}${p}$".format(**SCRYPT) + "$".join(encoded)


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches `stored`, by the parameters stored with it (constant time)."""
    try:
        _, n, r, p, salt, digest = stored.split("$")
        computed = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p)
        )
    except ValueError:
        return False
    return hmac.compare_digest(computed, base64.b64decode(digest))


def outdated(stored: str) -> bool:
    """Whether `stored` was hashed with other parameters than today's `SCRYPT`."""
    return stored.split("$")[1:4] != [str(SCRYPT[name]) for name in ("n", "r", "p")]


@functools.cache
def _dummy_hash() -> str:
    """A hash to check a password against when nobody has the name, at a wrong password's cost.

    Made at first use, not at import: every `cellcensus` command imports this module.
    """
    return hash_password(secrets.token_urlsafe(16))


def check_new_user(username: str, password: str) -> None:
    """Refuse malformed user names and short passwords."""
    if not USERNAME_PATTERN.match(username):
        raise CellcensusError(
            f"user name {username[:70]!r} must be 2-64 characters: lowercase letters, digits, "
            "_ . -, starting with a letter"
        )
    check_password(password)


def check_password(password: str) -> None:
    """Refuse a password a new user could not have."""
    if len(password) < MIN_PASSWORD:
        raise CellcensusError(f"password must have at least {MIN_PASSWORD} characters")


class WrongPasswordError(CellcensusError):
    """The current password given to change it is not the user's."""


class Users:
    """Users in the state database; every change is audited.

    Lookups by name are cached for `ttl_s` seconds (changes made through this object clear
    the cache at once), so authenticating a request rarely touches the database.
    """

    def __init__(self, state: State, *, ttl_s: float = 2.0) -> None:
        self.state = state
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, User | None]] = {}

    def cached(self, username: str) -> User | None:
        """`get`, answered from a short-lived cache."""
        hit = self._cache.get(username)
        if hit is not None and time.monotonic() - hit[0] < self.ttl_s:
            return hit[1]
        user = self.get(username)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[username] = (time.monotonic(), user)
        return user

    def add(
        self,
        *,
        username: str,
        role: Role,
        password: str,
        actor: str,
        must_change_password: bool = False,
    ) -> User:
        """Register a user; `must_change_password` where someone else chose the password."""
        self._cache.pop(username, None)
        check_new_user(username, password)
        with self.state.write() as conn:
            if conn.execute(
                sa.select(users.c.username).where(users.c.username == username)
            ).first():
                raise CellcensusError(f"user {username!r} already exists")
            conn.execute(
                users.insert().values(
                    username=username,
                    role=role.value,
                    password_hash=hash_password(password),
                    active=True,
                    created_at=now(),
                    must_change_password=must_change_password,
                )
            )
            append_entry(
                conn,
                actor=actor,
                action="user.created",
                target=f"user:{username}",
                details={"role": role.value},
            )
        return self.require(username)

    def get(self, username: str) -> User | None:
        """The user called `username`, if registered."""
        with self.state.read() as conn:
            row = conn.execute(sa.select(users).where(users.c.username == username)).first()
            if row is None:
                return None
            granted = (
                conn.execute(
                    sa.select(scopes.c.scope)
                    .where(scopes.c.username == username)
                    .order_by(scopes.c.scope)
                )
                .scalars()
                .all()
            )
        return User(
            username=row.username,
            role=Role(row.role),
            active=bool(row.active),
            created_at=row.created_at,
            scopes=tuple(granted),
            jobs_per_day=row.jobs_per_day,
            requests_per_minute=row.requests_per_minute,
            must_change_password=bool(row.must_change_password),
        )

    def require(self, username: str) -> User:
        """The user called `username`, or LookupError."""
        user = self.get(username)
        if user is None:
            raise LookupError(f"no user {username!r}")
        return user

    def everyone(self) -> list[User]:
        """Every user, by name."""
        with self.state.read() as conn:
            names = conn.execute(sa.select(users.c.username).order_by(users.c.username)).scalars()
            found = list(names)
        return [self.require(name) for name in found]

    def authenticate(self, username: str, password: str) -> User | None:
        """The active user with these credentials, else None (same cost either way)."""
        with self.state.read() as conn:
            stored = conn.execute(
                sa.select(users.c.password_hash, users.c.active).where(users.c.username == username)
            ).first()
        if stored is None:
            verify_password(password, _dummy_hash())
            return None
        if not verify_password(password, stored.password_hash) or not stored.active:
            return None
        if outdated(stored.password_hash):
            self._rehash(username, password, stored.password_hash)
        return self.get(username)

    def _rehash(self, username: str, password: str, old_hash: str) -> None:
        """Replace an outdated hash of the password just verified, unless it changed since."""
        hashed = hash_password(password)  # before the write lock, held by nobody for long
        with self.state.write() as conn:
            changed = conn.execute(
                users.update()
                .where(users.c.username == username, users.c.password_hash == old_hash)
                .values(password_hash=hashed)
            )
            if changed.rowcount:
                append_entry(
                    conn,
                    actor=username,
                    action="user.password_rehashed",
                    target=f"user:{username}",
                    details={"scrypt": dict(SCRYPT)},
                )

    def change_password(self, username: str, *, current: str, new: str, keep_token: str) -> None:
        """Set the password of `username`, who gave the `current` one; revoke its other tokens.

        Raises:
            WrongPasswordError: `current` is not the user's password.
            CellcensusError: `new` breaks the rules of a new user's password.
        """
        check_password(new)
        with self.state.read() as conn:
            stored = conn.execute(
                sa.select(users.c.password_hash).where(users.c.username == username)
            ).scalar_one()
        if not verify_password(current, stored):
            with self.state.write() as conn:
                append_entry(
                    conn,
                    actor=username,
                    action="user.password_change_failed",
                    target=f"user:{username}",
                    details={},
                )
            raise WrongPasswordError("the current password is wrong; nothing was changed")
        self._set_password(
            username, new, actor=username, action="user.password_changed", keep_token=keep_token
        )

    def reset_password(self, username: str, password: str, *, actor: str) -> int:
        """A steward sets the password of `username` (who lost it); revoke all its tokens.

        The steward knows that password, so the user must change it before anything else.
        """
        check_password(password)
        self.require(username)
        return self._set_password(
            username, password, actor=actor, action="user.password_reset", must_change=True
        )

    def _set_password(
        self,
        username: str,
        password: str,
        *,
        actor: str,
        action: str,
        keep_token: str | None = None,
        must_change: bool = False,
    ) -> int:
        """Store the hash and revoke tokens in one transaction; the number revoked."""
        hashed = hash_password(password)
        with self.state.write() as conn:
            conn.execute(
                users.update()
                .where(users.c.username == username)
                .values(password_hash=hashed, must_change_password=must_change)
            )
            self._cache.pop(username, None)
            append_entry(conn, actor=actor, action=action, target=f"user:{username}", details={})
            return revoke_tokens(conn, username, actor=actor, keep=keep_token)

    def set_scopes(self, username: str, granted: list[str], *, actor: str) -> User:
        """Replace the scopes of `username` (each checked)."""
        self._cache.pop(username, None)
        parsed = sorted({text for text in granted if Scope.parse(text)})
        self.require(username)
        with self.state.write() as conn:
            conn.execute(scopes.delete().where(scopes.c.username == username))
            for text in parsed:
                conn.execute(scopes.insert().values(username=username, scope=text))
            append_entry(
                conn,
                actor=actor,
                action="user.scopes",
                target=f"user:{username}",
                details={"scopes": parsed},
            )
        return self.require(username)

    def update(self, username: str, *, actor: str, **values: Any) -> User:
        """Change `active`, `jobs_per_day` or `requests_per_minute` of a user."""
        self._cache.pop(username, None)
        allowed = {"active", "jobs_per_day", "requests_per_minute"}
        changes = {key: value for key, value in values.items() if key in allowed}
        self.require(username)
        if not changes:
            return self.require(username)
        with self.state.write() as conn:
            if changes.get("active") is False:
                _keep_a_steward(conn, username)
            conn.execute(users.update().where(users.c.username == username).values(**changes))
            append_entry(
                conn, actor=actor, action="user.updated", target=f"user:{username}", details=changes
            )
        return self.require(username)

    def allowed(
        self, user: User, *, algorithm: str, level: str, period: tuple[dt.date, dt.date] | None
    ) -> bool:
        """Whether one of the user's scopes covers the job (None: over some period)."""
        return any(
            Scope.parse(text).allows(algorithm=algorithm, level=level, period=period)
            for text in user.scopes
        )
