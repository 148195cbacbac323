"""Internal migration between two periods, expanded to persons and validated.

An ``internal_migration`` release counts devices by usual residence area in an earlier and a
later period (``origin``, ``destination``; the diagonal holds the stayers). Each count is
expanded with the persons per device of its ORIGIN area (`area_factors`): a mover is a
resident of its origin before it moves, and the residents' estimation speaks of that area.
Per area come the stayers, out-migrants, in-migrants, net migration and the migration rate
(out-migrants over stayers and out-migrants), each with a 95 % interval from the sampling of
devices and the release's declared noise.

Suppressed pairs are unknown, not zeros: an area's sum is over its released pairs, and says
how many of its pairs were withheld (``status`` ``partial``). With differential privacy the
threshold acts on the noisy counts, so pure noise may release an empty pair; the holder
raises the threshold over the noise so that about one does, whatever the matrix's size
(`Migration.noise_only_pairs` says how many to expect). Arrondissements are the level to ask
for: their pairs hold more movers for the same threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from cellcensus.nso.mobility import area_factors, selection_probability
from cellcensus.nso.production import EstimationResult
from cellcensus.nso.uncertainty import (
    CI95_Z,
    DeclaredNoise,
    declared_noise,
    noisy_interval,
    sampling_variance,
)
from cellcensus.nso.validation import Agreement, agreement
from cellcensus.release import Release, noise_threshold

MEASURES = ("stayers", "out_migrants", "in_migrants", "net_migration", "migration_rate")
"""The per-area figures of `Migration.areas`, in its order."""

Periods = tuple[tuple[date, date], tuple[date, date]]
"""The earlier and the later period, first and last local date of each."""


@dataclass(frozen=True)
class MigrationTruth:
    """A synthetic world's true moves between the two periods, at the release's level.

    Attributes:
        movers: True movers of the world per (``origin``, ``destination``), column
            ``persons`` (origin and destination differ).
        persons: The world's persons per area of residence at its start.
        sampling_fraction: Share of the population the world simulates: one of its persons
            stands for ``1 / sampling_fraction`` persons of the estimates.
    """

    movers: pd.DataFrame
    persons: pd.Series
    sampling_fraction: float

    @property
    def rate(self) -> float:
        """True movers over the world's persons."""
        return float(self.movers["persons"].sum() / self.persons.sum())


@dataclass(frozen=True)
class Migration:
    """Internal migration per pair of areas and per area, in persons.

    Attributes:
        pairs: One row per pair of the release: ``origin``, ``destination``, ``devices``
            (NaN where suppressed), ``per_device`` (the origin's persons per device),
            ``estimate``, ``std_error``, ``ci_lower``, ``ci_upper`` (95 %), and ``truth``
            (true movers, scaled to the population) when known.
        areas: One row per area and measure (`MEASURES`): ``area_code``, ``measure``,
            ``estimate``, ``std_error``, ``ci_lower``, ``ci_upper``, ``n_pairs`` (released
            pairs summed), ``n_suppressed`` (pairs withheld), ``status`` (``estimated``,
            ``partial``: a sum over the released pairs only, ``suppressed``), and ``truth``
            when known (movers scaled to the population; the true rate).
        level: ``municipality`` or ``arrondissement``.
        periods: The earlier and later periods of the release.
        noise_only_pairs: Pairs between two areas that the noise alone is expected to
            release were they all empty (`_noise_only`); NaN without a declared threshold.
        noise_only_devices: The devices those pairs are expected to hold.
        truth: The true moves, where the data are synthetic.
    """

    pairs: pd.DataFrame
    areas: pd.DataFrame
    level: str
    periods: Periods
    noise_only_pairs: float
    noise_only_devices: float
    truth: MigrationTruth | None = None

    def measure(self, name: str) -> pd.DataFrame:
        """The rows of `areas` of one measure, indexed by area_code."""
        rows = self.areas[self.areas["measure"] == name]
        return rows.set_index("area_code")

    @property
    def movers(self) -> pd.DataFrame:
        """Released pairs between two areas."""
        pairs = self.pairs
        return pairs[(pairs["origin"] != pairs["destination"]) & pairs["devices"].notna()]

    @property
    def stayers(self) -> pd.DataFrame:
        """Released pairs of one area to itself."""
        pairs = self.pairs
        return pairs[(pairs["origin"] == pairs["destination"]) & pairs["devices"].notna()]

    def national(self) -> dict[str, float]:
        """Movers, stayers and the migration rate over every released pair, with std errors."""
        out, stay = self.movers, self.stayers
        out_variance = float((out["std_error"] ** 2).sum())
        movers, stayers = float(out["estimate"].sum()), float(stay["estimate"].sum())
        with np.errstate(divide="ignore", invalid="ignore"):  # nothing released: NaN
            rate, rate_variance = _rate(
                np.float64(movers), out_variance, stayers, float((stay["std_error"] ** 2).sum())
            )
        return {
            "movers": movers,
            "movers_std_error": math.sqrt(out_variance),
            "stayers": stayers,
            "migration_rate": float(rate),
            "migration_rate_std_error": float(np.sqrt(rate_variance)),
        }

    def truth_agreement(self) -> Agreement | None:
        """Estimated against true movers over the pairs between two areas, where known.

        The pairs compared are those released or with a true mover: a pair the noise
        released from no mover counts against the estimates, a suppressed one as suppressed.
        """
        if self.truth is None:
            return None
        pairs = self.pairs[self.pairs["origin"] != self.pairs["destination"]]
        compared = pairs[pairs["devices"].notna() | (pairs["truth"] > 0)]
        keys = pd.Index(compared["origin"] + "|" + compared["destination"])
        return agreement(
            estimate=pd.Series(compared["estimate"].to_numpy(), index=keys),
            reference=pd.Series(compared["truth"].to_numpy(), index=keys),
        )

    def truth_stayers_agreement(self) -> Agreement | None:
        """Estimated against true stayers per area, where known.

        The estimates count only the persons whose devices have a home in both periods, the
        truth every person: what the devices seen in one period only (churn, short stays,
        silent phones) leave out shows as a negative relative bias.
        """
        if self.truth is None:
            return None
        stayers = self.measure("stayers")
        return agreement(estimate=stayers["estimate"], reference=stayers["truth"])

    def metrics(self) -> dict[str, Any]:
        """The ``internal_migration`` block of ``metrics.json``."""
        national = self.national()
        off = self.pairs["origin"] != self.pairs["destination"]
        suppressed = self.pairs["devices"].isna()
        block: dict[str, Any] = {
            "level": self.level,
            "before": [day.isoformat() for day in self.periods[0]],
            "after": [day.isoformat() for day in self.periods[1]],
            **national,
            "n_pairs": int((~suppressed).sum()),
            "n_suppressed": int(suppressed.sum()),
            "n_mover_pairs": len(self.movers),
            "n_mover_pairs_suppressed": int((off & suppressed).sum()),
            "noise_only_pairs_expected": self.noise_only_pairs,
            "noise_only_movers_expected": self.noise_only_devices * _mean_per_device(self.movers),
            "persons_in_released_pairs": national["movers"] + national["stayers"],
        }
        if self.truth is not None:
            truth = self.truth
            released = self.movers
            block["truth_movers"] = float(truth.movers["persons"].sum() / truth.sampling_fraction)
            block["truth_movers_in_released_pairs"] = float(released["truth"].sum())
            block["truth_migration_rate"] = truth.rate
            measured = self.truth_agreement()
            assert measured is not None
            block["truth_pearson_r"] = measured.pearson_r
            block["truth_n_pairs"] = measured.n_areas
            block["truth_n_suppressed"] = measured.n_suppressed
            staying = self.truth_stayers_agreement()
            assert staying is not None
            block["truth_stayers_pearson_r"] = staying.pearson_r
            block["truth_stayers_weighted_ape"] = staying.weighted_ape
            block["truth_stayers_relative_bias"] = staying.relative_bias
            block["truth_stayers_n_areas"] = staying.n_areas
        return block


def estimate_migration(
    *,
    release: Release,
    residents: EstimationResult,
    periods: Periods,
    parent: pd.Series | None = None,
    level: str = "municipality",
    truth: MigrationTruth | None = None,
) -> Migration:
    """Expand an ``internal_migration`` release with the origin's persons per device.

    Args:
        release: ``origin``, ``destination``, ``device_count`` (NaN where suppressed).
        residents: The residents' estimation (municipalities), whose default estimator gives
            each area its persons per released device.
        periods: The release's earlier and later periods.
        parent: When the release's areas are arrondissements: the arrondissement of each
            of the residents' municipalities, to sum their factors.
        level: What the release's areas are.
        truth: The true moves, when the data are synthetic.

    Returns:
        The pairs and the per-area figures, with intervals.
    """
    factors = area_factors(residents, parent=parent)
    declared = declared_noise(release=release)
    pairs = _expanded_pairs(release, factors=factors, declared=declared)
    probability = selection_probability(residents)
    variance = pairs["per_device"] ** 2 * (
        sampling_variance(pairs["devices"], probability) + declared.per_count().to_numpy()
    )
    laplace = pairs["per_device"] * declared.laplace_scale().to_numpy()
    pairs = pairs.join(noisy_interval(pairs["estimate"], np.sqrt(variance), laplace=laplace))
    if truth is not None:
        pairs["truth"] = _true_pairs(pairs, truth)
    noise_pairs, noise_devices = _noise_only(pairs, declared=declared, release=release)
    return Migration(
        pairs=pairs,
        areas=_area_measures(pairs.assign(variance=variance, laplace=laplace), truth=truth),
        level=level,
        periods=periods,
        noise_only_pairs=noise_pairs,
        noise_only_devices=noise_devices,
        truth=truth,
    )


def _expanded_pairs(
    release: Release, *, factors: pd.Series, declared: DeclaredNoise
) -> pd.DataFrame:
    """The release's pairs with their origin's persons per device and expanded count."""
    table = release.table
    pairs = pd.DataFrame(
        {
            "origin": table["origin"].astype(str).to_numpy(),
            "destination": table["destination"].astype(str).to_numpy(),
            "devices": pd.to_numeric(table["device_count"], errors="coerce")
            .astype("float64")
            .to_numpy(),
        }
    )
    # An origin none of whose residents was released keeps the overall factor.
    per_device = factors.reindex(pairs["origin"]).fillna(float(factors.attrs["overall"]))
    pairs["per_device"] = per_device.to_numpy()
    pairs["estimate"] = pairs["devices"] * pairs["per_device"]
    return pairs


def _rate(out: Any, out_variance: Any, stayers: Any, stayers_variance: Any) -> tuple[Any, Any]:
    """``O / (S + O)`` and its delta-method variance ``(S² var O + O² var S) / (S + O)⁴``.

    Out-migrants and stayers are sums of different released counts: independent.
    """
    total = stayers + out
    rate = out / total
    variance = (stayers**2 * out_variance + out**2 * stayers_variance) / total**4
    return rate, variance


def _area_measures(pairs: pd.DataFrame, *, truth: MigrationTruth | None) -> pd.DataFrame:
    """`MEASURES` per area from the expanded pairs (with ``variance`` and ``laplace``)."""
    codes = pd.Index(sorted(set(pairs["origin"]) | set(pairs["destination"])), name="area_code")
    apart = pairs["origin"] != pairs["destination"]
    stayers = _summed(pairs[~apart], "origin", codes)
    out = _summed(pairs[apart], "origin", codes)
    into = _summed(pairs[apart], "destination", codes)
    net = _net(into, out)
    rate = _migration_rate(out, stayers)
    figures = {
        "stayers": stayers,
        "out_migrants": out,
        "in_migrants": into,
        "net_migration": net,
        "migration_rate": rate,
    }
    if truth is not None:
        for name, true in _true_measures(truth, codes).items():
            figures[name] = figures[name].assign(truth=true)
    rows = [frame.assign(measure=name) for name, frame in figures.items()]
    long = pd.concat(rows).rename_axis("area_code").reset_index()
    columns = ["area_code", "measure", "estimate", "std_error", "ci_lower", "ci_upper"]
    columns += ["n_pairs", "n_suppressed", "status"] + (["truth"] if truth is not None else [])
    return long[columns].reset_index(drop=True)


def _summed(pairs: pd.DataFrame, by: str, codes: pd.Index) -> pd.DataFrame:
    """Per area, the sum of its released pairs, its variance and interval, and what is withheld.

    The interval takes the largest Laplace term of the sum as Laplace, the rest as normal
    (`noisy_interval`): one pair's noise, heavy-tailed, where one pair is released; close to
    the normal interval where many are.
    """
    released = pairs[pairs["devices"].notna()]
    groups = released.groupby(by)
    table = pd.DataFrame(
        {
            "estimate": groups["estimate"].sum(),
            "variance": groups["variance"].sum(),
            "laplace": groups["laplace"].max(),
            "n_pairs": groups.size(),
        }
    ).reindex(codes)
    table["n_pairs"] = table["n_pairs"].fillna(0).astype("int64")
    withheld = pairs["devices"].isna().groupby(pairs[by]).sum()
    table["n_suppressed"] = withheld.reindex(codes).fillna(0).astype("int64")
    bounds = noisy_interval(
        table["estimate"], np.sqrt(table["variance"]), laplace=table["laplace"].fillna(0.0)
    )
    return table.join(bounds).assign(status=_status(table))


def _status(table: pd.DataFrame) -> pd.Series:
    """``estimated`` (every pair released), ``partial`` (some withheld), ``suppressed`` (all)."""
    status = np.where(table["n_suppressed"] > 0, "partial", "estimated")
    return pd.Series(np.where(table["n_pairs"] == 0, "suppressed", status), index=table.index)


def _net(into: pd.DataFrame, out: pd.DataFrame) -> pd.DataFrame:
    """In- less out-migrants; its interval is symmetric, not cut at zero (it may be negative)."""
    net = pd.DataFrame(
        {
            "estimate": into["estimate"] - out["estimate"],
            "variance": into["variance"] + out["variance"],
            "laplace": np.fmax(into["laplace"], out["laplace"]),
            "n_pairs": into["n_pairs"] + out["n_pairs"],
            "n_suppressed": into["n_suppressed"] + out["n_suppressed"],
        }
    )
    bounds = noisy_interval(
        net["estimate"].abs(), np.sqrt(net["variance"]), laplace=net["laplace"].fillna(0.0)
    )
    half = bounds["ci_upper"] - net["estimate"].abs()
    net["std_error"] = bounds["std_error"]
    net["ci_lower"], net["ci_upper"] = net["estimate"] - half, net["estimate"] + half
    both = pd.Series(np.where(into["status"] == out["status"], into["status"], "partial"))
    return net.assign(status=both.set_axis(net.index).where(net["estimate"].notna(), "suppressed"))


def _migration_rate(out: pd.DataFrame, stayers: pd.DataFrame) -> pd.DataFrame:
    """Out-migrants over stayers and out-migrants (normal interval, delta method)."""
    rate, variance = _rate(
        out["estimate"], out["variance"], stayers["estimate"], stayers["variance"]
    )
    std_error = np.sqrt(variance)
    table = pd.DataFrame(
        {
            "estimate": rate,
            "std_error": std_error,
            "ci_lower": (rate - CI95_Z * std_error).clip(lower=0.0),
            "ci_upper": (rate + CI95_Z * std_error).clip(upper=1.0),
            "n_pairs": out["n_pairs"] + stayers["n_pairs"],
            "n_suppressed": out["n_suppressed"] + stayers["n_suppressed"],
        }
    )
    status = np.where(stayers["status"] == "suppressed", "suppressed", out["status"])
    return table.assign(status=status)


def _noise_only(
    pairs: pd.DataFrame, *, declared: DeclaredNoise, release: Release
) -> tuple[float, float]:
    """Pairs between two areas the noise alone would release, were they all empty.

    A count at or below the threshold is withheld, and with differential privacy the
    threshold applies to the noisy count: an empty pair is released when its noise exceeds
    the threshold ``T`` (`cellcensus.release.noise_threshold`: at least ``min_count``), with
    probability ``exp(-T / b) / 2`` for Laplace noise of scale ``b`` (``1 - Phi(T / sd)``
    for normal noise), and then holds ``T + b`` devices on average (``sd phi(T / sd)`` over
    that probability). Most pairs of a migration matrix are empty, so this is about what
    the noise adds to the released movers.

    Returns:
        The expected pairs and devices (NaN without a threshold; 0 without noise).
    """
    policy = release.provenance.policy or {}
    if policy.get("min_count") is None:
        return math.nan, math.nan
    dp = policy.get("dp") or {}
    variance = declared.per_count().to_numpy() - declared.rounding_variance
    threshold = noise_threshold(
        min_count=float(policy["min_count"]),
        sd=np.sqrt(np.clip(variance, 0.0, None)),
        noise_releases=dp.get("noise_releases"),
        laplace=declared.laplace,
    )
    apart = (pairs["origin"] != pairs["destination"]).to_numpy()
    variance, limit = variance[apart], threshold[apart]
    with np.errstate(divide="ignore", invalid="ignore"):
        if declared.laplace:
            scale = np.sqrt(variance / 2.0)
            chance = np.where(scale > 0, 0.5 * np.exp(-limit / scale), 0.0)
            devices = chance * (limit + scale)
        else:
            sd = np.sqrt(variance)
            z = limit / sd
            chance = np.where(sd > 0, special.ndtr(-z), 0.0)
            devices = np.where(sd > 0, sd * np.exp(-(z**2) / 2) / math.sqrt(2 * math.pi), 0.0)
    return float(chance.sum()), float(devices.sum())


def _mean_per_device(pairs: pd.DataFrame) -> float:
    """Persons per device over `pairs` (to put noise-only devices in persons)."""
    devices = float(pairs["devices"].sum())
    return float(pairs["estimate"].sum()) / devices if devices > 0 else math.nan


def _true_pairs(pairs: pd.DataFrame, truth: MigrationTruth) -> pd.Series:
    """True movers of each pair, scaled to the population (0 where none; NaN on the diagonal)."""
    movers = truth.movers.set_index(["origin", "destination"])["persons"]
    keys = pd.MultiIndex.from_frame(pairs[["origin", "destination"]])
    scaled = movers.reindex(keys).fillna(0.0).to_numpy() / truth.sampling_fraction
    return pd.Series(scaled, index=pairs.index).where(pairs["origin"] != pairs["destination"])


def _true_measures(truth: MigrationTruth, codes: pd.Index) -> dict[str, pd.Series]:
    """True stayers, out-, in- and net migrants per area (scaled) and the true migration rate.

    A true stayer is a person of the world who did not move between the periods (those who
    moved during one stay, as the release keeps them at their earlier home).
    """
    movers = truth.movers
    out = movers.groupby("origin")["persons"].sum().reindex(codes).fillna(0.0)
    into = movers.groupby("destination")["persons"].sum().reindex(codes).fillna(0.0)
    persons = truth.persons.reindex(codes)
    scale = truth.sampling_fraction
    return {
        "stayers": (persons - out) / scale,
        "out_migrants": out / scale,
        "in_migrants": into / scale,
        "net_migration": (into - out) / scale,
        "migration_rate": out / persons.where(persons > 0),
    }
