"""Commands of the holder layer: ``cellcensus ingest``."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cellcensus.console import console, user_errors
from cellcensus.errors import CellcensusError, InputDataError
from cellcensus.holder.store import IngestReport, default_key_file, ingest, ingest_dataset


def register(app: typer.Typer) -> None:
    """Add this layer's commands to the `cellcensus` app."""
    app.command(name="ingest")(ingest_command)


@user_errors
def ingest_command(
    store: Annotated[
        Path, typer.Option("--store", help="Store folder to ingest into (created if missing).")
    ],
    dataset: Annotated[
        Path | None,
        typer.Option("--dataset", help="Delivery folder: events/, cells.parquet, metadata.json."),
    ] = None,
    events: Annotated[
        Path | None,
        typer.Option("--events", help="Events file or folder (instead of --dataset)."),
    ] = None,
    cells: Annotated[
        Path | None, typer.Option("--cells", help="Cells file (with --events).")
    ] = None,
    period: Annotated[
        tuple[str, str] | None,
        typer.Option(
            "--period",
            help="First and last local day, YYYY-MM-DD YYYY-MM-DD (with --events).",
        ),
    ] = None,
    metadata: Annotated[
        Path | None,
        typer.Option(
            "--metadata",
            help="Holder facts JSON (timezone, market_share, ...) to keep (with --events).",
        ),
    ] = None,
    key_file: Annotated[
        Path | None,
        typer.Option(
            "--key-file",
            help="Pseudonymisation key (created on first use); default $CELLCENSUS_KEY_FILE "
            "or ~/.config/cellcensus/pseudonym.key.",
        ),
    ] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Also write the ingest report here (JSON).")
    ] = None,
) -> None:
    """Ingest a delivery into the holder's store and allocate its cells to municipalities.

    Invalid rows go to the store's quarantine with a reason; subscriber ids become keyed
    pseudonyms; events are stored as one Parquet file per local day.
    """
    from cellcensus.holder.geo import build_allocation
    from cellcensus.reference import municipalities

    key = key_file or default_key_file()
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("starting", total=1.0)

        def progress(step: str, fraction: float) -> None:
            bar.update(task, description=step, completed=min(fraction, 1.0) * 0.9)

        if dataset is not None:
            if events is not None or cells is not None or period is not None:
                raise CellcensusError(
                    "give either --dataset, or --events with --cells and --period, not both"
                )
            result = ingest_dataset(dataset=dataset, store=store, key_file=key, progress=progress)
        else:
            if events is None or cells is None or period is None:
                raise CellcensusError(
                    "give --dataset DIR, or all of --events PATH --cells PATH --period START END"
                )
            result = ingest(
                events=events,
                cells=cells,
                store=store,
                key_file=key,
                period=(_day(period[0]), _day(period[1])),
                metadata=_metadata(metadata) if metadata is not None else None,
                progress=progress,
            )
        bar.update(task, description="allocating cells to municipalities", completed=0.9)
        build_allocation(store=store, areas=municipalities(), level="municipality")
        bar.update(task, completed=1.0)
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(result.to_json(), encoding="utf-8")
    console.print(report_table(result, store=store))


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CellcensusError(f"--period {text!r} is not a date; write it as YYYY-MM-DD") from None


def _metadata(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputDataError(f"--metadata {path} is not readable JSON ({error}); fix it") from None
    if not isinstance(document, dict):
        raise InputDataError(f"--metadata {path} must hold a JSON object")
    return document


def report_table(report: IngestReport, *, store: Path) -> Table:
    """The ingest report as a Rich table."""
    table = Table(title=f"Ingested into {store}", show_header=False)
    table.add_column("what")
    table.add_column("how many", justify="right")
    table.add_row("period", f"{report.period_start} to {report.period_end}")
    table.add_row("rows read", f"{report.rows_read:,}")
    table.add_row("rows stored", f"{report.rows_stored:,}")
    table.add_row("rows quarantined", f"{report.rows_quarantined:,}")
    for reason, count in report.rows_quarantined_by_reason.items():
        if count:
            table.add_row(f"  {reason}", f"{count:,}")
    days = report.days
    span = f"{len(days)} ({days[0]} to {days[-1]})" if days else "0"
    table.add_row("days stored", span)
    table.add_row("distinct devices", f"{report.distinct_devices:,}")
    table.add_row("seconds", f"{report.seconds:.1f}")
    return table
