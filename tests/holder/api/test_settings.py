"""Every setting is documented (as Datasette checks), and settings come from the environment."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from dataclasses import MISSING, fields
from pathlib import Path

import pytest

from cellcensus.errors import CellcensusError
from cellcensus.holder.api.settings import ServiceSettings, signing_key

DOCS = Path(__file__).resolve().parents[3] / "docs" / "service.md"


def test_every_setting_is_documented():
    text = DOCS.read_text()
    missing = [field.name for field in fields(ServiceSettings) if f"`{field.name}`" not in text]
    assert not missing, f"document these settings in docs/service.md: {missing}"


def test_settings_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CELLCENSUS_WORKERS", "5")
    monkeypatch.setenv("CELLCENSUS_WARM_WORKER", "false")
    settings = ServiceSettings.from_env(store=tmp_path, token_minutes=3)
    assert (settings.workers, settings.warm_worker, settings.token_minutes) == (5, False, 3)
    monkeypatch.setenv("CELLCENSUS_WORKERS", "many")
    with pytest.raises(CellcensusError, match="CELLCENSUS_WORKERS"):
        ServiceSettings.from_env(store=tmp_path)


def test_a_switch_set_to_neither_yes_nor_no_is_refused_by_name(tmp_path, monkeypatch):
    monkeypatch.setenv("CELLCENSUS_INTERACTIVE_DOCS", "on")
    assert ServiceSettings.from_env(store=tmp_path).interactive_docs
    monkeypatch.setenv("CELLCENSUS_INTERACTIVE_DOCS", "ture")
    with pytest.raises(CellcensusError, match="CELLCENSUS_INTERACTIVE_DOCS='ture' is not a yes"):
        ServiceSettings.from_env(store=tmp_path)


def test_a_token_lives_a_day_at_most(tmp_path):
    assert ServiceSettings(store=tmp_path, token_minutes=24 * 60).token_minutes == 1440
    with pytest.raises(CellcensusError, match="token_minutes is 1441: at most 1440"):
        ServiceSettings(store=tmp_path, token_minutes=24 * 60 + 1)


def test_signing_key_file_is_private(tmp_path, monkeypatch):
    monkeypatch.delenv("CELLCENSUS_JWT_KEY", raising=False)
    settings = ServiceSettings(store=tmp_path, jwt_key_file=tmp_path / "jwt.key")
    key = signing_key(settings)
    assert len(key) >= 32
    assert stat.S_IMODE((tmp_path / "jwt.key").stat().st_mode) == 0o600
    (tmp_path / "jwt.key").chmod(0o644)
    with pytest.raises(CellcensusError, match="chmod 600"):
        signing_key(settings)
    monkeypatch.setenv("CELLCENSUS_JWT_KEY", "short")
    with pytest.raises(CellcensusError, match=r"\$CELLCENSUS_JWT_KEY holds 5 bytes.*at least 32"):
        signing_key(settings)


@pytest.mark.parametrize("key", ["changeme" * 8, "a" * 64, "ab12" * 16])
def test_a_long_but_guessable_signing_key_is_refused(tmp_path, monkeypatch, key):
    monkeypatch.setenv("CELLCENSUS_JWT_KEY", key)
    settings = ServiceSettings(store=tmp_path)
    refusal = rf"\$CELLCENSUS_JWT_KEY uses only {len(set(key))} different characters"
    with pytest.raises(CellcensusError, match=refusal) as error:
        signing_key(settings)
    assert "secrets.token_urlsafe" in str(error.value)


def test_random_keys_are_kept(tmp_path, monkeypatch):
    import secrets

    # Ten different characters are enough; 64 random hex digits use all 16 (fewer than 10
    # with a chance below 2e-12).
    for key in ("0123456789" * 4, secrets.token_hex(32), secrets.token_urlsafe(32)):
        monkeypatch.setenv("CELLCENSUS_JWT_KEY", key)
        assert signing_key(ServiceSettings(store=tmp_path)) == key.encode()


def test_a_short_signing_key_file_is_named_with_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("CELLCENSUS_JWT_KEY", raising=False)
    key_file = tmp_path / "jwt.key"
    key_file.touch(mode=0o600)  # as a copy that failed leaves it
    settings = ServiceSettings(store=tmp_path, jwt_key_file=key_file)
    with pytest.raises(CellcensusError, match=f"JWT key file {key_file} holds 0 bytes") as error:
        signing_key(settings)
    assert "delete it (the service makes a new one)" in str(error.value)
    key_file.unlink()
    assert len(signing_key(settings)) >= 32


@pytest.mark.spark
def test_a_spark_service_whose_engine_cannot_start_does_not_start(tmp_path):
    # Its jobs would each be charged before their worker found that Spark does not start.
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "metadata.json").write_text("{}", encoding="utf-8")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SPARK_", "PYSPARK_"))}
    done = subprocess.run(
        [sys.executable, "-m", "cellcensus", "serve", "--store", str(tmp_path / "store")],
        env=clean | {"CELLCENSUS_ENGINE": "spark", "JAVA_HOME": str(tmp_path / "no-jdk")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    said = " ".join(done.stderr.split())
    assert done.returncode == 2, said
    assert "the service's engine, spark, does not start" in said
    assert "needs Java 17" in said and "Traceback" not in said


def _documented_defaults() -> dict[str, str]:
    """Each setting's default as the table of docs/service.md writes it."""
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \|", DOCS.read_text(), flags=re.M)
    return {name: default.strip() for name, default in rows}


def test_every_documented_default_is_the_settings_default():
    documented = _documented_defaults()
    checked = 0
    for field in fields(ServiceSettings):
        written = documented[field.name].strip("`")
        if field.default is None or field.default is MISSING:
            continue  # resolved from the store: "(required)", "STORE/enclave/jwt.key"
        if isinstance(field.default, bool):
            value: object = {"true": True, "false": False}.get(written)
        elif isinstance(field.default, int | float):
            value = float(written)
        elif written == "(empty)":
            value = ""
        elif " " in written:
            continue  # a description: "SQLite in STORE/enclave/state.db"
        else:
            value = written
        assert value == field.default, f"docs/service.md gives {field.name} the default {written}"
        checked += 1
    assert checked >= 15
