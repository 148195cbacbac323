"""The store records its keys' fingerprints and refuses a delivery with another key."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pytest
from deliveries import (  # type: ignore[import-not-found]
    METADATA,
    USERS,
    event,
    snapshot,
    write_delivery,
)
from typer.testing import CliRunner

from cellcensus.cli import app
from cellcensus.errors import CellcensusError
from cellcensus.holder.store import Store, default_key_file, ingest_dataset, load_or_create_key
from cellcensus.holder.store.key_record import RECORD_NAME
from cellcensus.holder.store.key_rotation import rotate_key, rotated_key_file
from cellcensus.holder.store.pseudonym import key_fingerprint

runner = CliRunner()


def _delivery(folder: Path, *, days: tuple[int, ...]) -> Path:
    """Every user on each of `days` (of March 2011), in a delivery of just those days."""
    rows = [event(user=user, timestamp=f"2011-03-{d}T08:00:00Z") for user in USERS for d in days]
    period = {"start": f"2011-03-{days[0]}", "end": f"2011-03-{days[-1]}"}
    return Path(write_delivery(folder, rows=rows, metadata={**METADATA, "period": period}))


def _record(store: Path) -> list[dict[str, object]]:
    document = json.loads((store / RECORD_NAME).read_text(encoding="utf-8"))
    periods: list[dict[str, object]] = document["key_periods"]
    return periods


def test_a_new_store_makes_its_key_and_records_only_its_fingerprint(tmp_path):
    key_file, store = tmp_path / "keys" / "k1.key", tmp_path / "store"
    ingest_dataset(dataset=_delivery(tmp_path / "w1", days=(22,)), store=store, key_file=key_file)

    key = key_file.read_bytes()
    assert _record(store) == [{"valid_from": None, "fingerprint": key_fingerprint(key)}]
    content = (store / RECORD_NAME).read_bytes()
    assert key not in content and key.hex().encode() not in content


def test_another_key_is_refused_before_anything_is_written(tmp_path):
    first, other, store = tmp_path / "k1.key", tmp_path / "k2.key", tmp_path / "store"
    ingest_dataset(dataset=_delivery(tmp_path / "w1", days=(22,)), store=store, key_file=first)
    load_or_create_key(key_file=other)
    before = snapshot(store)

    with pytest.raises(CellcensusError) as raised:
        ingest_dataset(dataset=_delivery(tmp_path / "w2", days=(23,)), store=store, key_file=other)

    message = str(raised.value)
    assert f"key file {other} is not the key of store {store}" in message
    assert "pseudonymised with another key for 2011-03-23" in message
    assert "--key-file" in message and "cellcensus store rotate-key" in message
    assert other.read_bytes().hex() not in message
    assert snapshot(store) == before


def test_the_same_key_links_devices_across_deliveries(tmp_path):
    key_file, store = tmp_path / "k1.key", tmp_path / "store"
    for name, day in (("w1", 22), ("w2", 23)):
        ingest_dataset(
            dataset=_delivery(tmp_path / name, days=(day,)), store=store, key_file=key_file
        )
    events = Store(store).read_events()
    days = events.groupby(events["local_date"].astype(str))["device_id"].apply(set)
    assert days["2011-03-22"] == days["2011-03-23"] and len(days["2011-03-22"]) == len(USERS)


def test_a_missing_key_file_is_refused_for_a_store_with_pseudonyms(tmp_path):
    key_file, store = tmp_path / "k1.key", tmp_path / "store"
    ingest_dataset(dataset=_delivery(tmp_path / "w1", days=(22,)), store=store, key_file=key_file)
    typo = tmp_path / "k1.kye"
    before = snapshot(store)

    with pytest.raises(CellcensusError, match=f"key file {typo} does not exist") as raised:
        ingest_dataset(dataset=_delivery(tmp_path / "w2", days=(23,)), store=store, key_file=typo)

    assert "pass the store's key file with --key-file" in str(raised.value)
    assert not typo.exists()
    assert snapshot(store) == before


def test_the_cli_refuses_the_default_key_for_a_store_of_another_key(tmp_path):
    key_file, store = tmp_path / "k1.key", tmp_path / "s1"
    load_or_create_key(key_file=default_key_file())  # the user's usual key exists
    first = [
        "ingest",
        "--dataset",
        str(_delivery(tmp_path / "w1", days=(22,))),
        "--store",
        str(store),
        "--key-file",
        str(key_file),
    ]
    assert runner.invoke(app, first).exit_code == 0
    second = ["ingest", "--dataset", str(_delivery(tmp_path / "w2", days=(23,)))]
    result = runner.invoke(app, [*second, "--store", str(store)], env={"COLUMNS": "300"})

    assert result.exit_code == 2, result.output
    output = " ".join(result.output.split())
    assert f"key file {default_key_file()} is not the key of store {store}" in output
    assert "Traceback" not in result.output
    assert [day.day for day in Store(store).days()] == [22]


def test_a_store_without_a_record_takes_the_fingerprint_of_its_next_ingest(tmp_path):
    key_file, store = tmp_path / "k1.key", tmp_path / "store"
    ingest_dataset(dataset=_delivery(tmp_path / "w1", days=(22,)), store=store, key_file=key_file)
    (store / RECORD_NAME).unlink()  # as a store written before the record existed

    ingest_dataset(dataset=_delivery(tmp_path / "w2", days=(23,)), store=store, key_file=key_file)
    assert _record(store) == [
        {"valid_from": None, "fingerprint": key_fingerprint(key_file.read_bytes())}
    ]
    other = tmp_path / "k2.key"
    load_or_create_key(key_file=other)
    with pytest.raises(CellcensusError, match="pseudonymised with another key"):
        ingest_dataset(dataset=_delivery(tmp_path / "w3", days=(24,)), store=store, key_file=other)


def test_a_rotation_is_recorded_and_a_key_file_without_it_is_refused(tmp_path):
    key_file, store = tmp_path / "keys" / "k1.key", tmp_path / "store"
    ingest_dataset(dataset=_delivery(tmp_path / "w1", days=(22,)), store=store, key_file=key_file)
    rotation = rotate_key(
        key_file=key_file, valid_from=date(2011, 3, 24), stored_days=Store(store).days()
    )
    ingest_dataset(dataset=_delivery(tmp_path / "w2", days=(24,)), store=store, key_file=key_file)

    assert _record(store) == [
        {"valid_from": None, "fingerprint": key_fingerprint(key_file.read_bytes())},
        {"valid_from": "2011-03-24", "fingerprint": key_fingerprint(rotation.read_bytes())},
    ]
    # The first key alone, without its rotation, is not the key of the rotated days.
    copy = tmp_path / "copy" / "k1.key"
    copy.parent.mkdir(mode=0o700)
    shutil.copy2(key_file, copy)
    with pytest.raises(CellcensusError, match="pseudonymised with another key for 2011-03-25"):
        ingest_dataset(dataset=_delivery(tmp_path / "w3", days=(25,)), store=store, key_file=copy)
    # ... but it is the key of the days before the rotation.
    ingest_dataset(dataset=_delivery(tmp_path / "w4", days=(23,)), store=store, key_file=copy)
    assert not rotated_key_file(copy, valid_from=date(2011, 3, 24)).exists()


def test_store_info_shows_the_recorded_fingerprints_not_the_keys(tmp_path):
    key_file, store = tmp_path / "k1.key", tmp_path / "store"
    ingest_dataset(dataset=_delivery(tmp_path / "w1", days=(22,)), store=store, key_file=key_file)
    command = ["store", "info", "--store", str(store), "--key-file", str(key_file)]
    result = runner.invoke(app, command, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    key = key_file.read_bytes()
    assert f"first key {key_fingerprint(key)}" in result.output
    assert key.hex() not in result.output
