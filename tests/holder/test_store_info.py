"""`cellcensus store info` names the area levels a run can take on the store."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from typer.testing import CliRunner

from cellcensus.cli import app
from cellcensus.holder.store.retention import store_summary

sys.path.insert(0, str(Path(__file__).parent / "api"))

from tiny_store import build_store  # type: ignore[import-not-found]


def test_store_info_lists_the_allocated_area_levels(tmp_path, monkeypatch):
    monkeypatch.setenv("CELLCENSUS_KEY_FILE", str(tmp_path / "key"))
    store = build_store(tmp_path / "store")
    (store / "allocation" / "not a level.parquet").write_bytes(b"")
    runner = CliRunner(env={"COLUMNS": "200"})

    result = runner.invoke(app, ["store", "info", "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert "area levels allocated" in result.output
    assert re.search(r"area levels allocated\W+municipality, province\W", result.output)
    assert "not a level" not in result.output

    for path in (store / "allocation").iterdir():
        path.unlink()
    result = runner.invoke(app, ["store", "info", "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert re.search(r"area levels allocated\W+none\W", result.output), result.output


def test_store_info_names_the_key_file_its_key_periods_come_from(tmp_path, monkeypatch):
    # Without --key-file that is the default file, which need not be the store's own key.
    monkeypatch.chdir(tmp_path)  # a short name, on one line whatever the terminal's width
    monkeypatch.setenv("CELLCENSUS_KEY_FILE", "default.key")
    store = build_store(tmp_path / "store")
    result = CliRunner().invoke(app, ["store", "info", "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert re.search(r"key periods of default\.key\W", result.output), result.output


def test_store_info_names_each_purge_folder_left_and_what_becomes_of_it(tmp_path, monkeypatch):
    # A purge killed midway leaves STORE/.purge-*; one from before intents (files moved, no
    # intent) is never finished nor removed by a writer: only store info tells the operator.
    monkeypatch.setenv("CELLCENSUS_KEY_FILE", str(tmp_path / "key"))
    store = build_store(tmp_path / "store")
    old = store / ".purge-old" / "events"
    old.mkdir(parents=True)
    (store / "events" / "date=2011-03-07").rename(old / "date=2011-03-07")  # moved, pre-intent
    (store / ".purge-new").mkdir()
    (store / ".purge-new" / "intent.json").write_text("{}")
    (store / ".purge-early" / "kept").mkdir(parents=True)
    fates = store_summary(store)["purge_folders"]
    assert fates[".purge-new"] == "interrupted: the next writer finishes it"
    assert fates[".purge-early"] == "left before any move: the next writer removes it"
    assert fates[".purge-old"].startswith("holds files but no intent")
    assert "look for its days in purges.jsonl; delete it if they are there" in fates[".purge-old"]
    # The command shows each (its table wraps its cells to the terminal's width: names only).
    result = CliRunner().invoke(app, ["store", "info", "--store", str(store)])
    assert result.exit_code == 0, result.output
    for folder in fates:
        assert folder in result.output
