"""`cellcensus demo`: synthetic Belgium -> holder store -> enclave release -> NSO estimates.

The demo plays both parties in one process, but through the same interface as the service: the
NSO half holds only an `InProcessClient` and sees nothing but the release.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from cellcensus.console import console, user_errors
from cellcensus.errors import CellcensusError
from cellcensus.holder.enclave import Enclave
from cellcensus.holder.geo import build_allocation
from cellcensus.holder.store import default_key_file, ingest_dataset
from cellcensus.nso.client import InProcessClient
from cellcensus.nso.production import EstimationResult, estimate_all
from cellcensus.nso.report.html import ReportContext
from cellcensus.nso.report.publish import publish_release
from cellcensus.nso.validation import Agreement
from cellcensus.reference import census_population, municipalities
from cellcensus.release import Release
from cellcensus.world import WorldParams, synthesize

MARKER = ".cellcensus-demo"
ALGORITHM = "usual_residence"
RELEASE_PARAMETERS: dict[str, Any] = {"spatial_estimator": "allocation"}


@dataclass(frozen=True)
class DemoResult:
    """What a demo run produced."""

    out: Path
    metrics: Agreement
    estimates: pd.DataFrame


def prepare_output(out: Path) -> None:
    """Create `out`, or clear a previous demo's folder; refuse anything else."""
    if out.exists() and not out.is_dir():
        raise CellcensusError(f"--out {out} is a file; give a folder path")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MARKER).exists():
            raise CellcensusError(
                f"--out {out} is a non-empty folder not made by the demo; give a new or empty one"
            )
        for child in ("dataset", "store"):
            shutil.rmtree(out / child, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).touch()


def run_demo(
    *,
    out: Path,
    params: WorldParams,
    dataset: Path | None = None,
    key_file: Path | None = None,
    progress: Progress | None = None,
) -> DemoResult:
    """Run the whole chain and write report.html, the PNGs, metrics.json and estimates.csv."""
    if dataset is not None and not (dataset / "metadata.json").is_file():
        raise CellcensusError(f"--dataset {dataset} has no metadata.json; see SCHEMA.md")
    prepare_output(out)
    step = _stepper(progress)

    if dataset is None:
        step("Synthesising Belgium")
        dataset = out / "dataset"
        synthesize(out=dataset, params=params)

    step("Holder: ingesting and pseudonymising")
    store = out / "store"
    ingest_dataset(dataset=dataset, store=store, key_file=key_file or default_key_file())
    step("Holder: allocating cells to municipalities")
    areas = municipalities()
    build_allocation(store=store, areas=areas)

    step("Enclave: running usual_residence")
    enclave = Enclave(store=store)
    client = InProcessClient(runner=enclave.run, analyst="demo-analyst")
    release = client.run(algorithm=ALGORITHM, parameters=RELEASE_PARAMETERS)
    synthetic = (dataset / "world.json").is_file()

    step("NSO: estimating, calibrating and validating against the census")
    result = estimate_all(release=release, areas=areas)
    step("NSO: writing figures and report")
    context = _report_context(release=release, dataset=dataset, synthetic=synthetic)
    publish_release(out_dir=out, result=result, context=context, areas=areas)
    estimates = _estimates_table(result=result)
    estimates.to_csv(out / "estimates.csv", index=False)
    return DemoResult(out=out, metrics=result.best.agreement, estimates=estimates)


def _estimates_table(*, result: EstimationResult) -> pd.DataFrame:
    """One row per municipality: the default estimator beside the census 2011."""
    census = census_population().set_index("area_code")
    best = result.best.table
    table = pd.DataFrame(
        {
            "area_name": census["name_nl"],
            "released_devices": best["released_devices"].reindex(census.index),
            "estimate": best["estimate"].reindex(census.index).round(0),
            "ci_lower": best["ci_lower"].reindex(census.index).round(0),
            "ci_upper": best["ci_upper"].reindex(census.index).round(0),
            "census_2011": census["population"],
        }
    )
    return table.rename_axis("area_code").reset_index()


def _report_context(*, release: Release, dataset: Path, synthetic: bool) -> ReportContext:
    provenance, published = release.provenance, release.published
    return ReportContext(
        dataset=str(dataset),
        period_start=published["period"]["start"],
        period_end=published["period"]["end"],
        market_share=float(published["market_share"]),
        sampling_fraction=float(published["sampling_fraction"]),
        n_devices_released_total=int(release.table["device_count"].sum()),
        suppression_threshold=float(provenance.policy["min_count"]),
        algorithm_name=provenance.algorithm,
        algorithm_version=provenance.version,
        job_id=provenance.job_id,
        synthetic=synthetic,
    )


def _stepper(progress: Progress | None) -> Callable[[str], None]:
    """A function that shows each step of the chain on `progress` (or does nothing)."""
    if progress is None:
        return lambda description: None
    task = progress.add_task("Starting", total=None)

    def step(description: str) -> None:
        progress.update(task, description=description)
        progress.console.log(description)

    return step


def _metrics_table(metrics: Agreement) -> Table:
    table = Table(title="Usual residents vs census 2011, per municipality")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.to_dict().items():
        table.add_row(name, f"{value:.4f}" if isinstance(value, float) else str(value))
    return table


def register(app: typer.Typer) -> None:
    """Add the demo command to the `cellcensus` app."""

    @app.command()
    @user_errors
    def demo(
        out: Annotated[Path, typer.Option(help="Folder for the report and outputs.")] = Path(
            "cellcensus-demo"
        ),
        scale: Annotated[float, typer.Option(help="Fraction of the population simulated.")] = (
            WorldParams.scale
        ),
        days: Annotated[int, typer.Option(help="Days of network events.")] = WorldParams.days,
        seed: Annotated[int, typer.Option(help="Random seed of the synthetic world.")] = (
            WorldParams.seed
        ),
        dataset: Annotated[
            Path | None, typer.Option(help="Use this dataset folder instead of synthesising.")
        ] = None,
        key_file: Annotated[
            Path | None, typer.Option(help="Holder's pseudonymisation key file.")
        ] = None,
    ) -> None:
        """Estimate usual residents per Belgian municipality from mobile data, vs census 2011."""
        params = WorldParams(scale=scale, days=days, seed=seed)
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            result = run_demo(
                out=out, params=params, dataset=dataset, key_file=key_file, progress=progress
            )
        console.print(_metrics_table(result.metrics))
        console.print(f"Report: {result.out / 'report.html'}")
