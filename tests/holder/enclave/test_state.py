"""The state database: versioned migrations, applied once, refused when too new."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from cellcensus.errors import CellcensusError
from cellcensus.holder.enclave.state import (
    MIGRATIONS,
    metadata,
    migrate,
    open_state,
    schema_migrations,
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
