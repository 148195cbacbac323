"""The state database: versioned migrations, applied once, refused when too new."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
import threading

import pytest
import sqlalchemy as sa

from cellcensus.errors import CellcensusError
from cellcensus.holder.disclosure.ledger import ledger_metadata
from cellcensus.holder.enclave import state as state_module
from cellcensus.holder.enclave.state import (
    MIGRATIONS,
    metadata,
    migrate,
    now,
    open_state,
    releases,
    schema_migrations,
    users,
)


def test_migrations_are_applied_once_and_recorded(state):
    latest = MIGRATIONS[-1][0]
    assert state.schema_version() == latest
    assert migrate(state) == []
    with state.read() as conn:
        names = conn.execute(sa.select(schema_migrations.c.name)).scalars().all()
    assert len(names) == len(MIGRATIONS)


def test_migrated_schema_matches_the_table_definitions(state):
    inspector = sa.inspect(state.engine)
    for table in metadata.sorted_tables:
        columns = {column["name"] for column in inspector.get_columns(table.name)}
        assert columns == set(table.columns.keys()), table.name
    assert "privacy_charge" in inspector.get_table_names()  # the ledger's tables too


def test_database_from_a_newer_cellcensus_is_refused(state, tmp_path):
    with state.write() as conn:
        conn.execute(schema_migrations.insert().values(version=999, name="future", applied_at="x"))
    with pytest.raises(CellcensusError, match="newer than this cellcensus"):
        open_state(str(state.engine.url))


def test_bad_url_is_a_clear_error():
    with pytest.raises(CellcensusError, match="cannot open state database"):
        open_state("nosuchdb://x")


def at_version(url, version, *, with_ledger=False):
    """A database as an older cellcensus left it: migrations up to `version`, a user."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        metadata.create_all(conn, tables=[schema_migrations])
        for number, name, migration in MIGRATIONS:
            if number <= version:
                migration(conn)
                conn.execute(
                    schema_migrations.insert().values(version=number, name=name, applied_at="x")
                )
        if with_ledger:  # before version 3, the ledger's tables were made unversioned
            ledger_metadata.create_all(conn)
        conn.execute(
            users.insert().values(
                username="kept", role="analyst", password_hash="h", active=True, created_at=now()
            )
        )
    engine.dispose()


@pytest.mark.parametrize("with_ledger", [False, True], ids=["bare", "unversioned-ledger"])
def test_database_at_the_previous_version_is_migrated_keeping_its_data(state_url, with_ledger):
    latest = MIGRATIONS[-1][0]
    at_version(state_url, latest - 1, with_ledger=with_ledger)
    opened = open_state(state_url)
    assert opened.schema_version() == latest
    with opened.read() as conn:
        assert conn.execute(sa.select(users.c.username)).scalars().all() == ["kept"]
        versions = conn.execute(sa.select(schema_migrations.c.version)).scalars().all()
    assert sorted(versions) == [number for number, _, _ in MIGRATIONS]
    assert set(ledger_metadata.tables) <= set(sa.inspect(opened.engine).get_table_names())
    opened.engine.dispose()


def test_users_from_before_version_5_need_not_change_their_password(state_url):
    at_version(state_url, 4)
    engine = sa.create_engine(state_url)
    with engine.begin() as conn:  # migration 1 makes the users table as defined now
        conn.execute(sa.text("ALTER TABLE users DROP COLUMN must_change_password"))
    engine.dispose()
    opened = open_state(state_url)
    with opened.read() as conn:
        assert conn.execute(sa.select(users.c.must_change_password)).scalars().all() == [False]
    opened.engine.dispose()


def test_releases_from_before_version_7_get_their_formats(state_url, caplog):
    """A damaged body is offered in no format, and named in the log; the service starts."""
    at_version(state_url, 6)
    by_area = {"columns": [{"name": "area_code"}, {"name": "device_count"}], "table": []}
    by_reason = {"table": [{"device_count": 200, "reason": "kept"}]}  # archived without columns
    bodies = {
        "a" * 32: json.dumps(by_area),
        "b" * 32: json.dumps(by_reason),
        "c" * 32: '{"table": [{"device_co',  # cut short
        "d" * 32: "[1, 2]",
    }
    engine = sa.create_engine(state_url)
    with engine.begin() as conn:  # migration 1 makes the releases table as defined now
        conn.execute(sa.text("ALTER TABLE releases DROP COLUMN formats"))
        for release_id, body in bodies.items():
            conn.execute(
                sa.text(
                    "INSERT INTO releases (id, request_hash, body, sha256, created_at) "
                    "VALUES (:id, 'h', :body, 's', 'x')"
                ),
                {"id": release_id, "body": body},
            )
    engine.dispose()
    with caplog.at_level(logging.WARNING, logger="cellcensus.state"):
        opened = open_state(state_url)
    with opened.read() as conn:
        found = dict(conn.execute(sa.select(releases.c.id, releases.c.formats)).all())
    assert found == {
        "a" * 32: ["json", "csv", "geojson", "parquet"],
        "b" * 32: ["json", "csv", "parquet"],
        "c" * 32: [],
        "d" * 32: [],
    }
    damaged = [record.getMessage() for record in caplog.records]
    assert len(damaged) == 2
    assert "c" * 32 in damaged[0] and "d" * 32 in damaged[1]
    opened.engine.dispose()


def test_every_version_upgrades_to_the_latest(state_url):
    at_version(state_url, 1)
    opened = open_state(state_url)
    assert opened.schema_version() == MIGRATIONS[-1][0]
    assert migrate(opened) == []
    opened.engine.dispose()


def test_failed_migration_leaves_the_previous_version(state_url, monkeypatch):
    """DDL is transactional (on SQLite too, as each migration begins IMMEDIATE): no trace."""
    opened = open_state(state_url)
    latest = MIGRATIONS[-1][0]

    def broken(conn):
        sa.Table("half_made", sa.MetaData(), sa.Column("x", sa.Integer)).create(conn)
        raise RuntimeError("migration failed half-way")

    monkeypatch.setattr(state_module, "MIGRATIONS", (*MIGRATIONS, (latest + 1, "broken", broken)))
    with pytest.raises(RuntimeError, match="half-way"):
        migrate(opened)
    assert opened.schema_version() == latest
    assert "half_made" not in sa.inspect(opened.engine).get_table_names()
    opened.engine.dispose()


def test_two_processes_starting_at_once_migrate_once(state_url):
    start = threading.Barrier(3)
    failures: list[BaseException] = []

    def start_service():
        start.wait()
        try:
            open_state(state_url).engine.dispose()
        except BaseException as error:  # collected: a thread's exception would be lost
            failures.append(error)

    threads = [threading.Thread(target=start_service) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    opened = open_state(state_url)
    with opened.read() as conn:
        versions = conn.execute(sa.select(schema_migrations.c.version)).scalars().all()
    assert sorted(versions) == [number for number, _, _ in MIGRATIONS]
    opened.engine.dispose()


def test_unreachable_server_is_a_clear_error(tmp_path):
    url = f"postgresql+psycopg://nobody@/cellcensus?host={tmp_path}&connect_timeout=2"
    pytest.importorskip("psycopg")
    with pytest.raises(CellcensusError, match="cannot open state database"):
        open_state(url)


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def modes(database):
    paths = [database, database.with_name(f"{database.name}-wal")]
    paths.append(database.with_name(f"{database.name}-shm"))
    return {path.name: stat.S_IMODE(path.stat().st_mode) for path in paths}


def add_steward(state):
    with state.write() as conn:
        conn.execute(
            users.insert().values(
                username="steward", role="steward", password_hash="x", active=True, created_at=now()
            )
        )


def test_a_new_state_database_is_readable_by_its_owner_only(tmp_path, umask_022):
    database = tmp_path / "enclave" / "state.db"
    database.parent.mkdir()
    state = open_state(f"sqlite:///{database}")
    add_steward(state)  # the -wal and -shm files exist while a connection is open
    assert modes(database) == {"state.db": 0o600, "state.db-wal": 0o600, "state.db-shm": 0o600}
    state.engine.dispose()


def test_an_older_state_database_readable_by_others_is_made_private(tmp_path, umask_022):
    database = tmp_path / "state.db"
    sqlite3.connect(database).close()  # as SQLite made it before: 0644 under umask 022
    assert stat.S_IMODE(database.stat().st_mode) == 0o644
    state = open_state(f"sqlite:///{database}")
    add_steward(state)
    assert set(modes(database).values()) == {0o600}
    state.engine.dispose()
