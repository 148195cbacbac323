"""Differencing of overlapping releases: breaks threshold-only output, fails on cellcensus.

Each pair of releases attacks one target per area (20 areas). Margins: on cellcensus releases
at the default policy (epsilon 0.4, rounding to 5) the attacker's expected accuracy is 0.54
(simulated with 2 million draws); with 2,000 targets its standard error is 0.011, so the 0.6
bar sits more than 5 standard errors above it.
"""

import pandas as pd
import pytest

from cellcensus.errors import DisclosureError
from cellcensus.holder.disclosure import (
    DisclosurePolicy,
    PrivacyLedger,
    Role,
    policy_for,
    protect,
)
from cellcensus.holder.disclosure.attacks.differencing import differencing_attack
from cellcensus.holder.disclosure.attacks.releases import (
    cellcensus_release,
    exact_release,
    threshold_release,
)

SEED = 20170403
SECRET = b"holder-secret"


@pytest.mark.parametrize("release", [exact_release(), threshold_release(min_count=15)])
def test_differencing_isolates_one_device_in_unprotected_and_threshold_only_output(release):
    outcome = differencing_attack(protection=release, pairs=10, seed=SEED)
    assert outcome.accuracy == 1.0
    assert outcome.mean_abs_error == 0.0


def test_differencing_fails_on_cellcensus_releases():
    policy = policy_for(algorithm="usual_residence")
    release = cellcensus_release(policy=policy, contribution_bound=1.0, rounding_key=SECRET)
    outcome = differencing_attack(protection=release, pairs=100, seed=SEED)
    assert outcome.trials == 2000
    assert outcome.accuracy < 0.6
    # the recovered contribution (truth 0 or 1) is off by several devices on average
    assert outcome.mean_abs_error > 2.0


def test_consistent_rounding_alone_leaks_only_at_rounding_boundaries():
    release = cellcensus_release(
        policy=DisclosurePolicy(), contribution_bound=1.0, rounding_key=SECRET
    )
    outcome = differencing_attack(protection=release, pairs=50, seed=SEED)
    # a +1 change crosses the secret boundary 1 time in 5: accuracy 0.6 expected (sd 0.016)
    assert 0.53 < outcome.accuracy < 0.67


def test_repeating_a_release_to_average_the_noise_is_stopped_by_the_ledger(tmp_path):
    """Averaging attack: ask the same noisy table again and again. The ledger stops it."""
    ledger = PrivacyLedger.at(path=tmp_path / "ledger.sqlite")
    ledger.set_budget(analyst="eve", project="p", epsilon=2.0, by="steward", role=Role.STEWARD)
    policy = policy_for(algorithm="usual_residence")
    raw = pd.DataFrame({"area_code": ["a"], "device_count": [101.0]})
    released = []
    with pytest.raises(DisclosureError, match=r"only epsilon=0, delta=0 is left of epsilon=2"):
        for job in range(100):
            charge = ledger.charge(
                job_id=f"job-{job}", analyst="eve", project="p", epsilon=policy.epsilon
            )
            table = protect(
                raw,
                keys=["a"],
                policy=policy,
                contribution_bound=1.0,
                charge=charge,
                rounding_key=SECRET,
            )
            released.append(float(table.device_count.iloc[0]))
    # 2.0 / 0.4 = 5 releases, then refused before computing: their mean has a noise sd of
    # 2.5 * sqrt(2 / 5) = 1.6 devices, so 100 and 101 devices still cannot be told apart
    assert len(released) == 5
    assert ledger.remaining(analyst="eve", project="p").epsilon == pytest.approx(0.0)
    assert all(value % 5 == 0 for value in released)


def test_without_noise_repeated_releases_are_identical():
    policy = DisclosurePolicy()
    raw = pd.DataFrame({"area_code": ["a", "b"], "device_count": [101.0, 57.0]})
    tables = [protect(raw, keys=["a", "b"], policy=policy, rounding_key=SECRET) for _ in range(5)]
    for table in tables[1:]:
        pd.testing.assert_frame_equal(table, tables[0])
