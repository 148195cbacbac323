"""One release is the same CSV from `cellcensus run --out` and from GET /jobs/{id}/result."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import typer
from fastapi.testclient import TestClient
from tiny_store import add_users, build_store, settings_for  # type: ignore[import-not-found]
from typer.testing import CliRunner

from cellcensus.holder.algorithms.commands import register
from cellcensus.holder.api import create_app
from cellcensus.holder.enclave import Enclave
from cellcensus.holder.enclave.state import default_state_url
from cellcensus.release import Release


def suppressing_one_province(store: Path) -> None:
    """Provinces hold 160 and 80 homes: a threshold of 120 suppresses one of them.

    Midway, 40 devices from each: Laplace noise of scale 2.5 crosses it about once in ten
    million runs (at 100, the 80 were released about once in 6,000).
    """
    policies = Enclave(store=store).service.policies
    policy = policies.for_algorithm("usual_residence").to_dict()
    policy["disclosure"].update(min_count=120, secondary_suppression=False)
    policies.set("usual_residence", policy, steward="steward")


def test_cli_file_and_service_result_are_the_same_csv_with_the_same_types(tmp_path):
    store = Path(build_store(tmp_path / "store"))
    settings = settings_for(store, tmp_path / "state", database_url=default_state_url(store))
    add_users(settings)  # in the state the CLI records its jobs in
    suppressing_one_province(store)
    app = typer.Typer()
    register(app)
    out = tmp_path / "ur.csv"
    run = ["run", "usual_residence", "--store", str(store), "--level", "province"]
    result = CliRunner().invoke(app, [*run, "--analyst", "bob", "--out", str(out)])
    assert result.exit_code == 0, result.output
    job_id = json.loads(out.with_suffix(".provenance.json").read_text())["provenance"]["job_id"]
    written = pd.read_csv(out, dtype={"area_code": str})
    assert written["device_count"].isna().sum() == 1 and written["device_count"].notna().any()
    with TestClient(create_app(settings)) as client:
        token = client.post(
            "/auth/token", json={"username": "bob", "password": "correct horse battery staple"}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        url = f"/jobs/{job_id}/result"
        csv = client.get(url, params={"format": "csv"}, headers=headers)
        served = client.get(url, params={"format": "json"}, headers=headers).text
    assert csv.status_code == 200, csv.text
    assert csv.content == out.read_bytes()
    table = Release.from_json(served).table
    assert list(table.columns) == ["area_code", "device_count", "ci95"]
    assert str(table["device_count"].dtype) == "Int64"
    again = CliRunner().invoke(app, [*run, "--analyst", "bob", "--out", str(tmp_path / "b.csv")])
    assert again.exit_code == 0, again.output
    assert (tmp_path / "b.csv").read_bytes() == out.read_bytes()  # the cached release too
