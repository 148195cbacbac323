"""The statistics office's command: ``cellcensus estimate``, from a release file to estimates.

It reads the file the holder hands over (what `cellcensus run` wrote, or what the service
sends) and writes what the demo's NSO half writes for residents: it calls the same functions
(`cellcensus.nso.residents`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.table import Table

from cellcensus.console import console, output_folder, user_errors
from cellcensus.errors import CellcensusError
from cellcensus.nso.production import ESTIMATORS, EstimationOptions, EstimationResult
from cellcensus.nso.report.publish import PublishedRelease
from cellcensus.nso.residents import estimate_residents, publish_residents
from cellcensus.nso.validation import Agreement
from cellcensus.release import Release

MARKER = ".cellcensus-estimate"
"""Left in an output folder by `cellcensus estimate`: it writes into that folder again."""

Estimator = Literal[
    "national",
    "regional",
    "devices_per_person",
    "age_coverage",
    "power_law",
    "ratio_calibrated",
    "greg_calibrated",
    "raking_calibrated",
]
"""The estimators `--estimator` takes: those of `cellcensus.nso.production.ESTIMATORS`."""
MarginLevel = Literal["province", "arrondissement", "region"]
"""The margins `--margin-level` takes: parent levels of the municipalities."""
DEFAULTS = EstimationOptions()


def register(app: typer.Typer) -> None:
    """Add the statistics office's command to the `cellcensus` app."""
    app.command(name="estimate")(estimate_command)


@user_errors
def estimate_command(
    release: Annotated[
        Path,
        typer.Argument(
            help="A usual_residence release: the .csv (with NAME.provenance.json beside it) or "
            ".json that `cellcensus run --out` writes, or the .json or .parquet the service "
            "sends.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Folder for the estimates, metrics.json and report.html: new, empty, or one "
            "an earlier `cellcensus estimate` wrote.",
        ),
    ],
    estimator: Annotated[
        Estimator | None,
        typer.Option(
            "--estimator",
            help="The official estimator of estimates.csv and the report (default: the one "
            "whose hold-out estimates come closest to the register; every estimator is in "
            "estimators.csv).",
        ),
    ] = None,
    margin_level: Annotated[
        MarginLevel,
        typer.Option(
            "--margin-level",
            help="Groups whose register totals the calibrated estimators add up to.",
        ),
    ] = "province",
    confidence: Annotated[
        float, typer.Option("--confidence", help="Confidence level of the intervals, in (0, 1).")
    ] = DEFAULTS.level,
    seed: Annotated[
        int,
        typer.Option(
            "--seed",
            help="Seed of the random halves of the municipalities: the default estimator is "
            "chosen on one split, the hold-out validation uses the next seed's.",
        ),
    ] = DEFAULTS.seed,
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            help="What the data is, in a few words, for the report (default: the release's "
            "file name).",
        ),
    ] = None,
) -> None:
    """Estimate usual residents per municipality from a usual_residence release, vs census 2011.

    Writes estimates.csv, the official table (CSV, Parquet, GeoJSON, SDMX-CSV), report.html.
    """
    if not 0 < confidence < 1:
        raise CellcensusError(f"--confidence {confidence:g}: must be in (0, 1), e.g. 0.95")
    released = Release.read(release)
    options = EstimationOptions(
        default=estimator, margin_level=margin_level, level=confidence, seed=seed
    )
    with console.status("estimating, calibrating and validating against the census"):
        result = estimate_residents(released, options=options, source=str(release))
    output_folder(out, marker=MARKER, made_by="cellcensus estimate")
    with console.status("writing the estimates, figures and report"):
        published = publish_residents(
            release=released,
            result=result,
            out_dir=out,
            dataset=source or f"{released.provenance.algorithm} release {release.name}",
        )
    console.print(metrics_table(result.best.agreement))
    # Unwrapped: a path cut at the terminal's edge cannot be copied.
    console.print(summary(result), highlight=False, soft_wrap=True)
    console.print(written(published), highlight=False, soft_wrap=True)


def metrics_table(metrics: Agreement) -> Table:
    """The official estimates' agreement with the census, one metric a row."""
    table = Table(title="Usual residents vs census 2011, per municipality")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.to_dict().items():
        table.add_row(name, f"{value:.4f}" if isinstance(value, float) else str(value))
    return table


def summary(result: EstimationResult) -> str:
    """Which estimator is official and why, and those that did not run."""
    chosen = "as asked" if result.options.default else "best hold-out score against the register"
    lines = [
        f"Official estimator: {result.default} ({chosen}); {result.options.level:.0%} "
        f"intervals; {len(result.outcomes)} of {len(ESTIMATORS)} estimators ran"
    ]
    lines += [f"Skipped {name}: {reason}" for name, reason in result.skipped.items()]
    return "\n".join(lines)


def written(published: PublishedRelease) -> str:
    """The files a statistician opens first."""
    outputs = published.outputs
    tables = (outputs.csv, outputs.parquet, outputs.geojson, outputs.sdmx_csv)
    return (
        f"Estimates: {published.estimates} (official table: "
        f"{', '.join(path.name for path in tables)}; every estimator: "
        f"{outputs.all_estimators.name}); metrics: {published.metrics}\n"
        f"Report: {published.report}"
    )
