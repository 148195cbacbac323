"""`cellcensus estimate`: the holder's chain on a tiny world, then the statistics office's command
on the release it wrote, through the command line; and the command's refusals."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import get_args

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cellcensus.cli import app
from cellcensus.holder.api.formats import ResultFormat, render
from cellcensus.nso.commands import MARKER, Estimator
from cellcensus.nso.production import ESTIMATOR_INFO
from cellcensus.nso.report.publish import ESTIMATES_COLUMNS
from cellcensus.nso.simulation import SimulatedRelease
from cellcensus.reference import census_population, municipalities, register_population
from cellcensus.release import Release

runner = CliRunner()
TYPES = {"area_code": "str", "released_devices": "Int64"}


@dataclass(frozen=True)
class Chain:
    """What the holder's chain on a tiny world handed over.

    Attributes:
        csv: ``residents.csv``, its provenance beside it (`cellcensus run --out`).
        json: The same release as one JSON document.
        parquet: The same release as the service sends it (``format=parquet``).
        arrondissements: usual_residence at arrondissement level (JSON).
    """

    csv: Path
    json: Path
    parquet: Path
    arrondissements: Path


@pytest.fixture(scope="module")
def operator_chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    """The README's first steps (`--scale 0.002 --days 2`), and a release per format."""
    folder = tmp_path_factory.mktemp("chain")
    world, store = str(folder / "world"), str(folder / "store")
    run = ["run", "usual_residence", "--store", store]
    steps = [
        ["synth", "--out", world, "--scale", "0.002", "--days", "2"],
        ["ingest", "--dataset", world, "--store", store],
        [*run, "--out", str(folder / "residents.csv")],
        # The same request: the enclave hands the same release again, as one JSON document.
        [*run, "--out", str(folder / "residents.json")],
        ["store", "allocate", "--store", store, "--level", "arrondissement"],
        [*run, "--level", "arrondissement", "--out", str(folder / "arrondissements.json")],
    ]
    with pytest.MonkeyPatch.context() as patch:  # the holder's key in the test's folder
        patch.setenv("CELLCENSUS_KEY_FILE", str(folder / "pseudonym.key"))
        for step in steps:
            result = runner.invoke(app, step)
            assert result.exit_code == 0, (step, result.output)
    parquet, _ = render((folder / "residents.json").read_text(), ResultFormat.PARQUET)
    (folder / "residents.parquet").write_bytes(parquet)
    return Chain(
        csv=folder / "residents.csv",
        json=folder / "residents.json",
        parquet=folder / "residents.parquet",
        arrondissements=folder / "arrondissements.json",
    )


def estimate(release: Path, out: Path, *options: str) -> str:
    """The output of a `cellcensus estimate` that succeeded."""
    result = runner.invoke(app, ["estimate", str(release), "--out", str(out), *options])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # as the console wrapped it


def refusal(release: Path, out: Path, *options: str) -> str:
    """The one-line error of a `cellcensus estimate` that refused, having written nothing."""
    result = runner.invoke(app, ["estimate", str(release), "--out", str(out), *options])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert not out.exists()
    return " ".join(result.output.split())


def read_estimates(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "estimates.csv", dtype=TYPES)


@pytest.mark.slow
def test_the_holders_csv_release_becomes_estimates_per_municipality(operator_chain, tmp_path):
    out = tmp_path / "estimates"
    printed = estimate(operator_chain.csv, out)
    release = Release.read(operator_chain.csv)
    estimates = read_estimates(out)
    assert tuple(estimates.columns) == ESTIMATES_COLUMNS
    # Every municipality once, beside its census count.
    assert sorted(estimates["area_code"]) == sorted(census_population()["area_code"])
    assert estimates["census_2011"].sum() == 11_000_638
    # The released counts are the release's; exactly the released municipalities are estimated.
    counts = release.table.set_index("area_code")["device_count"]
    keyed = estimates.set_index("area_code")
    assert keyed["released_devices"].equals(counts.reindex(keyed.index).rename("released_devices"))
    released = estimates["released_devices"].notna()
    assert 0 < released.sum() == len(release.table) - release.n_suppressed
    assert estimates["estimate"].notna().equals(released)
    shown = estimates[released]
    assert (shown["estimate"] > 0).all()
    assert (shown["ci_lower"] <= shown["estimate"]).all()
    assert (shown["estimate"] <= shown["ci_upper"]).all()

    metrics = json.loads((out / "metrics.json").read_text())
    official = metrics["usual_residence"]
    assert official["n_areas"] == released.sum()
    assert official["n_suppressed"] == release.n_suppressed
    assert official["estimator"] in metrics["estimators"]
    assert set(metrics["estimators"]) | set(metrics["skipped_estimators"]) == set(ESTIMATOR_INFO)
    assert "present_population" not in metrics  # residents only: no other release used
    assert f"Official estimator: {official['estimator']} (best hold-out score" in printed
    assert f"Report: {out / 'report.html'}" in printed

    # The official table says the same in every format.
    table = pd.read_csv(out / "usual_residents.csv", dtype={"area_code": str})
    assert set(table["estimator"]) == {official["estimator"]}
    assert np.allclose(
        table.set_index("area_code")["estimate"].reindex(keyed.index),
        keyed["estimate"],
        equal_nan=True,
        atol=0.5,
    )
    parquet = pd.read_parquet(out / "usual_residents.parquet")
    assert parquet["area_code"].tolist() == table["area_code"].tolist()
    assert np.allclose(parquet["estimate"], table["estimate"], equal_nan=True)
    features = json.loads((out / "usual_residents.geojson").read_text())["features"]
    assert len(features) == 589 and features[0]["geometry"]["type"].endswith("Polygon")
    mapped = pd.Series(
        {f["properties"]["area_code"]: f["properties"]["estimate"] for f in features}
    )
    assert np.allclose(mapped.reindex(keyed.index).astype(float), keyed["estimate"], equal_nan=True)
    sdmx = pd.read_csv(out / "usual_residents.sdmx.csv", dtype={"REF_AREA": str})
    assert sorted(sdmx["REF_AREA"]) == sorted(keyed.index)
    assert set(sdmx.loc[sdmx["OBS_VALUE"].isna(), "CONF_STATUS"]) == {"C"}  # confidential

    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Agreement with the 2011 census" in html
    assert release.provenance.job_id in html
    assert ESTIMATOR_INFO[official["estimator"]].label in html
    # The release publishes that its world is synthetic; the report says so.
    assert "A synthetic country stands in for reality" in html
    assert (out / "maps.png").stat().st_size > 10_000


@pytest.mark.slow
def test_calibrated_estimates_add_up_to_the_register_in_each_margin(operator_chain, tmp_path):
    """The service's Parquet and JSON give the same figures; calibrated to provinces, the
    released municipalities of each add up to their register population of 1 January 2011."""
    out = tmp_path / "estimates"
    options = ["--estimator", "ratio_calibrated", "--seed", "3", "--confidence", "0.9"]
    named = ["--source", "Operator X, March 2011"]
    printed = estimate(operator_chain.parquet, out, *options, *named)
    assert "Official estimator: ratio_calibrated (as asked); 90% intervals" in printed
    from_parquet = read_estimates(out)
    estimate(operator_chain.json, out, *options)  # into the folder it wrote before
    pd.testing.assert_frame_equal(read_estimates(out), from_parquet)

    released = from_parquet.dropna(subset=["estimate"]).set_index("area_code")
    register = register_population(2011).set_index("area_code")["population"]
    province = municipalities().set_index("area_code")["province"].reindex(released.index)
    frame = released.assign(register=register.reindex(released.index), province=province)
    margins = frame.groupby("province")[["estimate", "register"]].sum()
    areas = frame.groupby("province").size()
    # estimates.csv rounds each municipality to persons: at most half a person each
    assert ((margins["estimate"] - margins["register"]).abs() <= 0.5 * areas).all()
    assert abs(frame["estimate"].sum() - frame["register"].sum()) <= 0.5 * len(frame)
    assert json.loads((out / "metrics.json").read_text())["usual_residence"]["estimator"] == (
        "ratio_calibrated"
    )
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "90% interval" in html and "95% interval" not in html


@pytest.mark.slow
def test_a_release_at_arrondissement_level_is_refused_saying_which_to_ask_for(
    operator_chain, tmp_path
):
    said = refusal(operator_chain.arrondissements, tmp_path / "estimates")
    assert "its 43 areas are arrondissements (e.g. 11000, 12000, 13000" in said
    assert "ask the holder for a release at municipality level" in said
    assert "cellcensus run usual_residence --store STORE --out residents.csv" in said


def test_a_release_of_another_algorithm_is_refused_saying_which_to_ask_for(
    unbiased: SimulatedRelease, tmp_path
):
    provenance = replace(unbiased.release.provenance, algorithm="present_population")
    path = tmp_path / "present.json"
    replace(unbiased.release, provenance=provenance).write(path)
    said = refusal(path, tmp_path / "estimates")
    assert f"{path} is a release of present_population, not of usual_residence" in said
    assert "ask the holder for `cellcensus run usual_residence --store STORE" in said


def test_a_release_on_the_grid_is_refused(unbiased: SimulatedRelease, tmp_path):
    table = unbiased.release.table.head(3).assign(
        area_code=[f"CRS3035RES1000mN31{k}0000E3900000" for k in range(3)]
    )
    path = tmp_path / "grid.json"
    replace(unbiased.release, table=table).write(path)
    said = refusal(path, tmp_path / "estimates")
    assert (
        "3 of its 3 area codes are no municipality's (e.g. CRS3035RES1000mN3100000E3900000" in said
    )
    assert "release at municipality level" in said


def test_a_file_that_is_not_a_release_is_refused_by_name(tmp_path):
    document = tmp_path / "answers.json"
    document.write_text('{"question": 1}')
    said = refusal(document, tmp_path / "estimates")
    assert f"{document}: not a cellcensus release" in said
    table = tmp_path / "counts.csv"
    table.write_text("area_code,device_count\n11001,20\n")
    said = refusal(table, tmp_path / "estimates")
    assert "its provenance counts.provenance.json is missing" in said
    said = refusal(tmp_path / "report.html", tmp_path / "estimates")
    assert "a release is a .csv, .json or .parquet file, not '.html'" in said


def test_an_output_folder_of_something_else_is_left_alone(unbiased: SimulatedRelease, tmp_path):
    release = tmp_path / "residents.json"
    unbiased.release.write(release)
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["estimate", str(release), "--out", str(taken)])
    assert result.exit_code == 2
    assert "is a non-empty folder not made by cellcensus estimate" in result.output
    assert sorted(path.name for path in taken.iterdir()) == ["notes.txt"]
    result = runner.invoke(app, ["estimate", str(release), "--out", str(taken / "notes.txt")])
    assert result.exit_code == 2 and "is a file; give a folder path" in result.output
    assert (taken / "notes.txt").read_text() == "mine" and not (taken / MARKER).exists()


@pytest.mark.parametrize("confidence", ["0", "1", "1.5"])
def test_a_confidence_outside_0_and_1_is_refused(tmp_path, confidence):
    release, out = str(tmp_path / "r.json"), str(tmp_path / "out")
    result = runner.invoke(app, ["estimate", release, "--out", out, "--confidence", confidence])
    assert result.exit_code == 2
    assert f"--confidence {float(confidence):g}: must be in (0, 1)" in result.output


def test_the_estimators_offered_are_those_that_run_in_report_order():
    assert get_args(Estimator) == tuple(ESTIMATOR_INFO)
    result = runner.invoke(app, ["estimate", "r.json", "--out", "out", "--estimator", "median"])
    shown = " ".join(result.output.replace("│", " ").split())  # as Rich boxed it
    assert result.exit_code == 2 and "'median' is not one of 'national'" in shown
