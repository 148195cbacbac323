"""`cellcensus estimate`: the holder's chain on a tiny world, then the statistics office's command
on the release it wrote, through the command line; and the command's refusals."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cellcensus.cli import app
from cellcensus.holder.api.formats import ResultFormat, render
from cellcensus.nso.commands import MARKER, Estimator, tourism_summary
from cellcensus.nso.mobility_releases import PRESENT_PARAMETERS
from cellcensus.nso.production import ESTIMATOR_INFO
from cellcensus.nso.report.publish import ESTIMATES_COLUMNS
from cellcensus.nso.simulation import SimulatedRelease
from cellcensus.nso.tourism import estimate_tourism
from cellcensus.reference import (
    arrondissements_2019,
    census_population,
    municipalities,
)
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
        present: present_population, hourly, per arrondissement (CSV), as the demo asks.
        flows: home_work_flows between arrondissements (CSV).
        tourism: inbound_tourism per province (CSV).
        world: The synthetic world, with its true presence and visitors' stays.
    """

    csv: Path
    json: Path
    parquet: Path
    arrondissements: Path
    present: Path
    flows: Path
    tourism: Path
    world: Path


@pytest.fixture(scope="module")
def operator_chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    """The README's first steps (`--scale 0.002 --days 2`), a release per format, and the
    present population and home-work flows between arrondissements the demo asks for."""
    folder = tmp_path_factory.mktemp("chain")
    world, store = str(folder / "world"), str(folder / "store")
    run = ["run", "usual_residence", "--store", store]
    arrondissements = ["--store", store, "--level", "arrondissement"]
    settings = [f"{name}={value}" for name, value in PRESENT_PARAMETERS.items()]
    hourly = [word for setting in settings for word in ("--param", setting)]
    steps = [
        ["synth", "--out", world, "--scale", "0.002", "--days", "2"],
        ["ingest", "--dataset", world, "--store", store],
        [*run, "--out", str(folder / "residents.csv")],
        # The same request: the enclave hands the same release again, as one JSON document.
        [*run, "--out", str(folder / "residents.json")],
        ["store", "allocate", "--store", store, "--level", "arrondissement"],
        [*run, "--level", "arrondissement", "--out", str(folder / "arrondissements.json")],
        [
            "run",
            "present_population",
            *arrondissements,
            *hourly,
            "--out",
            str(folder / "present.csv"),
        ],
        # Two days hold two weekdays: a work place needs them both (three by default).
        [
            "run",
            "home_work_flows",
            *arrondissements,
            "--param",
            "min_work_days=2",
            "--out",
            str(folder / "flows.csv"),
        ],
        ["store", "allocate", "--store", store, "--level", "province"],
        [
            "run",
            "inbound_tourism",
            *("--store", store, "--level", "province"),
            *("--out", str(folder / "tourism.csv")),
        ],
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
        present=folder / "present.csv",
        flows=folder / "flows.csv",
        tourism=folder / "tourism.csv",
        world=folder / "world",
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
    assert f"Official estimator: {official['estimator']} (best cross-validated score" in printed
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
def test_calibrated_estimates_add_up_to_the_census_in_each_margin(operator_chain, tmp_path):
    """The service's Parquet and JSON give the same figures; calibrated to provinces, the
    released municipalities of each add up to their census population (the default
    calibration reference)."""
    out = tmp_path / "estimates"
    options = ["--estimator", "ratio_calibrated", "--seed", "3", "--confidence", "0.9"]
    named = ["--source", "Operator X, March 2011"]
    printed = estimate(operator_chain.parquet, out, *options, *named)
    assert "Official estimator: ratio_calibrated (as asked); 90% intervals" in printed
    from_parquet = read_estimates(out)
    estimate(operator_chain.json, out, *options)  # into the folder it wrote before
    pd.testing.assert_frame_equal(read_estimates(out), from_parquet)

    released = from_parquet.dropna(subset=["estimate"]).set_index("area_code")
    census = census_population().set_index("area_code")["population"]
    province = municipalities().set_index("area_code")["province"].reindex(released.index)
    frame = released.assign(census=census.reindex(released.index), province=province)
    margins = frame.groupby("province")[["estimate", "census"]].sum()
    areas = frame.groupby("province").size()
    # estimates.csv rounds each municipality to persons: at most half a person each
    assert ((margins["estimate"] - margins["census"]).abs() <= 0.5 * areas).all()
    assert abs(frame["estimate"].sum() - frame["census"].sum()) <= 0.5 * len(frame)
    assert json.loads((out / "metrics.json").read_text())["usual_residence"]["estimator"] == (
        "ratio_calibrated"
    )
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "90% interval" in html and "95% interval" not in html
    # The official table and its SDMX-CSV say their intervals' level, read alone.
    official = pd.read_csv(out / "usual_residents.csv")
    assert set(official["ci_level"]) == {0.9}
    with (out / "usual_residents.sdmx.csv").open(encoding="utf-8", newline="") as handle:
        assert {row["CI_LEVEL"] for row in csv.DictReader(handle)} == {"0.9"}


@pytest.mark.slow
def test_a_release_at_arrondissement_level_is_refused_saying_which_to_ask_for(
    operator_chain, tmp_path
):
    said = refusal(operator_chain.arrondissements, tmp_path / "estimates")
    assert "its 43 areas are arrondissements (e.g. 11000, 12000, 13000" in said
    assert "ask the holder for a release at municipality level" in said
    assert "cellcensus run usual_residence --store STORE --out residents.csv" in said


def test_each_release_records_the_area_level_it_was_run_at(operator_chain):
    """What reproducing a release takes includes its allocation, not only its parameters."""
    levels = {
        operator_chain.csv: "municipality",
        operator_chain.json: "municipality",
        operator_chain.arrondissements: "arrondissement",
        operator_chain.present: "arrondissement",
        operator_chain.flows: "arrondissement",
        operator_chain.tourism: "province",
    }
    assert {path: Release.read(path).provenance.area_level for path in levels} == levels


@pytest.mark.slow
def test_the_logit_bounds_are_the_users_to_widen_and_wrong_ones_are_refused_first(
    operator_chain, tmp_path
):
    said = estimate(operator_chain.csv, tmp_path / "tight", "--logit-bounds", "0.99", "1.01")
    # No tiny world's margins are met by weights within 1 %: left out, saying how to widen.
    assert "Skipped logit_calibrated" in said and "--logit-bounds LOWER UPPER" in said
    said = estimate(operator_chain.csv, tmp_path / "wide", "--logit-bounds", "0.02", "50")
    assert "logit_calibrated" not in said
    estimators = pd.read_csv(tmp_path / "wide" / "estimators.csv")
    assert "logit_calibrated" in set(estimators["estimator"])
    said = refusal(operator_chain.csv, tmp_path / "wrong", "--logit-bounds", "1", "3")
    assert "bounds must satisfy 0 <= lower < 1 < upper (finite), got lower=1, upper=3" in said


@pytest.mark.slow
def test_a_negative_seed_is_refused_in_a_line(operator_chain, tmp_path):
    said = refusal(operator_chain.csv, tmp_path / "out", "--seed", "-1")
    assert "seed -1: must be a non-negative integer" in said


def mobility_outputs(out: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """present_population.csv, commuting_flows.csv and metrics.json of `out`."""
    present = pd.read_csv(out / "present_population.csv", dtype={"area_code": str})
    flows = pd.read_csv(out / "commuting_flows.csv", dtype={"home_area": str, "work_area": str})
    return present, flows, json.loads((out / "metrics.json").read_text())


def within_intervals(table: pd.DataFrame) -> bool:
    """Every estimate of `table` inside its interval."""
    shown = table.dropna(subset=["estimate"])
    return bool(
        ((shown["ci_lower"] <= shown["estimate"]) & (shown["estimate"] <= shown["ci_upper"])).all()
    )


@pytest.mark.slow
def test_present_population_and_flows_join_the_residents_as_in_the_demo(operator_chain, tmp_path):
    out = tmp_path / "estimates"
    mobility = ["--present", str(operator_chain.present), "--flows", str(operator_chain.flows)]
    printed = estimate(operator_chain.csv, out, *mobility)
    present, flows, metrics = mobility_outputs(out)
    arrondissements = sorted(set(arrondissements_2019()))
    assert len(arrondissements) == 43

    # Every arrondissement at every hour of both released days, in persons with intervals.
    released = Release.read(operator_chain.present)
    assert len(present) == len(released.table) == 2 * 24 * 43
    assert set(present["local_date"]) == {"2011-03-07", "2011-03-08"}
    assert set(present["slot"]) == set(range(24))
    assert sorted(set(present["area_code"])) == arrondissements
    counted = present["devices"].notna()
    assert counted.sum() == len(released.table) - released.n_suppressed
    assert (
        present["estimate"].notna()[counted].all() and (present.loc[counted, "estimate"] > 0).all()
    )
    assert within_intervals(present)
    # Monday warms up (no position carried in from Sunday): the weekday means are Tuesday's.
    block = metrics["present_population"]
    assert block["weekdays"] == ["2011-03-08"]
    assert (block["night_hour"], block["day_hour"]) == (3, 11)
    assert block["brussels_areas_compared"] == 1  # Brussels-Capital is one arrondissement
    assert block["census_brussels_jobs_per_resident_worker"] == pytest.approx(1.8887, abs=1e-4)
    assert block["brussels_day_night_ratio"] > 0
    assert block["n_keys"] == len(present) and block["n_suppressed"] == released.n_suppressed
    assert not any(key.startswith("truth") for key in block)  # no world given: no truth
    weekday = pd.read_csv(out / "present_population_weekday.csv", dtype={"area_code": str})
    # One weekday: its means are Tuesday's estimates, where Tuesday's count was released.
    tuesday = present[counted & (present["local_date"] == "2011-03-08")]
    keys = ["area_code", "slot"]
    assert set(weekday["days"]) == {1} and len(weekday) == len(tuesday)
    same = weekday.merge(tuesday, on=keys, suffixes=("", "_tuesday"), validate="1:1")
    assert len(same) == len(tuesday)
    assert np.allclose(same["estimate"], same["estimate_tuesday"], atol=1)
    assert within_intervals(weekday)
    sdmx = pd.read_csv(out / "present_population.sdmx.csv", dtype={"REF_AREA": str})
    assert sorted(set(sdmx["REF_AREA"])) == arrondissements

    # The flows, every pair of the census matrix, beside the census commuting.
    assert len(flows) == 43 * 43
    assert flows["census"].sum() == 4_304_172
    assert within_intervals(flows)
    commuting = metrics["home_work_flows"]
    assert commuting["level"] == "arrondissement"
    assert commuting["n_pairs"] + commuting["n_suppressed"] == 43 * 43
    assert commuting["n_pairs"] == flows["devices"].notna().sum() > 0
    assert commuting["census_share_within_arrondissement"] == pytest.approx(0.6296, abs=1e-4)
    assert -1 <= commuting["pearson_r"] <= 1
    assert (out / "commuting_flows.sdmx.csv").is_file()

    # The residents' figures are those the residents' release alone gives.
    alone = tmp_path / "alone"
    estimate(operator_chain.csv, alone)
    pd.testing.assert_frame_equal(read_estimates(out), read_estimates(alone))
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Present population by hour" in html
    assert released.provenance.job_id in html
    assert Release.read(operator_chain.flows).provenance.job_id in html
    for name in (
        "present_population_maps.png",
        "present_population_brussels.png",
        "commuting_scatter.png",
    ):
        assert (out / name).stat().st_size > 10_000
    assert "Brussels-Capital day/night ratio (11:00 / 03:00)" in printed
    assert "synthetic truth" not in printed
    assert "Home-work flows vs census, arrondissements: r =" in printed
    assert "Mobility tables: present_population.csv" in printed


@pytest.mark.slow
def test_a_synthetic_worlds_truth_stands_beside_the_present_population(operator_chain, tmp_path):
    out = tmp_path / "estimates"
    given = ["--present", str(operator_chain.present), "--world", str(operator_chain.world)]
    printed = estimate(operator_chain.csv, out, *given)
    block = json.loads((out / "metrics.json").read_text())["present_population"]
    assert block["truth_n_keys"] > 0 and -1 <= block["truth_pearson_r"] <= 1
    assert block["truth_brussels_day_night_ratio"] > 0
    assert f"synthetic truth: {block['truth_brussels_day_night_ratio']:.2f}" in printed
    assert "home_work_flows" not in json.loads((out / "metrics.json").read_text())
    assert not (out / "commuting_flows.csv").exists()


def relabelled(
    path: Path,
    folder: Path,
    *,
    table: pd.DataFrame | None = None,
    parameters: dict[str, Any] | None = None,
    published: dict[str, Any] | None = None,
) -> Path:
    """The release at `path` with its table, provenance parameters or facts changed, as JSON."""
    release = Release.read(path)
    provenance = release.provenance
    changed = replace(
        release,
        table=release.table if table is None else table,
        provenance=replace(provenance, parameters={**provenance.parameters, **(parameters or {})}),
        published={**release.published, **(published or {})},
    )
    out = folder / f"changed-{path.stem}-{len(list(folder.glob('changed-*')))}.json"
    changed.write(out)
    return out


@pytest.mark.slow
def test_present_and_flows_releases_the_expansion_cannot_use_are_refused(operator_chain, tmp_path):
    out = tmp_path / "estimates"
    residents, present, flows = operator_chain.csv, operator_chain.present, operator_chain.flows
    run_present = "cellcensus run present_population --store STORE --level arrondissement"
    said = refusal(residents, out, "--present", str(residents))
    assert (
        f"--present {residents} is a release of usual_residence, not of present_population" in said
    )
    assert f"ask the holder for `{run_present} --param slot_minutes=60" in said

    hourly = Release.read(present).table
    daily = relabelled(
        present, tmp_path, table=hourly[hourly["slot"] == 0], parameters={"slot_minutes": 1440}
    )
    said = refusal(residents, out, "--present", str(daily))
    assert f"--present {daily} has 1440-minute slots: the expansion takes hourly slots" in said
    assert "(slot_minutes=60)" in said

    everyone = relabelled(present, tmp_path, parameters={"subscribers": "all"})
    said = refusal(residents, out, "--present", str(everyone))
    assert f"--present {everyone} counts the phones of subscribers=all: each hour" in said
    assert "(subscribers=domestic)" in said

    region = municipalities().set_index("area_code")["region"].astype(str)
    of_region = region.groupby(arrondissements_2019().reindex(region.index)).first()
    regions = relabelled(
        present, tmp_path, table=hourly.assign(area_code=hourly["area_code"].map(of_region))
    )
    said = refusal(residents, out, "--present", str(regions))
    assert f"--present {regions}: its 3 areas are regions (e.g. 2000, 3000, 4000)" in said
    assert "must be municipalities or arrondissements of 2019" in said
    assert "cellcensus store allocate --store STORE --level arrondissement` (once)" in said

    later = relabelled(
        present, tmp_path, published={"period": {"start": "2011-03-08", "end": "2011-03-10"}}
    )
    said = refusal(residents, out, "--present", str(later))
    assert (
        f"--present {later} covers 2011-03-08 to 2011-03-10, not within the residents' "
        "release's 2011-03-07 to 2011-03-08"
    ) in said

    said = refusal(residents, out, "--flows", str(present))
    assert f"--flows {present} is a release of present_population, not of home_work_flows" in said
    assert (
        "cellcensus run home_work_flows --store STORE --level arrondissement --out flows.csv"
        in said
    )

    pairs = Release.read(flows).table
    first = pd.Series(arrondissements_2019().index, index=arrondissements_2019().to_numpy())
    first = first[~first.index.duplicated()]
    municipal = relabelled(
        flows,
        tmp_path,
        table=pairs.assign(
            home_area=pairs["home_area"].map(first), work_area=pairs["work_area"].map(first)
        ),
    )
    said = refusal(residents, out, "--flows", str(municipal))
    assert f"--flows {municipal}: its 43 areas are municipalities" in said
    assert "the census 2011 commuting is between the 43 arrondissements of 2019" in said


@pytest.mark.slow
def test_a_world_is_taken_only_beside_a_synthetic_present_population(operator_chain, tmp_path):
    out = tmp_path / "estimates"
    residents, world = operator_chain.csv, operator_chain.world
    said = refusal(residents, out, "--world", str(world))
    assert "--world sets the present population, inbound tourism and internal migration " in said
    assert "give --present, --tourism or --migration" in said
    given = ["--present", str(operator_chain.present), "--world"]
    said = refusal(residents, out, *given, str(tmp_path))
    assert f"--world {tmp_path} holds no truth/presence: give the folder `cellcensus synth" in said
    real = relabelled(operator_chain.present, tmp_path, published={"synthetic": False})
    said = refusal(residents, out, "--present", str(real), "--world", str(world))
    assert "does not publish that its data are synthetic" in said


def test_a_release_of_another_algorithm_is_refused_saying_which_to_ask_for(
    unbiased: SimulatedRelease, tmp_path
):
    provenance = replace(unbiased.release.provenance, algorithm="present_population")
    path = tmp_path / "present.json"
    replace(unbiased.release, provenance=provenance).write(path)
    said = refusal(path, tmp_path / "estimates")
    assert f"{path} is a release of present_population, not of usual_residence" in said
    assert "ask the holder for `cellcensus run usual_residence --store STORE" in said


def test_municipalities_absent_from_the_release_are_said_to_count_as_suppressed(
    unbiased: SimulatedRelease, tmp_path
):
    whole = tmp_path / "whole.json"
    unbiased.release.write(whole)
    assert "The release lists" not in estimate(whole, tmp_path / "whole")
    cut = tmp_path / "cut.json"
    replace(unbiased.release, table=unbiased.release.table.iloc[:300]).write(cut)

    said = estimate(cut, tmp_path / "cut")

    absent = unbiased.release.table["area_code"].iloc[300:303].astype(str)
    assert "The release lists 300 of the 589 municipalities: the 289 absent" in said
    assert f"(e.g. {', '.join(absent)})" in said
    metrics = json.loads((tmp_path / "cut" / "metrics.json").read_text())
    assert metrics["usual_residence"]["n_suppressed"] >= 289  # as the line says


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


def true_visitors(world: Path) -> pd.DataFrame:
    """Nights (evenings from the day before the world's first to its last) and arrivals (stays
    with such a night) of the world's visitors per province, counted stay by stay."""
    stays = pd.read_parquet(world / "truth" / "roamer_stays.parquet")
    parameters = json.loads((world / "world.json").read_text())["parameters"]
    first = pd.Timestamp(parameters["start"]) - pd.Timedelta(days=1)
    last = first + pd.Timedelta(days=parameters["days"])
    province = municipalities().set_index("area_code")["province"]
    counts: dict[tuple[str, str], float] = {}
    for arrival, nights, area in zip(stays["arrival"], stays["nights"], stays["area"], strict=True):
        evening = arrival.tz_convert("Europe/Brussels").tz_localize(None).normalize()
        seen = [k for k in range(nights) if first <= evening + pd.Timedelta(days=k) <= last]
        key = province[area]
        counts[(key, "nights")] = counts.get((key, "nights"), 0) + len(seen)
        counts[(key, "arrivals")] = counts.get((key, "arrivals"), 0) + (len(seen) > 0)
    share = parameters["market_share"] * parameters["scale"]  # the world's visitors of all
    frame = pd.Series(counts).rename_axis(["area_code", "indicator"]).rename("truth") / share
    expected: pd.DataFrame = frame.reset_index()
    return expected


@pytest.mark.slow
def test_inbound_tourism_joins_the_residents_beside_the_worlds_true_stays(operator_chain, tmp_path):
    out = tmp_path / "out"
    said = estimate(
        operator_chain.csv,
        out,
        *("--tourism", str(operator_chain.tourism), "--world", str(operator_chain.world)),
    )
    table = pd.read_csv(out / "inbound_tourism.csv", dtype={"area_code": str})
    provinces = set(municipalities()["province"])
    assert set(table["area_code"]) == provinces and len(table) == 2 * len(provinces)
    truth = true_visitors(operator_chain.world)
    beside = table.merge(truth, on=["area_code", "indicator"], how="left", suffixes=("", "_"))
    assert np.allclose(beside["truth"], beside["truth_"].fillna(0.0), atol=0.5)  # rounded
    released = Release.read(operator_chain.tourism)
    probability = released.published["roaming_share"] * released.published["sampling_fraction"]
    shown = table.dropna(subset=["devices"])
    assert np.allclose(shown["estimate"], (shown["devices"] / probability).round(0), atol=0.5)
    assert shown["estimate"].between(shown["ci_lower"], shown["ci_upper"]).all()
    assert table.loc[table["devices"].isna(), "estimate"].isna().all()  # suppressed: unknown
    block = json.loads((out / "metrics.json").read_text())["inbound_tourism"]
    assert block["level"] == "province"
    assert block["selection_probability"] == pytest.approx(probability)
    # The tiny world's nights may all fall under the threshold: then none is summed.
    nights_released = table.loc[table["indicator"] == "nights", "devices"].notna().any()
    expected = (
        "synthetic truth in the same areas"
        if nights_released
        else "no province's nights were released (all suppressed)"
    )
    assert "Inbound tourism:" in said and expected in said
    report = (out / "report.html").read_text()
    assert "<h2>Inbound tourism</h2>" in report
    assert "published estimates are biased upward" in report  # its cells, each thresholded


def test_tourism_options_without_their_release_are_refused(operator_chain, tmp_path):
    said = refusal(operator_chain.csv, tmp_path / "out", "--roaming-share", "0.3")
    assert "--roaming-share expands inbound tourism: give --tourism" in said
    said = refusal(operator_chain.csv, tmp_path / "out", "--tourism", str(operator_chain.flows))
    assert "is a release of home_work_flows, not of inbound_tourism" in said
    given = ["--tourism", str(operator_chain.tourism), "--world", str(tmp_path)]
    said = refusal(operator_chain.csv, tmp_path / "out", *given)
    assert f"--world {tmp_path} holds no truth/roamer_stays.parquet: give the folder" in said


def tourism_said(nights: list[float], arrivals: list[float]) -> str:
    """The console's tourism line for a release of two provinces' nights and arrivals."""
    from tests.nso.test_tourism import tourism_release

    counts = pd.DataFrame(
        {
            "area_code": ["10000", "4000"] * 2,
            "indicator": ["nights"] * 2 + ["arrivals"] * 2,
            "device_count": nights + arrivals,
        }
    )
    return tourism_summary(estimate_tourism(tourism_release(counts)))


def test_the_tourism_line_says_what_was_suppressed_instead_of_counting_it_as_none():
    said = tourism_said([300.0, 200.0], [100.0, 50.0])
    assert "12,500 nights and 3,750 arrivals" in said and "in the 2 provinces" in said
    assert "(average stay 3.3 nights)" in said
    said = tourism_said([300.0, np.nan], [np.nan, np.nan])
    assert "7,500 nights of foreign visitors in the 1 province whose" in said
    assert "arrivals suppressed everywhere" in said
    assert "0 arrivals" not in said and "nan" not in said
    said = tourism_said([300.0, 200.0], [100.0, np.nan])
    assert "2,500 arrivals in the 1 province whose arrivals were released" in said
    assert "(average stay 3.0 nights in the 1 province that released both)" in said
    # As many provinces, not the same ones: each sum says its own, never "the same areas".
    said = tourism_said([300.0, np.nan], [np.nan, 50.0])
    assert "7,500 nights of foreign visitors in the 1 province whose nights" in said
    assert "1,250 arrivals in the 1 province whose arrivals were released" in said
    assert "average stay" not in said and "nights and" not in said
    said = tourism_said([np.nan, np.nan], [100.0, np.nan])
    assert said == "Inbound tourism: no province's nights were released (all suppressed)"
