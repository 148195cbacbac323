"""`cellcensus run` refusals that name their cause and the command that removes it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from cellcensus.errors import CellcensusError
from cellcensus.holder.algorithms.commands import register
from cellcensus.holder.enclave import Enclave
from cellcensus.holder.enclave.compute import check_period
from cellcensus.holder.geo.tile_footprint import (
    build_tile_footprint,
    footprint_path,
    has_footprint,
)
from cellcensus.holder.store import Store
from cellcensus.reference import municipalities
from cellcensus.release import Release

sys.path.insert(0, str(Path(__file__).parents[1] / "api"))

from tiny_store import AREAS, build_store  # type: ignore[import-not-found]

app = typer.Typer()
register(app)
cli = CliRunner()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A fresh tiny store (its own job table and ledger): municipality and province only."""
    return Path(build_store(tmp_path / "store"))


def run(store: Path, out: Path, *options: str) -> tuple[int, str]:
    """Run usual_residence through the CLI; its exit code and output on one line."""
    result = cli.invoke(
        app, ["run", "usual_residence", "--store", str(store), "--out", str(out), *options]
    )
    return result.exit_code, " ".join(result.output.split())


def test_a_level_without_allocation_names_the_command_that_allocates_it(store, tmp_path):
    code, output = run(store, tmp_path / "x.csv", "--level", "arrondissement")
    assert code != 0
    assert "no arrondissement allocation" in output
    # Arrondissements are summed from municipalities: no polygons to give.
    assert f"`cellcensus store allocate --store {store} --level arrondissement`" in output
    code, output = run(store, tmp_path / "x.csv", "--level", "districts")
    assert f"cellcensus store allocate --store {store} --level districts --areas" in output
    assert "cellcensus ingest" not in output
    assert not (tmp_path / "x.csv").exists()


def test_a_store_without_its_municipality_allocation_is_told_to_allocate_not_ingest(
    store, tmp_path
):
    Store(store).allocation_path("municipality").unlink()  # as an ingest stopped before it
    code, output = run(store, tmp_path / "x.csv")
    assert code == 2
    assert "no municipality allocation" in output
    assert f"`cellcensus store allocate --store {store}`" in output
    assert "cellcensus ingest" not in output  # the delivery need not be ingested again


def test_a_grid_level_by_another_name_is_told_the_grid_level(store, tmp_path):
    code, output = run(store, tmp_path / "x.csv", "--level", "grid")
    assert code == 2
    assert "the INSPIRE 1 km grid's level is inspire_1km" in output
    assert f"`cellcensus store allocate --store {store} --grid`" in output


def test_a_folder_that_is_not_a_store_is_refused_as_such_and_left_as_it_was(tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    code, output = run(folder, tmp_path / "x.csv")
    assert code == 2
    assert f"{folder} is not a store" in output
    assert f"cellcensus ingest --dataset DELIVERY --store {folder}" in output
    assert "allocation" not in output
    assert list(folder.iterdir()) == []  # no enclave state kept in it


def with_footprint(store: Path) -> Path:
    """The store with tile footprint tables (empty: checks read only that they are there)."""
    frames = {
        "cells": pd.DataFrame({"cell_id": ["C1"], "sector": [1]}),
        "serving": pd.DataFrame({"sector": [1], "tile": [1], "probability": [1.0]}),
        "tiles": pd.DataFrame({"tile": [1], "area_code": ["11001"], "log_prior": [0.0]}),
    }
    for name, frame in frames.items():
        path = footprint_path(Store(store), name)
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path, index=False)
    assert has_footprint(Store(store))
    return store


@pytest.mark.parametrize(
    ("algorithm", "estimator"),
    [("usual_residence", "posterior"), ("present_population", "bayesian")],
)
def test_a_footprint_estimator_at_another_level_says_it_serves_municipalities_only(
    store, tmp_path, algorithm, estimator
):
    with_footprint(store)
    result = cli.invoke(
        app,
        [
            "run",
            algorithm,
            "--store",
            str(store),
            "--level",
            "province",
            "--param",
            f"spatial_estimator={estimator}",
            "--out",
            str(tmp_path / "x.csv"),
        ],
    )
    output = " ".join(result.output.split())
    assert result.exit_code != 0
    assert f"the {estimator} estimator only supports the municipality level" in output
    assert "not province" in output and "spatial_estimator=allocation" in output
    assert "--tile-footprint" not in output


def spent(store: Path, analyst: str) -> tuple[int, int]:
    """(charges, jobs) the enclave recorded for `analyst`."""
    service = Enclave(store=store).service
    charges = service.ledger.charges(analyst=analyst, project="default")
    return len(charges), len(service.book.recent(analyst=analyst))


@pytest.mark.parametrize(
    ("option", "refusal"),
    [
        ("spatial_estimator=posterior", "the posterior estimator needs the store's tile footprint"),
        ("start=2011-03-20", "holds none of the days in store"),
        ("end=2011-03-20", "reaches beyond the days in store"),
        ("start=2011-03-01", "reaches beyond the days in store"),
        ("min_nights=9", "holds 7 of the store's days, at most 8 nights: fewer than min_nights"),
        ("start=2011-03-12", "at most 3 nights: fewer than min_nights (4)"),
    ],
)
def test_what_the_store_cannot_serve_is_refused_each_time_at_no_cost(
    store, tmp_path, option, refusal
):
    out = tmp_path / "x.csv"
    options = ["--param", option] + (["--param", "min_nights=4"] if "start" in option else [])
    for _ in range(2):  # a retry costs nothing either
        code, output = run(store, out, *options, "--analyst", "r")
        assert code != 0 and refusal in output
    assert spent(store, "r") == (0, 0)
    assert not out.exists()
    code, output = run(store, out, "--analyst", "r")  # the store serves the default
    assert code == 0, output
    assert spent(store, "r") == (1, 1)


@pytest.mark.parametrize(
    ("algorithm", "params", "refusal"),
    [
        (
            "home_work_flows",
            ["start=2011-03-11", "end=2011-03-13"],  # Friday to Sunday
            "holds 3 of the store's days, at most 1 weekday: fewer than min_work_days (3)",
        ),
        (
            "internal_migration",
            [
                "before_start=2011-03-07",
                "before_end=2011-03-09",
                "after_start=2011-03-12",
                "after_end=2011-03-20",
                "min_nights=4",
            ],
            "the later period (2011-03-12 to 2011-03-20) holds 2 of the store's days, at most "
            "3 nights: fewer than min_nights (4)",
        ),
    ],
)
def test_a_period_too_short_for_any_device_to_qualify_is_refused_at_no_cost(
    store, tmp_path, algorithm, params, refusal
):
    out = tmp_path / "x.csv"
    options = [option for param in params for option in ("--param", param)]
    command = ["run", algorithm, "--store", str(store), "--out", str(out), "--analyst", "r"]
    result = cli.invoke(app, [*command, *options])
    assert result.exit_code != 0 and refusal in " ".join(result.output.split())
    assert spent(store, "r") == (0, 0)
    assert not out.exists()


def test_a_footprint_of_cells_since_moved_is_refused_until_made_again(store, tmp_path):
    areas = municipalities()
    build_tile_footprint(Store(store), areas=areas[areas.area_code.isin(set(AREAS.values()))])
    out = tmp_path / "x.csv"
    cells = pd.read_parquet(Store(store).cells_path)
    cells.to_parquet(Store(store).cells_path)  # the same cells written again: still current
    assert has_footprint(Store(store))
    moved = cells.assign(latitude=cells.latitude + 0.01 * (cells.index == 0))
    moved.to_parquet(Store(store).cells_path)  # a later ingest moved a cell
    code, output = run(store, out, "--param", "spatial_estimator=posterior", "--analyst", "r")
    assert code != 0 and "needs the store's tile footprint" in output
    # The holder's command line names the command with this store's folder.
    assert f"run `cellcensus store allocate --store {store} --tile-footprint`" in output
    assert spent(store, "r") == (0, 0)
    build_tile_footprint(Store(store), areas=areas[areas.area_code.isin(set(AREAS.values()))])
    assert has_footprint(Store(store))


@pytest.mark.spark
def test_spark_without_java_is_one_line_and_spends_no_budget(store, tmp_path):
    # The session is one per process: a subprocess, so that no JVM is already running.
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SPARK_", "PYSPARK_"))}
    command = [sys.executable, "-m", "cellcensus", "run", "usual_residence", "--engine", "spark"]
    done = subprocess.run(
        [*command, "--store", str(store), "--out", str(tmp_path / "x.csv")],
        env=clean | {"JAVA_HOME": str(tmp_path / "no-jdk")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "needs Java 17" in " ".join(done.stderr.split())
    left = Enclave(store=store).service.budget_left(analyst="holder", project="default")
    assert left == (2.0, 1e-5)


def test_a_day_missing_between_the_stored_days_is_no_date_of_the_release(store, tmp_path):
    """Its counts would be noise alone: the refusal names the held runs, the release skips it."""
    shutil.rmtree(store / "events" / "date=2011-03-10")  # never delivered
    out = tmp_path / "present.csv"
    command = ["run", "present_population", "--store", str(store), "--out", str(out)]
    result = cli.invoke(app, [*command, "--param", "end=2011-03-14"])
    output = " ".join(result.output.split())
    assert result.exit_code != 0
    assert "(2011-03-07 to 2011-03-09, 2011-03-11 to 2011-03-13)" in output
    result = cli.invoke(app, command)
    assert result.exit_code == 0, result.output
    dates = set(pd.read_csv(out)["local_date"])
    assert dates == {f"2011-03-{day:02d}" for day in (7, 8, 9, 11, 12, 13)}
    published = Release.read(out).published
    assert published["period"] == {"start": "2011-03-07", "end": "2011-03-13"}
    assert published["days_missing"] == ["2011-03-10"]


def test_a_store_without_days_says_to_ingest_not_to_choose_among_none(store, tmp_path):
    # Every day purged (or removed): no period can be chosen "among them".
    shutil.rmtree(store / "events")
    (store / "events").mkdir()
    code, output = run(store, tmp_path / "x.csv")
    assert code != 0
    assert f"store {store} holds no day of events; ingest a delivery first" in output
    assert f"cellcensus ingest --store {store}" in output
    assert "among them" not in output
    analyst = Store(store)
    with pytest.raises(CellcensusError, match="ask the data holder to ingest a delivery"):
        check_period(analyst, {}, reader="analyst")


def test_run_gives_no_budget_to_a_user_of_the_service(store, tmp_path):
    # A name that is no user gets a budget of its own at its first run; a user of the
    # service only what the steward set, which `--analyst alice` must not add to.
    from tiny_store import PASSWORD  # type: ignore[import-not-found]

    from cellcensus.holder.api.users import Role, Users
    from cellcensus.holder.enclave.state import default_state_url, open_state

    state = open_state(default_state_url(store))
    Users(state).add(username="alice", role=Role.ANALYST, password=PASSWORD, actor="test")
    code, output = run(store, tmp_path / "x.csv", "--analyst", "alice")
    assert code == 2
    assert "no privacy budget for project 'default'" in output
    assert "cellcensus users budget alice" in output
    ledger = Enclave(store=store).service.ledger
    assert ledger.projects(analyst="alice") == []
    assert not (tmp_path / "x.csv").exists()
    code, output = run(store, tmp_path / "x.csv", "--analyst", "holder-team")
    assert code == 0, output
    assert ledger.projects(analyst="holder-team") == ["default"]
