"""The HTML report: one self-contained file (images embedded), readable offline and in print.

Written with f-strings and `html.escape`: every value that comes from data (names, codes,
descriptions) is escaped; the only markup is the report's own.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from datetime import date, datetime
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from cellcensus.errors import CellcensusError
from cellcensus.notation import date_runs, scientific
from cellcensus.nso.estimation import expansion_factor
from cellcensus.nso.production import EstimationResult
from cellcensus.nso.report import quality
from cellcensus.nso.report.figures import (
    DPI,
    ERROR_MAP_PNG,
    ESTIMATORS_PNG,
    INTERVALS_PNG,
    MAPS_PNG,
    SCATTER_PNG,
)
from cellcensus.nso.report.findings import residents_findings
from cellcensus.nso.report.numbers import factor as _factor
from cellcensus.nso.report.numbers import number as _number
from cellcensus.nso.report.numbers import signed_number as _signed_number
from cellcensus.nso.report.numbers import signed_percent as _signed_percent
from cellcensus.nso.validation import Agreement
from cellcensus.reference.belgium import CITATION
from cellcensus.release import Release

REPORT_FILE = "report.html"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class ReleaseProtection:
    """How one release the report uses was protected, as its provenance records it.

    Attributes:
        algorithm: The release's algorithm.
        job_id: Its enclave job.
        min_count: Noisy counts of this many devices or fewer were withheld.
        rounding_base: Published counts are multiples of this.
        mechanism: ``laplace`` or ``gaussian``; None when no noise was added.
        epsilon: Privacy loss of the release (0 without noise).
        delta: Its delta (0 for Laplace).
    """

    algorithm: str
    job_id: str
    min_count: float
    rounding_base: int = 1
    mechanism: str | None = None
    epsilon: float = 0.0
    delta: float = 0.0

    @classmethod
    def of(cls, release: Release) -> ReleaseProtection:
        """The protection recorded in `release`'s provenance policy."""
        provenance = release.provenance
        policy = provenance.policy or {}
        dp = policy.get("dp") or {}
        return cls(
            algorithm=provenance.algorithm,
            job_id=provenance.job_id,
            min_count=float(policy.get("min_count") or 0),
            rounding_base=int(policy.get("rounding_base") or 1),
            mechanism=str(dp.get("mechanism", "laplace")) if dp else None,
            epsilon=float(dp.get("epsilon") or 0.0) if dp else 0.0,
            delta=float(dp.get("delta") or 0.0) if dp else 0.0,
        )

    def noise(self) -> str:
        """The mechanism in words: ``Laplace noise, ε = 0.4`` (δ when there is one)."""
        if self.mechanism is None:
            return "no noise"
        delta = f", δ = {scientific(self.delta)}" if self.delta > 0 else ""
        return f"{self.mechanism.capitalize()} noise, ε = {self.epsilon:g}{delta}"


@dataclass(frozen=True)
class ReportContext:
    """What the report says about how its numbers were made.

    Attributes:
        dataset: What the input data is, in a few words (e.g. "synthetic Belgium, seed 7").
        period_start: First day of the observation period (a date or an ISO string).
        period_end: Last day of the observation period (a date or an ISO string).
        days_missing: Days of the period the holder had no data for (ISO dates).
        market_share: Operator's share of the resident population, in (0, 1].
        sampling_fraction: Share of the operator's subscribers in the data, in (0, 1].
        n_devices_released_total: Sum of the released (unsuppressed) device counts.
        suppression_threshold: Counts of this many devices or fewer were withheld.
        algorithm_name: Name of the certified algorithm that produced the release.
        algorithm_version: Its version.
        job_id: The enclave job that produced the release.
        scale: Share of the real population that the synthetic world simulates (None: not
            shown).
        night_window: Hours counted as night by the usual-residence algorithm.
        spatial_estimator: How home cells became municipalities (``allocation``,
            ``bayesian`` or ``posterior``, the algorithm's parameter).
        synthetic: Whether the data is simulated (adds the limitation that implies).
        title: Title of the report.
        citation: Source of the census and boundaries.
        generated_at: When the report was made (None to leave it out).
        protections: How each release the report uses was protected, the resident counts'
            first (from their provenance; empty when not known).
    """

    dataset: str
    period_start: date | str
    period_end: date | str
    market_share: float
    sampling_fraction: float
    n_devices_released_total: int
    suppression_threshold: float
    algorithm_name: str
    algorithm_version: str
    job_id: str
    days_missing: tuple[str, ...] = ()
    scale: float | None = None
    night_window: str = "19:00–08:00"
    spatial_estimator: str = "allocation"
    synthetic: bool = True
    title: str = "Population of Belgian municipalities estimated from mobile phone data"
    citation: str = CITATION
    generated_at: datetime | None = field(default=None)
    protections: tuple[ReleaseProtection, ...] = ()

    @classmethod
    def from_release(
        cls,
        release: Release,
        *,
        dataset: str,
        synthetic: bool | None = None,
        uses: Sequence[Release] = (),
        **more: Any,
    ) -> ReportContext:
        """The context of a report on `release`: everything the release itself says.

        Args:
            release: The holder's release (e.g. `Release.read` of ``cellcensus run --out``).
            dataset: What the input data is, in a few words.
            synthetic: Whether the data is simulated; None: as the release's published
                facts say (``synthetic``, which a synthetic world's metadata carries).
            uses: The other releases the report uses (present population, flows), whose
                privacy loss adds to `release`'s.
            more: Other fields (``scale``, ``title``, ``citation``, ``generated_at``).

        Raises:
            CellcensusError: the release does not publish its period, market share or
                sampling fraction, or its policy has no threshold.
        """
        provenance, published = release.provenance, release.published
        period = published.get("period") or {}
        facts = {"period start": period.get("start"), "period end": period.get("end")}
        facts |= {name: published.get(name) for name in ("market_share", "sampling_fraction")}
        facts["policy's min_count"] = provenance.policy.get("min_count")
        missing = [name for name, value in facts.items() if value is None]
        if missing:
            raise CellcensusError(
                f"release of job {provenance.job_id} does not say its {', '.join(missing)}: "
                "a report cannot be made of it"
            )
        parameters = provenance.parameters
        return cls(
            dataset=dataset,
            period_start=period["start"],
            period_end=period["end"],
            days_missing=_days_missing(published),
            market_share=float(published["market_share"]),
            sampling_fraction=float(published["sampling_fraction"]),
            n_devices_released_total=int(release.table["device_count"].sum()),
            suppression_threshold=float(provenance.policy["min_count"]),
            algorithm_name=provenance.algorithm,
            algorithm_version=provenance.version,
            job_id=provenance.job_id,
            night_window=_night_window(parameters),
            spatial_estimator=str(parameters.get("spatial_estimator", "allocation")),
            synthetic=bool(published.get("synthetic")) if synthetic is None else synthetic,
            protections=tuple(ReleaseProtection.of(used) for used in (release, *uses)),
            **more,
        )


def _night_window(parameters: Mapping[str, Any]) -> str:
    """The night hours of a usual-residence release's parameters (its defaults if not given)."""
    start, end = parameters.get("night_start_hour", 19), parameters.get("night_end_hour", 8)
    return f"{int(start):02d}:00–{int(end):02d}:00"


SPATIAL_STEPS = {
    "allocation": "each cell is shared among the municipalities it covers, in proportion to "
    "the people living in its coverage.",
    "bayesian": "the phones per cell were turned into phones per municipality by a "
    "maximum-likelihood estimate from the cells' coverage (Ricciato & Coluccia).",
    "posterior": "each phone was then placed within that cell's coverage, on 250 m squares, "
    "by the other cells it used at night and where people live (Tennekes & Gootzen), and "
    "shared among municipalities accordingly.",
}
"""The method step from home cells to municipalities, by spatial estimator."""


@dataclass(frozen=True)
class ReportFigure:
    """A PNG to embed in the report.

    Attributes:
        path: The PNG file.
        caption: Caption shown under it (plain text).
        alt: Text alternative for readers who cannot see it.
    """

    path: Path
    caption: str
    alt: str


def write_report(
    *,
    out_dir: Path,
    metrics: Mapping[str, Agreement | Mapping[str, float | int]],
    estimates: pd.DataFrame,
    context: ReportContext,
    figures: Sequence[ReportFigure] | None = None,
    n_largest: int = 15,
    estimation: EstimationResult | None = None,
    extra_sections: Sequence[str] = (),
    area_km2: pd.Series | None = None,
) -> Path:
    """Write ``report.html`` into `out_dir`: a statistical release with figures and method.

    Without `estimation` the report describes the national factor only; with it, it becomes
    the full release: the default estimator's figures with intervals, estimators compared,
    accuracy by size, uncertainty, the quality dimensions of the ESS framework and the
    limitations of each method.

    Args:
        out_dir: Directory to write into (created if needed).
        metrics: Agreement per comparison, e.g. ``{"Municipalities": agreement(...)}``, as
            `Agreement` objects or their `Agreement.to_dict` form.
        estimates: One row per area: ``area_code`` (column or index), ``name`` (or
            ``area_name``), ``estimate`` (NaN where suppressed) and ``census`` (or
            ``census_2011``), as `cellcensus.nso.validation.compare_with_census` returns.
        context: How the numbers were made.
        figures: PNGs to embed (base64, so the file stands alone). None: those of
            `standard_figures` found in `out_dir`, whose text alternatives give what each
            shows (`cellcensus.nso.report.findings`).
        n_largest: Rows of each table of largest errors.
        estimation: Output of `cellcensus.nso.production.estimate_all`; `estimates` should
            then hold its default estimator's figures (``estimation.estimates()``), whose
            interval columns are added (matched on area_code) when `estimates` lacks them.
        extra_sections: Further HTML sections (e.g. present population and commuting, see
            `cellcensus.nso.report.mobility`), placed after the estimation sections.
        area_km2: Area of each municipality (index: area_code): with it, the text
            alternative of the density maps says how many municipalities fall in the same
            density class on both.

    Returns:
        The path of the written report.

    Raises:
        CellcensusError: If `estimates` lacks a column, a metrics dict is incomplete, or a
            figure file is missing.
    """
    table = _with_errors(estimates, estimation=estimation)
    if figures is None:
        figures = standard_figures(
            out_dir,
            findings=residents_findings(table, estimation=estimation, area_km2=area_km2),
        )
    agreements = {
        label: _as_agreement(label=label, value=value) for label, value in metrics.items()
    }
    main = "\n".join(
        (
            _summary(table=table, context=context, estimation=estimation),
            _figures_section(figures),
            _metrics_section(agreements),
            *_estimation_sections(estimation=estimation, context=context),
            *extra_sections,
            _largest_errors(table=table, n_largest=n_largest),
            _method(context, estimation=estimation),
            _parameters(context, table=table),
            _limitations(context, estimation=estimation),
            _all_areas(table),
            _sources(context),
        )
    )
    body = f"{_header(context)}\n<main>\n{main}\n</main>"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / REPORT_FILE
    path.write_text(_page(title=context.title, body=body), encoding="utf-8")
    return path


_INTERVAL_COLUMNS = ("ci_lower", "ci_upper")
"""Interval columns shown in the area tables when present."""

_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("area_name", "name_nl"),
    "census": ("census_2011", "population"),
}
"""Other names accepted for the columns of the estimates table."""

_STANDARD_FIGURES: tuple[tuple[str, str, str], ...] = (
    (
        MAPS_PNG,
        "Population density per municipality: estimated from mobile phone data (left) and "
        "counted by the 2011 census (right), with the same classes and colours.",
        "Two maps of Belgium side by side, coloured by population density in eight classes "
        "from pale yellow (under 50 inhabitants per km²) to dark blue (3,200 and over): "
        "estimated from mobile phone data (left) and counted by the 2011 census (right).",
    ),
    (
        SCATTER_PNG,
        "Each dot is a municipality; on the diagonal, estimate and census agree. Both axes are "
        "logarithmic.",
        "Scatter plot of estimated against census population per municipality.",
    ),
    (
        ERROR_MAP_PNG,
        "Where the estimate is above (red) or below (blue) the census; the darker, the larger "
        "the difference (classes in the legend).",
        "Map of Belgium coloured by the relative difference between estimate and census, in "
        "seven classes from dark blue (estimate more than 20% below) through white (within "
        "5%) to dark red (more than 20% above).",
    ),
    (
        ESTIMATORS_PNG,
        "Error of every estimator against the census: fitted on all calibration areas, and "
        "fitted on half of the municipalities and judged on the other half (hold-out).",
        "Bar chart of the population-weighted and median errors of each estimator.",
    ),
    (
        INTERVALS_PNG,
        "Each line is a municipality's interval around its relative error; where a line "
        "crosses zero, the interval contains the census value.",
        "Chart of relative errors with their intervals against municipality size.",
    ),
)


def standard_figures(
    out_dir: Path, *, findings: Mapping[str, str] | None = None
) -> list[ReportFigure]:
    """The figures of `cellcensus.nso.report.figures` under their standard names in `out_dir`.

    Args:
        out_dir: Where the PNGs were written (``maps.png``, ``scatter.png``,
            ``relative_error_map.png``, ``estimators.png``, ``intervals.png``); absent ones
            are skipped.
        findings: What each figure shows, by file name (`findings.residents_findings`):
            added to its text alternative, which otherwise says only what kind of figure it
            is.

    Returns:
        The figures that exist, with their captions, in reading order.
    """
    found = findings or {}
    return [
        ReportFigure(
            path=out_dir / name,
            caption=caption,
            alt=f"{alt} {found[name]}" if name in found else alt,
        )
        for name, caption, alt in _STANDARD_FIGURES
        if (out_dir / name).is_file()
    ]


_METRIC_ROWS: tuple[tuple[str, str, str], ...] = (
    ("pearson_r", "Pearson correlation r", "1 is perfect agreement."),
    (
        "log_pearson_r",
        "Correlation of logarithms",
        "Gives small municipalities as much weight as large ones.",
    ),
    ("ape_median", "Median absolute error", "Half of the municipalities are off by less."),
    ("ape_p90", "90th percentile of absolute error", "Nine in ten are off by less."),
    (
        "weighted_ape",
        "Population-weighted absolute error",
        "Sum of absolute differences as a share of the census population "
        "(population-weighted APE).",
    ),
    (
        "log_r2",
        "Log-log R²",
        "Share of the variance of log census explained by log estimate.",
    ),
    (
        "log_slope",
        "Log-log slope",
        "1 when the relative error does not depend on size; below 1 when small areas are "
        "overestimated and large ones underestimated.",
    ),
    ("relative_bias", "Error of the total", "Sum of estimates against sum of census values."),
    ("n_areas", "Areas compared", ""),
    ("n_suppressed", "Areas suppressed (no estimate)", ""),
)

_CSS = """
:root { --ink: #222; --muted: #666; --rule: #d8d8d8; --accent: #225ea8; }
* { box-sizing: border-box; }
body { font-family: "Segoe UI", "Helvetica Neue", Arial, sans-serif; color: var(--ink);
  max-width: 1120px; margin: 0 auto; padding: 2rem 1.5rem 4rem; line-height: 1.5;
  overflow-wrap: break-word; }
h1 { font-size: 1.7rem; margin: 0 0 .3rem; }
h2 { font-size: 1.25rem; margin: 2.2rem 0 .6rem; padding-bottom: .2rem;
  border-bottom: 2px solid var(--accent); }
.subtitle { color: var(--muted); margin: 0 0 1.5rem; }
.lead { font-size: 1.05rem; }
figure { margin: 1.5rem auto; page-break-inside: avoid; break-inside: avoid; }
figure img { width: 100%; height: auto; border: 1px solid var(--rule); }
figcaption { color: var(--muted); font-size: .9rem; margin-top: .3rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .92rem; }
th, td { padding: .3rem .7rem; border-bottom: 1px solid var(--rule); text-align: left;
  vertical-align: top; }
th { background: #f3f5f8; font-weight: 600; }
th.row { background: none; font-weight: normal; }
caption { caption-side: top; text-align: left; color: var(--muted); font-size: .9rem;
  padding: .2rem 0; }
.visually-hidden { position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0;
  overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.note { color: var(--muted); font-size: .85rem; }
.pair { display: flex; gap: 1.5rem; flex-wrap: wrap; }
.pair > div { flex: 1 1 38rem; min-width: 0; }
.pair table { width: 100%; font-size: .85rem; }
.pair th, .pair td { padding: .25rem .4rem; }
h3 { font-size: 1rem; margin: 1rem 0 .3rem; }
ol li, ul li { margin-bottom: .35rem; }
details summary { cursor: pointer; color: var(--accent); margin: .5rem 0; }
summary:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.sources { color: var(--muted); font-size: .88rem; }
tr.default td, tr.default th { font-weight: 600; background: #eef3fa; }
.wide, .scroll { overflow-x: auto; }
.wide table { font-size: .8rem; }
.wide th, .wide td { padding: .25rem .4rem; }
.wide th.num { white-space: normal; }
table.quality th { width: 14rem; }
@media (max-width: 40rem) { table.quality th { width: auto; } }
ul.assumptions { color: var(--muted); font-size: .9rem; margin: .2rem 0 .4rem; }
table.by-size th.row { white-space: nowrap; }
p.print-only { display: none; }
@page { size: A4; margin: 15mm 12mm; }
@media print {
  html { font-size: 10pt; }
  .wide, .scroll { overflow: visible; }
  .wide table { font-size: 7pt; }
  tr.default td, tr.default th { background: none; }
  body { max-width: none; padding: 0; font-size: 1rem; }
  h2, h3 { page-break-after: avoid; break-after: avoid; }
  section > p:has(+ .scroll, + .wide, + h3) { page-break-after: avoid; break-after: avoid;
    break-inside: avoid; }
  table, figure { page-break-inside: avoid; break-inside: avoid; }
  th { background: none; }
  th.num { white-space: normal; }
  details:not([open]) { display: none; }
  details:not([open]) + p.print-only { display: block; color: var(--muted); }
  a { color: inherit; text-decoration: none; }
}
"""


# A table not already in a scrolling `.wide` block; the report's tables never nest.
_BARE_TABLE = re.compile(r'(?<!<div class="wide">)<table[ >].*?</table>', re.DOTALL)


def _scrolling(body: str) -> str:
    """Each table in a block that scrolls sideways on its own, not the whole page, on a phone."""
    return _BARE_TABLE.sub(lambda table: f'<div class="scroll">{table.group()}</div>', body)


def _page(*, title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n{_scrolling(body)}\n</body>\n</html>\n"
    )


def _with_errors(
    estimates: pd.DataFrame, *, estimation: EstimationResult | None = None
) -> pd.DataFrame:
    table = estimates
    if "area_code" not in table.columns and table.index.name == "area_code":
        table = table.reset_index()
    renames = {}
    for column, aliases in _ALIASES.items():
        found = [alias for alias in (column, *aliases) if alias in table.columns]
        if found:
            renames[found[0]] = column
    table = table.rename(columns=renames)
    required = ("area_code", "name", "estimate", "census")
    missing = [column for column in required if column not in table.columns]
    if missing:
        raise CellcensusError(
            f"estimates table lacks column(s) {missing}; it has {list(estimates.columns)}; "
            "build it with cellcensus.nso.validation.compare_with_census"
        )
    bounds = [c for c in _INTERVAL_COLUMNS if c in table.columns]
    table = table[[*required, *bounds]].copy()
    table["area_code"] = table["area_code"].astype(str)
    if estimation is not None and not bounds:
        intervals = estimation.best.table[list(_INTERVAL_COLUMNS)]
        table = table.join(intervals, on="area_code")
    table["estimate"] = table["estimate"].astype("float64")
    table["census"] = table["census"].astype("float64")
    table["error"] = table["estimate"] - table["census"]
    table["relative_error"] = table["error"] / table["census"].where(table["census"] > 0)
    return table


def _as_agreement(*, label: str, value: Agreement | Mapping[str, float | int]) -> Agreement:
    if isinstance(value, Agreement):
        return value
    names = [item.name for item in fields(Agreement)]
    required = [item.name for item in fields(Agreement) if item.default is MISSING]
    missing = [name for name in required if name not in value]
    if missing:
        raise CellcensusError(f"metrics {label!r} lacks {missing}")
    given = {name: value[name] for name in names if name in value}
    return Agreement(**given)  # type: ignore[arg-type]


def _header(context: ReportContext) -> str:
    made = (
        f" · generated {escape(context.generated_at.strftime('%Y-%m-%d %H:%M %Z').strip())}"
        if context.generated_at
        else ""
    )
    return (
        f"<header><h1>{escape(context.title)}</h1>\n"
        f'<p class="subtitle">{escape(context.dataset)} · '
        f"{_period(context)}{made}</p></header>"
    )


def _summary(
    *, table: pd.DataFrame, context: ReportContext, estimation: EstimationResult | None
) -> str:
    released = table["estimate"].notna()
    total_estimate = table.loc[released, "estimate"].sum()
    total_census = table.loc[released, "census"].sum()
    if estimation is not None:
        return quality.summary_section(estimation)
    difference = (total_estimate - total_census) / total_census if total_census else math.nan
    factor = expansion_factor(
        market_share=context.market_share, sampling_fraction=context.sampling_fraction
    )
    return (
        '<section><h2>Summary</h2>\n<p class="lead">'
        f"Counting the phones that spend their nights in each municipality gives an estimate "
        f"of its resident population for {int(released.sum()):,} of {len(table):,} "
        f"municipalities ({int((~released).sum()):,} had too few devices and were withheld). "
        f"The {context.n_devices_released_total:,} devices released stand for "
        f"{_number(total_estimate)} residents at {_factor(factor)} persons per device, "
        f"against {_number(total_census)} in the 2011 census for the same municipalities "
        f"({_signed_percent(difference)}).</p></section>"
    )


def figure_html(figure: ReportFigure) -> str:
    """A PNG as an HTML ``<figure>`` with the image embedded (base64) and its caption.

    Raises:
        CellcensusError: If the file is missing or not a PNG.
    """
    return _figure(figure)


def _figure(figure: ReportFigure) -> str:
    if not figure.path.is_file():
        raise CellcensusError(f"figure {figure.path} does not exist: draw it before the report")
    data = figure.path.read_bytes()
    if data[:8] != _PNG_SIGNATURE:
        raise CellcensusError(f"figure {figure.path} is not a PNG file")
    encoded = base64.b64encode(data).decode("ascii")
    return (
        f'<figure style="max-width: {_css_width(data)}px">'
        f'<img src="data:image/png;base64,{encoded}" alt="{escape(figure.alt)}">'
        f"<figcaption>{escape(figure.caption)}</figcaption></figure>"
    )


def _figures_section(figures: Sequence[ReportFigure]) -> str:
    """The residents' figures under a heading of their own (a landmark a reader can jump to)."""
    if not figures:
        return ""
    body = "\n".join(_figure(figure) for figure in figures)
    return f"<section><h2>Residents per municipality in figures</h2>\n{body}</section>"


def _css_width(png: bytes) -> int:
    """Width at which the PNG shows at its natural size: figures are drawn at `DPI`."""
    pixels = int.from_bytes(png[16:20], "big")
    return round(pixels * 96 / DPI)


def _metrics_section(agreements: Mapping[str, Agreement]) -> str:
    head = "".join(f'<th scope="col" class="num">{escape(label)}</th>' for label in agreements)
    rows = []
    for key, label, note in _METRIC_ROWS:
        cells = "".join(
            f'<td class="num">{_metric(key, getattr(agreement, key))}</td>'
            for agreement in agreements.values()
        )
        rows.append(
            f'<tr><th scope="row">{escape(label)}</th>{cells}<td class="note">{escape(note)}</td>'
            "</tr>"
        )
    return (
        "<section><h2>Agreement with the 2011 census</h2>\n"
        "<p>Errors are absolute differences between estimate and census, as a share of the "
        "census population.</p>\n"
        "<table><caption>Agreement of the estimates with the 2011 census</caption>"
        f'<thead><tr><th scope="col">Measure</th>{head}<th scope="col">Meaning</th></tr>'
        "</thead>\n"
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


def _metric(key: str, value: float) -> str:
    if key.startswith("n_"):
        return f"{int(value):,}"
    if math.isnan(value):
        return "–"
    if key == "relative_bias":
        return _signed_percent(value)
    if "ape" in key:
        return f"{value:.1%}"
    return f"{value:.4f}"


def _largest_errors(*, table: pd.DataFrame, n_largest: int) -> str:
    released = table[table["estimate"].notna()]
    by_persons = released.loc[released["error"].abs().sort_values(ascending=False).index]
    by_share = released.loc[
        released["relative_error"].abs().sort_values(ascending=False, na_position="last").index
    ]
    shown = min(n_largest, len(released))
    return (
        '<section><h2>Largest differences</h2>\n<div class="pair">'
        "<div><h3>In persons</h3>"
        f"{_area_table(by_persons.head(n_largest), caption=_largest('in persons', shown))}"
        "</div><div><h3>Relative to the census</h3>"
        f"{_area_table(by_share.head(n_largest), caption=_largest('relative', shown))}"
        "</div>"
        "</div></section>"
    )


def _largest(kind: str, count: int) -> str:
    """The caption of a table of largest differences (its heading says the same in short)."""
    which = "relative to their census population" if kind == "relative" else kind
    return (
        f'<caption class="visually-hidden">The {count:,} municipalities with the largest '
        f"differences from the census, {which}</caption>"
    )


def _area_table(rows: pd.DataFrame, *, caption: str) -> str:
    """Areas with their census, estimate (and interval) and difference, one row each.

    Args:
        rows: The areas, as `_with_errors` returns them.
        caption: The table's ``<caption>`` element.
    """
    with_interval = set(_INTERVAL_COLUMNS) <= set(rows.columns)
    body = "".join(
        "<tr>"
        f'<th scope="row" class="row">{escape(str(row["name"]))}</th>'
        f'<td class="num">{escape(str(row["area_code"]))}</td>'
        f'<td class="num">{_number(row["census"])}</td>'
        f'<td class="num">{_number(row["estimate"], missing="suppressed")}</td>'
        + (f'<td class="num">{_interval(row)}</td>' if with_interval else "")
        + f'<td class="num">{_signed_number(row["error"])}</td>'
        f'<td class="num">{_signed_percent(row["relative_error"])}</td>'
        "</tr>"
        for row in rows.to_dict("records")
    )
    interval_head = '<th scope="col" class="num">Interval</th>' if with_interval else ""
    return (
        f'<table>{caption}<thead><tr><th scope="col">Municipality</th>'
        '<th scope="col" class="num">Code</th><th scope="col" class="num">Census 2011</th>'
        f'<th scope="col" class="num">Estimate</th>{interval_head}'
        '<th scope="col" class="num">Difference</th><th scope="col" class="num">Relative</th>'
        f"</tr></thead><tbody>{body}</tbody></table>"
    )


def _interval(row: Mapping[Hashable, Any]) -> str:
    low, high = float(row["ci_lower"]), float(row["ci_upper"])
    if math.isnan(low) or math.isnan(high):
        return "–"
    return f"{_number(low)} – {_number(high)}"


def _estimation_sections(
    *, estimation: EstimationResult | None, context: ReportContext
) -> tuple[str, ...]:
    if estimation is None:
        return ()
    return (
        quality.estimators_section(estimation),
        quality.size_class_section(estimation),
        quality.uncertainty_section(estimation),
        quality.quality_section(
            result=estimation, generated=context.generated_at, synthetic=context.synthetic
        ),
    )


def _method(context: ReportContext, *, estimation: EstimationResult | None = None) -> str:
    factor = expansion_factor(
        market_share=context.market_share, sampling_fraction=context.sampling_fraction
    )
    world = (
        "A synthetic country stands in for reality: a simulated population of Belgium living "
        "around its real towns and villages, with daily movements and mobile phones, and a "
        "simulated mobile network that records what an operator records (which cell a phone "
        "used, and when)."
        if context.synthetic
        else "The data are the operator's own network records: which cell a phone used, and when."
    )
    steps = (
        world,
        "The records were loaded into a store inside the operator's firewall. Phone numbers "
        "and other identifiers were replaced by pseudonyms (a keyed hash) on the way in; "
        "nobody outside the operator saw a single record.",
        "For every phone, its usual residence is the cell where it was seen on the most "
        f"distinct nights ({escape(context.night_window)}) during the period; "
        + SPATIAL_STEPS.get(context.spatial_estimator, SPATIAL_STEPS["allocation"]),
        "Per municipality, the operator counted distinct phones resident there, with the "
        f"certified algorithm {escape(context.algorithm_name)} version "
        f"{escape(context.algorithm_version)} (job {escape(context.job_id)}). "
        + _protection_steps(context)
        + " Only these protected counts left the operator."
        + _privacy_loss(context.protections),
        "The statistics office multiplied every count by one national factor, "
        f"1 / (market share × sampling fraction) = 1 / ({context.market_share:g} × "
        f"{context.sampling_fraction:g}) = {_factor(factor)} persons per phone"
        + (
            ", then corrected it in the ways below (the estimators compared above):"
            f'<ol type="a">{_items(quality.estimation_method_items(estimation))}</ol>'
            f"{quality.default_assumptions(estimation)}"
            if estimation is not None
            else "."
        ),
        "The estimates were compared, municipality by municipality, with the 2011 census.",
    )
    items = _items(steps)
    return f"<section><h2>What was done</h2>\n<ol>{items}</ol></section>"


def _protection_steps(context: ReportContext) -> str:
    """The disclosure protection of the resident counts, in the order it was applied."""
    threshold = f"{context.suppression_threshold:g} phones or fewer"
    if not context.protections:
        return f"Counts of {threshold} (after any noise the policy adds) were withheld."
    first = context.protections[0]
    base = first.rounding_base
    # Rounding comes after the threshold: a count just above it may round down to it.
    lowest = base * math.floor(context.suppression_threshold / base)
    rounded = (
        f"the others were rounded to multiples of {base} (so a count just above the "
        f"threshold may be published as {lowest:g})"
        if base > 1
        else "the others were published as they were"
    )
    if first.mechanism is None:
        return f"Counts of {threshold} were withheld and {rounded}; no noise was added."
    return (
        f"They were protected in this order: random noise was added to every count "
        f"({escape(first.noise())}); counts whose noisy value was {threshold} were withheld "
        "(the threshold applies to the noisy count, so which counts are withheld is "
        f"protected too); {rounded}."
    )


def _privacy_loss(protections: Sequence[ReleaseProtection]) -> str:
    """Each noisy release's epsilon and delta, and their sum (basic composition)."""
    noisy = [used for used in protections if used.mechanism is not None]
    if not noisy:
        return ""
    each = "; ".join(
        f"{escape(used.algorithm)} (job {escape(used.job_id)}): {escape(used.noise())}"
        for used in noisy
    )
    epsilon = sum(used.epsilon for used in noisy)
    delta = sum(used.delta for used in noisy)
    if len(noisy) == 1:
        return (
            f" This report uses one noisy release: {each}. Its privacy loss is ε = {epsilon:g} "
            f"and δ = {scientific(delta)} (a bound on what it reveals about one phone)."
        )
    return (
        f" This report uses {len(noisy)} noisy releases: {each}. The total privacy loss is "
        f"the sum of their losses, ε = {epsilon:g} and δ = {scientific(delta)} (basic "
        "composition, a bound on what they reveal together about one phone)."
    )


def _items(texts: Sequence[str]) -> str:
    return "".join(f"<li>{text}</li>" for text in texts)


def _parameters(context: ReportContext, *, table: pd.DataFrame) -> str:
    rows = (
        ("Data", escape(context.dataset)),
        ("Period", _period(context)),
        ("Coverage", _coverage(table)),
        *(
            [("Scale of the synthetic world (share of the population)", f"{context.scale:g}")]
            if context.scale is not None
            else []
        ),
        ("Market share", f"{context.market_share:g}"),
        ("Sampling fraction", f"{context.sampling_fraction:g}"),
        (
            "Persons per device",
            _factor(
                expansion_factor(
                    market_share=context.market_share,
                    sampling_fraction=context.sampling_fraction,
                )
            ),
        ),
        ("Devices released (total)", f"{context.n_devices_released_total:,}"),
        ("Suppressed when", f"{context.suppression_threshold:g} devices or fewer, before rounding"),
        (
            "Algorithm",
            f"{escape(context.algorithm_name)} {escape(context.algorithm_version)}",
        ),
        ("Enclave job", escape(context.job_id)),
    )
    body = "".join(
        f'<tr><th scope="row">{label}</th><td>{value}</td></tr>' for label, value in rows
    )
    return (
        '<section><h2>Parameters</h2>\n<table><caption class="visually-hidden">Parameters of '
        f"the release</caption><tbody>{body}</tbody></table></section>"
    )


def _coverage(table: pd.DataFrame) -> str:
    """Areas with an estimate, and the share of the census population they hold."""
    released = table["estimate"].notna()
    total = float(table["census"].sum())
    share = float(table.loc[released, "census"].sum()) / total if total > 0 else math.nan
    shown = "over 99.9%" if 0.999 < share < 1 else f"{share:.1%}"
    population = "" if math.isnan(share) else f", {shown} of the 2011 census population"
    return f"{int(released.sum()):,} of {len(table):,} municipalities have an estimate{population}"


def _limitations(context: ReportContext, *, estimation: EstimationResult | None = None) -> str:
    items = [
        "One national factor assumes that the operator has the same market share in every "
        "municipality and every age group, that each person carries exactly one phone, and "
        "that every phone's home is found. In reality market shares differ between regions, "
        "young children and many elderly people have no phone, and some people carry two.",
        "Where people sleep is not always where they live: students, shift workers, people "
        "with a second home and people who travel during the period are placed wrongly, and a "
        "cell near a border may serve two municipalities.",
        f"Municipalities whose noisy phone count was {context.suppression_threshold:g} or "
        "fewer have no estimate; "
        "totals in this report leave them out, on both sides of every comparison.",
        "Only municipalities whose noisy count exceeded the threshold are published, so "
        "those just above it are overestimated on average: among municipalities with the "
        "same true count, those whose noise happened to be positive are the ones published "
        "(selection on the noisy count). This affects the smallest published "
        "municipalities, and no interval accounts for it.",
        "The census describes 1 January 2011. Populations change: between 2011 and 2015 the "
        "register population of a typical municipality changed by about 2%, so real data from "
        "a later period cannot agree more closely than that.",
    ]
    if estimation is None:
        items.append("No margin of error is given for the estimates.")
    else:
        items.extend(quality.estimation_limitations(estimation))
    if context.synthetic:
        items.insert(
            0,
            "The data are synthetic, built to resemble Belgium. Good agreement here shows that "
            "the method and the software work as intended when their assumptions hold; it does "
            "not show how accurate real mobile phone data would be.",
        )
    body = "".join(f"<li>{item}</li>" for item in items)
    return f"<section><h2>Limitations</h2>\n<ul>{body}</ul></section>"


def _all_areas(table: pd.DataFrame) -> str:
    ordered = table.sort_values("area_code")
    return (
        "<section><h2>All municipalities</h2>\n<details><summary>Show the table "
        f"({len(ordered):,} rows)</summary>"
        f"{_area_table(ordered, caption=_every_area(ordered))}</details>"
        f'<p class="print-only">Not printed: the table of all {len(ordered):,} '
        "municipalities is in the screen version of this report (open it before printing "
        "to print it) and in the output files of the release.</p></section>"
    )


def _every_area(ordered: pd.DataFrame) -> str:
    interval = ", interval" if set(_INTERVAL_COLUMNS) <= set(ordered.columns) else ""
    return (
        f"<caption>All {len(ordered):,} municipalities by code: census, estimate{interval} "
        "and difference</caption>"
    )


def _sources(context: ReportContext) -> str:
    return (
        '<section class="sources"><h2>Sources</h2>\n'
        f"<p>Census 2011 population and municipality boundaries. {escape(context.citation)}. "
        "Estimates: computed by the statistics office from counts released by the data "
        "holder; no individual record left the holder.</p></section>"
    )


def _days_missing(published: Mapping[str, Any]) -> tuple[str, ...]:
    """The published ``days_missing`` (ISO dates), each checked to be a date."""
    days = tuple(str(day)[:10] for day in published.get("days_missing") or ())
    for day in days:
        try:
            date.fromisoformat(day)
        except ValueError:
            raise CellcensusError(
                f"the release's published days_missing holds {day!r}, not a date YYYY-MM-DD"
            ) from None
    return days


def _period(context: ReportContext) -> str:
    start, end = (
        day.isoformat() if isinstance(day, date) else str(day)
        for day in (context.period_start, context.period_end)
    )
    missing = [date.fromisoformat(day) for day in context.days_missing]
    gaps = f" (no data on {date_runs(missing)})" if missing else ""
    return escape(f"{start} to {end}{gaps}")
