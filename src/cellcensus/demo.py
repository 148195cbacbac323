"""`cellcensus demo`: synthetic Belgium -> holder store -> enclave release -> NSO estimates.

The demo plays both parties in one process, but through the same interface as the service: the
NSO half holds only an `InProcessClient` and sees nothing but the release.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from cellcensus.console import console, live_progress, output_folder, user_errors
from cellcensus.errors import SCHEMA_DOC, CellcensusError
from cellcensus.holder.algorithms.home_work_flows import HomeWorkFlowsParameters
from cellcensus.holder.enclave import Enclave
from cellcensus.holder.geo import build_allocation, roll_up_allocation
from cellcensus.holder.geo.tile_footprint import build_tile_footprint
from cellcensus.holder.store import Store, ingest_dataset
from cellcensus.holder.store.ingestion import check_dataset_folder
from cellcensus.nso.client import InProcessClient
from cellcensus.nso.commands import metrics_table, present_summary, tourism_summary
from cellcensus.nso.mobility import Commuting, PresentPopulation
from cellcensus.nso.mobility_releases import (
    FLOWS_LEVEL,
    PRESENT_PARAMETERS,
    commuting,
    present_population,
)
from cellcensus.nso.report.mobility import commuting_summary
from cellcensus.nso.residents import ALGORITHM, estimate_residents, publish_residents
from cellcensus.nso.tourism import TOURISM_LEVEL, Tourism, estimate_tourism
from cellcensus.nso.validation import Agreement
from cellcensus.reference import arrondissements_2019, municipalities
from cellcensus.release import Release
from cellcensus.world import WorldParams, synthesize

MARKER = ".cellcensus-demo"
RELEASE_PARAMETERS: dict[str, Any] = {"spatial_estimator": "posterior"}
"""Homes placed on tiles by each device's night cells (docs/algorithms/usual_residence.md)."""
KEY_FILE = "holder.key"
"""The holder's pseudonymisation key in the demo's folder (git ignores ``*.key``): a demo
leaves nothing outside its folder."""


@dataclass(frozen=True)
class DemoResult:
    """What a demo run produced."""

    out: Path
    metrics: Agreement
    estimates: pd.DataFrame
    present: PresentPopulation | None = None
    commuting: Commuting | None = None
    tourism: Tourism | None = None


def prepare_output(out: Path) -> None:
    """Create `out`, or clear a previous demo's folder; refuse anything else."""
    output_folder(out, marker=MARKER, made_by="the demo")
    for child in ("dataset", "store"):
        shutil.rmtree(out / child, ignore_errors=True)


def run_demo(
    *,
    out: Path,
    params: WorldParams,
    dataset: Path | None = None,
    key_file: Path | None = None,
    progress: Progress | None = None,
) -> DemoResult:
    """Run the whole chain and write report.html, the PNGs, metrics.json and estimates.csv."""
    if dataset is not None:
        check_dataset_folder(dataset)
        if not (dataset / "metadata.json").is_file():
            raise CellcensusError(f"--dataset {dataset} has no metadata.json; see {SCHEMA_DOC}")
    prepare_output(out)
    step = _stepper(progress)

    if dataset is None:
        step("Synthesising Belgium")
        dataset = out / "dataset"
        synthesize(out=dataset, params=params)

    areas = municipalities()
    store = _holder_store(out=out, dataset=dataset, key_file=key_file, areas=areas, step=step)
    releases = _Releases.run(store, step=step)

    step("NSO: estimating, calibrating and validating against the census")
    result = estimate_residents(releases.residents, areas=areas)
    present = present_population(releases.present, residents=result, areas=areas, world=dataset)
    flows = None
    if releases.flows is not None:
        flows = commuting(releases.flows, residents=result)
    visitors = None
    if releases.tourism is not None:
        visitors = estimate_tourism(releases.tourism, world=dataset)
    step("NSO: writing figures and report")
    published = publish_residents(
        release=releases.residents,
        result=result,
        out_dir=out,
        dataset=str(dataset),
        areas=areas,
        uses=releases.used,
        present=present,
        commuting=flows,
        tourism=visitors,
    )
    types: dict[str, str] = {"area_code": "str", "released_devices": "Int64"}
    estimates = pd.read_csv(published.estimates, dtype=types)
    return DemoResult(
        out=out,
        metrics=result.best.agreement,
        estimates=estimates,
        present=present,
        commuting=flows,
        tourism=visitors,
    )


def _holder_store(
    *,
    out: Path,
    dataset: Path,
    key_file: Path | None,
    areas: pd.DataFrame,
    step: Callable[[str], None],
) -> Path:
    """The holder's store of `dataset`, its cells allocated to `areas` and their parents.

    Arrondissements for the mobility releases, provinces for inbound tourism; also the tile
    footprint, which the posterior estimator of homes reads.
    """
    step("Holder: ingesting and pseudonymising")
    store = out / "store"
    ingest_dataset(dataset=dataset, store=store, key_file=key_file or out / KEY_FILE)
    step("Holder: allocating cells to municipalities")
    build_allocation(store=store, areas=areas)
    roll_up_allocation(store=Store(store), parent=arrondissements_2019(), level=FLOWS_LEVEL)
    provinces = areas.set_index(areas["area_code"].astype(str))["province"].astype(str)
    roll_up_allocation(store=Store(store), parent=provinces, level=TOURISM_LEVEL)
    build_tile_footprint(Store(store), areas=areas)
    return store


@dataclass(frozen=True)
class _Releases:
    """What the enclave released to the demo's NSO half.

    Attributes:
        residents: Usual residents per municipality.
        present: Present population by hour, per arrondissement.
        flows: Home-work flows between arrondissements; None when the period has too few
            weekdays for any device to have a work place.
        tourism: Foreign roamers' nights and arrivals per province; None when the holder
            publishes no share of inbound roaming to expand them with.
    """

    residents: Release
    present: Release
    flows: Release | None
    tourism: Release | None = None

    @property
    def used(self) -> list[Release]:
        """The releases beside the residents', for the report's list of those it uses."""
        return [used for used in (self.present, self.flows, self.tourism) if used is not None]

    @classmethod
    def run(cls, store: Path, *, step: Callable[[str], None]) -> _Releases:
        """Run each job on `store`'s enclave, through the client interface the NSO holds."""
        step("Enclave: running usual_residence")
        client = InProcessClient(runner=Enclave(store=store).run, analyst="demo-analyst")
        residents = client.run(algorithm=ALGORITHM, parameters=RELEASE_PARAMETERS)
        period = _period_days(residents.published.get("period") or {})
        step("Enclave: running present_population (hourly, weekdays, arrondissements)")
        present = client.run(
            algorithm="present_population",
            parameters={**PRESENT_PARAMETERS, **_present_period(period)},
            level=FLOWS_LEVEL,
        )
        tourism = None
        if "roaming_share" in residents.published:
            step("Enclave: running inbound_tourism (provinces)")
            tourism = client.run(algorithm="inbound_tourism", parameters={}, level=TOURISM_LEVEL)
        weekdays, needed = _weekdays(period), _min_work_days()
        # Fewer weekdays than needed: no device could have a work place, the flows' release
        # would hold noise only.
        if weekdays < needed:
            step(f"Home-work flows skipped: {weekdays} weekday(s) in the period, {needed} needed")
            return cls(residents=residents, present=present, flows=None, tourism=tourism)
        step("Enclave: running home_work_flows (arrondissements)")
        flows = client.run(algorithm="home_work_flows", parameters={}, level=FLOWS_LEVEL)
        return cls(residents=residents, present=present, flows=flows, tourism=tourism)


def _period_days(period: dict[str, Any]) -> tuple[date, date] | None:
    """First and last day of a release's published period (None if it states none)."""
    if not period.get("start"):
        return None
    first = date.fromisoformat(str(period["start"])[:10])
    return first, date.fromisoformat(str(period.get("end") or period["start"])[:10])


def _weekdays(period: tuple[date, date] | None) -> int:
    """Mondays to Fridays in a period (none without one)."""
    if period is None:
        return 0
    first, last = period
    days = (first + timedelta(days=k) for k in range((last - first).days + 1))
    return sum(day.weekday() < 5 for day in days)


def _min_work_days() -> int:
    """The weekdays at one place `home_work_flows` needs, by default, to call it work."""
    return HomeWorkFlowsParameters().min_work_days


def _present_period(period: tuple[date, date] | None, *, weekdays: int = 3) -> dict[str, str]:
    """The first weekdays of the period for the present population, after a warm-up day.

    The first day of a release warms up (no position comes in from before it), so
    the period asked for starts one day before `weekdays` weekdays (Monday to Friday).
    """
    if period is None:
        return {}
    start, last = period
    first = start + timedelta(days=1)
    while first.weekday() >= 5 and first < last:
        first += timedelta(days=1)
    friday = first + timedelta(days=max(4 - first.weekday(), 0))
    end = min(first + timedelta(days=weekdays - 1), friday, last)
    return {"start": (first - timedelta(days=1)).isoformat(), "end": max(end, start).isoformat()}


def _stepper(progress: Progress | None) -> Callable[[str], None]:
    """A function that shows each step of the chain on `progress` (or does nothing)."""
    if progress is None:
        return lambda description: None
    task = progress.add_task("Starting", total=None)

    def step(description: str) -> None:
        progress.update(task, description=description)
        progress.console.log(description)

    return step


def register(app: typer.Typer) -> None:
    """Add the demo command to the `cellcensus` app."""

    @app.command()
    @user_errors
    def demo(
        out: Annotated[Path, typer.Option(help="Folder for the report and outputs.")] = Path(
            "cellcensus-demo"
        ),
        scale: Annotated[
            float,
            typer.Option(help="Sampling fraction of the census population simulated, in (0, 1]."),
        ] = WorldParams.scale,
        days: Annotated[int, typer.Option(help="Days of network events.")] = WorldParams.days,
        seed: Annotated[int, typer.Option(help="Random seed of the synthetic world.")] = (
            WorldParams.seed
        ),
        dataset: Annotated[
            Path | None, typer.Option(help="Use this dataset folder instead of synthesising.")
        ] = None,
        key_file: Annotated[
            Path | None,
            typer.Option(help=f"Holder's pseudonymisation key file (default: OUT/{KEY_FILE})."),
        ] = None,
    ) -> None:
        """Estimate usual residents per Belgian municipality from mobile data, vs census 2011."""
        params = WorldParams.from_options(scale=scale, days=days, seed=seed)
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        with live_progress(*columns) as progress:
            result = run_demo(
                out=out, params=params, dataset=dataset, key_file=key_file, progress=progress
            )
        console.print(metrics_table(result.metrics))
        if result.present is not None:
            console.print(present_summary(result.present))
        if result.commuting is not None:
            console.print(commuting_summary(result.commuting))
        if result.tourism is not None:
            console.print(tourism_summary(result.tourism))
        console.print(f"Report: {result.out / 'report.html'}")
