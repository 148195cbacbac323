"""The present population and home-work flows releases beside the residents' release.

What the statistics office checks of those two releases before expanding them, and the
expansion itself (`cellcensus.nso.mobility`) at the level the release is at. `cellcensus demo`
(its NSO half) and `cellcensus estimate --present --flows` both call `present_population`
and `commuting`, so a release gives the same figures through either; the checks refuse, naming
what to ask the holder for, a release the expansion would turn into wrong figures without
failing (a daily one, one at the grid, flows between municipalities, another period).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from cellcensus.errors import CellcensusError
from cellcensus.nso.levels import MUNICIPALITY, level_of
from cellcensus.nso.mobility import (
    Commuting,
    PresentPopulation,
    estimate_commuting,
    estimate_present_population,
    parent_areas,
    presence_counts,
)
from cellcensus.nso.production import EstimationResult
from cellcensus.reference import arrondissements_2019, municipalities
from cellcensus.release import Release, published_period

PRESENT = "present_population"
FLOWS = "home_work_flows"
FLOWS_LEVEL = "arrondissement"
"""Area level of the home-work flows: the arrondissements of 2019, as the census commuting."""
PRESENT_PARAMETERS: dict[str, Any] = {
    "slot_minutes": 60,
    "subscribers": "domestic",
    "usual_place_after_minutes": 180,
}
"""Hourly present population of the holder's own subscribers (roamers are not residents); a
phone silent for hours is at its usual place at that hour (docs/algorithms/present_population.md).
"""
PRESENT_LEVELS = ("arrondissement", "municipality")
"""The levels a present population release is expanded at: the residents' municipalities, or
the arrondissements (of 2019) they make up."""
ALLOCATE = f"cellcensus store allocate --store STORE --level {FLOWS_LEVEL}"
"""What gives the holder's store the arrondissement level (once)."""
RUN_PRESENT = (
    f"cellcensus run {PRESENT} --store STORE --level {FLOWS_LEVEL} "
    + " ".join(f"--param {name}={value}" for name, value in PRESENT_PARAMETERS.items())
    + " --out present.csv"
)
"""How the holder makes the present population release the demo expands."""
RUN_FLOWS = f"cellcensus run {FLOWS} --store STORE --level {FLOWS_LEVEL} --out flows.csv"
"""How the holder makes the home-work flows release the demo compares with the census."""
NAMED_LEVELS = (MUNICIPALITY, "province", "region")
"""The levels a refusal names a release's areas by, where they are not those wanted."""
TRUTH_FOLDER = Path("truth") / "presence"
"""Where a synthetic world keeps its true hourly presence (`cellcensus synth`)."""


@dataclass(frozen=True)
class PresentLevel:
    """The level of a present population release, as the expansion takes it.

    Attributes:
        name: ``municipality`` or ``arrondissement`` (`PRESENT_LEVELS`).
        parent: The arrondissement of each municipality, or None at municipality level.
    """

    name: str
    parent: pd.Series | None

    def areas(self, municipality_areas: pd.DataFrame) -> pd.DataFrame:
        """The release's areas: `municipality_areas`, or merged into arrondissements."""
        if self.parent is None:
            return municipality_areas
        return parent_areas(municipality_areas, self.parent)


def check_present_release(
    release: Release,
    *,
    residents: Mapping[str, Any],
    areas: pd.DataFrame | None = None,
    source: str = "the present population release",
) -> PresentLevel:
    """Refuse a present population release the expansion cannot use; else its level.

    Args:
        release: The release to expand.
        residents: The published facts of the residents' release (its ``period``).
        areas: The municipalities (default: Belgian municipalities 2011).
        source: What to call the release in messages (its file).

    Returns:
        The release's level.

    Raises:
        CellcensusError: The release is of another algorithm, lacks a column, its slots are
            not hours, it counts other phones than the holder's subscribers, its areas are
            neither municipalities nor arrondissements, or it covers days outside the
            residents' period: each hour is expanded with the residents' persons per device
            and scaled to their total, which must be of the same people.
    """
    algorithm = release.provenance.algorithm
    if algorithm != PRESENT:
        raise CellcensusError(
            f"{source} is a release of {algorithm}, not of {PRESENT}; ask the holder for "
            f"`{RUN_PRESENT}`"
        )
    _require_columns(release, ("local_date", "slot", "area_code", "device_count"), source)
    _require_hourly(release, source)
    _require_domestic(release, source)
    level = _present_level(release, areas=areas, source=source)
    _require_within(release, residents=residents, source=source)
    return level


def present_population(
    release: Release,
    *,
    residents: EstimationResult,
    areas: pd.DataFrame | None = None,
    world: Path | None = None,
    source: str = "the present population release",
) -> PresentPopulation:
    """The present population per area and hour of `release`, at the release's level.

    Args:
        release: A present population release (`check_present_release`).
        residents: The residents' estimation, of a period that holds the release's.
        areas: The municipalities (default: Belgian municipalities 2011).
        world: A dataset folder: where it holds a synthetic world's true presence
            (``truth/presence``), the report sets the estimates beside it.
        source: What to call the release in messages (its file).

    Raises:
        CellcensusError: As `check_present_release`.
    """
    table = areas if areas is not None else municipalities()
    level = check_present_release(
        release, residents=residents.published, areas=table, source=source
    )
    return estimate_present_population(
        release=release,
        residents=residents,
        areas=level.areas(table),
        truth=None if world is None else presence_truth(world, parent=level.parent),
        parent=level.parent,
        level=level.name,
    )


def presence_truth(world: Path, *, parent: pd.Series | None = None) -> pd.DataFrame | None:
    """A synthetic world's true hourly presence per area, or per `parent` area.

    None when `world` holds none (real data).
    """
    folder = world / TRUTH_FOLDER
    if not folder.is_dir():
        return None
    counts = presence_counts(presence=pd.read_parquet(folder, columns=["hour", "area"]))
    if parent is None:
        return counts
    counts["area_code"] = parent.reindex(counts["area_code"].astype(str)).to_numpy()
    keys = ["local_date", "slot", "area_code"]
    summed: pd.DataFrame = counts.groupby(keys, as_index=False, sort=True)[["persons"]].sum()
    return summed


def check_flows_release(release: Release, *, source: str = "the flows release") -> None:
    """Refuse a flows release the census comparison cannot use, saying what to ask for.

    Its period is not checked against the residents': each home arrondissement's flows are
    calibrated to its resident workers, which cancels the residents' persons per device.

    Raises:
        CellcensusError: The release is of another algorithm, lacks a column, or its areas
            are not the arrondissements of 2019 (the census commuting matrix's).
    """
    algorithm = release.provenance.algorithm
    if algorithm != FLOWS:
        raise CellcensusError(
            f"{source} is a release of {algorithm}, not of {FLOWS}; ask the holder for "
            f"`{ALLOCATE}` (once), then `{RUN_FLOWS}`"
        )
    _require_columns(release, ("home_area", "work_area", "device_count"), source)
    table = release.table
    codes = pd.Index(pd.concat([table["home_area"], table["work_area"]]).astype(str).unique())
    known = pd.Index(arrondissements_2019().astype(str).unique())
    foreign = codes[~codes.isin(known)]
    if foreign.empty:
        return
    raise CellcensusError(
        f"{source}: {_said_of(codes, foreign, wanted='arrondissements')} "
        f"(e.g. {', '.join(sorted(foreign)[:3])}): the census "
        f"2011 commuting is between the {len(known)} arrondissements of 2019 (like "
        f"{known[0]}); ask the holder for `{ALLOCATE}` (once), then `{RUN_FLOWS}`"
    )


def commuting(
    release: Release, *, residents: EstimationResult, source: str = "the flows release"
) -> Commuting:
    """The home-work flows of `release` expanded and beside the census 2011 commuting.

    Raises:
        CellcensusError: As `check_flows_release`.
    """
    check_flows_release(release, source=source)
    return estimate_commuting(release=release, residents=residents)


def _require_columns(release: Release, columns: tuple[str, ...], source: str) -> None:
    missing = [name for name in columns if name not in release.table.columns]
    if missing:
        raise CellcensusError(
            f"{source} lacks column(s) {', '.join(missing)} (it has "
            f"{', '.join(map(str, release.table.columns))}): not the table the holder's "
            f"{release.provenance.algorithm} writes"
        )


def _require_hourly(release: Release, source: str) -> None:
    """Refuse slots other than the 24 hours of the day, naming their length if published."""
    minutes = release.provenance.parameters.get("slot_minutes")
    slots = set(pd.to_numeric(release.table["slot"], errors="coerce").dropna().astype(int))
    if minutes in (None, 60) and slots == set(range(24)):
        return
    said = f"{minutes}-minute slots" if minutes is not None else f"{len(slots)} slots a day"
    raise CellcensusError(
        f"{source} has {said}: the expansion takes hourly slots (each hour scaled to the "
        f"residents, 03:00 and 11:00 shown as night and day); ask the holder for "
        f"`{RUN_PRESENT}` (slot_minutes=60)"
    )


def _require_domestic(release: Release, source: str) -> None:
    """Refuse a count of other phones than the subscribers' (roamers are no residents)."""
    subscribers = release.provenance.parameters.get("subscribers", "domestic")
    if subscribers == "domestic":
        return
    raise CellcensusError(
        f"{source} counts the phones of subscribers={subscribers}: each hour is scaled to "
        "the residents, and foreign visitors' phones would stand in for residents where "
        f"they stay; ask the holder for `{RUN_PRESENT}` (subscribers=domestic)"
    )


def _present_level(release: Release, *, areas: pd.DataFrame | None, source: str) -> PresentLevel:
    """The level of the release's area codes, if the expansion takes it."""
    table = areas if areas is not None else municipalities()
    codes = pd.Index(release.table["area_code"].astype(str).unique())
    if codes.isin(table["area_code"].astype(str)).all():
        return PresentLevel(name="municipality", parent=None)
    parent = arrondissements_2019()
    known = pd.Index(parent.astype(str).unique())
    foreign = codes[~codes.isin(known)]
    if foreign.empty:
        return PresentLevel(name="arrondissement", parent=parent)
    wanted = "municipalities or arrondissements"
    raise CellcensusError(
        f"{source}: {_said_of(codes, foreign, wanted=wanted, areas=table)} "
        f"(e.g. {', '.join(sorted(foreign)[:3])}): "
        "the present population is expanded with the residents' persons per device of "
        "each area, so its areas must be municipalities or arrondissements of 2019 (made "
        f"of them; like {known[0]}); ask the holder for `{ALLOCATE}` (once), then "
        f"`{RUN_PRESENT}` (or the same without --level, for municipalities)"
    )


def _said_of(
    codes: pd.Index, foreign: pd.Index, *, wanted: str, areas: pd.DataFrame | None = None
) -> str:
    """What a release's area codes are, where not the `wanted` ones (words of a message)."""
    table = areas if areas is not None else municipalities()
    level = level_of(codes, table, levels=NAMED_LEVELS)
    if level is not None:
        plural = "municipalities" if level == MUNICIPALITY else f"{level}s"
        return f"its {len(codes):,} areas are {plural}"
    return f"{len(foreign):,} of its {len(codes):,} area codes are not {wanted}"


def _require_within(release: Release, *, residents: Mapping[str, Any], source: str) -> None:
    """Refuse a release with days outside the residents' period (when both publish one)."""
    own, theirs = published_period(release.published), published_period(residents)
    if own is None or theirs is None or (theirs[0] <= own[0] and own[1] <= theirs[1]):
        return
    raise CellcensusError(
        f"{source} covers {own[0]} to {own[1]}, not within the residents' release's "
        f"{theirs[0]} to {theirs[1]}: each hour is expanded with the residents' persons per "
        "device and scaled to their total, which must be of the same days; ask the holder "
        "for the present population within that period (--param start=... --param end=...) "
        "or for the residents of a period that holds it"
    )
