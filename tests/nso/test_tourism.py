"""Inbound tourism expanded from an ``inbound_tourism`` release to all foreign visitors."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cellcensus.errors import CellcensusError
from cellcensus.nso.tourism import estimate_tourism
from cellcensus.reference import municipalities
from cellcensus.release import Provenance, Release

PROVINCES = sorted(set(municipalities()["province"].astype(str)))
VISITORS = np.linspace(20_000, 2_000, len(PROVINCES)).astype(int)
"""All foreign visitors of each province over the period, the truth the estimates aim at."""
ROAMING_SHARE, FRACTION = 0.4, 0.1
EPSILON_SCALE = 40.0
"""Laplace scale of the release's noise per count (what its ci95 column declares)."""


def tourism_release(counts: pd.DataFrame, *, published: dict[str, Any] | None = None) -> Release:
    """A release as the enclave writes it: counts rounded to 5, a declared ci95 per count."""
    table = counts.assign(ci95=round(EPSILON_SCALE * math.log(20.0), 2))
    provenance = Provenance(
        job_id="j",
        algorithm="inbound_tourism",
        version="1.4.0",
        parameters={},
        policy={"dp": {"mechanism": "laplace", "epsilon": 0.4}, "rounding_base": 5},
        created_at="2026-01-01T00:00:00+00:00",
        engine="duckdb",
    )
    facts = {"roaming_share": ROAMING_SHARE, "sampling_fraction": FRACTION}
    return Release(table=table, provenance=provenance, published=facts | (published or {}))


def sampled_release(stays: list[np.ndarray], rng: np.random.Generator) -> Release:
    """Each visitor in the data with chance share x fraction, bringing all its nights."""
    p = ROAMING_SHARE * FRACTION
    rows = []
    for province, nights in zip(PROVINCES, stays, strict=True):
        seen = nights[rng.random(len(nights)) < p]
        for indicator, value in (("nights", seen.sum()), ("arrivals", len(seen))):
            noisy = value + rng.laplace(0.0, EPSILON_SCALE)
            rows.append((province, indicator, 5 * round(noisy / 5)))
    return tourism_release(pd.DataFrame(rows, columns=["area_code", "indicator", "device_count"]))


@pytest.mark.parametrize("lengths", ["geometric", "uniform"])
def test_intervals_cover_all_visitors_nights_and_arrivals(lengths):
    """Over 200 samples of visitors, the 95 % intervals hold the true nights and arrivals
    93-98 % of the time (measured 95-96 %) and the estimates are unbiased, whether stays are
    geometric (as the variance assumes) or of 1 to 7 nights (less spread). Taking every
    visitor's stay as the mean's (``m = n``) covered the nights 91-92 % of the time."""
    rng = np.random.default_rng(11)
    if lengths == "geometric":
        stays = [rng.geometric(1 / 3, size=n) for n in VISITORS]
    else:
        stays = [rng.integers(1, 8, size=n) for n in VISITORS]
    truth = {
        **{(code, "nights"): float(s.sum()) for code, s in zip(PROVINCES, stays, strict=True)},
        **{(code, "arrivals"): float(len(s)) for code, s in zip(PROVINCES, stays, strict=True)},
    }
    runs = []
    for _ in range(200):
        table = estimate_tourism(sampled_release(stays, rng)).table
        keys = zip(table["area_code"], table["indicator"], strict=True)
        true = np.array([truth[key] for key in keys])
        runs.append(
            table.assign(
                inside=(table["ci_lower"] <= true) & (true <= table["ci_upper"]), truth=true
            )
        )
    every = pd.concat(runs).groupby("indicator")
    coverage = every["inside"].mean()
    bias = every["estimate"].sum() / every["truth"].sum() - 1  # about 0.3 % sd
    assert coverage.between(0.93, 0.98).all(), coverage.to_dict()
    assert bias.abs().max() < 0.01, bias.to_dict()


def test_the_published_roaming_share_expands_unless_one_is_given():
    counts = pd.DataFrame(
        {
            "area_code": ["10000", "10000", "4000", "4000"],
            "indicator": ["nights", "arrivals", "nights", "arrivals"],
            "device_count": [300.0, 100.0, np.nan, 50.0],
        }
    )
    release = tourism_release(counts)
    published = estimate_tourism(release).indicator("nights")["estimate"]
    assert published["10000"] == pytest.approx(300 / (ROAMING_SHARE * FRACTION))
    assert np.isnan(published["4000"])  # suppressed: unknown, not none
    given = estimate_tourism(release, roaming_share=0.2).indicator("arrivals")["estimate"]
    assert given.to_dict() == pytest.approx({"10000": 100 / 0.02, "4000": 50 / 0.02})
    tourism = estimate_tourism(release)
    assert tourism.level == "province"
    assert tourism.average_stay == pytest.approx(3.0)  # Antwerp only: Brussels' nights withheld


def test_releases_this_cannot_expand_are_refused_saying_what_to_do():
    counts = pd.DataFrame(
        {"area_code": ["10000", "10000"], "indicator": ["nights", "arrivals"], "device_count": 5}
    )
    unshared = tourism_release(counts, published={"roaming_share": None})
    with pytest.raises(CellcensusError, match=r"publishes no roaming_share .* --roaming-share"):
        estimate_tourism(unshared)
    grid = tourism_release(counts.assign(area_code="1kmN3100E3900"))
    with pytest.raises(CellcensusError, match="no Belgian municipalities, arrondissements"):
        estimate_tourism(grid)
    other = tourism_release(counts)
    other = Release(
        table=other.table,
        provenance=Provenance(**{**vars(other.provenance), "algorithm": "trips_od"}),
        published=other.published,
    )
    with pytest.raises(CellcensusError, match="release of trips_od, not of inbound_tourism"):
        estimate_tourism(other)
    nights_only = tourism_release(counts.iloc[:1])
    with pytest.raises(CellcensusError, match="has no arrivals rows"):
        estimate_tourism(nights_only)
    with pytest.raises(CellcensusError, match="roaming share must be in"):
        estimate_tourism(tourism_release(counts), roaming_share=1.5 / FRACTION)
