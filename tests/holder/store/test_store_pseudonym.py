"""Keyed pseudonyms: deterministic per key, different across keys, key kept private."""

from __future__ import annotations

import hashlib
import hmac
import stat

import pytest
from deliveries import USERS, good_events, write_delivery  # type: ignore[import-not-found]

from cellcensus.errors import CellcensusError
from cellcensus.holder.store import Store, default_key_file, device_id, ingest_dataset
from cellcensus.holder.store.pseudonym import KEY_BYTES, load_or_create_key, pseudonymise


def test_a_pseudonym_is_the_first_8_bytes_of_hmac_sha256_as_signed_int64():
    key = bytes(range(32))
    digest = hmac.new(key, b"32470000001", hashlib.sha256).digest()
    expected = int.from_bytes(digest[:8], "big", signed=True)
    assert device_id(user_id="32470000001", key=key) == expected
    assert pseudonymise(user_ids=["32470000001"], key=key).tolist() == [expected]


def test_pseudonymise_matches_one_by_one_and_keeps_order():
    key = b"k" * 32
    ids = [f"3247{i:07d}" for i in range(1000)] + ["", "é-ü"]
    assert pseudonymise(user_ids=ids, key=key).tolist() == [
        device_id(user_id=user, key=key) for user in ids
    ]


def test_same_key_same_pseudonyms_another_key_other_pseudonyms(tmp_path):
    dataset = write_delivery(tmp_path / "dataset", rows=good_events())

    def stored_ids(store: str, key: str) -> set[int]:
        ingest_dataset(dataset=dataset, store=tmp_path / store, key_file=tmp_path / key)
        return set(Store(tmp_path / store).read_events()["device_id"])

    first = stored_ids("store-1", "key-a")
    again = stored_ids("store-2", "key-a")
    other = stored_ids("store-3", "key-b")
    assert first == again
    assert len(first) == len(USERS)
    assert first.isdisjoint(other)
    assert (tmp_path / "key-a").read_bytes() != (tmp_path / "key-b").read_bytes()


def test_the_key_is_created_once_private_and_random(tmp_path):
    key_file = tmp_path / "config" / "cellcensus" / "pseudonym.key"
    key = load_or_create_key(key_file=key_file)
    assert len(key) == KEY_BYTES
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "config").stat().st_mode) == 0o700
    assert load_or_create_key(key_file=key_file) == key
    assert load_or_create_key(key_file=tmp_path / "other.key") != key
    assert sorted(path.name for path in key_file.parent.iterdir()) == ["pseudonym.key"]


def test_a_key_readable_by_others_or_of_the_wrong_size_is_refused(tmp_path):
    key_file = tmp_path / "pseudonym.key"
    load_or_create_key(key_file=key_file)
    key_file.chmod(0o644)
    with pytest.raises(CellcensusError, match="chmod 600"):
        load_or_create_key(key_file=key_file)
    key_file.chmod(0o600)
    key_file.write_bytes(b"short")
    with pytest.raises(CellcensusError, match="not a 32-byte key"):
        load_or_create_key(key_file=key_file)


def test_the_key_never_appears_in_messages_or_the_store(tmp_path, capsys):
    dataset = write_delivery(tmp_path / "dataset", rows=good_events())
    ingest_dataset(dataset=dataset, store=tmp_path / "store", key_file=tmp_path / "key")
    key = (tmp_path / "key").read_bytes()
    captured = capsys.readouterr()
    assert key.hex() not in captured.out + captured.err
    for path in (tmp_path / "store").rglob("*"):
        if path.is_file():
            assert key not in path.read_bytes()


def test_default_key_file_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CELLCENSUS_KEY_FILE", str(tmp_path / "k"))
    assert default_key_file() == tmp_path / "k"
    monkeypatch.delenv("CELLCENSUS_KEY_FILE")
    assert default_key_file().parts[-3:] == (".config", "cellcensus", "pseudonym.key")
