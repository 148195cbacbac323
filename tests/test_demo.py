"""The demo end to end on a small world, and its refusal of bad parameters."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from cellcensus.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--scale", "-1"], "scale"),
        (["--days", "0"], "days"),
    ],
)
def test_bad_parameters_give_one_line_errors(tmp_path, args, named):
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "out"), *args])
    assert result.exit_code == 2
    assert named in result.output
    assert "Traceback" not in result.output


def test_output_folder_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("not a folder")
    result = runner.invoke(app, ["demo", "--out", str(target), "--scale", "0.002", "--days", "2"])
    assert result.exit_code == 2
    assert "is a file" in result.output
    assert target.read_text() == "not a folder"


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    result = runner.invoke(
        app, ["demo", "--out", str(out), "--scale", "0.005", "--days", "3", "--seed", "5"]
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.slow
def test_demo_writes_the_release_and_measures_agreement(demo_out):
    metrics = json.loads((demo_out / "metrics.json").read_text())["usual_residence"]
    for key in ("pearson_r", "log_pearson_r", "ape_median", "ape_p90", "weighted_ape"):
        assert isinstance(metrics[key], float)
    assert metrics["n_areas"] + metrics["n_suppressed"] == 589
    # Even a 1% world over 3 nights places people in the right part of the country.
    assert metrics["pearson_r"] > 0.95
    estimates = pd.read_csv(demo_out / "estimates.csv", dtype={"area_code": str})
    assert list(estimates.columns) == [
        "area_code",
        "area_name",
        "released_devices",
        "estimate",
        "ci_lower",
        "ci_upper",
        "census_2011",
    ]
    assert len(estimates) == 589
    suppressed = estimates["released_devices"].isna()
    assert estimates.loc[suppressed, "estimate"].isna().all()
    assert estimates["census_2011"].sum() == 11_000_638
    for name in ("report.html", "maps.png", "scatter.png"):
        assert (demo_out / name).stat().st_size > 10_000


@pytest.mark.slow
def test_no_raw_identifier_reaches_the_store_or_the_release(demo_out):
    devices = pd.read_parquet(demo_out / "dataset" / "truth" / "devices.parquet")
    raw_ids = set(devices["user_id"].sample(200, random_state=0))
    holder_and_nso = [p for p in demo_out.rglob("*") if p.is_file() and "dataset" not in p.parts]
    assert holder_and_nso
    for path in holder_and_nso:
        data = path.read_bytes()
        if path.suffix == ".parquet":
            text = pd.read_parquet(path).astype(str).to_csv()
            data += text.encode()
        leaked = [raw for raw in raw_ids if raw.encode() in data]
        assert not leaked, f"raw user_id in {path}"
