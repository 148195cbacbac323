"""Key rotation: a new key makes new pseudonyms; old data keeps the pseudonyms of its key."""

from __future__ import annotations

import stat
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import pandas as pd
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
from cellcensus.holder.store import Store, device_id, ingest_dataset
from cellcensus.holder.store.key_rotation import (
    keys_for_period,
    rotate_key,
    rotated_key_file,
    rotation_days,
)
from cellcensus.holder.store.pseudonym import read_key

ROTATION = date(2011, 3, 24)
runner = CliRunner()


def _delivery(folder: Path, *, start: str, end: str, rows: list[dict[str, object]]) -> Path:
    metadata = {**METADATA, "period": {"start": start, "end": end}}
    return Path(write_delivery(folder, rows=rows, metadata=metadata))


def _early(tmp_path: Path) -> Path:
    """Days 21-23: every user on the 22nd and 23rd (before the rotation)."""
    days = (22, 23)
    rows = [event(user=user, timestamp=f"2011-03-{d}T08:00:00Z") for user in USERS for d in days]
    return _delivery(tmp_path / "early", start="2011-03-21", end="2011-03-23", rows=rows)


def _late(tmp_path: Path) -> Path:
    """Days 24-27: every user on the 24th and 25th (after the rotation)."""
    days = (24, 25)
    rows = [event(user=user, timestamp=f"2011-03-{d}T08:00:00Z") for user in USERS for d in days]
    return _delivery(tmp_path / "late", start="2011-03-24", end="2011-03-27", rows=rows)


def _ids_by_day(store: Path) -> dict[str, set[int]]:
    events = Store(store).read_events()
    return {
        str(day): set(group["device_id"])
        for day, group in events.groupby(events["local_date"].astype(str))
    }


def _ingest(dataset: Path, store: Path, key_file: Path) -> None:
    ingest_dataset(dataset=dataset, store=store, key_file=key_file)


def test_pseudonyms_change_at_the_rotation_and_stay_within_a_period(tmp_path):
    key_file, store = tmp_path / "keys" / "pseudonym.key", tmp_path / "store"
    _ingest(_early(tmp_path), store, key_file)
    first_key = key_file.read_bytes()
    rotated = rotate_key(key_file=key_file, valid_from=ROTATION, stored_days=Store(store).days())
    _ingest(_late(tmp_path), store, key_file)

    ids = _ids_by_day(store)
    new_key = rotated.read_bytes()
    assert new_key != first_key and len(new_key) == 32
    assert key_file.read_bytes() == first_key  # the single-key file is left as it was
    old = {device_id(user_id=user, key=first_key) for user in USERS}
    new = {device_id(user_id=user, key=new_key) for user in USERS}
    assert ids["2011-03-22"] == ids["2011-03-23"] == old
    assert ids["2011-03-24"] == ids["2011-03-25"] == new
    assert old.isdisjoint(new)


def test_re_ingesting_an_old_day_after_a_rotation_keeps_its_pseudonyms(tmp_path):
    key_file, store = tmp_path / "pseudonym.key", tmp_path / "store"
    early = _early(tmp_path)
    _ingest(early, store, key_file)
    before = snapshot(store / "events")
    rotate_key(key_file=key_file, valid_from=ROTATION, stored_days=Store(store).days())
    _ingest(_late(tmp_path), store, key_file)
    _ingest(early, store, key_file)

    after = snapshot(store / "events")
    assert {name: after[name] for name in before} == before
    assert len(after) == 4


def test_a_delivery_across_the_rotation_uses_each_days_key(tmp_path):
    key_file, store = tmp_path / "pseudonym.key", tmp_path / "store"
    rotated = rotate_key(key_file=key_file, valid_from=ROTATION, stored_days=[])
    user = USERS[0]
    rows = [
        event(user=user, timestamp="2011-03-23T21:30:00Z"),  # 22:30 local, before
        event(user=user, timestamp="2011-03-23T23:30:00Z"),  # 00:30 local on the 24th
        event(user=user, timestamp="2011-03-27T20:00:00Z"),
        event(user=user, timestamp="2011-03-23T12:00:00Z", kind="fax"),  # quarantined
        event(user=user, timestamp=None),  # no local day: the key of the period's first day
    ]
    _ingest(write_delivery(tmp_path / "across", rows=rows), store, key_file)

    old = device_id(user_id=user, key=key_file.read_bytes())
    new = device_id(user_id=user, key=rotated.read_bytes())
    assert _ids_by_day(store) == {"2011-03-23": {old}, "2011-03-24": {new}, "2011-03-27": {new}}
    quarantine = Store(store).read_quarantine().set_index("reason")["device_id"]
    assert quarantine["unknown_event_type"] == old
    assert quarantine["null_field"] == old


def test_keys_of_a_period_are_the_ones_valid_on_its_days(tmp_path):
    key_file = tmp_path / "pseudonym.key"
    rotate_key(key_file=key_file, valid_from=date(2011, 3, 24), stored_days=[])
    rotate_key(key_file=key_file, valid_from=date(2011, 4, 1), stored_days=[])

    def starts(start: date, end: date) -> list[date | None]:
        return [key.valid_from for key in keys_for_period(key_file=key_file, start=start, end=end)]

    assert starts(date(2011, 3, 1), date(2011, 3, 23)) == [None]
    assert starts(date(2011, 3, 24), date(2011, 3, 31)) == [date(2011, 3, 24)]
    assert starts(date(2011, 3, 20), date(2011, 4, 2)) == [
        None,
        date(2011, 3, 24),
        date(2011, 4, 1),
    ]
    assert starts(date(2012, 1, 1), date(2012, 1, 2)) == [date(2011, 4, 1)]
    assert rotation_days(key_file) == [date(2011, 3, 24), date(2011, 4, 1)]
    key = keys_for_period(key_file=key_file, start=date(2011, 3, 1), end=date(2011, 3, 2))[0]
    assert key.key.hex() not in repr(key) and str(key.key) not in repr(key)


def test_a_new_key_is_private_and_rotations_only_go_forward(tmp_path):
    key_file = tmp_path / "pseudonym.key"
    path = rotate_key(key_file=key_file, valid_from=ROTATION, stored_days=[])
    assert path == rotated_key_file(key_file, valid_from=ROTATION)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600  # the first key was fixed too
    with pytest.raises(CellcensusError, match="already rotated from 2011-03-24"):
        rotate_key(key_file=key_file, valid_from=ROTATION, stored_days=[])
    with pytest.raises(CellcensusError, match="already rotated"):
        rotate_key(key_file=key_file, valid_from=date(2011, 3, 1), stored_days=[])
    stored = [date(2011, 4, 2), date(2011, 4, 3)]
    with pytest.raises(CellcensusError, match="already holds 1 day"):
        rotate_key(key_file=key_file, valid_from=date(2011, 4, 3), stored_days=stored)
    assert rotation_days(key_file) == [ROTATION]


# A real SIGKILL of a rotation in a subprocess, before or after its key is linked into place.
ROTATION_KILLS = {
    "before the key is in place": """
        def killing_link(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)
        os.link = killing_link
    """,
    "after the key is in place": """
        unlink = Path.unlink
        def killing_unlink(self, *args, **kwargs):
            if self.name.endswith(".tmp"):
                os.kill(os.getpid(), signal.SIGKILL)
            return unlink(self, *args, **kwargs)
        Path.unlink = killing_unlink
    """,
}


@pytest.mark.parametrize("kill", list(ROTATION_KILLS))
def test_a_killed_rotation_is_whole_or_absent_and_the_next_removes_what_it_left(tmp_path, kill):
    key_file, store = tmp_path / "keys" / "pseudonym.key", tmp_path / "store"
    _ingest(_early(tmp_path), store, key_file)
    files = snapshot(store)
    script = textwrap.dedent(
        """
        import os, signal
        from datetime import date
        from pathlib import Path
        from cellcensus.holder.store.key_rotation import rotate_key
        """
    )
    script += textwrap.dedent(ROTATION_KILLS[kill])
    script += (
        f"rotate_key(key_file=Path({str(key_file)!r}), valid_from=date(2011, 3, 24), "
        "stored_days=[])\n"
    )
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr

    in_place = kill == "after the key is in place"
    assert rotation_days(key_file) == ([ROTATION] if in_place else [])  # never half made
    if in_place:
        assert len(read_key(key_file=rotated_key_file(key_file, valid_from=ROTATION))) == 32
    assert snapshot(store) == files  # a rotation writes nothing into the store
    assert len(list(key_file.parent.glob(".*.tmp"))) == 1  # what the kill left: no old key

    later = date(2011, 4, 1)
    rotate_key(key_file=key_file, valid_from=later, stored_days=Store(store).days())
    assert rotation_days(key_file) == ([ROTATION, later] if in_place else [later])
    assert not list(key_file.parent.glob(".*.tmp"))


def test_a_rotated_key_readable_by_others_is_refused_at_ingest(tmp_path):
    key_file = tmp_path / "pseudonym.key"
    rotate_key(key_file=key_file, valid_from=ROTATION, stored_days=[])
    rotated_key_file(key_file, valid_from=ROTATION).chmod(0o644)
    with pytest.raises(CellcensusError, match="chmod 600"):
        _ingest(_late(tmp_path), tmp_path / "store", key_file)
    assert not (tmp_path / "store").exists()


def test_the_cli_rotates_without_showing_keys_or_ids(tmp_path, monkeypatch):
    key_file, store = tmp_path / "pseudonym.key", tmp_path / "store"
    monkeypatch.setenv("CELLCENSUS_KEY_FILE", str(key_file))
    outputs = []
    for command in (
        ["ingest", "--dataset", str(_early(tmp_path)), "--store", str(store)],
        ["store", "rotate-key", "--from", "2011-03-23", "--store", str(store)],
        ["store", "rotate-key", "--from", ROTATION.isoformat(), "--store", str(store)],
        ["ingest", "--dataset", str(_late(tmp_path)), "--store", str(store)],
        ["store", "info", "--store", str(store)],
    ):
        result = runner.invoke(app, command)
        outputs.append(result.output)
    refused, rotated, info = outputs[1], outputs[2], outputs[4]
    assert "already holds 1 day(s) from 2011-03-23" in refused and "Traceback" not in refused
    assert "from 2011-03-24" in rotated and "0600" in rotated
    assert "first key, from 2011-03-24" in info and "4 (2011-03-22 to 2011-03-25)" in info

    keys = [key_file.read_bytes(), rotated_key_file(key_file, valid_from=ROTATION).read_bytes()]
    secrets = [*USERS, *(key.hex() for key in keys)]
    for text in outputs:
        assert not any(secret in text for secret in secrets)
    for path in store.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert not any(key in content for key in keys), path
            assert not any(user.encode() in content for user in USERS), path
    stored = Store(store).read_events()
    assert stored["device_id"].nunique() == 2 * len(USERS)
    assert pd.api.types.is_integer_dtype(stored["device_id"])


def test_rotate_key_refuses_a_bad_date_or_a_missing_store(tmp_path):
    key = ["--key-file", str(tmp_path / "k")]
    bad = runner.invoke(app, ["store", "rotate-key", "--from", "24/03/2011", "--store", "x", *key])
    missing = runner.invoke(
        app, ["store", "rotate-key", "--from", "2011-03-24", "--store", str(tmp_path / "no"), *key]
    )
    for result in (bad, missing):
        assert result.exit_code == 2
        assert "error:" in result.output and "Traceback" not in result.output
    assert "is not a date" in bad.output and "does not exist" in missing.output
    assert not (tmp_path / "k").exists()


def test_store_info_creates_no_key_file_and_its_help_says_so(tmp_path):
    store, key_file = tmp_path / "store", tmp_path / "keys" / "pseudonym.key"
    _ingest(_early(tmp_path), store, tmp_path / "pseudonym.key")
    result = runner.invoke(
        app, ["store", "info", "--store", str(store), "--key-file", str(key_file)]
    )
    assert result.exit_code == 0 and "no key yet" not in result.output
    # The store records a key: it is elsewhere, not yet to be made (the cell may wrap).
    assert "none here" in result.output and "--key-file" in result.output
    assert not key_file.parent.exists()
    shown = runner.invoke(app, ["store", "info", "--help"], env={"COLUMNS": "1000"}).output
    assert "created for a new store" not in shown and "no key is read or created" in shown
