"""The trajectory and membership attacks on the synthetic world (`cellcensus.world`).

The grid simulation of `mobility` shows the mechanisms; here the devices are persons of the
project's synthetic Belgium, and their trajectories its ground truth (``truth/presence``:
each sampled person's municipality at each hour, null when abroad). The world is tiny
(`WORLD`: scale 0.001, about 11,000 persons, two local days from Monday 7 March 2011, all
persons in the presence sample) and generated in a temporary folder.

Releases are hourly counts per municipality, as `present_population` releases them (one
local date and hourly slot per privacy unit, at most one area per person and slot), protected
by `protect` with that algorithm's default policy and the enclave's calibration: the noise
covers every unit of the release, dates x slots (`enclave.compute.privacy_units`), with the
manifest's contribution bound in each (`present_population_release`).

- Trajectory recovery (Xu et al. 2017): `TRAJECTORY_DEVICES` persons drawn at random from
  those in Belgium at every hour, over all 589 municipalities (centroids as coordinates) and
  48 hours.
- Membership inference (Pyrgelis et al. 2018): the regions of interest are the 19
  municipalities of the Brussels-Capital Region; the population is `MEMBERSHIP_POPULATION`
  residents of Brussels, the groups `MEMBERSHIP_GROUP` of them, over the 24 hours of the
  first local date; a person outside Brussels (or abroad) is in no region; the target moves
  between regions.
"""

from __future__ import annotations

import datetime as dt
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import shapely
from scipy.stats import norm

from cellcensus.errors import CellcensusError
from cellcensus.holder.algorithms import get_algorithm
from cellcensus.holder.disclosure.attacks.membership_inference import (
    MembershipGame,
    MembershipOutcome,
    play_membership_game,
)
from cellcensus.holder.disclosure.attacks.mobility import HOURS, FloatArray, IntArray
from cellcensus.holder.disclosure.attacks.releases import Protection, cellcensus_release
from cellcensus.holder.disclosure.attacks.trajectory_recovery import (
    TrajectoryOutcome,
    attack_trajectories,
)
from cellcensus.holder.disclosure.hierarchy import layout
from cellcensus.holder.disclosure.noise import noisy_counts
from cellcensus.holder.disclosure.policy import DisclosurePolicy, policy_for
from cellcensus.holder.enclave.compute import privacy_units
from cellcensus.reference import municipalities
from cellcensus.world import WorldParams, synthesize

WORLD = WorldParams(scale=0.001, days=2, seed=11, start=dt.date(2011, 3, 7))
"""The attacked world: about 11,000 persons, all with hourly presence truth, two days."""
RELEASED_ALGORITHM = "present_population"
"""Hourly counts per area are what this algorithm releases: its manifest and policy apply."""
RELEASED_PARAMETERS = {"slot_minutes": 60}
TRAJECTORY_DEVICES = 400
MEMBERSHIP_REGION = "4000"
"""Region code of the Brussels-Capital Region (its 19 municipalities are the regions)."""
MEMBERSHIP_POPULATION = 100
MEMBERSHIP_GROUP = 25
MEMBERSHIP_DAYS = 1
"""The membership releases cover the first local date: 24 slots x 19 regions (456 cells)."""
KM_PER_DEGREE = 111.2


@dataclass(frozen=True)
class PresenceTruth:
    """Where each person of the world was at each hour of its local days.

    Attributes:
        persons: Person ids, one per row of `where`.
        home: Home municipality of each person.
        areas: The municipalities (area codes, sorted), the columns of the releases.
        coordinates: (x, y) in km of each area's centroid.
        dates: The local dates; hour h of `where` is slot h % 24 of date h // 24.
        where: Index into `areas` of each person's area at each hour, -1 when abroad.
    """

    persons: list[str]
    home: list[str]
    areas: list[str]
    coordinates: FloatArray
    dates: list[dt.date]
    where: IntArray


def presence_truth(params: WorldParams = WORLD) -> PresenceTruth:
    """Synthesise the world in a temporary folder and read its hourly presence truth."""
    with tempfile.TemporaryDirectory(prefix="cellcensus-attack-world-") as folder:
        out = Path(folder) / "world"
        synthesize(out=out, params=params)
        presence = pq.read_table(out / "truth" / "presence").to_pandas()
        persons = pq.read_table(out / "truth" / "persons.parquet").to_pandas()
    reference = municipalities().sort_values("area_code")
    areas = reference["area_code"].astype(str).tolist()
    centroids = shapely.centroid(reference["geometry"].to_numpy())
    x, y = shapely.get_x(centroids), shapely.get_y(centroids)
    coordinates = np.column_stack(
        [x * KM_PER_DEGREE * math.cos(math.radians(50.5)), y * KM_PER_DEGREE]
    ).astype(np.float64)
    ids = sorted(presence["person_id"].unique())
    stamps = presence["hour"].astype("int64").to_numpy()
    hours = np.unique(stamps)
    dates = sorted(dt.date.fromisoformat(str(day)) for day in presence["date"].unique())
    if len(hours) != HOURS * len(dates):
        raise CellcensusError(f"{len(hours)} presence hours for {len(dates)} local days")
    area_index = pd.Series(np.arange(len(areas)), index=areas)
    where = np.full((len(ids), len(hours)), -1, dtype=np.int64)
    rows = pd.Index(ids).get_indexer(presence["person_id"])
    columns = np.searchsorted(hours, stamps)
    known = presence["area"].notna().to_numpy()
    where[rows[known], columns[known]] = area_index.loc[
        presence["area"][known].astype(str)
    ].to_numpy()
    homes = persons.set_index("person_id")["home_area"].astype(str)
    return PresenceTruth(
        persons=ids,
        home=homes.reindex(ids).tolist(),
        areas=areas,
        coordinates=coordinates,
        dates=dates,
        where=where,
    )


def present_population_release(
    *, dates: Sequence[dt.date], rounding_key: bytes, policy: DisclosurePolicy | None = None
) -> Protection:
    """Hourly counts per area released as the enclave releases `present_population`.

    The counts (hours x areas, hours running over `dates`) go through `protect` with the
    algorithm's default policy (or `policy`), its manifest's contribution bound, and the
    noise calibrated to all dates x slots of the release (`privacy_units`).
    """
    release_policy, bound, units = present_population_calibration(dates=dates)
    return cellcensus_release(
        policy=policy or release_policy,
        contribution_bound=bound,
        rounding_key=rounding_key,
        units=units,
    )


def present_population_calibration(
    *, dates: Sequence[dt.date]
) -> tuple[DisclosurePolicy, float, int]:
    """The default policy, contribution bound and privacy units of an hourly release."""
    manifest = get_algorithm(RELEASED_ALGORITHM).manifest
    parsed = manifest.parse(dict(RELEASED_PARAMETERS))
    slots = 1440 // int(RELEASED_PARAMETERS["slot_minutes"])
    units = privacy_units(
        manifest.unit_keys, {"local_date": list(dates), "slot": list(range(slots))}
    )
    return policy_for(algorithm=RELEASED_ALGORITHM), manifest.bound(parsed), units


def world_trajectory_attack(
    truth: PresenceTruth,
    *,
    protection: Protection,
    seed: int,
    samples: int = 2,
    n_devices: int = TRAJECTORY_DEVICES,
) -> TrajectoryOutcome:
    """Xu et al.'s attack on the hourly counts of persons of the world.

    Each sample draws `n_devices` persons among those in Belgium at every hour, releases
    their counts per municipality and hour, and recovers their trajectories; accuracy and
    the population baseline are averaged over the samples.
    """
    rng = np.random.default_rng(seed)
    at_home = np.flatnonzero((truth.where >= 0).all(axis=1))
    accuracy, baseline = [], []
    for _ in range(samples):
        chosen = np.sort(rng.choice(at_home, size=n_devices, replace=False))
        right, guessed = attack_trajectories(
            truth=truth.where[chosen],
            coordinates=truth.coordinates,
            protection=protection,
            rng=rng,
        )
        accuracy.append(right)
        baseline.append(guessed)
    return TrajectoryOutcome(
        accuracy=float(np.mean(accuracy)),
        baseline=float(np.mean(baseline)),
        n_devices=n_devices,
        worlds=samples,
    )


def membership_regions() -> list[str]:
    """The regions of interest of the membership game: Brussels' municipalities, sorted."""
    reference = municipalities()
    return sorted(reference.loc[reference["region"] == MEMBERSHIP_REGION, "area_code"].astype(str))


def world_membership_game(
    truth: PresenceTruth,
    *,
    rng: np.random.Generator,
    population: int = MEMBERSHIP_POPULATION,
    group_size: int = MEMBERSHIP_GROUP,
) -> MembershipGame:
    """Brussels residents of the world, their regions among Brussels' municipalities.

    The slots are the hours of the first `MEMBERSHIP_DAYS` local dates.
    """
    rois = membership_regions()
    residents = np.flatnonzero(np.isin(truth.home, rois))
    chosen = np.sort(rng.choice(residents, size=population, replace=False))
    roi_of_area = np.full(len(truth.areas) + 1, -1, dtype=np.int64)  # last: abroad (-1)
    roi_of_area[[truth.areas.index(code) for code in rois]] = np.arange(len(rois))
    regions = roi_of_area[truth.where[chosen, : HOURS * MEMBERSHIP_DAYS]]
    movers = np.flatnonzero((regions != regions[:, :1]).any(axis=1))
    return MembershipGame(
        regions=regions,
        target=int(rng.choice(movers)),
        group_size=group_size,
        n_regions=len(rois),
    )


def world_membership_attack(
    truth: PresenceTruth,
    *,
    protection: Protection,
    seed: int,
    n_train: int = 200,
    n_test: int = 600,
) -> MembershipOutcome:
    """Pyrgelis et al.'s game on Brussels residents of the world (see the module)."""
    rng = np.random.default_rng(seed)
    game = world_membership_game(truth, rng=rng)
    return play_membership_game(
        game, protection=protection, rng=rng, n_train=n_train, n_test=n_test
    )


def strongest_adversary_auc(*, dates: Sequence[dt.date], cells: int) -> float:
    """AUC of the strongest membership adversary against a Gaussian hourly release.

    The adversary knows every other person's contribution exactly; the target adds the
    contribution bound L to one cell in each of the U units (dates x slots) of a release
    of `cells` cells: a shift of L2 norm sqrt(U) L under Gaussian noise of OpenDP's
    calibrated sigma. The likelihood-ratio test's AUC is Phi(sqrt(U) L / (sigma sqrt 2)),
    exactly; threshold and rounding (post-processing) can only lower it.
    """
    policy, bound, units = present_population_calibration(dates=dates)
    if policy.dp is None or policy.dp.mechanism != "gaussian":
        raise CellcensusError("the closed form is for the Gaussian mechanism")
    keys = [f"{cell:05d}" for cell in range(cells)]
    sigma = noisy_counts(
        leaves=np.zeros(cells),
        layout=layout(leaves=keys, leaf_level="area_code"),
        dp_policy=policy.dp,
        contribution_bound=bound,
        units=units,
    ).scale
    return float(norm.cdf(math.sqrt(units) * bound / (sigma * math.sqrt(2.0))))
