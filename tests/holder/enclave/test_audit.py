"""The audit chain: append-only, and any edit, removal, reordering or truncation is found."""

from __future__ import annotations

import itertools
import threading

import sqlalchemy as sa
import typer
from typer.testing import CliRunner

from cellcensus.holder.api.commands import register
from cellcensus.holder.enclave.audit import GENESIS, AuditLog
from cellcensus.holder.enclave.state import audit, open_state


def filled(state, n=5):
    log = AuditLog(state)
    for index in range(n):
        log.append(
            actor="steward",
            action="policy.set",
            target=f"policy:{index}",
            details={"min_count": 10 + index},
        )
    return log


def test_chain_links_each_entry_to_the_previous(state):
    log = filled(state)
    entries = log.entries()
    assert [entry.seq for entry in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    assert log.verify().ok and log.verify().head == (5, entries[-1].hash)


def test_edited_entry_is_named(state):
    log = filled(state)
    with state.write() as conn:
        conn.execute(audit.update().where(audit.c.seq == 3).values(details={"min_count": 99}))
    verdict = log.verify()
    assert not verdict.ok and verdict.first_bad == 3 and "edited" in verdict.reason


def test_rehashed_edit_breaks_the_next_link(state):
    log = filled(state)
    with state.write() as conn:
        conn.execute(audit.update().where(audit.c.seq == 2).values(hash="f" * 64))
    assert log.verify().first_bad == 2


def test_removed_entry_is_named(state):
    log = filled(state)
    with state.write() as conn:
        conn.execute(audit.delete().where(audit.c.seq == 2))
    verdict = log.verify()
    assert verdict.first_bad == 3 and "expected entry 2" in verdict.reason


def test_reordered_entries_are_found(state):
    log = filled(state)
    with state.write() as conn:
        conn.execute(audit.update().where(audit.c.seq == 2).values(seq=-2))
        conn.execute(audit.update().where(audit.c.seq == 4).values(seq=2))
        conn.execute(audit.update().where(audit.c.seq == -2).values(seq=4))
    assert log.verify().first_bad == 2


def test_truncation_is_found_against_a_published_head(state):
    log = filled(state)
    head = log.head()
    with state.write() as conn:
        conn.execute(audit.delete().where(audit.c.seq >= 4))
    assert log.verify().ok  # a shorter chain is consistent in itself...
    verdict = log.verify(head=head)
    assert not verdict.ok and verdict.first_bad == 5 and "truncated" in verdict.reason


def test_cli_verify_names_the_first_bad_entry(state, tmp_path):
    filled(state)
    store = tmp_path / "store"
    store.mkdir()
    (store / "metadata.json").write_text("{}", encoding="utf-8")  # a store, if an empty one
    app = typer.Typer()
    register(app)
    url = str(state.engine.url)
    ok = CliRunner().invoke(app, ["audit", "verify", "--store", str(store), "--database-url", url])
    assert ok.exit_code == 0 and "5 entries" in ok.output
    with state.write() as conn:
        conn.execute(sa.text("UPDATE audit SET actor = 'mallory' WHERE seq = 4"))
    bad = CliRunner().invoke(app, ["audit", "verify", "--store", str(store), "--database-url", url])
    assert bad.exit_code == 1 and "entry 4" in bad.output


def test_appends_from_two_processes_keep_one_chain(state):
    """Two services (or the service and a CLI command) on one database append in turn."""
    url = state.engine.url
    others = [open_state(url.render_as_string(hide_password=False)) for _ in range(2)]
    start = threading.Barrier(len(others))
    failures: list[BaseException] = []

    def append_many(other):
        log = AuditLog(other)
        start.wait()
        try:
            for index in range(25):
                log.append(actor="steward", action="policy.set", target=f"policy:{index}")
        except BaseException as error:  # collected: a thread's exception would be lost
            failures.append(error)

    threads = [threading.Thread(target=append_many, args=(other,)) for other in others]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for other in others:
        other.engine.dispose()
    assert failures == []
    verdict = AuditLog(state).verify()
    assert verdict.ok and verdict.entries == 50, verdict
