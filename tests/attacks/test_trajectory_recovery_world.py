"""Trajectory recovery (Xu et al., WWW 2017) on the synthetic world.

The devices are persons of the project's synthetic Belgium (`attacks.world.WORLD`: scale
0.001, about 11,000 persons, two local days), their trajectories its hourly ground truth
(``truth/presence``). Each of 2 samples draws 400 persons who stay in Belgium all 48 hours
and releases their counts per municipality (all 589, centroids as coordinates) and hour.

(a) On exact counts the attack recovers 0.78 of person-hours (0.775-0.779 over three seeds);
random linking of the exact hourly distributions (the population baseline) gets 0.057.
(b) Released as `present_population` is (its default policy: threshold 15, rounding 5,
Gaussian epsilon 0.4, delta 1e-6; noise calibrated to the 2 dates x 24 slots = 48 units,
sigma 74), the attack got 0.070-0.072, the baseline's level, while the threshold let noise
through; raised over noise (`dp.noise_releases`), it withholds every count of these 400
persons, and the attack gets what it gets from nothing published (0.40: a person at home
most hours matches a guess of one place all the time). Over 2 x 400 x 48 person-hours the
accuracy's standard error is below 0.005, so the bar of that level + 0.05 is far away.
"""

from __future__ import annotations

import numpy as np
import pytest

from cellcensus.holder.disclosure.attacks.releases import exact_release, noise_only_release
from cellcensus.holder.disclosure.attacks.world import (
    PresenceTruth,
    presence_truth,
    present_population_calibration,
    present_population_release,
    world_trajectory_attack,
)

pytestmark = pytest.mark.slow  # synthesises a small world

SEED = 2017


@pytest.fixture(scope="module")
def truth() -> PresenceTruth:
    return presence_truth()


def test_world_presence_truth_has_every_person_every_hour(truth: PresenceTruth):
    assert len(truth.dates) == 2
    assert truth.where.shape == (len(truth.persons), 48)
    assert len(truth.areas) == 589
    # abroad (-1) is rare; nobody is anywhere but a municipality or abroad
    assert (truth.where >= -1).all()
    assert (truth.where == -1).mean() < 0.05


def test_release_is_calibrated_to_every_date_and_slot(truth: PresenceTruth):
    policy, bound, units = present_population_calibration(dates=truth.dates)
    assert units == 48
    assert bound == 1.0
    assert policy.dp is not None and policy.dp.mechanism == "gaussian"
    assert policy.epsilon == pytest.approx(0.4)


def test_trajectories_are_recovered_from_exact_counts_and_not_from_releases(
    truth: PresenceTruth,
):
    exact = world_trajectory_attack(truth, protection=exact_release(), seed=SEED)
    assert exact.accuracy > 0.6
    assert exact.accuracy > exact.baseline + 0.4

    protected = world_trajectory_attack(
        truth,
        protection=present_population_release(dates=truth.dates, rounding_key=b"secret"),
        seed=SEED,
    )
    assert protected.baseline == pytest.approx(exact.baseline)  # same persons, same draws
    # Nothing published at all: the attack still links each person to one place all the
    # time, and a person at home most hours matches one such guess (0.40 here). A release
    # must tell the attack no more than that, or than random linking.
    blind = world_trajectory_attack(truth, protection=withheld, seed=SEED)
    assert protected.accuracy <= max(protected.baseline, blind.accuracy) + 0.05


def withheld(counts: np.ndarray) -> np.ndarray:
    """A release with every count withheld."""
    return np.full(counts.shape, np.nan)


def test_noise_alone_brings_it_to_the_baseline(truth: PresenceTruth):
    """Without the threshold (most cells of 400 persons are below it), noise alone does it."""
    policy, bound, units = present_population_calibration(dates=truth.dates)
    noise = noise_only_release(
        epsilon=policy.epsilon, contribution_bound=bound, units=units, dp_policy=policy.dp
    )
    outcome = world_trajectory_attack(truth, protection=noise, seed=SEED)
    assert outcome.accuracy <= outcome.baseline + 0.05
