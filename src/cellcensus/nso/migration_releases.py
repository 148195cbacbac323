"""The internal migration release beside the residents' release: checks, truth and files.

What the statistics office checks of an ``internal_migration`` release before expanding it
(`cellcensus.nso.migration`), refusing, with what to ask the holder for, a release the
expansion would turn into wrong figures without failing; where the data are synthetic, the
world's true moves to set beside the estimates; and the tables `cellcensus estimate
--migration` writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from cellcensus.errors import CellcensusError
from cellcensus.nso.levels import MUNICIPALITY, level_of
from cellcensus.nso.migration import Migration, MigrationTruth, Periods, estimate_migration
from cellcensus.nso.mobility_releases import ALLOCATE
from cellcensus.nso.production import EstimationResult
from cellcensus.nso.worlds import check_truth
from cellcensus.reference import arrondissements_2019, municipalities
from cellcensus.release import Release, published_period

MIGRATION = "internal_migration"
RUN_MIGRATION = (
    f"cellcensus run {MIGRATION} --store STORE --level arrondissement "
    "--param before_start=... --param before_end=... --param after_start=... "
    "--param after_end=... --out migration.csv"
)
"""How the holder makes the release the expansion takes (periods of weeks, arrondissements)."""
PERIOD_PARAMETERS = ("before_start", "before_end", "after_start", "after_end")
TRUTH_FILE = Path("truth") / "migrations.parquet"
"""Where a synthetic world keeps its true moves (`cellcensus synth`)."""
PERSONS_FILE = Path("truth") / "persons.parquet"


def check_migration_release(
    release: Release, *, residents: Mapping[str, Any], source: str = "the migration release"
) -> tuple[str, Periods]:
    """Refuse a migration release the expansion cannot use; else its level and periods.

    Args:
        release: The release to expand.
        residents: The published facts of the residents' release (its ``period``).
        source: What to call the release in messages (its file).

    Raises:
        CellcensusError: The release is of another algorithm, lacks a column, its areas are
            neither municipalities nor arrondissements of 2019, its provenance gives no
            periods, or its earlier period is not within the residents' period.
    """
    algorithm = release.provenance.algorithm
    if algorithm != MIGRATION:
        raise CellcensusError(
            f"{source} is a release of {algorithm}, not of {MIGRATION}; ask the holder for "
            f"`{ALLOCATE}` (once), then `{RUN_MIGRATION}`"
        )
    missing = [c for c in ("origin", "destination", "device_count") if c not in release.table]
    if missing:
        raise CellcensusError(
            f"{source} lacks column(s) {', '.join(missing)} (it has "
            f"{', '.join(map(str, release.table.columns))}); ask the holder for "
            f"`{RUN_MIGRATION}`"
        )
    level = _level(release, source=source)
    periods = _periods(release, source=source)
    _require_earlier_within(periods, residents=residents, source=source)
    return level, periods


def _level(release: Release, *, source: str) -> str:
    """``municipality`` or ``arrondissement``: the level of the release's area codes."""
    table = release.table
    codes = pd.Index(pd.concat([table["origin"], table["destination"]]).astype(str).unique())
    if codes.isin(municipalities()["area_code"].astype(str)).all():
        return MUNICIPALITY
    if codes.isin(arrondissements_2019().astype(str)).all():
        return "arrondissement"
    named = level_of(codes, municipalities(), levels=("province", "region"))
    said = f"its areas are {named}s" if named else "its area codes are not municipalities'"
    raise CellcensusError(
        f"{source}: {said} (e.g. {', '.join(sorted(codes)[:3])}): each mover is expanded "
        "with the persons per device of its origin, which the residents give for "
        "municipalities and the arrondissements of 2019 they make up; ask the holder for "
        f"`{ALLOCATE}` (once), then `{RUN_MIGRATION}`"
    )


def _periods(release: Release, *, source: str) -> Periods:
    """The earlier and later periods from the release's provenance parameters."""
    given = release.provenance.parameters
    try:
        days = [date.fromisoformat(str(given[name])[:10]) for name in PERIOD_PARAMETERS]
    except (KeyError, ValueError):
        raise CellcensusError(
            f"{source}: its provenance does not give the periods "
            f"({', '.join(PERIOD_PARAMETERS)}) as dates; ask the holder for `{RUN_MIGRATION}`"
        ) from None
    return (days[0], days[1]), (days[2], days[3])


def _require_earlier_within(periods: Periods, *, residents: Mapping[str, Any], source: str) -> None:
    """Refuse an earlier period outside the residents' period (when it publishes one).

    Each mover is expanded as a resident of its origin in the earlier period, with the
    persons per device the residents' release gives that area: the operator's share of the
    area's residents then, which drifts with churn and campaigns. The later period may run
    past it: its destination's factor is not used.
    """
    (start, end), theirs = periods[0], published_period(residents)
    if theirs is None or (theirs[0] <= start and end <= theirs[1]):
        return
    raise CellcensusError(
        f"{source}: its earlier period, {start} to {end}, is not within the residents' "
        f"release's {theirs[0]} to {theirs[1]}: movers are expanded as residents of their "
        "origin then, with the residents' persons per device; ask the holder for the "
        "residents of a period that holds it (`cellcensus run usual_residence --param "
        "start=... --param end=...`) or for the migration from within theirs"
    )


def migration_truth(
    world: Path, *, periods: Periods, parent: pd.Series | None, sampling_fraction: float
) -> MigrationTruth:
    """A synthetic world's persons who moved between the two periods, at the release's level.

    Those who moved during a period are left out: their home in it is the one of most
    nights, and the release keeps such a device at its earlier home unless the move fell
    on a period's edge. A move within an arrondissement is no move between arrondissements.
    """
    moves = pd.read_parquet(world / TRUTH_FILE)
    day = pd.to_datetime(moves["date"]).dt.date
    between = moves[((day > periods[0][1]) & (day <= periods[1][0])).to_numpy()]
    origin, destination = (_at_level(between[side], parent) for side in ("from_area", "to_area"))
    movers = pd.DataFrame({"origin": origin, "destination": destination})
    movers = movers[movers["origin"] != movers["destination"]]
    counts = movers.groupby(["origin", "destination"]).size().rename("persons").reset_index()
    homes = _at_level(pd.read_parquet(world / PERSONS_FILE)["home_area"], parent)
    return MigrationTruth(
        movers=counts,
        persons=pd.Series(homes).value_counts().astype("float64"),
        sampling_fraction=sampling_fraction,
    )


def _at_level(codes: pd.Series, parent: pd.Series | None) -> pd.Series:
    """Municipality codes, or their `parent` areas."""
    codes = codes.astype(str).reset_index(drop=True)
    return codes if parent is None else parent.reindex(codes).reset_index(drop=True)


def migration(
    release: Release,
    *,
    residents: EstimationResult,
    world: Path | None = None,
    source: str = "the migration release",
) -> Migration:
    """The internal migration of `release` per pair and per area, in persons.

    Args:
        release: An internal migration release (`check_migration_release`).
        residents: The residents' estimation, of a period holding the earlier period.
        world: A synthetic world folder: its true moves stand beside the estimates.
        source: What to call the release in messages (its file).

    Raises:
        CellcensusError: As `check_migration_release` and `nso.worlds.check_truth`.
    """
    level, periods = check_migration_release(release, residents=residents.published, source=source)
    parent = arrondissements_2019() if level == "arrondissement" else None
    truth = None
    if world is not None:
        check_truth(world, release=release, truth=TRUTH_FILE, what="migration")
        fraction = float(release.published.get("sampling_fraction") or 1.0)
        truth = migration_truth(world, periods=periods, parent=parent, sampling_fraction=fraction)
    return estimate_migration(
        release=release,
        residents=residents,
        periods=periods,
        parent=parent,
        level=level,
        truth=truth,
    )


def migration_tables(migration: Migration) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The per-area and per-pair tables as written: persons rounded, rates to five decimals."""
    rate = migration.areas["measure"] == "migration_rate"
    figures = ["estimate", "std_error", "ci_lower", "ci_upper", "truth"]
    areas = migration.areas.copy()
    for column in (name for name in figures if name in areas):
        areas[column] = areas[column].round(0).where(~rate, areas[column].round(5))
    pairs = migration.pairs.drop(columns="per_device")
    pairs = pairs.assign(**{name: pairs[name].round(0) for name in figures if name in pairs})
    return areas, pairs


def migration_summary(migration: Migration) -> str:
    """The console's line: movers, rate, what is withheld, the noise, the truth."""
    block = migration.metrics()
    (before, _), (_, after) = migration.periods
    truth = (
        ""
        if migration.truth is None
        else f"; synthetic truth: {block['truth_movers']:,.0f} movers, rate "
        f"{block['truth_migration_rate']:.2%}"
    )
    return (
        f"Internal migration ({migration.level}, {before} to {after}): "
        f"{block['movers']:,.0f} movers in {block['n_mover_pairs']:,} released pairs "
        f"(rate {block['migration_rate']:.2%}), {block['n_mover_pairs_suppressed']:,} pairs "
        f"withheld; pairs noise alone would release: "
        f"{block['noise_only_pairs_expected']:,.1f}{truth}"
    )
