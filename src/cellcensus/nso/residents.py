"""Usual residents per municipality from one release: the statistics office's production.

`estimate_residents` refuses a release the estimators cannot use (another algorithm's, or one
at another area level) and runs every estimator on the others; `publish_residents` writes the
statistical release (estimates with intervals in every format, ``metrics.json``, the figures
and ``report.html``). `cellcensus demo` (its NSO half) and `cellcensus estimate` both call
them, so a release gives the same figures through either.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from cellcensus.errors import CellcensusError
from cellcensus.nso.levels import level_of
from cellcensus.nso.mobility import Commuting, PresentPopulation
from cellcensus.nso.production import EstimationOptions, EstimationResult, estimate_all
from cellcensus.nso.report.html import ReportContext
from cellcensus.nso.report.publish import PublishedRelease, publish_release
from cellcensus.reference import municipalities
from cellcensus.release import Release

if TYPE_CHECKING:
    from cellcensus.nso.migration import Migration
    from cellcensus.nso.tourism import Tourism

ALGORITHM = "usual_residence"
"""The algorithm whose releases the estimators expand: devices per area of usual residence."""
RUN_RESIDENTS = "cellcensus run usual_residence --store STORE --out residents.csv"
"""How the holder makes a release the estimators take (municipality is the default level)."""


def check_release(
    release: Release, *, areas: pd.DataFrame | None = None, source: str = "the release"
) -> None:
    """Refuse a release the estimators cannot use, saying what to ask the holder for.

    Args:
        release: The release to estimate from.
        areas: The municipalities (default: Belgian municipalities 2011).
        source: What to call the release in messages (its file).

    Raises:
        CellcensusError: The release is of another algorithm than usual_residence, or its
            area codes are not municipalities (a release at another area level: the
            estimators fit to and validate against municipalities' populations).
    """
    algorithm = release.provenance.algorithm
    if algorithm != ALGORITHM:
        raise CellcensusError(
            f"{source} is a release of {algorithm}, not of {ALGORITHM}: the estimators expand "
            f"devices per area of usual residence; ask the holder for `{RUN_RESIDENTS}`"
        )
    if "area_code" not in release.table.columns:
        raise CellcensusError(
            f"{source} has no area_code column (it has {list(release.table.columns)}); "
            f"ask the holder for `{RUN_RESIDENTS}`"
        )
    table = areas if areas is not None else municipalities()
    known = pd.Index(table["area_code"].astype(str))
    codes = pd.Index(release.table["area_code"].astype(str))
    foreign = codes[~codes.isin(known)]
    if foreign.empty:
        return
    level = level_of(codes, table)
    said = (
        f"its {len(codes):,} areas are {level}s"
        if level
        else f"{len(foreign):,} of its {len(codes):,} area codes are no municipality's"
    )
    raise CellcensusError(
        f"{source}: {said} (e.g. {', '.join(foreign[:3])}; municipalities are like {known[0]}): "
        "the estimators calibrate to and validate against the population of each "
        f"municipality; ask the holder for a release at municipality level (`{RUN_RESIDENTS}`, "
        "without --level or with --level municipality)"
    )


def estimate_residents(
    release: Release,
    *,
    areas: pd.DataFrame | None = None,
    options: EstimationOptions | None = None,
    source: str = "the release",
) -> EstimationResult:
    """Every estimator on a usual_residence release, with intervals and the census check.

    Args:
        release: Devices per municipality of usual residence, as the enclave released them.
        areas: The municipalities (default: Belgian municipalities 2011).
        options: The estimator, margins, confidence level and seed (default: the report's).
        source: What to call the release in messages (its file).

    Returns:
        `cellcensus.nso.production.estimate_all`'s result, calibrated to and validated
        against the census 2011.

    Raises:
        CellcensusError: The release is not one the estimators can use (`check_release`),
            lacks a published fact, or the estimator asked for could not run.
    """
    table = areas if areas is not None else municipalities()
    check_release(release, areas=table, source=source)
    return estimate_all(release=release, areas=table, options=options)


def publish_residents(
    *,
    release: Release,
    result: EstimationResult,
    out_dir: Path,
    dataset: str,
    areas: pd.DataFrame | None = None,
    uses: Sequence[Release] = (),
    present: PresentPopulation | None = None,
    commuting: Commuting | None = None,
    tourism: Tourism | None = None,
    migration: Migration | None = None,
) -> PublishedRelease:
    """Write the statistical release of `result` into `out_dir`.

    Args:
        release: The release `result` was estimated from (the report states its facts).
        result: `estimate_residents` of `release`.
        out_dir: Folder to write into (created).
        dataset: What the data is, in a few words (the report's subtitle and Data row).
        areas: The municipalities (default: Belgian municipalities 2011).
        uses: The other releases the report uses (present population, flows).
        present: Present population by hour, estimated from one of `uses`, or None.
        commuting: Home-work flows, estimated from one of `uses`, or None.
        tourism: Inbound tourism, estimated from one of `uses`, or None.
        migration: Internal migration, estimated from one of `uses`, or None.

    Returns:
        The paths written (`cellcensus.nso.report.publish.publish_release`).
    """
    context = ReportContext.from_release(release, dataset=dataset, uses=uses)
    return publish_release(
        out_dir=out_dir,
        result=result,
        context=context,
        areas=areas,
        present=present,
        commuting=commuting,
        tourism=tourism,
        migration=migration,
    )
