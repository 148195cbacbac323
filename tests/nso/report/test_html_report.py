import base64
import re
import shutil
from dataclasses import replace
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cellcensus.errors import CellcensusError
from cellcensus.nso.production import EstimationResult
from cellcensus.nso.report.figures import SCATTER_PNG, scatter_log
from cellcensus.nso.report.html import (
    ReleaseProtection,
    ReportContext,
    ReportFigure,
    _period,
    write_report,
)
from cellcensus.nso.validation import Agreement, agreement

METRICS = Agreement(
    pearson_r=0.987654,
    log_pearson_r=0.912345,
    ape_median=0.1234,
    ape_p90=0.3456,
    weighted_ape=0.0789,
    n_areas=3,
    n_suppressed=1,
)


def context(**changes: object) -> ReportContext:
    values: dict[str, object] = {
        "dataset": "synthetic Belgium <seed 7>",
        "period_start": date(2024, 3, 1),
        "period_end": date(2024, 3, 31),
        "scale": 0.01,
        "market_share": 0.4,
        "sampling_fraction": 0.5,
        "n_devices_released_total": 12_345,
        "suppression_threshold": 15,
        "algorithm_name": "usual_residence",
        "algorithm_version": "1.2.0",
        "job_id": "job-42",
    }
    return ReportContext(**(values | changes))  # type: ignore[arg-type]


@pytest.fixture
def estimates() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "area_code": ["11002", "21004", "62063", "99999"],
            "name": ["Antwerpen", "Bruxelles / Brussel", "Liège", "<script>alert(1)</script> & Co"],
            "estimate": [550_000.0, np.nan, 180_000.0, 1_000.0],
            "census": [500_000.0, 160_000.0, 200_000.0, 800.0],
        }
    )


def read_report(path: Path) -> str:
    assert path.name == "report.html"
    return path.read_text(encoding="utf-8")


def test_report_shows_metrics_and_the_largest_errors(
    tmp_path: Path, estimates: pd.DataFrame
) -> None:
    html = read_report(
        write_report(
            out_dir=tmp_path,
            metrics={"Municipalities": METRICS},
            estimates=estimates,
            context=context(),
        )
    )

    for shown in ("0.9877", "0.9123", "12.3%", "34.6%", "7.9%", "Municipalities"):
        assert shown in html
    assert "+50,000" in html and "+10.0%" in html  # Antwerpen
    assert "−20,000" in html and "−10.0%" in html  # Liège, with a true minus sign
    assert html.index("Antwerpen") < html.index("Liège")  # sorted by size of the error


def test_report_escapes_names_and_descriptions(tmp_path: Path, estimates: pd.DataFrame) -> None:
    html = read_report(
        write_report(
            out_dir=tmp_path, metrics={"m": METRICS}, estimates=estimates, context=context()
        )
    )

    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in html
    assert "synthetic Belgium &lt;seed 7&gt;" in html


def test_report_embeds_images_and_needs_no_network(tmp_path: Path, estimates: pd.DataFrame) -> None:
    census = estimates.set_index("area_code")["census"]
    estimate = estimates.set_index("area_code")["estimate"]
    png = scatter_log(
        estimate=estimate,
        census=census,
        out=tmp_path / "scatter.png",
        metrics=agreement(estimate=estimate, reference=census),
    )
    figure = ReportFigure(path=png, caption="Estimate <vs> census", alt="A scatter plot")

    html = read_report(
        write_report(
            out_dir=tmp_path / "report",
            metrics={"m": METRICS},
            estimates=estimates,
            context=context(),
            figures=[figure],
        )
    )

    assert f"data:image/png;base64,{base64.b64encode(png.read_bytes()).decode()}" in html
    assert "Estimate &lt;vs&gt; census" in html
    assert "http://" not in html and "https://" not in html
    assert "@media print" in html


def test_report_explains_method_period_source_and_limitations(
    tmp_path: Path, estimates: pd.DataFrame
) -> None:
    html = read_report(
        write_report(
            out_dir=tmp_path, metrics={"m": METRICS}, estimates=estimates, context=context()
        )
    )

    for shown in (
        "2024-03-01 to 2024-03-31",
        "Statbel (Directorate-general Statistics - Statistics Belgium)",
        "19:00–08:00",
        "15 phones or fewer",
        "= 5 persons per phone",  # 1 / (0.4 x 0.5)
        "usual_residence version 1.2.0",
        "job-42",
        "12,345",
        "Limitations",
        "The data are synthetic",
        # Brussels is suppressed: 3 of 4 areas, 700,800 of 860,800 census residents.
        '<th scope="row">Coverage</th><td>3 of 4 municipalities have an estimate, 81.4% of '
        "the 2011 census population</td>",
    ):
        assert shown in html, shown
    assert re.findall(r"\d %", html) == []  # one style throughout: 2%, as every figure in it
    real = read_report(
        write_report(
            out_dir=tmp_path / "real",
            metrics={"m": METRICS},
            estimates=estimates,
            context=context(synthetic=False),
        )
    )
    assert "The data are synthetic" not in real


def test_metrics_in_dict_form_are_accepted_and_checked(
    tmp_path: Path, estimates: pd.DataFrame
) -> None:
    html = read_report(
        write_report(
            out_dir=tmp_path,
            metrics={"Arrondissements": METRICS.to_dict()},
            estimates=estimates,
            context=context(),
        )
    )
    assert "0.9877" in html and "Arrondissements" in html

    incomplete = {"pearson_r": 0.9}
    with pytest.raises(CellcensusError, match="ape_median"):
        write_report(
            out_dir=tmp_path, metrics={"x": incomplete}, estimates=estimates, context=context()
        )


def test_missing_inputs_are_reported_clearly(tmp_path: Path, estimates: pd.DataFrame) -> None:
    with pytest.raises(CellcensusError, match="census"):
        write_report(
            out_dir=tmp_path,
            metrics={"m": METRICS},
            estimates=estimates.drop(columns="census"),
            context=context(),
        )
    with pytest.raises(CellcensusError, match="does not exist"):
        write_report(
            out_dir=tmp_path,
            metrics={"m": METRICS},
            estimates=estimates,
            context=context(),
            figures=[ReportFigure(path=tmp_path / "none.png", caption="", alt="")],
        )


def test_standard_figures_in_the_folder_are_embedded_by_default(tmp_path: Path) -> None:
    table = pd.DataFrame(
        {
            "area_name": ["Antwerpen", "Gent"],
            "estimate": [510_000.0, 240_000.0],
            "census_2011": [498_473, 248_358],
        },
        index=pd.Index(["11002", "44021"], name="area_code"),
    )
    census = table["census_2011"].astype(float)
    metrics = agreement(estimate=table["estimate"], reference=census)
    scatter_log(
        estimate=table["estimate"], census=census, out=tmp_path / SCATTER_PNG, metrics=metrics
    )
    (tmp_path / "unrelated.png").write_bytes(b"not a figure of the report")

    html = read_report(
        write_report(
            out_dir=tmp_path,
            metrics={"usual_residence": metrics},
            estimates=table,
            context=context(period_start="2024-03-01", period_end="2024-03-31"),
        )
    )

    assert html.count("data:image/png;base64,") == 1
    assert "Each dot is a municipality" in html
    assert "Gent" in html and "−8,358" in html
    assert "2024-03-01 to 2024-03-31" in html


def test_scale_is_shown_only_when_given(tmp_path: Path, estimates: pd.DataFrame) -> None:
    with_scale = read_report(
        write_report(
            out_dir=tmp_path / "a", metrics={"m": METRICS}, estimates=estimates, context=context()
        )
    )
    without = read_report(
        write_report(
            out_dir=tmp_path / "b",
            metrics={"m": METRICS},
            estimates=estimates,
            context=context(scale=None),
        )
    )

    assert "Scale of the synthetic world" in with_scale and "0.01" in with_scale
    assert "Scale of the synthetic world" not in without


def test_with_an_estimation_the_report_is_a_statistical_release(
    tmp_path: Path, realistic_result: EstimationResult
) -> None:
    table = realistic_result.estimates().reset_index()
    table["name"] = table["area_code"]
    published = realistic_result.published
    result = replace(realistic_result, released_at="2011-03-29T00:00:00+00:00")

    html = read_report(
        write_report(
            out_dir=tmp_path,
            metrics={"Municipalities": realistic_result.best.agreement},
            estimates=table[["area_code", "name", "estimate", "census"]],
            context=context(
                market_share=published["market_share"],
                sampling_fraction=published["sampling_fraction"],
                generated_at=datetime(2011, 4, 2, 9, 30, tzinfo=UTC),
            ),
            estimation=result,
        )
    )

    for shown in (
        "Estimators compared",
        "Raking to margins (default)",
        "National factor",
        "Power law (Deville et al. 2014)",
        "Accuracy by size of municipality",
        "50,000 and over",
        "Uncertainty",
        "Laplace noise, epsilon 0.5",
        "Relevance",
        "Accuracy and reliability",
        "Timeliness and punctuality",
        "Not measurable here: the data are simulated",  # not days since 2011
        "made this report 4 days later",
        "generated 2011-04-02 09:30 UTC",
        "Coherence and comparability",
        "Accessibility and clarity",
        "SDMX-CSV",
        "is approximately unbiased when",
        "= 25 persons per phone",
        "divide the weighted error by",
        "Interval",  # interval column of the area tables
    ):
        assert shown in html, shown
    assert "No margin of error is given" not in html
    assert "The intervals cover sampling" in html
    assert "http://" not in html and "https://" not in html
    assert "@page" in html and "@media print" in html


def test_metrics_from_an_older_metrics_json_are_still_accepted(
    tmp_path: Path, estimates: pd.DataFrame
) -> None:
    old = {key: value for key, value in METRICS.to_dict().items() if key != "log_slope"}

    html = read_report(
        write_report(out_dir=tmp_path, metrics={"old": old}, estimates=estimates, context=context())
    )

    assert "0.9877" in html


def test_agreement_table_gives_the_log_log_fit_and_the_error_of_the_total(
    tmp_path: Path, estimates: pd.DataFrame
) -> None:
    measured = replace(METRICS, log_r2=0.8321, log_slope=0.9712, relative_bias=-0.0234)

    html = read_report(
        write_report(
            out_dir=tmp_path, metrics={"m": measured}, estimates=estimates, context=context()
        )
    )

    table = html.split("<h2>Agreement with the 2011 census</h2>")[1].split("</section>")[0]
    for label, value in (
        ("Log-log R²", "0.8321"),
        ("Log-log slope", "0.9712"),
        ("Error of the total", "−2.3%"),
    ):
        assert f'<th scope="row">{label}</th><td class="num">{value}</td>' in table, label


@pytest.fixture(scope="module")
def realistic_report(
    tmp_path_factory: pytest.TempPathFactory, realistic_result: EstimationResult
) -> tuple[str, int]:
    """The report of the realistic release, and its number of areas: read, never changed."""
    table = realistic_result.estimates().reset_index()
    table["name"] = table["area_code"]
    html = read_report(
        write_report(
            out_dir=tmp_path_factory.mktemp("realistic-report"),
            metrics={"Municipalities": realistic_result.best.agreement},
            estimates=table[["area_code", "name", "estimate", "census"]],
            context=context(),
            estimation=realistic_result,
        )
    )
    return html, len(table)


def test_the_report_prints_well(realistic_report: tuple[str, int]) -> None:
    html, n_areas = realistic_report

    css = html.split("<style>")[1].split("</style>")[0]
    print_css = css.split("@media print")[1]
    # One root size in print, so text in rem (lead paragraphs, tables) is not larger than
    # the body text; headings and the sentence before a table stay with what follows.
    assert "html { font-size: 10pt; }" in print_css
    assert "h2, h3 { page-break-after: avoid; break-after: avoid; }" in print_css
    assert "p:has(+ .scroll, + .wide, + h3)" in print_css
    # The closed table of all areas is not printed: the printed copy says where it is.
    assert "details:not([open]) + p.print-only { display: block;" in print_css
    assert f"Not printed: the table of all {n_areas:,} municipalities" in html
    # The default's assumptions follow the lettered list of estimators, not an item of it.
    method = html.split("<h2>What was done</h2>")[1].split("</section>")[0]
    lettered = method.split('<ol type="a">')[1].split("</ol>")[0]
    assert "unbiased when" not in lettered
    assert (
        "</ol><p>The default estimator, Raking to margins, is approximately unbiased when:</p>"
        in method
    )


def test_the_context_of_a_release_is_read_from_the_release(unbiased) -> None:
    from cellcensus.release import Release

    release: Release = unbiased.release
    made = ReportContext.from_release(release, dataset="simulated Belgium", scale=0.1)
    table, provenance = release.table, release.provenance
    assert made == ReportContext(
        dataset="simulated Belgium",
        period_start="2011-03-01",
        period_end="2011-03-28",
        market_share=release.published["market_share"],
        sampling_fraction=release.published["sampling_fraction"],
        n_devices_released_total=int(table["device_count"].sum()),
        suppression_threshold=provenance.policy["min_count"],
        algorithm_name="usual_residence",
        algorithm_version="simulated",
        job_id=provenance.job_id,
        scale=0.1,
        synthetic=True,  # as the simulated release publishes
        protections=(
            ReleaseProtection(
                algorithm="usual_residence",
                job_id=provenance.job_id,
                min_count=15.0,
                rounding_base=5,
                mechanism="laplace",
                epsilon=0.5,
            ),
        ),
    )
    # A sample of subscribers is no simulation: only the published fact says so.
    facts = {k: v for k, v in release.published.items() if k != "synthetic"}
    export = replace(release, published={**facts, "sampling_fraction": 0.5})
    assert not ReportContext.from_release(export, dataset="d").synthetic
    assert ReportContext.from_release(export, dataset="d", synthetic=True).synthetic
    nights = replace(provenance, parameters={"night_start_hour": 22, "night_end_hour": 6})
    assert ReportContext.from_release(
        replace(release, provenance=nights), dataset="d"
    ).night_window == ("22:00–06:00")
    gaps = {**release.published, "days_missing": ["2011-03-10", "2011-03-11", "2011-03-20"]}
    gapped = ReportContext.from_release(replace(release, published=gaps), dataset="d")
    assert gapped.days_missing == ("2011-03-10", "2011-03-11", "2011-03-20")
    assert _period(gapped) == (
        "2011-03-01 to 2011-03-28 (no data on 2011-03-10 to 2011-03-11, 2011-03-20)"
    )
    assert _period(made) == "2011-03-01 to 2011-03-28"
    garbled = {**release.published, "days_missing": ["10 March"]}
    with pytest.raises(CellcensusError, match="days_missing holds '10 March', not a date"):
        ReportContext.from_release(replace(release, published=garbled), dataset="d")
    no_period = replace(release, published={"market_share": 0.4, "sampling_fraction": 0.1})
    with pytest.raises(CellcensusError, match="does not say its period start, period end"):
        ReportContext.from_release(no_period, dataset="d")


def test_the_method_gives_the_order_of_protection_and_the_total_privacy_loss(
    tmp_path: Path, unbiased, realistic_result: EstimationResult
) -> None:
    release = unbiased.release
    gaussian = {"epsilon": 0.3, "delta": 1e-7, "mechanism": "gaussian"}
    flows = replace(
        release,
        provenance=replace(
            release.provenance,
            algorithm="home_work_flows",
            policy={**release.provenance.policy, "dp": gaussian},
        ),
    )
    made = ReportContext.from_release(release, dataset="d", synthetic=True, uses=[flows])
    table = realistic_result.estimates().reset_index().assign(name="x")

    html = read_report(
        write_report(
            out_dir=tmp_path,
            metrics={"Municipalities": realistic_result.best.agreement},
            estimates=table[["area_code", "name", "estimate", "census"]],
            context=made,
            estimation=realistic_result,
        )
    )

    method = html.split("<h2>What was done</h2>")[1].split("</section>")[0]
    assert "before anything else" not in html
    assert (
        "random noise was added to every count (Laplace noise, ε = 0.5); counts whose noisy "
        "value was 15 phones or fewer were withheld" in method
    )
    # Rounding comes after the threshold, so a published 15 is not a count the rule withholds.
    assert (
        "rounded to multiples of 5 (so a count just above the threshold may be published as 15)"
        in method
    )
    assert "15 devices or fewer, before rounding" in html
    assert "Gaussian noise, ε = 0.3, δ = 10⁻⁷" in method
    assert "the sum of their losses, ε = 0.8 and δ = 10⁻⁷ (basic composition" in method
    assert "placed in the wrong" not in html and "counted in the wrong" not in html
    assert "(population-weighted APE)" in html
    limitations = html.split("<h2>Limitations</h2>")[1]
    assert "selection on the noisy count" in limitations
    assert "add up to the census's totals per province" in limitations
    assert "only together with the census's population of the withheld" in html
    assert "biased upward" in html.split("Accuracy by size of municipality")[1]
    alone = read_report(
        write_report(
            out_dir=tmp_path / "alone",
            metrics={"Municipalities": realistic_result.best.agreement},
            estimates=table[["area_code", "name", "estimate", "census"]],
            context=ReportContext.from_release(release, dataset="d", synthetic=True),
            estimation=realistic_result,
        )
    )
    assert "This report uses one noisy release: usual_residence" in alone
    assert "Its privacy loss is ε = 0.5 and δ = 0 (a bound" in alone
    assert "sum of their losses" not in alone


class Nesting(HTMLParser):
    """For each table, the classes of the elements around it."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[tuple[str, str]] = []
        self.around_tables: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.around_tables.append([cls for _, cls in self.open])
        if tag not in ("meta", "img", "br"):
            self.open.append((tag, dict(attrs).get("class") or ""))

    def handle_endtag(self, tag: str) -> None:
        assert self.open.pop()[0] == tag


def test_every_table_scrolls_on_its_own_on_a_phone(realistic_report: tuple[str, int]) -> None:
    html, _ = realistic_report

    nesting = Nesting()
    nesting.feed(html)
    assert len(nesting.around_tables) >= 8 and not nesting.open
    for classes in nesting.around_tables:
        assert {"scroll", "wide"} & set(classes), classes
    css = html.split("<style>")[1].split("</style>")[0]
    assert ".wide, .scroll { overflow-x: auto; }" in css
    # A flex item is never narrower than its content unless told: else the side-by-side
    # tables of the largest differences stay wider than a phone even in their blocks.
    assert ".pair > div { flex: 1 1 38rem; min-width: 0; }" in css
    # On a phone the labels of the quality table do not take half of the width.
    assert "@media (max-width: 40rem) { table.quality th { width: auto; } }" in css


def test_the_largest_differences_show_every_column_on_a_desktop(
    tmp_path: Path, realistic_report: tuple[str, int]
) -> None:
    # Side by side, the two tables of the largest differences were wider than their halves
    # of a desktop page: their last columns (Relative, which orders one of them) scrolled
    # out of sight.
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("needs a chromium binary on PATH")
    page_file = tmp_path / "report.html"
    page_file.write_text(realistic_report[0], encoding="utf-8")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(page_file.as_uri())
        hidden = page.eval_on_selector_all(
            ".pair table", "tables => tables.map(t => t.scrollWidth - t.parentElement.clientWidth)"
        )
        browser.close()
    assert len(hidden) == 2 and max(hidden) <= 0, hidden


def test_accuracy_by_size_gives_the_intervals_coverage_within_each_class(
    tmp_path: Path, realistic_result: EstimationResult
) -> None:
    table = realistic_result.estimates().reset_index().assign(name="x")

    html = read_report(
        write_report(
            out_dir=tmp_path,
            metrics={"Municipalities": realistic_result.best.agreement},
            estimates=table[["area_code", "name", "estimate", "census"]],
            context=context(),
            estimation=realistic_result,
        )
    )

    by_size = html.split("Accuracy by size of municipality")[1].split("</section>")[0]
    assert '<th scope="col" class="num">Coverage</th>' in by_size  # judged within classes
    for row in realistic_result.best.by_size_class.itertuples():
        if row.n_areas:
            assert f'<td class="num">{row.interval_coverage:.1%}</td>' in by_size
    uncertainty = html.split("<h2>Uncertainty</h2>")[1].split("</section>")[0]
    assert "within each class of estimated size" in uncertainty
    fits = realistic_result.best.model_error_by_size
    largest = fits[fits["upper"] == np.inf]
    low = float(largest["lower"].iloc[0])
    taus = " and ".join(f"{tau:.1%}" for tau in largest["tau"])
    assert f"{low:,.0f} and over: {taus}" in uncertainty
