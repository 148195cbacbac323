"""Commands of the world layer."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from cellcensus.console import console, live_progress, user_errors
from cellcensus.errors import CellcensusError
from cellcensus.world.params import FaultRates, WorldParams
from cellcensus.world.report import Figure, realism_report
from cellcensus.world.synthesis import WorldSummary, synthesize

_DEFAULTS = WorldParams()


def register(app: typer.Typer) -> None:
    """Add this layer's commands to the `cellcensus` app."""
    app.command(name="synth")(synth)


@user_errors
def synth(
    out: Annotated[Path, typer.Option("--out", help="Dataset folder to write (new or a world).")],
    scale: Annotated[
        float, typer.Option(help="Sampling fraction of the census population, in (0, 1].")
    ] = _DEFAULTS.scale,
    days: Annotated[int, typer.Option(help="Days of network events (1-366).")] = _DEFAULTS.days,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same files.")] = (
        _DEFAULTS.seed
    ),
    market_share: Annotated[
        float,
        typer.Option(
            help="The operator's share of phone owners, in (0, 1]; metadata.json gives the "
            "share of all residents it realises."
        ),
    ] = _DEFAULTS.market_share,
    start: Annotated[
        str, typer.Option(help="First local day, YYYY-MM-DD.")
    ] = _DEFAULTS.start.isoformat(),
    faults: Annotated[
        str | None,
        typer.Option(
            help="Inject export defects: RATE for every kind, or kind=RATE,... (kinds: "
            "duplicate, unknown_cell, null_field, outside_period, malformed_value, "
            "unknown_event_type); counts go to truth/faults.json."
        ),
    ] = None,
    location_updates: Annotated[
        int,
        typer.Option(
            "--location-updates",
            help="Minutes between periodic location updates (signalling); 0 = CDR only.",
        ),
    ] = _DEFAULTS.location_update_minutes,
    threads: Annotated[
        int | None, typer.Option(min=1, help="Days simulated at once (output is the same).")
    ] = None,
    report: Annotated[
        bool, typer.Option("--report", help="Print a realism summary against published figures.")
    ] = False,
) -> None:
    """Generate a synthetic Belgium: network events, cells and ground truth.

    The dataset folder follows the input contract, docs/schema.md in the cellcensus repository.
    """
    params = WorldParams.from_options(
        scale=scale,
        days=days,
        seed=seed,
        market_share=market_share,
        start=_parse_day(start),
        faults=FaultRates.parse(faults) if faults else FaultRates(),
        location_update_minutes=location_updates,
    )
    with live_progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    ) as bar:
        task = bar.add_task("loading the census", total=1.0)

        def progress(step: str, fraction: float) -> None:
            bar.update(task, description=step, completed=fraction)

        summary = synthesize(out=out, params=params, progress=progress, threads=threads)
    console.print(_summary_table(summary, params))
    if report:
        console.print(_report_table(realism_report(out)))


def _parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CellcensusError(f"--start {text!r} is not a date; write it as YYYY-MM-DD") from None


def _summary_table(summary: WorldSummary, params: WorldParams) -> Table:
    table = Table(title=f"Synthetic Belgium in {summary.out}", show_header=False)
    table.add_column("what")
    table.add_column("how many", justify="right")
    table.add_row("period", f"{params.start.isoformat()} to {params.end.isoformat()}")
    table.add_row("persons", f"{summary.persons:,}")
    table.add_row("workers", f"{summary.workers:,}")
    table.add_row("devices", f"{summary.devices:,}")
    for kind, count in summary.devices_by_kind.items():
        table.add_row(f"  {kind}", f"{count:,}")
    table.add_row("sites / cells", f"{summary.sites:,} / {summary.cells:,}")
    table.add_row(
        "movers / visits of roamers", f"{summary.migrations:,} / {summary.roamer_stays:,}"
    )
    table.add_row("events", f"{summary.events:,}")
    injected = sum(summary.faults.values())
    if injected:
        table.add_row("faulty rows injected", f"{injected:,}")
    return table


def _report_table(figures: list[Figure]) -> Table:
    table = Table(title="Realism: the world beside published figures (docs/world.md)")
    for column in ("measure", "world", "published", "source"):
        table.add_column(column)
    for figure in figures:
        table.add_row(figure.measure, figure.world, figure.published, figure.source)
    return table
