"""The store's location never reaches a client: every spelling engines give it is masked."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tiny_store import PASSWORD, add_users, settings_for  # type: ignore[import-not-found]

from cellcensus.holder.api import create_app
from cellcensus.holder.store.layout import without_store_path


def test_a_store_path_spelt_as_a_uri_by_spark_is_masked(tmp_path: Path) -> None:
    store = tmp_path / "holder data" / "störe"
    day = "events/date=2011-03-08/part-0.parquet"
    spark = (
        f"[FAILED_READ_FILE] Error while reading file file:{store.as_uri()[7:]}/{day}. "
        f"Path does not exist: file:{store}/{day}"
    )

    masked = without_store_path(spark, store)

    assert masked == (
        f"[FAILED_READ_FILE] Error while reading file file:STORE/{day}. "
        f"Path does not exist: file:STORE/{day}"
    )
    assert "holder" not in masked and "%20" not in masked


def test_a_store_path_quoted_for_the_shell_is_masked(tmp_path: Path) -> None:
    store = tmp_path / "o'brien data"
    said = f"run `cellcensus users budget alice --store {shlex.quote(str(store))}`"
    assert without_store_path(said, store) == "run `cellcensus users budget alice --store STORE`"


def test_a_store_of_one_relative_word_leaves_ordinary_words_alone() -> None:
    assert without_store_path("the store is damaged", Path("store")).startswith("the store is")


def test_a_service_started_on_a_relative_store_names_it_store_to_clients(
    tiny_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `cellcensus serve --store vault`: the folder's own name must not reach a client either.
    monkeypatch.chdir(tiny_store.parent)
    settings = settings_for(Path(tiny_store.name), tmp_path / "state", workers=0)
    add_users(settings)
    app = create_app(settings)
    with TestClient(app) as client:
        login = client.post("/auth/token", json={"username": "bob", "password": PASSWORD})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        job = {"algorithm": "usual_residence", "parameters": {}, "level": "region"}
        answer = client.post("/jobs", json=job, headers=headers)
        audit = app.state.context.service.audit.entries(limit=100)
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert "no region allocation in store STORE" in detail
    assert f" {tiny_store.name} " not in detail.replace(";", " ")
    # The audit log records the refusal as the analyst read it, for auditors to read.
    (refused,) = [entry for entry in audit if entry.action == "job.refused"]
    assert refused.details["reason"] == detail
