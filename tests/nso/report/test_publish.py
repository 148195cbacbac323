from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from cellcensus.nso.estimation import expand_national
from cellcensus.nso.report.figures import ERROR_MAP_PNG, MAPS_PNG, SCATTER_PNG
from cellcensus.nso.report.html import ReportContext
from cellcensus.nso.report.publish import ESTIMATES_CSV, publish_report
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
    assert len(written) == 589
    assert written["estimate"].isna().sum() == 1  # Herstappe: 85 people, about 2 devices
