"""Fixtures shared by the holder tests: a throwaway PostgreSQL server for the state tests,
cheap password hashes, and a Spark session set for tiny data.

The service keeps its state (users, tokens, jobs, releases, audit, privacy-loss ledger) in
SQLite by default or PostgreSQL by URL. `postgres_cluster` starts a private PostgreSQL server
for the test session: `initdb` into a temporary folder (trust authentication), listening only
on a unix socket in that folder, stopped and removed at the end. `initdb` refuses to run as
root, so as root the server runs as the `postgres` (else `nobody`) account through `runuser`.
Without the PostgreSQL binaries on PATH the PostgreSQL variants are skipped, saying why.

`state_url` gives each test a fresh, empty database: a new SQLite file, or a new database
on the session's server; tests that request it run once per backend.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cellcensus.holder.api import users as users_module

BACKENDS = ("sqlite", "postgresql")
SERVICE_SCRYPT = dict(users_module.SCRYPT)


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashes() -> Iterator[None]:
    """Hash the tests' passwords with scrypt at N=2^10, p=1, not the service's OWASP setting.

    The tests log users in hundreds of times; at the service's setting each login would cost
    a quarter of a second of one of the two cores. `service_scrypt` restores the setting for
    the tests of hashing itself. (Servers the tests start in a subprocess keep the service's
    setting and rehash these users' passwords at their first login.)
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(users_module, "SCRYPT", {"n": 2**10, "r": 8, "p": 1})
        yield


@pytest.fixture
def service_scrypt(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """The service's own scrypt setting, in force for the test."""
    monkeypatch.setattr(users_module, "SCRYPT", SERVICE_SCRYPT)
    return SERVICE_SCRYPT


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    return str(candidates[0]) if candidates else None


def _run_as() -> list[str]:
    """How to run PostgreSQL's programs as a non-root user (initdb refuses root)."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    for account in ("postgres", "nobody"):
        try:
            pwd.getpwnam(account)
        except KeyError:
            continue
        if runuser:
            return [runuser, "-u", account, "--"]
        return ["su", account, "-s", "/bin/sh", "-c", '"$0" "$@"']
    pytest.skip("PostgreSQL cannot run as root and there is no postgres or nobody account")


def _server_env() -> dict[str, str]:
    """This environment without pytest's current test, whose id (a parameter of thousands of
    characters) would make starting the server fail with E2BIG in that test."""
    return {name: value for name, value in os.environ.items() if name != "PYTEST_CURRENT_TEST"}


def _owner() -> tuple[int, int]:
    if os.geteuid() != 0:
        return os.geteuid(), os.getegid()
    for account in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(account)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    return 0, 0


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[str]:
    """A private PostgreSQL server for this session; yields its URL (database `postgres`)."""
    pytest.importorskip("psycopg", reason="the PostgreSQL driver psycopg is not installed")
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL's initdb and pg_ctl are not on PATH: PostgreSQL tests skipped")
    prefix = _run_as()
    # Not under pytest's basetemp: that is private to the user running pytest (mode 0700),
    # and the server may run as another user. The socket path must stay short (< 108 bytes).
    folder = Path(tempfile.mkdtemp(prefix="cellcensus-pg-"))
    os.chown(folder, *_owner())
    data, log = folder / "data", folder / "server.log"
    try:
        create = ["-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"]
        subprocess.run(
            [*prefix, initdb, *create, "--no-locale"],
            check=True,
            capture_output=True,
            text=True,
            env=_server_env(),
            timeout=120,
        )
        options = (
            f"-c listen_addresses='' -c unix_socket_directories='{folder}' -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300 "
            # Not UTC on purpose: the state must not depend on the server's time zone.
            "-c TimeZone=Pacific/Chatham"
        )
        start = ["-D", str(data), "-l", str(log), "-w", "-t", "60", "-o", options, "start"]
        subprocess.run(
            [*prefix, pg_ctl, *start],
            check=True,
            capture_output=True,
            text=True,
            env=_server_env(),
            timeout=90,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        server_log = log.read_text() if log.exists() else ""
        shutil.rmtree(folder, ignore_errors=True)
        output = getattr(error, "stderr", "") or ""
        raise RuntimeError(
            f"could not start a test PostgreSQL server: {error}\n{output}\n{server_log}"
        ) from error
    try:
        yield f"postgresql+psycopg://postgres@/postgres?host={folder}"
    finally:
        subprocess.run(
            [*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            env=_server_env(),
            timeout=60,
            check=False,
        )
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_cluster: str) -> Iterator[str]:
    """A new, empty database on the session's server, dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(postgres_cluster, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield postgres_cluster.replace("/postgres?", f"/{name}?", 1)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh state database URL: SQLite in a file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return str(request.getfixturevalue("postgres_url"))


SPARK_TEST_SETTINGS = {
    # Tiny data: one shuffle partition and no code generation make each query several times
    # faster in local mode; results do not depend on these.
    "spark.sql.shuffle.partitions": "1",
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
    "spark.sql.adaptive.enabled": "false",
}


@pytest.fixture(scope="session")
def small_spark() -> Iterator[Any]:
    """The process's Spark session with `SPARK_TEST_SETTINGS`, restored afterwards."""
    from cellcensus.holder.engines import spark_session

    session = spark_session()
    before = {name: session.conf.get(name, None) for name in SPARK_TEST_SETTINGS}
    for name, value in SPARK_TEST_SETTINGS.items():
        session.conf.set(name, value)
    yield session
    for name, value in before.items():
        if value is None:
            session.conf.unset(name)
        else:
            session.conf.set(name, value)
