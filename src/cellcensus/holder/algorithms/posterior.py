"""The tile posterior: from a device's night cells to shares of areas, inside the engine.

The home cell says where a device sleeps only to the resolution of the cell's footprint; the
other cells it uses at night say where within it. Following Tennekes & Gootzen (2022), over
the 250 m tiles t that the home cell or one of the device's `CANDIDATE_SECTORS` sectors of
most nights serves (with probability at least `CANDIDATE_MIN`):

    log post(t) = log prior(t) + sum_c n_c^EVIDENCE_POWER log max(P(c | t), FLOOR)

with n_c the device's nights at each of its `TOP_SECTORS` sectors of most nights, P(c | t) the
``signal`` footprint and the prior the register population of the tile's part in an area
(`TileFootprint`: a tile on a border is scored once per side). Nights
at one home are not independent draws from P(c | t): the shadowing that decides which sector
serves a place is the same every night, so a sector's hundredth night says less than its
first, and the nights count by a power below 1 (`EVIDENCE_POWER`). The posterior, normalised
per device and home cell and summed per area, shares the device (its home cell's share)
among areas: a device still adds at most 1 to the release. A home cell with no tiles in the
footprint keeps the allocation weights.

Measured against the synthetic world's true homes (`benchmarks/bench_home_posterior.py`,
docs/geography.md): 84.5 % of devices in their true municipality by the home cell's
allocation, 90.4 % by the posterior (89.0 % with the nights counted linearly over five
sectors, 88.5 % with the home cell's tiles alone as candidates as well: under shadowing a
home can be served best by a sector whose tiles miss it).

Reference: M. Tennekes, Y. A. P. M. Gootzen (2022), "Bayesian location estimation of mobile
devices using a signal strength model", Journal of Spatial Information Science 25.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import ibis
import ibis.expr.types as ir

from cellcensus.holder.algorithms.areas import spread
from cellcensus.holder.algorithms.base import TileFootprint

TOP_SECTORS = 8
"""Sectors of most nights whose likelihood counts (docs/geography.md: 5 gave 0.2 points fewer
devices right, 10 no more than 5 when nights counted linearly)."""

FLOOR = 1e-3
"""P(c | t) below this counts as this: the footprint's own floor."""

SECTORS = 2**24
"""More sectors than any network has: (tile, sector) fits one integer below tile * SECTORS."""

CANDIDATE_MIN = 0.2
"""Tiles a candidate sector serves less often than this are left out (no loss measured)."""

CANDIDATE_SECTORS = 2
"""Sectors of most nights whose tiles are candidates beside the home cell's own."""

EVIDENCE_POWER = 0.6
"""n nights at a sector weigh as n ** this in the likelihood (1: independent nights).

Measured (docs/geography.md): 0.4 to 0.6 place the most devices in their true municipality,
0.7 to 0.8 give the smallest error per municipality; 0.6 is near the best of both.
"""


def posterior_areas(
    nights: ir.Table,
    homes: ir.Table,
    footprint: TileFootprint,
    allocation: ir.Table,
    stage: Callable[[ir.Table], ir.Table] = lambda table: table,
) -> ir.Table:
    """device_id, area_code, share of every home, by the tile posterior where possible.

    A home whose cell serves no tile is shared by `allocation` (one version per cell, as
    from `areas.allocation_on`). `nights` and `stage` as in `posterior_shares`.
    """
    placed, unplaced = posterior_shares(nights, homes, footprint, stage)
    rest = spread(unplaced, allocation, share="share")
    return placed.union(rest.select("device_id", "area_code", share="_weight"), distinct=False)


def posterior_shares(
    nights: ir.Table,
    homes: ir.Table,
    footprint: TileFootprint,
    stage: Callable[[ir.Table], ir.Table] = lambda table: table,
) -> tuple[ir.Table, ir.Table]:
    """Each device's shares of areas by the tile posterior.

    Args:
        nights: Distinct nights per device and cell (device_id, cell_id, nights, as from
            `places.night_counts`) of the placed devices.
        homes: Home cells: device_id, cell_id, share.
        footprint: The store's tile footprint.
        stage: Computes an intermediate table on its own (`StoreTables.materialize`): the
            candidate tiles of a month of devices do not fit in one plan's memory.

    Returns:
        (device_id, area_code, share) of the homes placed on tiles, and the homes
        (device_id, cell_id, share) whose cell serves no tile, to allocate as usual.
    """
    likely = footprint.serving.filter(footprint.serving.probability >= CANDIDATE_MIN)
    served = likely.select("sector").distinct()
    located = homes.left_join(footprint.cells, "cell_id").select(
        homes.device_id, homes.cell_id, homes.share, footprint.cells.sector
    )
    unplaced = located.anti_join(served, "sector").drop("sector")
    # Home cells of one sector share its tiles: one candidate set per device and home sector.
    located = located.semi_join(served, "sector")
    home_sectors = located.group_by("device_id", home="sector").agg(share=located.share.sum())
    used = stage(_night_sectors(nights, footprint.cells, home_sectors))
    candidates = stage(_candidates(home_sectors, used, likely))
    scored = stage(_gains(candidates, used, footprint))
    scored = scored.join(footprint.tiles, "tile")
    scored = scored.mutate(score=scored.gain + scored.log_prior)
    # Softmax per device and home sector by group-bys (windows over every candidate tile
    # cost a sort): the best score, then the weights summed per area and per home.
    best = scored.group_by("device_id", "home").agg(best=scored.score.max())
    scored = scored.join(best, ["device_id", "home"])
    scored = scored.mutate(w=(scored.score - scored.best).exp())
    per_area = scored.group_by("device_id", "home", "area_code").agg(w=scored.w.sum())
    total = per_area.group_by("device_id", "home").agg(total=per_area.w.sum())
    per_area = per_area.join(total, ["device_id", "home"]).join(home_sectors, ["device_id", "home"])
    shares = per_area.mutate(share=per_area.share * per_area.w / per_area.total)
    placed = shares.group_by("device_id", "area_code").agg(share=shares.share.sum())
    return placed, unplaced


def _night_sectors(nights: ir.Table, sectors: ir.Table, home_sectors: ir.Table) -> ir.Table:
    """device_id, sector, n, rank: nights at the device's sectors of most nights and homes.

    `rank` is a sector's place in the device's order of most nights (from 0). A home
    sector always counts, so every candidate tile has a likelihood term.
    """
    at = nights.join(sectors, "cell_id")
    per_sector = at.group_by("device_id", "sector").agg(n=at.nights.sum())
    rank = ibis.row_number().over(
        group_by="device_id", order_by=[ibis.desc("n"), ibis.asc("sector")]
    )
    ranked = per_sector.mutate(rank=rank)
    top = ranked.filter(ranked["rank"] < TOP_SECTORS)
    homes = ranked.semi_join(
        home_sectors,
        [ranked.device_id == home_sectors.device_id, ranked.sector == home_sectors.home],
    )
    return top.union(homes, distinct=True)


def _candidates(home_sectors: ir.Table, used: ir.Table, likely: ir.Table) -> ir.Table:
    """Candidate tiles per device and home sector: device_id, home, tile.

    The tiles of the home sector and of the device's `CANDIDATE_SECTORS` sectors of most
    nights (the first ranks of `used`, from `_night_sectors`), each at `CANDIDATE_MIN` or
    more. A home can be served best by a sector pointing elsewhere (shadowing): its own
    tiles then miss the true home, which the device's other night sectors may cover.
    """
    top = used.filter(used["rank"] < CANDIDATE_SECTORS).select("device_id", "sector")
    others = home_sectors.join(top, "device_id")
    sectors = ibis.union(
        home_sectors.select("device_id", "home", sector="home"),
        others.select("device_id", "home", "sector"),
        distinct=False,
    )
    candidates = sectors.join(likely, "sector").select("device_id", "home", "tile")
    return candidates.distinct()


def _gains(candidates: ir.Table, used: ir.Table, footprint: TileFootprint) -> ir.Table:
    """device_id, home, tile, gain: sum_c n_c^EVIDENCE_POWER (log P(c | t) - log FLOOR)."""
    # One integer key for (tile, sector): cheaper to hash than the two columns.
    pairs = candidates.join(used, "device_id")
    pairs = pairs.mutate(_key=pairs.tile * SECTORS + pairs.sector)
    serving = footprint.serving
    serving = serving.select(_key=serving.tile * SECTORS + serving.sector, p=serving.probability)
    hits = pairs.join(serving, "_key")
    weight = hits.n.cast("float64").pow(EVIDENCE_POWER)
    hits = hits.mutate(gain=weight * (hits.p.ln() - math.log(FLOOR)))
    return hits.group_by("device_id", "home", "tile").agg(gain=hits.gain.sum())
