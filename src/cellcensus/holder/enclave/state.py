"""The enclave's state in a database: users, scopes, jobs, releases, policies, audit, diagnostics.

SQLAlchemy Core over SQLite by default (one file beside the store) or PostgreSQL by URL. The
schema is versioned by a small explicit migration table (`schema_migrations`) and an ordered
list of migration functions run at start-up, each in its own transaction; see docs/service.md
for why this is not Alembic.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from cellcensus.errors import CellcensusError
from cellcensus.holder.enclave.release_formats import release_formats

log = logging.getLogger("cellcensus.state")
metadata = sa.MetaData()

schema_migrations = sa.Table(
    "schema_migrations",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("applied_at", sa.String(40), nullable=False),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("username", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.String(300), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("jobs_per_day", sa.Integer, nullable=True),
    sa.Column("requests_per_minute", sa.Integer, nullable=True),
    # Set when a steward sets the password: the user must choose a new one before anything else.
    sa.Column("must_change_password", sa.Boolean, nullable=False, default=False),
)

scopes = sa.Table(
    "scopes",
    metadata,
    sa.Column("username", sa.String(64), sa.ForeignKey("users.username"), primary_key=True),
    sa.Column("scope", sa.String(200), primary_key=True),
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("jti", sa.String(64), primary_key=True),
    sa.Column("username", sa.String(64), sa.ForeignKey("users.username"), nullable=False),
    sa.Column("issued_at", sa.String(40), nullable=False),
    sa.Column("expires_at", sa.String(40), nullable=False),
    sa.Column("revoked", sa.Boolean, nullable=False, default=False),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("analyst", sa.String(64), nullable=False, index=True),
    sa.Column("project", sa.String(64), nullable=False),
    sa.Column("algorithm", sa.String(64), nullable=False),
    sa.Column("version", sa.String(32), nullable=False),
    sa.Column("code_hash", sa.String(64), nullable=False),
    sa.Column("level", sa.String(32), nullable=False),
    sa.Column("parameters", sa.JSON, nullable=False),
    sa.Column("policy", sa.JSON, nullable=False),
    sa.Column("request_hash", sa.String(64), nullable=False, index=True),
    sa.Column("status", sa.String(24), nullable=False, index=True),
    sa.Column("stage", sa.String(100), nullable=False, default=""),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("epsilon", sa.Float, nullable=False, default=0.0),
    sa.Column("delta", sa.Float, nullable=False, default=0.0),
    sa.Column("release_id", sa.String(32), nullable=True),
    sa.Column("cached_from", sa.String(32), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("decided_by", sa.String(64), nullable=True),
    sa.Column("decision_reason", sa.Text, nullable=True),
    sa.Column("created_at", sa.String(40), nullable=False, index=True),
    sa.Column("started_at", sa.String(40), nullable=True),
    sa.Column("finished_at", sa.String(40), nullable=True),
)

releases = sa.Table(
    "releases",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False, index=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    # The formats GET /jobs/{id}/result serves it in (`release_formats`), worked out once when
    # it is made: a release never changes, and listing jobs then reads no release body.
    sa.Column("formats", sa.JSON, nullable=True),
)

policies = sa.Table(
    "policies",
    metadata,
    sa.Column("algorithm", sa.String(64), primary_key=True),
    sa.Column("body", sa.JSON, nullable=False),
    sa.Column("updated_by", sa.String(64), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
)

submissions = sa.Table(
    "submissions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("version", sa.String(32), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("report", sa.JSON, nullable=True),
    sa.Column("submitted_by", sa.String(64), nullable=False),
    sa.Column("submitted_at", sa.String(40), nullable=False),
    sa.Column("certified_by", sa.String(64), nullable=True),
    sa.Column("certified_at", sa.String(40), nullable=True),
    sa.Column("manifest", sa.JSON, nullable=True),  # what protects its jobs' output
)

audit = sa.Table(
    "audit",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.String(200), nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

job_diagnostics = sa.Table(
    "job_diagnostics",
    metadata,
    # A failed job's traceback or stderr tail: it may quote what the job read, so it stays out
    # of the audit log (read by auditors, never purged); the steward reads it, a purge deletes it.
    sa.Column("job_id", sa.String(32), primary_key=True),
    sa.Column("recorded_at", sa.String(40), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("salt", sa.String(64), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
)

Migration = Callable[[sa.Connection], None]


def _create_core(conn: sa.Connection) -> None:
    metadata.create_all(conn, tables=[users, scopes, tokens, jobs, releases, policies, audit])


def _create_submissions(conn: sa.Connection) -> None:
    metadata.create_all(conn, tables=[submissions])


def _create_ledger(conn: sa.Connection) -> None:
    """The privacy-loss ledger's tables (the ledger owns their definition).

    Databases made before this migration already have them (they were created unversioned
    at each start), hence ``checkfirst``.
    """
    from cellcensus.holder.disclosure.ledger import ledger_metadata  # the ledger owns its tables

    ledger_metadata.create_all(conn, checkfirst=True)


def _add_submission_manifest(conn: sa.Connection) -> None:
    """The manifest recorded at certification (`manifests.RecordedManifest`).

    A database created at this version already has the column (migration 2 makes the table
    as defined now), hence the check.
    """
    if "manifest" not in {column["name"] for column in sa.inspect(conn).get_columns("submissions")}:
        column = sa.Column("manifest", sa.JSON, nullable=True)
        kind = column.type.compile(dialect=conn.dialect)
        conn.execute(sa.text(f"ALTER TABLE submissions ADD COLUMN manifest {kind}"))


def _add_must_change_password(conn: sa.Connection) -> None:
    """Whether a user must change a password a steward set (false for every existing user).

    A database created at this version already has the column (as in migration 4).
    """
    if "must_change_password" not in {
        column["name"] for column in sa.inspect(conn).get_columns("users")
    }:
        kind = sa.Boolean().compile(dialect=conn.dialect)
        conn.execute(
            sa.text(
                f"ALTER TABLE users ADD COLUMN must_change_password {kind} NOT NULL DEFAULT FALSE"
            )
        )


def _create_job_diagnostics(conn: sa.Connection) -> None:
    """Failed jobs' details, kept apart from the audit log (`enclave.diagnostics`).

    Details recorded before this version stay in their ``job.failed`` audit entries: the
    chain cannot be edited.
    """
    metadata.create_all(conn, tables=[job_diagnostics], checkfirst=True)


def _add_release_formats(conn: sa.Connection) -> None:
    """The formats each release is served in, worked out for every release already made.

    A database created at this version already has the column (as in migration 4). Each
    release body is read once, one at a time, here; from then on a release gets its formats
    when it is made (`jobs.JobBook`).
    """
    if "formats" not in {column["name"] for column in sa.inspect(conn).get_columns("releases")}:
        kind = sa.JSON().compile(dialect=conn.dialect)
        conn.execute(sa.text(f"ALTER TABLE releases ADD COLUMN formats {kind}"))
    missing = conn.execute(sa.select(releases.c.id).where(releases.c.formats.is_(None)))
    for release_id in missing.scalars().all():
        body = conn.execute(
            sa.select(releases.c.body).where(releases.c.id == release_id)
        ).scalar_one()
        try:
            formats = release_formats(str(body))
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as error:
            # One damaged body must not stop the service starting: it is offered in no
            # format, as it could not be served in any.
            log.warning("release %s is not a readable release document (%s)", release_id, error)
            formats = []
        conn.execute(releases.update().where(releases.c.id == release_id).values(formats=formats))


MIGRATIONS: tuple[tuple[int, str, Migration], ...] = (
    (1, "users, scopes, tokens, jobs, releases, policies, audit", _create_core),
    (2, "algorithm submissions (certification workflow)", _create_submissions),
    (3, "privacy-loss ledger: budgets, budget changes, charges", _create_ledger),
    (4, "the manifest recorded with a certified submission", _add_submission_manifest),
    (5, "users who must change a password a steward set", _add_must_change_password),
    (6, "failed jobs' diagnostics, for the steward only", _create_job_diagnostics),
    (7, "the formats each release is served in", _add_release_formats),
)
"""Every schema change, in order: (version, what it does, the function that does it).

Append a new entry for each change; never edit or remove one that was released. Each runs
in its own transaction with its version's row in `schema_migrations`."""

_MIGRATION_LOCK_KEY = 0x63636D67  # PostgreSQL advisory lock: one process migrates at a time


def now() -> str:
    """The current UTC time as an ISO 8601 string (sorts as text)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


_WRITE_OPTION = "cellcensus_write"
"""Execution option marking `State.write` connections (SQLite: their BEGIN is IMMEDIATE)."""


@dataclass
class State:
    """A migrated database and the lock that serialises this process's writes.

    SQLite allows one writer at a time; taking a process-wide lock before each write
    transaction avoids "database is locked" errors between the API threads and the workers.
    Across processes, each SQLite write transaction starts with ``BEGIN IMMEDIATE`` (see
    `_begin_sqlite_write`), so it holds the database's write lock before its first read.
    """

    engine: sa.Engine
    lock: threading.RLock
    _writer: sa.Engine = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._writer = self.engine.execution_options(**{_WRITE_OPTION: True})

    @contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """A write transaction, committed on success and rolled back on error.

        On SQLite it takes the database's write lock at its start (waiting up to the busy
        timeout for another process's), so what it reads stays current until it commits:
        two processes cannot both read the same audit head or schema version.
        """
        with self.lock, self._writer.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        """A read-only connection."""
        with self.engine.connect() as conn:
            yield conn

    def schema_version(self) -> int:
        """The highest migration applied."""
        with self.read() as conn:
            return _version(conn)


def default_state_path(store: Path) -> Path:
    """The SQLite state database kept beside a store: ``STORE/enclave/state.db``."""
    return Path(store) / "enclave" / "state.db"


def default_state_url(store: Path) -> str:
    """The URL of `default_state_path`, its folder made."""
    path = default_state_path(store)
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def open_state(url: str) -> State:
    """Connect to the state database at `url` and bring its schema up to date.

    Args:
        url: SQLAlchemy URL, e.g. ``sqlite:///store/enclave/state.db`` or
            ``postgresql+psycopg://user@host/cellcensus``.

    Raises:
        CellcensusError: the URL is malformed, or the database was migrated by a newer
            cellcensus than this one.
    """
    try:
        engine = sa.create_engine(url, **_engine_options(url))
    except (sa.exc.ArgumentError, ImportError) as error:
        raise CellcensusError(f"cannot open state database {url!r}: {error}") from None
    if engine.dialect.name == "sqlite":
        _private_sqlite_file(engine.url.database)
        sa.event.listen(engine, "begin", _begin_sqlite_write)
    state = State(engine=engine, lock=threading.RLock())
    try:
        migrate(state)
    except sa.exc.OperationalError as error:
        engine.dispose()
        raise CellcensusError(f"cannot open state database {url!r}: {error.orig}") from None
    return state


def _private_sqlite_file(database: str | None) -> None:
    """Create the SQLite file with mode 0600, or take group and others' access from it.

    It holds password hashes and held releases, like the keys beside it (0600). SQLite
    creates the -wal and -shm files with the main file's mode, so creating that one first
    (an empty file is an empty database) keeps all three private whatever the umask; files
    made before are made private here too, as far as their owner may change them.
    """
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    try:
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return
    except FileExistsError:
        pass
    except OSError:
        return  # no such folder, or not ours to write in: SQLite says so when it connects
    for path in (Path(database), Path(f"{database}-wal"), Path(f"{database}-shm")):
        _make_private(path)


def _make_private(path: Path) -> None:
    """Take group and others' access from an existing file (a warning if not allowed)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            path.chmod(mode & 0o700)
    except FileNotFoundError:
        return
    except OSError as error:
        log.warning("cannot make %s readable by its owner only: %s", path, error)


def _engine_options(url: str) -> dict[str, Any]:
    if not url.startswith("sqlite"):
        return {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 20}
    # One connection per concurrent request thread, kept open (no reconnect churn).
    return {
        "connect_args": {"check_same_thread": False, "timeout": 30},
        "pool_size": 24,
        "max_overflow": 16,
    }


@sa.event.listens_for(sa.Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    module = type(dbapi_connection).__module__
    if "sqlite" not in module:
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    _set_wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; an fsync per checkpoint
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _set_wal(cursor: Any) -> None:
    """Switch the file to WAL (persistent: a no-op once it is WAL), retrying while locked.

    Switching needs an exclusive lock and SQLite does not wait for it with the busy handler,
    so processes opening a new database at once would otherwise fail "database is locked".
    """
    deadline = time.monotonic() + 30
    pause = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


def _begin_sqlite_write(conn: sa.Connection) -> None:
    """Start a `State.write` transaction on SQLite with ``BEGIN IMMEDIATE``.

    Python's `sqlite3` driver begins a (deferred) transaction only before the first
    INSERT/UPDATE/DELETE, so the reads before it (the audit head, the schema version) ran
    outside any transaction: two processes could both read the same head and then both
    append after it. ``BEGIN IMMEDIATE`` takes the write lock first (waiting up to the busy
    timeout), so a write transaction's reads see the latest commit and nobody else can write
    until it ends. It also makes a migration's DDL part of its transaction. Other
    connections (reads, the ledger's own transactions) keep the driver's default.
    """
    if conn.get_execution_options().get(_WRITE_OPTION):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def migrate(state: State) -> list[int]:
    """Apply every migration not yet applied, in order; return the versions applied.

    Each migration runs in its own transaction together with its `schema_migrations` row,
    so a failed one leaves the database at the previous version. Each transaction first takes
    a lock (PostgreSQL: an advisory lock; SQLite: the write lock, by ``BEGIN IMMEDIATE``) and
    then reads the version, so two processes starting at once apply each migration once.

    Raises:
        CellcensusError: the database was migrated by a newer cellcensus.
    """
    with state.write() as conn:
        _lock_schema(conn)
        metadata.create_all(conn, tables=[schema_migrations])
    latest = MIGRATIONS[-1][0]
    applied = []
    for version, name, migration in MIGRATIONS:
        with state.write() as conn:
            _lock_schema(conn)
            current = _version(conn)
            if current > latest:
                raise CellcensusError(
                    f"state database is at schema version {current}, newer than this "
                    f"cellcensus (knows up to {latest}); upgrade cellcensus"
                )
            if version <= current:
                continue
            migration(conn)
            conn.execute(
                schema_migrations.insert().values(version=version, name=name, applied_at=now())
            )
        applied.append(version)
    return applied


def _version(conn: sa.Connection) -> int:
    found = conn.execute(sa.select(sa.func.max(schema_migrations.c.version))).scalar()
    return int(found or 0)


def _lock_schema(conn: sa.Connection) -> None:
    """On PostgreSQL, wait for other processes' migrations (held until the transaction ends)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK_KEY)))
