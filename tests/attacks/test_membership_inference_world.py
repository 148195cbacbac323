"""Membership inference (Pyrgelis et al., NDSS 2018) on the synthetic world.

The population is 100 residents of the Brussels-Capital Region in the project's synthetic
Belgium (`attacks.world.WORLD`: scale 0.001, seed 11), drawn at random; their trajectories
are the world's hourly ground truth (``truth/presence``) over its first local date. The
regions of interest are Brussels' 19 municipalities (a person elsewhere or abroad is in none);
a group is 25 of the 100, released as counts per region and hour (24 x 19 cells). The
adversary knows everyone's locations, trains a logistic regression on 200 simulated releases
(the protection is public) and scores 600 challenges; the target moves between regions.

(a) Exact counts: AUC 0.95-1.00 over four seeds. The protected releases below are scored on
1,200 challenges (`N_TEST`).
(b) Released as `present_population` is (its default policy: threshold 15, rounding 5,
Gaussian epsilon 0.4, delta 1e-6, noise calibrated to 1 date x 24 slots = 24 units, sigma
52): AUC 0.46-0.52. Even the strongest adversary, who knows every other person's counts,
gets at most 0.526 (computed exactly); with 1,200 challenges the AUC's standard error is
0.017, so the 0.6 bar sits 6 standard errors above 0.5 (with 600, 4: a chance failure about
once in 50,000 runs).
(c) Groups of 25 never pass the threshold: every cell is withheld and (b) would hold without
any noise (AUC exactly 0.5). So the noise is attacked alone: calibrated as in (b), AUC
0.47-0.51 (expected 0.5); far too small (Laplace epsilon 5, the bound of one slot), 0.95,
which shows the game would see noise that does not cover the release.
"""

from __future__ import annotations

import pytest

from cellcensus.holder.disclosure.attacks.releases import (
    exact_release,
    noise_only_release,
    threshold_release,
)
from cellcensus.holder.disclosure.attacks.world import (
    MEMBERSHIP_DAYS,
    PresenceTruth,
    presence_truth,
    present_population_calibration,
    present_population_release,
    strongest_adversary_auc,
    world_membership_attack,
)

pytestmark = pytest.mark.slow  # synthesises a small world, 800 OpenDP releases

SEED = 2018
CELLS = 24 * 19
N_TEST = 1200


@pytest.fixture(scope="module")
def truth() -> PresenceTruth:
    return presence_truth()


def test_membership_is_plain_in_exact_aggregates_and_hidden_in_releases(truth: PresenceTruth):
    exact = world_membership_attack(truth, protection=exact_release(), seed=SEED)
    assert exact.auc > 0.9

    dates = truth.dates[:MEMBERSHIP_DAYS]
    _, _, units = present_population_calibration(dates=dates)
    assert units == 24
    release = present_population_release(dates=dates, rounding_key=b"secret")
    protected = world_membership_attack(truth, protection=release, seed=SEED, n_test=N_TEST)
    assert protected.n_test == N_TEST
    assert protected.auc <= 0.6


def test_noise_alone_hides_membership_and_too_little_noise_does_not(truth: PresenceTruth):
    # The threshold hides every cell here, so the test above does not test the noise.
    assert world_membership_attack(truth, protection=threshold_release(), seed=SEED).auc == 0.5
    policy, bound, units = present_population_calibration(dates=truth.dates[:MEMBERSHIP_DAYS])
    calibrated = noise_only_release(
        epsilon=policy.epsilon, contribution_bound=bound, units=units, dp_policy=policy.dp
    )
    assert (
        world_membership_attack(truth, protection=calibrated, seed=SEED, n_test=N_TEST).auc <= 0.6
    )
    weak = noise_only_release(epsilon=5.0, contribution_bound=bound)
    assert world_membership_attack(truth, protection=weak, seed=SEED).auc > 0.8


def test_strongest_adversary_against_the_hourly_release_stays_under_the_bar(
    truth: PresenceTruth,
):
    dates = truth.dates[:MEMBERSHIP_DAYS]
    assert strongest_adversary_auc(dates=dates, cells=CELLS) <= 0.6
    # sigma grows with sqrt(units) as the target's signal does: the same over two dates
    assert strongest_adversary_auc(dates=truth.dates, cells=2 * CELLS) == pytest.approx(
        strongest_adversary_auc(dates=dates, cells=CELLS)
    )
