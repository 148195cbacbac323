"""Simulated releases with known truth, to test estimators under stated biases.

A release is simulated from the census population by age of each municipality, the way the
holder's chain would produce it: a share `sampling_fraction` of the population is simulated
(exactly, area by area, like the synthetic world), residents subscribe with a probability
that may depend on their region and age, subscribers may carry second SIMs, machine SIMs may
slip through the holder's filter, some homes go undetected or land in a neighbouring
municipality of the same arrondissement, and the counts are then thresholded, noised and
rounded. The truth is the census population.

The noise here is drawn with numpy: this module imitates a release for tests and benchmarks;
it protects nothing and must never produce a real one (the holder's releases are noised with
OpenDP inside the enclave).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cellcensus.errors import CellcensusError
from cellcensus.nso.expansion import age_band_start, ownership_of
from cellcensus.reference import belgium
from cellcensus.release import Provenance, Release

URBAN_DENSITY = 600.0
"""Inhabitants per km² above which an area counts as urban for the urban bias terms."""


@dataclass(frozen=True)
class SimulationBiases:
    """What the simulated operator's data gets wrong; the default gets nothing wrong.

    Attributes:
        regional_share: Operator's market share per region relative to the national one
            (``{"2000": 1.1}``: 10 % above); regions absent have 1.
        ownership_by_age: Share of persons who own a phone per lower age limit; None for
            everybody.
        secondary_sim_rate: Probability that a subscriber carries a second SIM of the
            operator (counted as a second resident device).
        urban_secondary_sim_rate: Added to that probability in urban areas.
        m2m_rate: Machine SIMs that pass the holder's filter, per subscriber.
        urban_m2m_rate: Added to that rate in urban areas.
        home_loss: Probability that a device's home is not detected at all.
        misallocation: Probability that a device's home is placed in another municipality
            of the same arrondissement (chosen in proportion to population).
    """

    regional_share: Mapping[str, float] = field(default_factory=dict)
    ownership_by_age: Mapping[int, float] | None = None
    secondary_sim_rate: float = 0.0
    urban_secondary_sim_rate: float = 0.0
    m2m_rate: float = 0.0
    urban_m2m_rate: float = 0.0
    home_loss: float = 0.0
    misallocation: float = 0.0


REALISTIC_OWNERSHIP: Mapping[int, float] = MappingProxyType(
    {0: 0.0, 5: 0.08, 10: 0.55, 15: 0.9, 20: 0.97, 30: 0.98, 60: 0.93, 70: 0.8, 80: 0.5}
)
"""Ownership by age of the realistic scenario: close to, not equal to, the estimators' default."""

REALISTIC_BIASES = SimulationBiases(
    regional_share=MappingProxyType({"2000": 1.12, "3000": 0.84, "4000": 0.95}),
    ownership_by_age=REALISTIC_OWNERSHIP,
    secondary_sim_rate=0.05,
    urban_secondary_sim_rate=0.05,
    m2m_rate=0.01,
    urban_m2m_rate=0.02,
    home_loss=0.03,
    misallocation=0.03,
)
"""The biases the realistic world is meant to switch on, at plausible strengths."""


@dataclass(frozen=True)
class SimulatedDisclosure:
    """How the simulated counts are protected.

    Attributes:
        min_count: Noisy counts at or below this are suppressed.
        rounding_base: Released counts are rounded to a multiple of this.
        epsilon: Laplace noise of scale ``1 / epsilon`` (sensitivity 1); None for none.
        noise_column: Whether the table declares its noise in a ``noise_sd`` column (else
            only the policy in the provenance declares it).
    """

    min_count: float = 15.0
    rounding_base: int = 5
    epsilon: float | None = 0.5
    noise_column: bool = False


@dataclass(frozen=True)
class SimulatedRelease:
    """A simulated release and the truth behind it.

    Attributes:
        release: What the statistics office receives.
        truth: Resident population per area_code (the census).
        devices: Resident devices per area_code before disclosure control.
    """

    release: Release
    truth: pd.Series
    devices: pd.Series


def simulate_release(
    *,
    market_share: float = 0.4,
    sampling_fraction: float = 0.1,
    biases: SimulationBiases | None = None,
    disclosure: SimulatedDisclosure | None = None,
    publish_subscribers_by_region: bool = True,
    seed: int = 0,
) -> SimulatedRelease:
    """Simulate a usual-residence release for the 589 Belgian municipalities of 2011.

    Args:
        market_share: National share of residents who subscribe (what the holder publishes).
        sampling_fraction: Share of the population simulated (the world's scale).
        biases: What the data gets wrong (default: nothing).
        disclosure: How counts are protected (default: threshold 15, Laplace epsilon 0.5,
            rounding to 5, noise declared in the policy only).
        publish_subscribers_by_region: Whether the holder publishes its subscribers per
            region.
        seed: Random seed.

    Returns:
        The release with its truth.

    Raises:
        CellcensusError: If a probability implied by the biases exceeds 1.
    """
    biases = biases or SimulationBiases()
    disclosure = disclosure or SimulatedDisclosure()
    rng = np.random.default_rng(seed)
    frame = _frame()
    persons = _persons(frame=frame, sampling_fraction=sampling_fraction, rng=rng)
    subscribers = _subscribers(
        persons=persons, frame=frame, market_share=market_share, biases=biases, rng=rng
    )
    devices = _devices(subscribers=subscribers, frame=frame, biases=biases, rng=rng)
    table = _protect(devices=devices, codes=frame.index, disclosure=disclosure, rng=rng)
    published: dict[str, object] = {
        "market_share": market_share,
        "sampling_fraction": sampling_fraction,
        "period": {"start": "2011-03-01", "end": "2011-03-28"},
        "synthetic": True,
    }
    if publish_subscribers_by_region:
        by_region = pd.Series(subscribers, index=frame.index).groupby(frame["region"]).sum()
        published["subscribers_by_region"] = {str(k): int(v) for k, v in by_region.items()}
    release = Release(
        table=table, provenance=_provenance(disclosure=disclosure, seed=seed), published=published
    )
    return SimulatedRelease(
        release=release,
        truth=frame["population"].astype("float64"),
        devices=pd.Series(devices, index=frame.index, dtype="float64"),
    )


def _frame() -> pd.DataFrame:
    """Municipalities with region, arrondissement, area and census population by age band."""
    ages = belgium.census_age_sex()
    wide = ages.pivot_table(
        index="area_code", columns="age_5y", values="population", aggfunc="sum", fill_value=0
    )
    areas = belgium.municipalities().set_index("area_code")
    frame = areas[["region", "arrondissement", "area_km2"]].join(wide.add_prefix("age:"))
    frame = frame.fillna(0)
    frame["population"] = frame.filter(like="age:").sum(axis=1)
    return frame


def _persons(
    *, frame: pd.DataFrame, sampling_fraction: float, rng: np.random.Generator
) -> pd.DataFrame:
    """Simulated persons per area and age band: ``round(scale * population)`` per area."""
    bands = frame.filter(like="age:").astype("float64")
    totals = np.rint(frame["population"].to_numpy() * sampling_fraction).astype(np.int64)
    shares = bands.to_numpy() / bands.to_numpy().sum(axis=1, keepdims=True)
    drawn = np.vstack(
        [rng.multinomial(total, share) for total, share in zip(totals, shares, strict=True)]
    )
    return pd.DataFrame(drawn, index=frame.index, columns=bands.columns)


def _subscribers(
    *,
    persons: pd.DataFrame,
    frame: pd.DataFrame,
    market_share: float,
    biases: SimulationBiases,
    rng: np.random.Generator,
) -> NDArray[np.int64]:
    """Subscribers per area: persons x regional share x ownership at their age."""
    starts = [age_band_start(column.removeprefix("age:")) for column in persons.columns]
    table = biases.ownership_by_age
    own = np.array([1.0 if table is None else ownership_of(age=a, table=table) for a in starts])
    relative = frame["region"].astype(str).map(lambda r: biases.regional_share.get(r, 1.0))
    weight = relative.to_numpy()[:, None] * own[None, :]
    counts = persons.to_numpy()
    base = market_share * counts.sum() / float((counts * weight).sum())
    probability = base * weight
    if probability.max() > 1.0:
        raise CellcensusError(
            f"simulated subscription probability reaches {probability.max():.2f} > 1: lower "
            "the market share or the regional shares"
        )
    return np.asarray(rng.binomial(counts, probability).sum(axis=1), dtype=np.int64)


def _devices(
    *,
    subscribers: NDArray[np.int64],
    frame: pd.DataFrame,
    biases: SimulationBiases,
    rng: np.random.Generator,
) -> NDArray[np.int64]:
    """Resident devices per area: subscribers, second SIMs, machines, lost and moved homes."""
    urban = (frame["population"] / frame["area_km2"] > URBAN_DENSITY).to_numpy()
    second = rng.binomial(
        subscribers, biases.secondary_sim_rate + urban * biases.urban_secondary_sim_rate
    )
    machines = rng.poisson(subscribers * (biases.m2m_rate + urban * biases.urban_m2m_rate))
    devices = subscribers + second + machines
    devices = devices - rng.binomial(devices, biases.home_loss)
    return _misallocate(devices=devices, frame=frame, share=biases.misallocation, rng=rng)


def _misallocate(
    *,
    devices: NDArray[np.int64],
    frame: pd.DataFrame,
    share: float,
    rng: np.random.Generator,
) -> NDArray[np.int64]:
    """Move a share of each area's devices to other areas of its arrondissement."""
    if share <= 0:
        return devices
    moved = rng.binomial(devices, share)
    result = devices - moved
    population = frame["population"].to_numpy(dtype="float64")
    positions = pd.Series(np.arange(len(frame)), index=frame.index)
    for _, members in positions.groupby(frame["arrondissement"].to_numpy()):
        places = members.to_numpy()
        if places.size < 2:
            result[places] += moved[places]
            continue
        for place in places:
            others = places[places != place]
            weights = population[others] / population[others].sum()
            result[others] += rng.multinomial(moved[place], weights)
    return np.asarray(result, dtype=np.int64)


def _protect(
    *,
    devices: NDArray[np.int64],
    codes: pd.Index,
    disclosure: SimulatedDisclosure,
    rng: np.random.Generator,
) -> pd.DataFrame:
    noisy = devices.astype("float64")
    if disclosure.epsilon is not None:
        noisy = noisy + rng.laplace(0.0, 1.0 / disclosure.epsilon, size=noisy.size)
    rounded = np.clip(np.rint(noisy / disclosure.rounding_base) * disclosure.rounding_base, 0, None)
    released = pd.array(rounded.astype(np.int64), dtype="Int64")
    released[noisy <= disclosure.min_count] = pd.NA
    table = pd.DataFrame({"area_code": codes.astype(str).to_numpy(), "device_count": released})
    if disclosure.noise_column:
        sd = 0.0 if disclosure.epsilon is None else float(np.sqrt(2.0) / disclosure.epsilon)
        table["noise_sd"] = sd
    return table


def _provenance(*, disclosure: SimulatedDisclosure, seed: int) -> Provenance:
    dp = (
        None
        if disclosure.epsilon is None
        else {"epsilon": disclosure.epsilon, "delta": 0.0, "mechanism": "laplace"}
    )
    return Provenance(
        job_id=f"simulated-{seed}",
        algorithm="usual_residence",
        version="simulated",
        parameters={},
        policy={
            "min_count": disclosure.min_count,
            "rounding_base": disclosure.rounding_base,
            "secondary_suppression": False,
            "dp": dp,
        },
        # Made now, like a release of the enclave: the period is simulated, this time is not.
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        engine="simulation",
        area_level="municipality",
    )
