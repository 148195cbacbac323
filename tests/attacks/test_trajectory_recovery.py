"""Trajectory recovery (Xu et al., WWW 2017) from hourly small-area counts.

40 synthetic devices on 16 x 16 areas, 24 hours, 4 worlds. On exact counts the attack
recovers 0.72-0.80 of device-hours across seeds (Xu et al. report 0.73-0.91 on real data);
random linking of the exact hourly distributions (the population baseline) gets 0.12. On
cellcensus releases (contribution bound 24: one area per device and hour) it must do no
better than that baseline.
"""

import numpy as np
import pytest

from cellcensus.holder.disclosure import policy_for
from cellcensus.holder.disclosure.attacks.mobility import HOURS, Grid, synthetic_trajectories
from cellcensus.holder.disclosure.attacks.releases import (
    cellcensus_release,
    exact_release,
    noise_only_release,
)
from cellcensus.holder.disclosure.attacks.trajectory_recovery import (
    recover_trajectories,
    recovery_accuracy,
    slot_locations,
    trajectory_attack,
)

SEED = 2017


def test_attack_recovers_most_trajectories_from_exact_hourly_counts():
    outcome = trajectory_attack(protection=exact_release(), seed=SEED)
    assert outcome.accuracy > 0.6
    assert outcome.accuracy > outcome.baseline + 0.4


@pytest.mark.parametrize("release", ["cellcensus", "noise only"])
def test_attack_falls_to_the_population_baseline_on_protected_releases(release):
    policy = policy_for(algorithm="usual_residence")
    protection = (
        cellcensus_release(policy=policy, contribution_bound=HOURS, rounding_key=b"secret")
        if release == "cellcensus"
        else noise_only_release(epsilon=policy.epsilon, contribution_bound=HOURS)
    )
    outcome = trajectory_attack(protection=protection, seed=SEED)
    assert outcome.accuracy <= outcome.baseline + 0.05


def test_recovery_is_perfect_for_devices_that_never_meet():
    grid = Grid(side=8)
    truth = np.array([[0] * 12 + [1] * 12, [63] * 24])
    counts = np.zeros((24, grid.n_areas))
    for device in truth:
        counts[np.arange(24), device] += 1
    recovered = recover_trajectories(released=counts, coordinates=grid.coordinates(), n_devices=2)
    assert recovery_accuracy(recovered=recovered, truth=truth) == 1.0


def test_slot_reading_apportions_devices_and_falls_back_to_uniform():
    assert slot_locations(np.array([np.nan, 3.0, 1.0]), n_devices=4).tolist() == [1, 1, 1, 2]
    assert sorted(slot_locations(np.array([np.nan, np.nan]), n_devices=2)) == [0, 1]


def test_synthetic_devices_commute_and_come_home():
    trajectories = synthetic_trajectories(
        grid=Grid(side=16), n_devices=50, rng=np.random.default_rng(1)
    )
    assert trajectories.shape == (50, HOURS)
    assert (trajectories[:, 0] == trajectories[:, -1]).all()
    assert 0.6 < (trajectories[:, 12] != trajectories[:, 0]).mean() < 0.95
