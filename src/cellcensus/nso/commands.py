"""The statistics office's command: ``cellcensus estimate``, from a release file to estimates.

It reads the files the holder hands over (what `cellcensus run` wrote, or what the service
sends) and writes what the demo's NSO half writes: for residents, and with ``--present`` and
``--flows`` for the present population by hour and the home-work flows. It calls the same
functions (`cellcensus.nso.residents`, `cellcensus.nso.mobility_releases`); ``--tourism``
adds the foreign visitors' nights and arrivals (`cellcensus.nso.tourism`), ``--migration``
the movers between two periods (`cellcensus.nso.migration_releases`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, get_args

import typer
from rich.table import Table

from cellcensus.console import console, output_folder, user_errors
from cellcensus.errors import CellcensusError
from cellcensus.nso.migration_releases import (
    TRUTH_FILE,
    check_migration_release,
    migration_summary,
)
from cellcensus.nso.migration_releases import migration as internal_migration
from cellcensus.nso.mobility import PresentPopulation
from cellcensus.nso.mobility_releases import (
    TRUTH_FOLDER,
    check_flows_release,
    check_present_release,
    commuting,
    present_population,
)
from cellcensus.nso.production import ESTIMATORS, EstimationOptions, EstimationResult
from cellcensus.nso.report.mobility import commuting_summary
from cellcensus.nso.report.publish import PublishedRelease
from cellcensus.nso.residents import estimate_residents, publish_residents
from cellcensus.nso.tourism import (
    STAYS,
    Tourism,
    check_tourism_release,
    estimate_tourism,
)
from cellcensus.nso.validation import Agreement
from cellcensus.nso.worlds import check_truth
from cellcensus.reference import municipalities
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
    "logit_calibrated",
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
            metavar="<name>",
            help="The official estimator of estimates.csv and the report: "
            + ", ".join(get_args(Estimator))
            + " (default: the one whose cross-validated estimates come closest to the "
            "calibration reference, the census 2011's municipalities; "
            "every estimator is in estimators.csv).",
        ),
    ] = None,
    margin_level: Annotated[
        MarginLevel,
        typer.Option(
            "--margin-level",
            metavar="<level>",
            help="Groups whose census totals the calibrated estimators add up to: "
            + ", ".join(get_args(MarginLevel))
            + ".",
        ),
    ] = "province",
    logit_bounds: Annotated[
        tuple[float, float],
        typer.Option(
            "--logit-bounds",
            metavar="<lower> <upper>",
            help="Bounds of the bounded (logit) calibration's weights, 0 <= LOWER < 1 < UPPER.",
        ),
    ] = DEFAULTS.logit_bounds,
    confidence: Annotated[
        float, typer.Option("--confidence", help="Confidence level of the intervals, in (0, 1).")
    ] = DEFAULTS.level,
    seed: Annotated[
        int,
        typer.Option(
            "--seed",
            help="Seed of the random halves of the municipalities: the default estimator is "
            "chosen on five splits drawn from it, the hold-out validation uses the next "
            "seed's.",
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
    present: Annotated[
        Path | None,
        typer.Option(
            "--present",
            help="A present_population release, hourly, at arrondissement (or municipality) "
            "level, of days within the residents' period: its estimates per area and hour "
            "join the report and files (how the holder makes it: docs/estimation.md).",
            show_default=False,
        ),
    ] = None,
    flows: Annotated[
        Path | None,
        typer.Option(
            "--flows",
            help="A home_work_flows release between arrondissements: its flows, expanded and "
            "set beside the census 2011 commuting, join the report and files (how the holder "
            "makes it: docs/estimation.md).",
            show_default=False,
        ),
    ] = None,
    tourism: Annotated[
        Path | None,
        typer.Option(
            "--tourism",
            help="An inbound_tourism release (best at province level): the foreign "
            "visitors' nights and arrivals per area, expanded, join the report and files.",
            show_default=False,
        ),
    ] = None,
    roaming_share: Annotated[
        float | None,
        typer.Option(
            "--roaming-share",
            help="With --tourism: the holder's share of the country's inbound roaming "
            "visitors, in (0, 1] (default: the one the release publishes).",
            show_default=False,
        ),
    ] = None,
    migration: Annotated[
        Path | None,
        typer.Option(
            "--migration",
            help="An internal_migration release, at arrondissement (or municipality) level, "
            "whose earlier period is within the residents' period: its movers, expanded, per "
            "area join the files (how the holder makes it: docs/estimation.md).",
            show_default=False,
        ),
    ] = None,
    world: Annotated[
        Path | None,
        typer.Option(
            "--world",
            help="The synthetic world the releases come from (`cellcensus synth --out`): "
            "the report sets the present population (--present), the visitors' nights "
            "and arrivals (--tourism) and the movers (--migration) beside their truth, for "
            "releases that publish that they are synthetic.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Estimate usual residents per municipality from a usual_residence release, vs census 2011.

    Writes estimates.csv, the official table (CSV, Parquet, GeoJSON, SDMX-CSV), report.html;
    with --present and --flows, also the present population by hour and the home-work flows;
    with --tourism, the foreign visitors' nights and arrivals; with --migration, the movers
    between two periods.
    """
    if not 0 < confidence < 1:
        raise CellcensusError(f"--confidence {confidence:g}: must be in (0, 1), e.g. 0.95")
    if world is not None and present is None and tourism is None and migration is None:
        raise CellcensusError(
            "--world sets the present population, inbound tourism and internal migration "
            "beside their truth: give --present, --tourism or --migration"
        )
    if roaming_share is not None and tourism is None:
        raise CellcensusError("--roaming-share expands inbound tourism: give --tourism")
    released = Release.read(release)
    # The other releases are checked before any estimate: a refusal costs nothing.
    uses = _Uses.read(
        present=present, flows=flows, tourism=tourism, migration=migration, residents=released
    )
    if world is not None:
        uses.check_truth(world)
    options = EstimationOptions(
        default=estimator,
        margin_level=margin_level,
        logit_bounds=logit_bounds,
        level=confidence,
        seed=seed,
    )
    with console.status("estimating, calibrating and validating against the census"):
        result = estimate_residents(released, options=options, source=str(release))
        hourly = None
        if uses.present is not None:
            hourly = present_population(
                uses.present, residents=result, world=world, source=f"--present {present}"
            )
        expanded = None
        if uses.flows is not None:
            expanded = commuting(uses.flows, residents=result, source=f"--flows {flows}")
        visitors = None
        if uses.tourism is not None:
            visitors = estimate_tourism(
                uses.tourism,
                roaming_share=roaming_share,
                world=world,
                source=f"--tourism {tourism}",
            )
        moved = None
        if uses.migration is not None:
            moved = internal_migration(
                uses.migration, residents=result, world=world, source=f"--migration {migration}"
            )
    output_folder(out, marker=MARKER, made_by="cellcensus estimate")
    with console.status("writing the estimates, figures and report"):
        published = publish_residents(
            release=released,
            result=result,
            out_dir=out,
            dataset=source or f"{released.provenance.algorithm} release {release.name}",
            uses=uses.releases,
            present=hourly,
            commuting=expanded,
            tourism=visitors,
            migration=moved,
        )
    console.print(metrics_table(result.best.agreement))
    # Unwrapped: a path cut at the terminal's edge cannot be copied.
    console.print(summary(result), highlight=False, soft_wrap=True)
    if absent := absent_summary(released):
        console.print(absent, highlight=False, soft_wrap=True)
    if hourly is not None:
        console.print(present_summary(hourly), highlight=False, soft_wrap=True)
    if expanded is not None:
        console.print(commuting_summary(expanded), highlight=False, soft_wrap=True)
    if visitors is not None:
        console.print(tourism_summary(visitors), highlight=False, soft_wrap=True)
    if moved is not None:
        console.print(migration_summary(moved), highlight=False, soft_wrap=True)
    console.print(written(published), highlight=False, soft_wrap=True)


@dataclass(frozen=True)
class _Uses:
    """The releases `cellcensus estimate` uses beside the residents', checked."""

    present: Release | None
    flows: Release | None
    tourism: Release | None = None
    migration: Release | None = None

    @classmethod
    def read(
        cls,
        *,
        present: Path | None,
        flows: Path | None,
        residents: Release,
        tourism: Path | None = None,
        migration: Path | None = None,
    ) -> _Uses:
        """Read and check the releases beside the residents' (None where not given)."""
        hourly = Release.read(present) if present is not None else None
        if hourly is not None:
            check_present_release(
                hourly, residents=residents.published, source=f"--present {present}"
            )
        between = Release.read(flows) if flows is not None else None
        if between is not None:
            check_flows_release(between, source=f"--flows {flows}")
        visitors = Release.read(tourism) if tourism is not None else None
        if visitors is not None:
            check_tourism_release(visitors, source=f"--tourism {tourism}")
        moves = Release.read(migration) if migration is not None else None
        if moves is not None:
            source = f"--migration {migration}"
            check_migration_release(moves, residents=residents.published, source=source)
        return cls(present=hourly, flows=between, tourism=visitors, migration=moves)

    def check_truth(self, world: Path) -> None:
        """Refuse a `world` whose truth cannot stand beside each release given."""
        for release, truth, what in (
            (self.present, TRUTH_FOLDER, "present population"),
            (self.tourism, STAYS, "inbound tourism"),
            (self.migration, TRUTH_FILE, "migration"),
        ):
            if release is not None:
                check_truth(world, release=release, truth=truth, what=what)

    @property
    def releases(self) -> list[Release]:
        """The releases given, for the report's list of those it uses."""
        given = (self.present, self.flows, self.tourism, self.migration)
        return [used for used in given if used is not None]


def metrics_table(metrics: Agreement) -> Table:
    """The official estimates' agreement with the census, one metric a row."""
    table = Table(title="Usual residents vs census 2011, per municipality")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.to_dict().items():
        table.add_row(name, f"{value:.4f}" if isinstance(value, float) else str(value))
    return table


def present_summary(present: PresentPopulation) -> str:
    """Brussels-Capital's day/night ratio beside the census's (and a synthetic world's truth)."""
    truth = present.truth_day_night_ratio()
    beside = "" if truth is None else f"; synthetic truth: {truth:.2f}"
    return (
        "Brussels-Capital day/night ratio "
        f"({present.day_hour:02d}:00 / {present.night_hour:02d}:00): "
        f"{present.day_night_ratio():.2f} "
        f"(census, all workers at work: {present.census_day_night_ratio:.2f}{beside})"
    )


def tourism_summary(tourism: Tourism) -> str:
    """The foreign visitors' nights and arrivals (and a synthetic world's truth).

    A sum over no released area is no estimate of 0: an indicator suppressed everywhere is
    said to be, each sum names the areas it is over, and the average stay is over the areas
    that released both.
    """
    metrics = tourism.metrics()
    nights, arrivals = metrics["nights"], metrics["arrivals"]
    if not nights["n_areas"]:
        return f"Inbound tourism: no {tourism.level}'s nights were released (all suppressed)"
    truth = (
        f"; synthetic truth in the same areas: {nights['truth_in_released_areas']:,.0f} nights"
        if "truth_in_released_areas" in nights
        else ""
    )
    released = {
        name: set(tourism.indicator(name)["estimate"].dropna().index)
        for name in ("nights", "arrivals")
    }
    stay = tourism.average_stay
    where = f"in the {_areas(nights['n_areas'], tourism)} whose nights were released"
    if released["arrivals"] == released["nights"]:
        average = f" (average stay {stay:.1f} nights)" if math.isfinite(stay) else ""
        return (
            f"Inbound tourism: {nights['estimate']:,.0f} nights and "
            f"{arrivals['estimate']:,.0f} arrivals of foreign visitors {where}{average}{truth}"
        )
    arrived = (
        f"{arrivals['estimate']:,.0f} arrivals in the {_areas(arrivals['n_areas'], tourism)} "
        "whose arrivals were released"
        if arrivals["n_areas"]
        else "arrivals suppressed everywhere"
    )
    both = _areas(len(released["nights"] & released["arrivals"]), tourism)
    average = (
        f" (average stay {stay:.1f} nights in the {both} that released both)"
        if math.isfinite(stay)
        else ""
    )
    return (
        f"Inbound tourism: {nights['estimate']:,.0f} nights of foreign visitors {where}; "
        f"{arrived}{average}{truth}"
    )


def _areas(count: int, tourism: Tourism) -> str:
    """``1 province``, ``4 provinces``."""
    return f"{count} {tourism.level if count == 1 else tourism.plural}"


def summary(result: EstimationResult) -> str:
    """Which estimator is official and why, and those that did not run."""
    chosen = (
        "as asked"
        if result.options.default
        else "best cross-validated score against the calibration reference"
    )
    lines = [
        f"Official estimator: {result.default} ({chosen}); {result.options.level:.0%} "
        f"intervals; {len(result.outcomes)} of {len(ESTIMATORS)} estimators ran"
    ]
    lines += [f"Skipped {name}: {reason}" for name, reason in result.skipped.items()]
    return "\n".join(lines)


def absent_summary(release: Release) -> str | None:
    """Municipalities the release does not list, which count as suppressed: said, not hidden.

    A holder's release lists every area of its level, a withheld count as an empty one; rows
    missing from the file were most likely cut from it after it was released.
    """
    known = municipalities()["area_code"].astype(str)
    absent = known[~known.isin(release.table["area_code"].astype(str))]
    if absent.empty:
        return None
    return (
        f"The release lists {len(known) - len(absent):,} of the {len(known):,} municipalities: "
        f"the {len(absent):,} absent (e.g. {', '.join(absent[:3])}) have no estimate and count "
        "as suppressed. A holder's release lists every area, a withheld count empty: ask for "
        "the whole release if rows were cut from it."
    )


def written(published: PublishedRelease) -> str:
    """The files a statistician opens first."""
    outputs = published.outputs
    tables = (outputs.csv, outputs.parquet, outputs.geojson, outputs.sdmx_csv)
    mobility = (
        f"Mobility tables: {', '.join(path.name for path in published.mobility)}\n"
        if published.mobility
        else ""
    )
    return (
        f"Estimates: {published.estimates} (official table: "
        f"{', '.join(path.name for path in tables)}; every estimator: "
        f"{outputs.all_estimators.name}); metrics: {published.metrics}\n"
        f"{mobility}Report: {published.report}"
    )
