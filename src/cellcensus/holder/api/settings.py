"""Settings of the HTTP service: one frozen object, every field documented in docs/service.md.

Each field can be set by an environment variable ``CELLCENSUS_<FIELD NAME IN CAPITALS>`` (the
`serve` command's options override them). The JWT signing key is never a setting: it is read
from `jwt_key_file` (which must be readable by its owner only) or from ``CELLCENSUS_JWT_KEY``.
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from cellcensus.errors import CellcensusError
from cellcensus.holder.enclave.state import default_state_url

KEY_ENV = "CELLCENSUS_JWT_KEY"
ENV_PREFIX = "CELLCENSUS_"
MIN_KEY_BYTES = 32
MIN_KEY_SYMBOLS = 10
"""Different bytes a key must use: 64 hex digits use 16, a repeated word fewer."""
MAX_TOKEN_MINUTES = 24 * 60
"""Longest lifetime of an access token (minutes)."""


@dataclass(frozen=True)
class ServiceSettings:
    """How the service runs.

    Attributes:
        store: The holder's store folder the jobs run on.
        database_url: SQLAlchemy URL of the state database (default: SQLite in
            ``STORE/enclave/state.db``; ``postgresql+psycopg://...`` for PostgreSQL).
        jwt_key_file: File holding the JWT signing key (default ``STORE/enclave/jwt.key``,
            created with mode 0600 when missing).
        issuer: The ``iss`` claim of issued tokens, checked on every request.
        audience: The ``aud`` claim of issued tokens, checked on every request.
        token_minutes: Lifetime of an access token.
        engine: Where algorithms run: ``duckdb`` or ``spark``.
        workers: Jobs computed at the same time (0: jobs stay queued).
        warm_worker: Keep a worker process started ahead, so a job starts without waiting for
            Python's imports (a few seconds); costs one idle process (~250 MB).
        job_timeout_s: Wall-clock limit of one job.
        job_memory_mb: Address-space limit of one job's worker process (on Spark, of its
            Python only: Spark's JVM starts before the limit, bounded by its own heap).
        max_attempts: Runs a job gets when the service restarts under it.
        max_body_bytes: Largest request body accepted (algorithm sources included).
        requests_per_minute: Requests one user may make per minute (default quota).
        jobs_per_day: Jobs one analyst may submit per UTC day (default quota).
        submissions_per_day: Algorithm sources one analyst may submit per UTC day.
        login_attempts_per_minute: Login attempts allowed per user name and client address
            per minute.
        login_attempts_per_client_per_minute: Login attempts allowed per client address per
            minute, whatever the user names tried.
        login_attempts_per_user_per_minute: Login attempts allowed per user name per minute,
            whatever the client addresses.
        forwarded_allow_ips: Addresses of the reverse proxies whose ``X-Forwarded-For`` names
            the client (comma-separated, ``*`` for any); empty: no proxy is believed and the
            client is the connection's peer.
        interactive_docs: Serve ``/docs`` and ``/redoc``, pages whose scripts come from a
            public CDN (jsDelivr). Off by default: a browser on them runs third-party code
            beside the API and its tokens, and a safe environment may have no Internet.
            ``/openapi.json`` is always served.
    """

    store: Path
    database_url: str = ""
    jwt_key_file: Path | None = None
    issuer: str = "cellcensus"
    audience: str = "cellcensus-api"
    token_minutes: int = 15
    engine: str = "duckdb"
    workers: int = 2
    warm_worker: bool = True
    job_timeout_s: float = 600.0
    job_memory_mb: int = 4096
    max_attempts: int = 2
    max_body_bytes: int = 256 * 1024
    requests_per_minute: int = 600
    jobs_per_day: int = 200
    submissions_per_day: int = 20
    login_attempts_per_minute: int = 10
    login_attempts_per_client_per_minute: int = 30
    login_attempts_per_user_per_minute: int = 60
    forwarded_allow_ips: str = ""
    interactive_docs: bool = False

    def __post_init__(self) -> None:
        # Messages name the store by the path it was given; an absolute one is what
        # `without_store_path` can mask without touching the ordinary word a relative
        # one-word name (`--store store`) would be.
        object.__setattr__(self, "store", Path(self.store).absolute())
        if self.engine not in ("duckdb", "spark"):
            raise CellcensusError(f"engine must be duckdb or spark, got {self.engine!r}")
        for name in (
            "token_minutes",
            "max_body_bytes",
            "requests_per_minute",
            "jobs_per_day",
            "submissions_per_day",
            "login_attempts_per_minute",
            "login_attempts_per_client_per_minute",
            "login_attempts_per_user_per_minute",
        ):
            if getattr(self, name) <= 0:
                raise CellcensusError(f"setting {name} must be positive")
        if self.token_minutes > MAX_TOKEN_MINUTES:
            raise CellcensusError(
                f"setting token_minutes is {self.token_minutes}: at most {MAX_TOKEN_MINUTES} "
                "(a day): a token that leaks works until it expires or its user is deactivated"
            )
        if self.workers < 0 or self.max_attempts < 1:
            raise CellcensusError("workers must be >= 0 and max_attempts >= 1")

    @property
    def state_dir(self) -> Path:
        """Folder of the service's own files beside the store."""
        return self.store / "enclave"

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite in the state folder."""
        return self.database_url or default_state_url(self.store)

    @property
    def resolved_key_file(self) -> Path:
        """The signing key file, defaulting to ``STORE/enclave/jwt.key``."""
        return self.jwt_key_file or self.state_dir / "jwt.key"

    @classmethod
    def from_env(cls, *, store: Path, **overrides: Any) -> ServiceSettings:
        """Settings from ``CELLCENSUS_*`` variables, then explicit `overrides` (not None)."""
        values: dict[str, Any] = {}
        for field in fields(cls):
            raw = os.environ.get(ENV_PREFIX + field.name.upper())
            if raw is not None and field.name != "store":
                values[field.name] = _convert(field.name, raw)
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(store=store, **values)

    def with_(self, **changes: Any) -> ServiceSettings:
        """A copy with some fields changed."""
        return replace(self, **changes)


def _convert(name: str, raw: str) -> Any:
    kind = {field.name: field.type for field in fields(ServiceSettings)}[name]
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        raise CellcensusError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a number") from None
    if kind == "Path | None":
        return Path(raw)
    if kind == "bool":
        # Refused, not read as false: a misspelt "ture" would silently switch a setting off.
        word = raw.strip().lower()
        if word not in TRUE_WORDS + FALSE_WORDS:
            raise CellcensusError(
                f"{ENV_PREFIX}{name.upper()}={raw!r} is not a yes or no: write "
                f"{' or '.join(TRUE_WORDS[:2])} to switch it on, {' or '.join(FALSE_WORDS[:2])} "
                "to switch it off"
            )
        return word in TRUE_WORDS
    return raw


TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off", "")


def signing_key(settings: ServiceSettings) -> bytes:
    """The JWT signing key: from the environment, else the key file (created if missing).

    Raises:
        CellcensusError: the key file is readable by others than its owner, or the key is
            too short or repeats a few characters.
    """
    from_env = os.environ.get(KEY_ENV)
    path = settings.resolved_key_file
    key = from_env.encode() if from_env else _key_from_file(path)
    # Named by where it came from: an empty file left by a failed copy looks like no key.
    source = f"${KEY_ENV}" if from_env else f"JWT key file {path}"
    if len(key) < MIN_KEY_BYTES:
        problem = f"holds {len(key)} bytes; a JWT signing key needs at least {MIN_KEY_BYTES}"
    elif len(set(key)) < MIN_KEY_SYMBOLS:
        # Long enough, but a word or character repeated (changemechangeme...): guessable.
        problem = f"uses only {len(set(key))} different characters; a random key has many more"
    else:
        return key
    remedy = (
        "set it to a new one"
        if from_env
        else "delete it (the service makes a new one) or write a new one"
    )
    raise CellcensusError(
        f"{source} {problem}: {remedy}, made with: "
        "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
    )


def _key_from_file(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise CellcensusError(
            f"JWT key file {path} is readable by others (mode {mode:o}); run: chmod 600 {path}"
        )
    return path.read_bytes().strip()
