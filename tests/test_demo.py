"""The demo end to end on a small world, and its refusal of bad parameters."""

import json
import random
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from cellcensus.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--scale", "-1"], "--scale -1.0: must be in (0, 1]"),
        (["--days", "0"], "--days 0: must be between 1 and 366"),
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


@pytest.mark.slow
def test_demo_without_weekdays_enough_for_a_work_place_releases_no_flows(tmp_path, monkeypatch):
    """Two weekdays: no device can have a work place (3 needed), so no flows are released
    (they would be noise alone), and the demo keeps its key in its folder."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CELLCENSUS_KEY_FILE", raising=False)
    out = tmp_path / "out"
    args = ["demo", "--out", str(out), "--scale", "0.002", "--days", "2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    printed = " ".join(result.output.split())  # as the console wrapped it
    assert "Home-work flows skipped: 2 weekday(s) in the period" in printed
    assert "synthetic truth: " in printed  # the day/night ratio beside the world's
    metrics = json.loads((out / "metrics.json").read_text())
    assert "home_work_flows" not in metrics and "present_population" in metrics
    assert not (out / "commuting_scatter.png").exists()
    assert "Commuting between arrondissements" not in (out / "report.html").read_text()
    assert (out / "holder.key").is_file()
    # Nothing of its own in the home folder (matplotlib may keep its font cache there).
    home = tmp_path / "home"
    assert not [p for p in home.rglob("*") if p.is_file() and "matplotlib" not in p.parts]


def test_a_missing_dataset_folder_is_refused_as_missing(tmp_path):
    missing = tmp_path / "nonexistent"
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "out"), "--dataset", str(missing)])
    assert result.exit_code == 2
    assert result.output.startswith("error: ")  # no blank line of a progress display first
    assert f"dataset {missing} does not exist" in result.output
    assert "has no metadata.json" not in result.output
    assert not (tmp_path / "out").exists()


def test_a_dataset_without_metadata_points_to_the_contract(tmp_path):
    dataset = tmp_path / "delivery"
    dataset.mkdir()
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "out"), "--dataset", str(dataset)])
    assert result.exit_code == 2
    assert "has no metadata.json" in result.output
    assert "docs/schema.md in the cellcensus repository" in " ".join(result.output.split())


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    result = runner.invoke(
        app, ["demo", "--out", str(out), "--scale", "0.01", "--days", "3", "--seed", "5"]
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
    # The world's metadata says it is synthetic; the release publishes it; the report says so.
    assert "A synthetic country stands in for reality" in (demo_out / "report.html").read_text()
    # One writer: the ids and estimates of the report's table are those of the file.
    assert estimates["area_code"].str.fullmatch(r"\d{5}").all()
    assert estimates["estimate"].notna().sum() == metrics["n_areas"]


@pytest.mark.slow
def test_demo_metrics_have_a_block_per_estimator_and_per_algorithm(demo_out):
    metrics = json.loads((demo_out / "metrics.json").read_text())
    assert {"usual_residence", "estimators", "present_population", "home_work_flows"} <= set(
        metrics
    )
    default = metrics["usual_residence"]["estimator"]
    assert default in metrics["estimators"]
    sources = metrics["estimators"][default]["error_sources"]
    # The release declares Laplace noise: it adds error beside sampling, less than it.
    assert 0 < sources["median_relative_se_noise"] < sources["median_relative_se_sampling"]
    assert 0 < sources["noise_variance_share"] < 1


@pytest.mark.slow
def test_demo_present_population_fills_brussels_by_day(demo_out):
    present = json.loads((demo_out / "metrics.json").read_text())["present_population"]
    assert (present["night_hour"], present["day_hour"]) == (3, 11)
    # Monday warms up (no position carried in from Sunday): Tuesday and Wednesday count.
    assert present["weekdays"] == ["2011-03-08", "2011-03-09"]
    # Census 2011: 695,183 jobs for 368,077 resident workers in Brussels-Capital.
    assert present["census_brussels_jobs_per_resident_worker"] == pytest.approx(1.8887, abs=1e-4)
    # The synthetic world's true ratio at 11:00 is 1.18 (the census bound is 1.29), so the
    # issue's 1.3 cannot be reached honestly. Measured on this world (2 weekdays, 1 %,
    # Gaussian noise calibrated to all 72 hours of the release): 1.14 on average over 54
    # runs, standard deviation 0.026 (the noise on some 900 devices at night), both bounds
    # more than 5 standard deviations away. At 0.5 % the deviation was 0.061 and one run
    # in about 110 fell below 1.0.
    assert present["brussels_day_night_ratio"] > 1.0
    ratio = present["brussels_day_night_ratio"] / present["truth_brussels_day_night_ratio"]
    assert abs(ratio - 1) < 0.15
    assert present["census_brussels_day_night_ratio"] == pytest.approx(1.29, abs=0.01)
    # Released by arrondissement: Brussels-Capital is one.
    assert present["brussels_areas_compared"] == 1
    # Per arrondissement and hour against the true presence: measured r = 0.99.
    assert present["truth_pearson_r"] > 0.9
    for name in ("present_population_maps.png", "present_population_brussels.png"):
        assert (demo_out / name).stat().st_size > 10_000
    hourly = pd.read_csv(demo_out / "present_population.csv", dtype={"area_code": str})
    assert set(hourly["slot"]) == set(range(24))


@pytest.mark.slow
def test_demo_home_work_flows_agree_with_census_commuting(demo_out):
    flows = json.loads((demo_out / "metrics.json").read_text())["home_work_flows"]
    assert flows["level"] == "arrondissement"
    assert flows["n_pairs"] + flows["n_suppressed"] == 43 * 43
    assert flows["census_share_within_arrondissement"] == pytest.approx(0.6296, abs=1e-4)
    # Measured on this world (3 days, 1 %): r = 0.97 over 45 to 53 released flows.
    assert flows["n_pairs"] >= 20
    assert flows["pearson_r"] > 0.9
    assert (demo_out / "commuting_scatter.png").stat().st_size > 10_000
    html = (demo_out / "report.html").read_text(encoding="utf-8")
    assert "Present population by hour" in html
    assert "Commuting between arrondissements" in html
    assert "Sources of error" in html
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html


@pytest.mark.slow
def test_no_raw_identifier_reaches_the_store_or_the_release(demo_out, tmp_path):
    devices = pd.read_parquet(demo_out / "dataset" / "truth" / "devices.parquet")
    raw_ids = set(devices["user_id"].sample(200, random_state=0))
    holder_and_nso = [p for p in demo_out.rglob("*") if p.is_file() and "dataset" not in p.parts]
    assert holder_and_nso
    for path in holder_and_nso:
        data = path.read_bytes()
        if path.suffix == ".parquet":
            data += parquet_text(path, tmp_path / "text.csv")
        assert not ids_in(data, raw_ids), f"raw user_id in {path}"


def parquet_text(path: Path, scratch: Path) -> bytes:
    """Every value of a Parquet file as text (its bytes hold them compressed), as CSV: DuckDB
    writes the serving table of the footprint in seconds where pandas took minutes."""
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT * FROM read_parquet('{path}')) TO '{scratch}' (HEADER)")
    return scratch.read_bytes()


def test_parquet_text_shows_every_value(tmp_path):
    frame = pd.DataFrame(
        {"imsi": [324712345678], "msisdn": ["+32 470 12 34 56"], "share": [324712345678.0]}
    )
    frame.to_parquet(tmp_path / "ids.parquet")
    text = parquet_text(tmp_path / "ids.parquet", tmp_path / "ids.csv")
    assert ids_in(text, {"324712345678", "+32 470 12 34 56"}) == {
        "324712345678",
        "+32 470 12 34 56",
    }
    assert text.count(b"324712345678") == 2


def ids_in(data: bytes, ids: set[str]) -> set[str]:
    """The `ids` that occur in `data` (as `id in data` finds them), in one scan per distinct
    first four characters instead of one per id: the store's files reach hundreds of MB."""
    found: set[str] = set()
    for head in {identifier[:4] for identifier in ids}:
        lengths = {len(identifier) for identifier in ids if identifier.startswith(head)}
        at = data.find(head.encode())
        while at != -1:
            found |= {data[at : at + n].decode("latin-1") for n in lengths} & ids
            at = data.find(head.encode(), at + 1)
    return found


def test_ids_in_finds_what_a_search_per_id_finds():
    rng = random.Random(3)
    ids = {f"3247{rng.randrange(10**8):08d}" for _ in range(50)} | {"327", "3277", "32770001"}
    planted = sorted(ids)[::7]
    noise = "".join(rng.choice("0123456789,.") for _ in range(20_000))
    data = (noise + ",".join(planted) + noise[:5] + "3247" + noise).encode()
    assert ids_in(data, ids) == {i for i in ids if i.encode() in data}
    assert set(planted) <= ids_in(data, ids)
