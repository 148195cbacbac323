"""Commands of the holder layer: ``cellcensus ingest`` and ``cellcensus store ...``."""

from __future__ import annotations

import difflib
import json
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from cellcensus.console import console, live_progress, user_errors
from cellcensus.errors import CellcensusError, InputDataError
from cellcensus.holder.engines import ENGINES, Engine
from cellcensus.holder.geo import (
    DEFAULT_COVERAGE,
    GRID_LEVEL,
    ROLLED_UP_LEVELS,
    AllocationPrior,
    CoverageModel,
    belgian_parents,
    build_allocation,
    check_coverage,
    default_prior,
    read_areas,
    roll_up_allocation,
)
from cellcensus.holder.geo.tile_footprint import (
    build_tile_footprint,
    footprint_path,
    has_footprint,
)
from cellcensus.holder.store import IngestReport, Store, default_key_file, ingest, ingest_dataset
from cellcensus.holder.store.device_days import keeps_positions, summarise
from cellcensus.holder.store.ingestion import (
    MEMORY_LIMIT,
    ProgressCallback,
    check_memory_limit,
)
from cellcensus.holder.store.key_rotation import rotate_key, rotation_days
from cellcensus.holder.store.layout import check_not_delivery
from cellcensus.holder.store.retention import PurgeRecord, purge, store_summary
from cellcensus.holder.store.writer_lock import writing
from cellcensus.reference import municipalities

store_app = typer.Typer(
    name="store",
    help="Look after the holder's store: retention purges, key rotation, what it holds.\n\n"
    "One command writes to a store at a time; another is refused until it has ended.",
    no_args_is_help=True,
)

KeyFileOption = Annotated[
    Path | None,
    typer.Option(
        "--key-file",
        help="Pseudonymisation key (created for a new store; a store refuses any other key "
        "than its own); default: $CELLCENSUS_KEY_FILE, else pseudonym.key in "
        "~/.config/cellcensus/.",
    ),
]
ListedKeyFileOption = Annotated[
    Path | None,
    typer.Option(
        "--key-file",
        help="Pseudonymisation key whose key periods to list, from its files' names (no key "
        "is read or created); default: $CELLCENSUS_KEY_FILE, else pseudonym.key in "
        "~/.config/cellcensus/.",
    ),
]
CoverageOption = Annotated[
    CoverageModel,
    typer.Option("--coverage", help="Coverage model: voronoi, sector (default) or signal."),
]
PriorOption = Annotated[
    AllocationPrior | None,
    typer.Option(
        "--prior",
        help="Where a cell's devices are assumed to be in its footprint: population "
        "(register density, the default with sector and signal) or area (uniform).",
    ),
]
# --store has no default: a purge must never fall on a folder the user did not name.
StoreOption = Annotated[Path, typer.Option("--store", help="The holder's store folder.")]
DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="State database URL, whose failed jobs' diagnostics the purge deletes (default: "
        "$CELLCENSUS_DATABASE_URL, else SQLite in STORE/enclave/state.db if there).",
    ),
]


def register(app: typer.Typer) -> None:
    """Add this layer's commands to the `cellcensus` app."""
    app.command(name="ingest")(ingest_command)
    store_app.command(name="purge")(purge_command)
    store_app.command(name="rotate-key")(rotate_key_command)
    store_app.command(name="info")(info_command)
    store_app.command(name="allocate")(allocate_command)
    store_app.command(name="summarise")(summarise_command)
    app.add_typer(store_app, name="store")


# The options only `cellcensus ingest` takes, out of its signature like those above.
DatasetOption = Annotated[
    Path | None,
    typer.Option("--dataset", help="Delivery folder: events/, cells.parquet, metadata.json."),
]
EventsOption = Annotated[
    Path | None, typer.Option("--events", help="Events file or folder (instead of --dataset).")
]
CellsOption = Annotated[Path | None, typer.Option("--cells", help="Cells file (with --events).")]
PeriodOption = Annotated[
    tuple[str, str] | None,
    typer.Option(
        "--period",
        metavar="<first> <last>",
        help="First and last local day, YYYY-MM-DD YYYY-MM-DD (with --events).",
    ),
]
MetadataOption = Annotated[
    Path | None,
    typer.Option(
        "--metadata",
        help="Holder facts JSON (timezone, market_share, ...) to keep (with --events).",
    ),
]
ReportOption = Annotated[
    Path | None, typer.Option("--report", help="Also write the ingest report here (JSON).")
]
IngestMemoryOption = Annotated[
    str,
    typer.Option(
        "--memory-limit",
        help="DuckDB's memory limit during ingest (e.g. 4GB); it spills to disk beyond it.",
    ),
]
EngineOption = Annotated[
    str,
    typer.Option(
        "--engine",
        help="duckdb, or spark for the row checks on Spark (docs/spark.md); both "
        "write the same store.",
    ),
]
EmptyDaysOption = Annotated[
    bool,
    typer.Option(
        "--empty-days",
        help="Let the delivery empty the stored days of its period it has no rows for "
        "(refused otherwise: a period set wider than the events would delete them).",
    ),
]


@user_errors
def ingest_command(
    store: Annotated[
        Path, typer.Option("--store", help="Store folder to ingest into (created if missing).")
    ],
    dataset: DatasetOption = None,
    events: EventsOption = None,
    cells: CellsOption = None,
    period: PeriodOption = None,
    metadata: MetadataOption = None,
    key_file: KeyFileOption = None,
    report: ReportOption = None,
    coverage: CoverageOption = DEFAULT_COVERAGE,
    prior: PriorOption = None,
    memory_limit: IngestMemoryOption = MEMORY_LIMIT,
    engine: EngineOption = "duckdb",
    empty_days: EmptyDaysOption = False,
) -> None:
    """Ingest a delivery into the holder's store and allocate its cells to municipalities.

    Invalid rows go to the store's quarantine with a reason; subscriber ids become keyed
    pseudonyms; events are stored as one Parquet file per local day.
    """
    if engine not in ENGINES:
        raise CellcensusError(f"--engine {engine!r}: choose {' or '.join(ENGINES)}")
    check_coverage(coverage, prior=prior)  # the allocation comes after the store is written
    on: Engine = "spark" if engine == "spark" else "duckdb"
    key = key_file or default_key_file()
    delivery = _Delivery(
        dataset=dataset, events=events, cells=cells, period=period, metadata=metadata
    )
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    )
    with live_progress(*columns) as bar:
        task = bar.add_task("starting", total=1.0)

        def progress(step: str, fraction: float) -> None:
            bar.update(task, description=step, completed=min(fraction, 1.0) * 0.9)

        result = delivery.ingest(
            store=store,
            key_file=key,
            progress=progress,
            memory_limit=memory_limit,
            engine=on,
            empty_days=empty_days,
        )
        bar.update(task, description="allocating cells to municipalities", completed=0.9)
        began = time.perf_counter()
        build_allocation(
            store=store,
            areas=municipalities(),
            level="municipality",
            coverage=coverage,
            prior=prior,
        )
        allocating = time.perf_counter() - began
        bar.update(task, completed=1.0)
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(result.to_json(), encoding="utf-8")
    console.print(report_table(result, store=store, allocating=allocating))
    _say_what_new_cells_left_stale(Store(store))


@dataclass(frozen=True)
class _Delivery:
    """The delivery `ingest_command` was given: a dataset folder, or its files and facts."""

    dataset: Path | None
    events: Path | None
    cells: Path | None
    period: tuple[str, str] | None
    metadata: Path | None

    def ingest(
        self,
        *,
        store: Path,
        key_file: Path,
        progress: ProgressCallback,
        memory_limit: str,
        engine: Engine,
        empty_days: bool,
    ) -> IngestReport:
        """Ingest the dataset folder, or the events and cells files of the period.

        Raises:
            CellcensusError: If both a dataset and files are given, or neither in full.
        """
        if self.dataset is not None:
            if self.events is not None or self.cells is not None or self.period is not None:
                raise CellcensusError(
                    "give either --dataset, or --events with --cells and --period, not both"
                )
            return ingest_dataset(
                dataset=self.dataset,
                store=store,
                key_file=key_file,
                progress=progress,
                memory_limit=memory_limit,
                engine=engine,
                empty_days=empty_days,
            )
        if self.events is None or self.cells is None or self.period is None:
            raise CellcensusError(
                "give --dataset DIR, or all of --events PATH --cells PATH --period START END"
            )
        return ingest(
            events=self.events,
            cells=self.cells,
            store=store,
            key_file=key_file,
            period=(_day(self.period[0]), _day(self.period[1])),
            metadata=_metadata(self.metadata) if self.metadata is not None else None,
            progress=progress,
            memory_limit=memory_limit,
            engine=engine,
            empty_days=empty_days,
        )


def _say_what_new_cells_left_stale(store: Store) -> None:
    """Name what was made from the cells before they changed: allocations, the tile footprint.

    The jobs that read them are refused until they are made again.
    """
    stale = [
        level for level in store.area_levels() if store.allocation_made_from_other_cells(level)
    ]
    if stale:
        console.print(
            f"The cells changed since the {', '.join(stale)} allocation(s): jobs at those "
            f"levels are refused until `cellcensus store allocate --store {store.root} "
            "--level LEVEL ...` makes them again.",
            highlight=False,
        )
    footprint = footprint_path(store, "cells")
    if footprint.exists() and not has_footprint(store):
        console.print(
            "The cells changed since the tile footprint was made: the posterior and Bayesian "
            f"estimators are refused until `cellcensus store allocate --store {store.root} "
            "--tile-footprint` makes it again.",
            highlight=False,
        )


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CellcensusError(f"--period {text!r} is not a date; write it as YYYY-MM-DD") from None


def _metadata(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputDataError(f"--metadata {path}: no such file; give the holder facts' JSON file")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputDataError(f"--metadata {path} is not readable JSON ({error}); fix it") from None
    if not isinstance(document, dict):
        raise InputDataError(f"--metadata {path} must hold a JSON object")
    return document


def report_table(report: IngestReport, *, store: Path, allocating: float) -> Table:
    """The ingest report as a Rich table, with the seconds spent allocating the cells after it."""
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
    if report.days_replaced:
        table.add_row("days replaced", f"{len(report.days_replaced)}")
    emptied = report.days_emptied
    if emptied:
        # Held before, absent from the delivery: a period set too wide deletes them.
        table.add_row("  now without events", f"{len(emptied)} ({emptied[0]} to {emptied[-1]})")
    table.add_row("distinct devices", f"{report.distinct_devices:,}")
    table.add_row("seconds", f"{report.seconds + allocating:.1f}")
    table.add_row("  allocating cells", f"{allocating:.1f}")
    return table


@user_errors
def purge_command(
    before: Annotated[
        str,
        typer.Option("--before", help="First local day to keep, YYYY-MM-DD; older days go."),
    ],
    store: StoreOption,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show what would be deleted.")
    ] = False,
    database_url: DatabaseOption = None,
) -> None:
    """Delete the store's event days (and quarantined rows) before a day; record the purge.

    Each day goes whole or not at all; the purge is appended to the store's purges.jsonl. A
    purge that was killed midway is finished, and recorded, by the next command that writes
    to the store. Refused while another command writes to it (an ingest, say). Then the
    diagnostics of failed jobs that started before the purge are deleted from the state
    database: they may quote what those jobs read.
    """
    record = purge(store=store, before=_date(before, option="--before"), dry_run=dry_run)
    diagnostics = _purge_diagnostics(store, database_url, dry_run=dry_run)
    table = purge_table(record, store=store, dry_run=dry_run)
    table.add_row("failed jobs' diagnostics deleted", diagnostics)
    console.print(table)


def _purge_diagnostics(store: Path, database_url: str | None, *, dry_run: bool) -> str:
    """Delete (or count) the diagnostics of jobs started before now; how many, as text.

    Any such job may have read the days just purged (submitted code reads every stored day).
    """
    from cellcensus.holder.api.settings import ServiceSettings
    from cellcensus.holder.enclave.diagnostics import JobDiagnostics
    from cellcensus.holder.enclave.state import default_state_path, now, open_state

    settings = ServiceSettings.from_env(store=store, database_url=database_url)
    default = default_state_path(store)
    if not settings.database_url and not default.exists():
        return f"none (no state database at {default}; give --database-url)"
    state = open_state(settings.resolved_database_url)
    try:
        return f"{JobDiagnostics(state).purge(started_before=now(), dry_run=dry_run):,}"
    finally:
        state.engine.dispose()


@user_errors
def rotate_key_command(
    valid_from: Annotated[
        str,
        typer.Option("--from", help="First local day of the new key, YYYY-MM-DD."),
    ],
    store: StoreOption,
    key_file: KeyFileOption = None,
) -> None:
    """Add a new pseudonymisation key for days from a date on; older days keep their key.

    Refused if the store already holds days from that date on. The key is written with mode
    0600 beside the key file and never shown.
    """
    day = _date(valid_from, option="--from")
    target = Store(store)
    # Held while the new key is made, so no ingest adds days from `day` on with the old key.
    with writing(target, writer="key rotation"):
        stored = target.days()
        path = rotate_key(
            key_file=key_file or default_key_file(), valid_from=day, stored_days=stored
        )
    console.print(
        f"New pseudonymisation key for local days from {day} on: {path} (mode 0600). "
        "Days before keep their key; back this file up with the others.",
        highlight=False,
    )


@user_errors
def allocate_command(
    store: StoreOption,
    coverage: CoverageOption = DEFAULT_COVERAGE,
    prior: PriorOption = None,
    areas: Annotated[
        Path | None,
        typer.Option("--areas", help="GeoJSON of polygons (default: the 589 municipalities)."),
    ] = None,
    code_property: Annotated[
        str, typer.Option("--code-property", help="Property of --areas holding the area code.")
    ] = "code",
    level: Annotated[
        str | None,
        typer.Option(
            "--level",
            help="Name of the area level (default: municipality; with --areas, the file's "
            "name without its suffix). Without --areas, arrondissement, province and region "
            "are summed from the municipality allocation.",
        ),
    ] = None,
    grid: Annotated[
        bool,
        typer.Option("--grid", help=f"Allocate to the INSPIRE 1 km grid (level {GRID_LEVEL})."),
    ] = False,
    tile_footprint: Annotated[
        bool,
        typer.Option(
            "--tile-footprint",
            help="Also keep the network's footprint on 250 m tiles, for usual_residence's "
            "posterior estimator (municipalities).",
        ),
    ] = False,
) -> None:
    """Allocate the store's cells to an area level: municipalities, any GeoJSON, or the grid.

    Jobs then take the level (`cellcensus run --level NAME`); each cell's weights over the
    areas sum to 1.
    """
    if tile_footprint and (areas is not None or grid):
        raise CellcensusError(
            "--tile-footprint labels tiles with municipalities: leave out --areas and --grid"
        )
    check_not_delivery(store)
    name = level or (GRID_LEVEL if grid else "municipality" if areas is None else areas.stem)
    try:
        Store(store).allocation_path(name)  # refuses a malformed level, before any work
    except CellcensusError as error:
        raise CellcensusError(f"{error}; name the level with --level") from None
    of_municipalities = areas is None and not grid
    if of_municipalities:
        _refuse_a_misspelt_level(name)
    if name in ROLLED_UP_LEVELS and of_municipalities:
        # Without this, the municipalities themselves would be stored under the larger
        # level's name, and its releases would count municipalities.
        _roll_up(Store(store), level=name)
    else:
        shapes = (
            municipalities() if areas is None else read_areas(areas, code_property=code_property)
        )
        path = build_allocation(
            store=store,
            areas=shapes,
            level=name,
            coverage=coverage,
            grid_m=1000.0 if grid else None,
            prior=prior,
        )
        allocation = Store(store).read_allocation(name)
        console.print(
            f"Allocated {allocation['cell_id'].nunique():,} cells to "
            f"{allocation['area_code'].nunique():,} areas of level {name} "
            f"({coverage}, {prior or default_prior(coverage)} prior): {path}",
            highlight=False,
        )
    if tile_footprint:
        folder = build_tile_footprint(Store(store))
        console.print(f"Tile footprint (signal model, 250 m tiles): {folder}", highlight=False)


def _refuse_a_misspelt_level(name: str) -> None:
    """Refuse a level name that looks like a built-in level misspelt (`provnce`, `regions`).

    Without --areas the municipalities are stored under the name given, which may be another
    coverage model's (`municipality_voronoi`); a misspelt level's releases would count
    municipalities as its areas.
    """
    built_in = ("municipality", *ROLLED_UP_LEVELS)
    close = difflib.get_close_matches(name, built_in, n=1, cutoff=0.8)
    if name in built_in or not close or name.startswith(f"{close[0]}_"):
        return
    raise CellcensusError(
        f"--level {name}: not one of the levels {', '.join(built_in)} (did you mean "
        f"{close[0]!r}?); without --areas the municipalities are allocated under the name "
        f"given, so spell the level as listed, or name another allocation e.g. {close[0]}_2"
    )


def _roll_up(store: Store, *, level: str) -> None:
    """Allocate `level` by summing the store's municipality allocation into its areas."""
    if not store.allocation_path("municipality").exists():
        raise CellcensusError(
            f"the {level} level is summed from the municipality allocation, which store "
            f"{store.root} lacks: run `cellcensus store allocate --store {store.root}` first"
        )
    path = roll_up_allocation(store=store, parent=belgian_parents(level), level=level)
    allocation = store.read_allocation(level)
    console.print(
        f"Allocated {allocation['cell_id'].nunique():,} cells to "
        f"{allocation['area_code'].nunique():,} areas of level {level} "
        f"(summed from the municipality allocation): {path}",
        highlight=False,
    )


@user_errors
def summarise_command(
    store: StoreOption,
    memory_limit: Annotated[
        str, typer.Option("--memory-limit", help="DuckDB's memory limit, e.g. 4GB.")
    ] = MEMORY_LIMIT,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Summarise every day again, fresh or not.")
    ] = False,
    hourly_positions: Annotated[
        bool | None,
        typer.Option(
            "--positions/--no-positions",
            help="List hourly positions, from now on (for present_population).",
        ),
    ] = None,
) -> None:
    """Write the device-day summary of every stored day that lacks a fresh one.

    The ingest writes them; this is for a store that predates them, whose ingest stopped
    before they were written, or whose day files were changed by hand (--rebuild: a summary
    is known fresh by its day file's rows and bytes only). Jobs read them only when every
    stored day, and no other, has a fresh one. --positions: present_population reads
    them for hourly and daily slots, faster, for a dearer ingest; later ingests keep it.
    """
    target = Store(store)
    check_memory_limit(memory_limit)
    check_not_delivery(store)
    with writing(target, writer="summarise"):  # finishes a purge killed midway first
        if not target.days():
            raise CellcensusError(f"store {store} holds no events; run `cellcensus ingest` first")
        done = summarise(
            target, memory_limit=memory_limit, rebuild=rebuild, positions=hourly_positions
        )
    listed = " (with hourly positions)" if keeps_positions(target) else ""
    console.print(
        f"Summarised {len(done)} day(s){listed}; {len(target.days()) - len(done)} already "
        f"were: {target.device_days_dir}",
        highlight=False,
    )


@user_errors
def info_command(store: StoreOption, key_file: ListedKeyFileOption = None) -> None:
    """Show what the store holds: days, rows, quarantine, purges, area levels, key periods."""
    summary = store_summary(store)
    table = Table(title=f"Store {store}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    days = summary["days"]
    table.add_row("days stored", f"{len(days)} ({days[0]} to {days[-1]})" if days else "0")
    table.add_row("event rows", f"{summary['event_rows']:,}")
    # Not fresh: jobs read the events (a day stored without one, a replaced day file, a
    # summary of an earlier format) until `summarise` writes what is missing.
    fresh = "fresh" if summary["device_days_fresh"] else "no: cellcensus store summarise"
    listed = ", with hourly positions" if summary["hourly_positions"] else ""
    table.add_row("device-day summaries", fresh + listed)
    if listed and summary["device_days_fresh"] and not summary["hourly_positions_read"]:
        # present_population reads them only where each device-day is one row (`one_network`)
        table.add_row("[yellow]hourly positions unread[/yellow]", "two home networks on a day")
    if summary["lost_days"]:  # jobs are refused until the day files are back
        lost = summary["lost_days"]
        table.add_row("[red]days whose events file is missing[/red]", ", ".join(lost))
    for period, rows in summary["quarantine_rows_by_period"].items():
        table.add_row(f"quarantined rows, {period}", f"{rows:,}")
    last = summary["last_purge"]
    purges = f"{summary['purges']}" + (f" (last: before {last['before']})" if last else "")
    table.add_row("purges", purges)
    for folder, fate in summary["purge_folders"].items():  # a purge was killed
        table.add_row(f"[yellow]purge folder {folder}[/yellow]", fate)
    table.add_row("area levels allocated", ", ".join(Store(store).area_levels()) or "none")
    # Named: without --key-file it is the default file, which need not be this store's key.
    key = key_file or default_key_file()
    periods = _key_periods(key)
    if not key.expanduser().exists() and summary["key_periods"]:  # the store's key is elsewhere
        periods = "[yellow]none here[/yellow]: name the store's key with --key-file"
    table.add_row(f"key periods of {key}", periods)
    table.add_row("key fingerprints (store)", _fingerprints(summary["key_periods"]))
    console.print(table)


def _key_periods(key_file: Path) -> str:
    """The key periods of `key_file`, from file names only (no key is read or created)."""
    if not key_file.expanduser().exists():
        return "no key yet"
    starts = [f"from {day}" for day in rotation_days(key_file)]
    return ", ".join(["first key", *starts])


def _fingerprints(periods: list[dict[str, Any]]) -> str:
    """The store's recorded key periods with their keys' fingerprints (never the keys)."""
    if not periods:
        return "none recorded"
    named = []
    for period in periods:
        start = period["valid_from"]
        named.append(f"{'first key' if start is None else f'from {start}'} {period['fingerprint']}")
    return ", ".join(named)


def _date(text: str, *, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CellcensusError(f"{option} {text!r} is not a date; write it as YYYY-MM-DD") from None


def purge_table(record: PurgeRecord, *, store: Path, dry_run: bool) -> Table:
    """A purge's account as a Rich table."""
    verb = "Would purge" if dry_run else "Purged"
    table = Table(title=f"{verb} {store} before {record.before}", show_header=False)
    table.add_column("what")
    table.add_column("how many", justify="right")
    days = record.days
    table.add_row("days deleted", f"{len(days)} ({days[0]} to {days[-1]})" if days else "0")
    table.add_row("event rows deleted", f"{record.event_rows_deleted:,}")
    table.add_row("quarantined rows deleted", f"{record.quarantine_rows_deleted:,}")
    table.add_row("recorded in", "nothing (dry run)" if dry_run else "purges.jsonl")
    return table
