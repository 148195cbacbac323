import json
import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.nso.report.whole_release import publish_whole_release

from cellcensus.nso.estimation import expand_national
from cellcensus.nso.production import EstimationResult
from cellcensus.nso.report.figures import (
    ERROR_MAP_PNG,
    ESTIMATORS_PNG,
    INTERVALS_PNG,
    MAPS_PNG,
    SCATTER_PNG,
)
from cellcensus.nso.report.html import ReportContext
from cellcensus.nso.report.publish import (
    ESTIMATES_COLUMNS,
    ESTIMATES_CSV,
    publish_release,
    publish_report,
)
from cellcensus.nso.validation import compare_with_census
from cellcensus.reference import belgium


def test_publish_report_from_a_release_of_belgium(tmp_path: Path) -> None:
    census = belgium.census_population()
    rng = np.random.default_rng(11)
    devices = np.round(census["population"] * 0.02 * rng.lognormal(0, 0.05, len(census)))
    released = pd.DataFrame(
        {"area_code": census["area_code"], "device_count": pd.array(devices, dtype="Int64")}
    )
    released.loc[released["device_count"] <= 15, "device_count"] = pd.NA
    expanded = expand_national(released=released, market_share=0.4, sampling_fraction=0.05)
    comparison = compare_with_census(expanded=expanded, census=census)
    context = ReportContext(
        dataset="census with noise",
        period_start=date(2024, 3, 1),
        period_end=date(2024, 3, 31),
        scale=1.0,
        market_share=0.4,
        sampling_fraction=0.05,
        n_devices_released_total=int(released["device_count"].sum()),
        suppression_threshold=15,
        algorithm_name="usual_residence",
        algorithm_version="1.0.0",
        job_id="job-1",
    )

    report = publish_report(
        out_dir=tmp_path, areas=belgium.municipalities(), comparison=comparison, context=context
    )

    html = report.read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 3
    assert "Arrondissements" in html and "Municipalities" in html
    for name in (MAPS_PNG, SCATTER_PNG, ERROR_MAP_PNG, ESTIMATES_CSV):
        assert (tmp_path / name).is_file()
    written = pd.read_csv(tmp_path / ESTIMATES_CSV, dtype={"area_code": str})
    assert tuple(written.columns) == ESTIMATES_COLUMNS
    assert len(written) == 589
    assert written["estimate"].isna().sum() == 1  # Herstappe: 85 people, about 2 devices
    # No intervals were given: the columns are there, empty.
    assert written["ci_lower"].isna().all()
    assert written["census_2011"].sum() == census["population"].sum()


def test_publish_release_writes_the_whole_statistical_release(
    tmp_path: Path, realistic_result: EstimationResult
) -> None:
    published = realistic_result.published
    context = ReportContext(
        dataset="simulated release with realistic biases",
        period_start=published["period"]["start"],
        period_end=published["period"]["end"],
        market_share=published["market_share"],
        sampling_fraction=published["sampling_fraction"],
        n_devices_released_total=int(realistic_result.best.table["released_devices"].sum()),
        suppression_threshold=15,
        algorithm_name="usual_residence",
        algorithm_version="simulated",
        job_id="simulated-12",
    )

    # Released by the holder minutes ago, as in the demo; the report is dated when written.
    just_released = datetime.now(UTC) - timedelta(minutes=5)
    result = replace(realistic_result, released_at=just_released.isoformat(timespec="seconds"))

    written = publish_release(out_dir=tmp_path, result=result, context=context)

    html = written.report.read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 5
    assert re.search(r" · generated \d{4}-\d\d-\d\d \d\d:\d\d UTC</p>", html)
    assert re.search(r"made this report \d+ minutes later", html), "processing time"
    assert "days later" not in html and "days after" not in html
    # Herstappe (85 residents) is suppressed: the share is not rounded up to 100.0%.
    assert "588 of 589 municipalities have an estimate, over 99.9% of the 2011 census" in html
    for name in (MAPS_PNG, SCATTER_PNG, ERROR_MAP_PNG, ESTIMATORS_PNG, INTERVALS_PNG):
        assert (tmp_path / name).is_file(), name
    metrics = json.loads(written.metrics.read_text())
    assert metrics == json.loads(json.dumps(realistic_result.metrics_json()))
    estimates = pd.read_csv(written.estimates, dtype={"area_code": str})
    assert list(estimates.columns) == [
        "area_code",
        "area_name",
        "released_devices",
        "estimate",
        "ci_lower",
        "ci_upper",
        "census_2011",
    ]
    best = realistic_result.best.table
    keyed = estimates.set_index("area_code")
    assert np.allclose(
        keyed["ci_upper"].dropna(), best["ci_upper"].reindex(keyed.index).dropna().round(0)
    )
    released = keyed["estimate"].notna()
    assert released.sum() > 500
    assert (keyed.loc[released, "ci_lower"] <= keyed.loc[released, "estimate"]).all()
    assert keyed.loc[~released, ["ci_lower", "ci_upper"]].isna().all().all()
    for path in (written.outputs.csv, written.outputs.geojson, written.outputs.sdmx_csv):
        assert path.is_file()


def test_publish_release_adds_present_population_and_commuting(
    tmp_path: Path, realistic_result: EstimationResult
) -> None:
    from cellcensus.nso.report.figures import FLOWS_PNG, PRESENT_HOURLY_PNG, PRESENT_MAPS_PNG

    written = publish_whole_release(tmp_path, realistic_result, job_id="simulated-12")

    metrics = json.loads(written.metrics.read_text())
    # The residents' blocks are unchanged; one block per algorithm is added.
    for key, value in realistic_result.metrics_json().items():
        assert metrics[key] == json.loads(json.dumps(value))
    assert metrics["present_population"]["brussels_day_night_ratio"] == pytest.approx(1.4, 0.01)
    assert metrics["home_work_flows"]["pearson_r"] > 0.99
    html = written.report.read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 8
    assert "Present population by hour" in html and "Commuting between arrondissements" in html
    assert "Sources of error" in html and "Disclosure noise and rounding" in html
    # The release is read outside the repository: no path into it a reader cannot open.
    assert "docs/" not in html and ".md" not in html
    for name in (PRESENT_MAPS_PNG, PRESENT_HOURLY_PNG, FLOWS_PNG):
        assert (tmp_path / name).stat().st_size > 10_000, name
    assert [path.name for path in written.mobility] == [
        "present_population.csv",
        "present_population.parquet",
        "present_population.sdmx.csv",
        "present_population_weekday.csv",
        "present_population_weekday.parquet",
        "commuting_flows.csv",
        "commuting_flows.parquet",
    ]  # the flows' release publishes no period: no SDMX-CSV for them
    tables = [path for path in written.mobility if path.suffixes == [".csv"]]
    for path in tables:  # every estimate with its interval, in persons
        table = pd.read_csv(path)
        parquet = pd.read_parquet(path.with_suffix(".parquet"))
        pd.testing.assert_series_equal(
            table["estimate"], parquet["estimate"].astype("float64"), check_names=False
        )
        known = table["estimate"].notna()
        assert known.any()
        assert table.loc[known, ["std_error", "ci_lower", "ci_upper"]].notna().all().all()
        assert (table.loc[known, "ci_lower"] <= table.loc[known, "estimate"]).all()
        assert (table.loc[known, "estimate"] <= table.loc[known, "ci_upper"]).all()
        persons = [
            name for name in ("expanded", "estimate", "ci_lower", "ci_upper") if name in table
        ]
        assert (table[persons].dropna() % 1 == 0).all().all()
    assert "expanded" in pd.read_csv(tmp_path / "commuting_flows.csv")
