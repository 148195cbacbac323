import datetime as dt

import pytest

from cellcensus.holder.disclosure import Charge, DisclosurePolicy


def receipt(policy: DisclosurePolicy, job_id: str = "job-test") -> Charge:
    """A ledger receipt covering `policy` (the ledger itself is tested in test_ledger)."""
    return Charge(
        job_id=job_id,
        analyst="ana",
        project="census",
        epsilon=policy.epsilon,
        delta=policy.delta,
        charged_at=dt.datetime.now(dt.UTC),
    )


@pytest.fixture
def charge_for():
    return receipt
