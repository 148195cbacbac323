"""Which cells serve a place: a few candidate sectors, each with its share of the events.

The received power from a site's best-pointed sector is a log-distance path loss, the
3GPP horizontal antenna pattern and a log-normal shadowing. The strongest sector serves most
events but not all: sectors a few dB weaker serve some (overlap, ping-pong between
neighbours), so the serving cell is often not the nearest site's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from cellcensus.world.network import SECTORS, RadioNetwork
from cellcensus.world.params import WorldParams

CANDIDATES = 4
"""Candidate sectors kept per place."""
NEAREST_SITES = 6
"""Sites examined per place."""
CUMULATIVE_SCALE = 65_535
"""Cumulative shares are stored as uint16 out of this."""
MIN_DISTANCE_M = 30.0
"""Distances below this count as this (the near field of an antenna)."""
PATTERN_FLOOR_DB = 20.0
"""Front-to-back attenuation of a sector antenna (3gpp-36814)."""


@dataclass(frozen=True)
class Coverage:
    """Candidate serving sectors of a set of places.

    Attributes:
        sector: (places, CANDIDATES) sectors, most likely first.
        cumulative: (places, CANDIDATES) cumulative share of events each serves, out of
            `CUMULATIVE_SCALE` (the last column is always full).
    """

    sector: NDArray[np.int32]
    cumulative: NDArray[np.uint16]


def coverage(
    *,
    network: RadioNetwork,
    xy: NDArray[np.float64],
    params: WorldParams,
    rng: np.random.Generator,
) -> Coverage:
    """Candidate sectors of each place and the share of its events each serves.

    One candidate is always on a site that stays on for the whole period, so that a place
    keeps a valid cell whatever sites are switched on or off.

    Args:
        network: The sites.
        xy: (n, 2) places in metres.
        params: The world's parameters (path loss, shadowing, softness, beam width).
        rng: The random generator (shadowing).

    Returns:
        The candidates.
    """
    nearest = min(NEAREST_SITES, network.size)
    distance, site = cKDTree(network.site_xy).query(xy, k=nearest)
    distance = distance.reshape(len(xy), nearest)
    site = site.reshape(len(xy), nearest)
    exponent = params.path_loss_exponent
    sector, power = _best_sectors(
        network=network, xy=xy, site=site, distance=distance, exponent=exponent
    )
    power = power + rng.normal(scale=params.shadowing_db, size=power.shape)
    order = np.argsort(-power, axis=1, kind="stable")
    sector = np.take_along_axis(sector, order, axis=1)
    power = np.take_along_axis(power, order, axis=1)
    site = np.take_along_axis(site, order, axis=1)
    keep = min(CANDIDATES, nearest)
    sector, power = sector[:, :keep].copy(), power[:, :keep].copy()
    _keep_a_permanent_site(
        network=network, xy=xy, site=site, sector=sector, power=power, exponent=exponent
    )
    share = np.exp((power - power[:, :1]) / params.serving_softness_db)
    cumulative = np.cumsum(share / share.sum(axis=1, keepdims=True), axis=1)
    scaled = np.minimum(np.rint(cumulative * CUMULATIVE_SCALE), CUMULATIVE_SCALE)
    scaled[:, -1] = CUMULATIVE_SCALE
    if keep < CANDIDATES:
        sector = np.pad(sector, ((0, 0), (0, CANDIDATES - keep)), mode="edge")
        scaled = np.pad(scaled, ((0, 0), (0, CANDIDATES - keep)), mode="edge")
    return Coverage(sector=sector.astype(np.int32), cumulative=scaled.astype(np.uint16))


def _best_sectors(
    *,
    network: RadioNetwork,
    xy: NDArray[np.float64],
    site: NDArray[np.intp],
    distance: NDArray[np.float64],
    exponent: float,
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Each site's sector best pointed at each place, and the power received from it (dB)."""
    delta = xy[:, None, :] - network.site_xy[site]
    bearing = np.degrees(np.arctan2(delta[..., 0], delta[..., 1])) % 360
    first_azimuth = network.azimuth_deg[site * SECTORS]
    step = 360 / SECTORS
    local = np.rint(((bearing - first_azimuth) % 360) / step).astype(np.int64) % SECTORS
    off_axis = (bearing - (first_azimuth + local * step) + 180) % 360 - 180
    gain = -np.minimum(12 * (off_axis / network.beam_width_deg) ** 2, PATTERN_FLOOR_DB)
    loss = 10 * exponent * np.log10(np.maximum(distance, MIN_DISTANCE_M))
    return site * SECTORS + local, gain - loss


def _keep_a_permanent_site(
    *,
    network: RadioNetwork,
    xy: NDArray[np.float64],
    site: NDArray[np.intp],
    sector: NDArray[np.int64],
    power: NDArray[np.float64],
    exponent: float,
) -> None:
    """Make the last candidate a permanent site's sector where none of them is (in place)."""
    permanent = network.permanent
    keep = sector.shape[1]
    lacking = ~permanent[site[:, :keep]].any(axis=1)
    if not lacking.any():
        return
    rows = np.flatnonzero(lacking)
    stable = np.flatnonzero(permanent)
    distance, nearest = cKDTree(network.site_xy[stable]).query(xy[rows], k=1)
    fallback_site = stable[np.asarray(nearest, dtype=np.intp)].reshape(-1, 1)
    fallback_sector, fallback_power = _best_sectors(
        network=network,
        xy=xy[rows],
        site=fallback_site,
        distance=np.asarray(distance, dtype=np.float64).reshape(-1, 1),
        exponent=exponent,
    )
    sector[rows, -1] = fallback_sector[:, 0]
    power[rows, -1] = np.minimum(fallback_power[:, 0], power[rows, -2] if keep > 1 else 0.0)
