"""Uncertainty of area estimates, from the released counts and the noise the release declares.

The statistics office cannot bootstrap over devices (they never leave the enclave), so the
variance of an estimate is built from what it does see:

1. Sampling: each resident is in the released data with probability
   ``p = market_share * sampling_fraction``; a count ``D`` then has variance ``D (1 - p)``
   (binomial). When the real selection is less random than that (a synthetic world with
   exactly ``scale * population`` persons per area), this overstates the variance a little.
2. Disclosure noise: the variance the release declares, per area, from (in this order) a
   ``noise_sd`` or ``noise_variance`` column, ``ci95_low``/``ci95_high`` (or ``ci95_lower``/
   ``ci95_upper``) columns, a numeric ``ci95`` column (half-width), or the differential
   privacy mechanism recorded in the release's policy; plus ``base² / 12`` for rounding to
   a base. A 95 % half-width is turned into a standard deviation by the mechanism the
   provenance names: the holder publishes ``b ln 20`` for Laplace noise of scale ``b``
   (whose sd is ``b sqrt 2``), ``1.96 sigma`` for Gaussian noise.
3. Model error: what the first two leave unexplained (homes detected in the wrong area,
   uneven market shares). It is a relative standard deviation ``tau`` chosen on the
   calibration areas so that the intervals cover their reference at the nominal rate
   (a split-conformal calibration), one per class of estimated size so that they do so
   within each class (Mondrian conformal, `size_class_model_error`), and 0 when no
   reference is given. Cross-fitted (`cross_fitted_model_error`): each half of the areas
   gets the ``tau`` of its class fitted on the other half (or, with one fold per area, as
   for the present population, each area the ``tau`` fitted on all the others), so that no
   interval is calibrated on its own area's reference and its coverage is measured out of
   sample.

The estimate's variance is ``gradient² * (sampling + noise) + (tau * estimate)²`` and the
interval is normal, cut at zero. The present population and flows take the normal-Laplace
quantile instead (`noisy_interval`), their model error in the normal part: there an
estimate's own count's Laplace noise can outweigh the rest, and its tails are heavier than a
normal's.

References: Reed (2006), "The normal-Laplace distribution and its relatives", in Advances in
Distribution Theory, Order Statistics, and Inference, Birkhäuser. Vovk, Gammerman & Shafer
(2005), Algorithmic Learning in a Random World, Springer, ch. 4 (Mondrian conformal
prediction).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist
from typing import Any

import numpy as np
import opendp.prelude as odp
import pandas as pd
from scipy import special

from cellcensus.errors import CellcensusError
from cellcensus.notation import scientific
from cellcensus.nso.expansion import Expansion
from cellcensus.release import CI95_PER_SD, Provenance, Release

CI95 = 0.95
"""Confidence level of the intervals with no level of their own (present population, flows)."""
CI95_Z = NormalDist().inv_cdf(0.5 + CI95 / 2)
_BESIDE = ", given beside each count"
_LOW_HIGH_COLUMNS: tuple[tuple[str, str], ...] = (
    ("ci95_low", "ci95_high"),
    ("ci95_lower", "ci95_upper"),
)


@dataclass(frozen=True)
class DeclaredNoise:
    """The noise a release declares on its counts.

    Attributes:
        variance: Variance of the added noise per area_code (0 where none).
        rounding_base: Released counts are multiples of this (1 when not rounded).
        source: Where the figures come from, in words (for the report).
        laplace: Whether the noise is Laplace (else normal, or none).
    """

    variance: pd.Series
    rounding_base: float
    source: str
    laplace: bool = False

    @property
    def rounding_variance(self) -> float:
        """Variance of the rounding error, ``base² / 12`` (0 for a base of 1 or less)."""
        return self.rounding_base**2 / 12.0 if self.rounding_base > 1 else 0.0

    def per_count(self, index: pd.Index | None = None) -> pd.Series:
        """Variance of the noise and rounding of each count.

        Per area_code of `index`, or per row of the release's table when `index` is None
        (a long table, or flows).
        """
        noise = self.variance if index is None else self.variance.reindex(index)
        return noise.fillna(0.0) + self.rounding_variance

    def laplace_scale(self) -> pd.Series:
        """Scale ``b`` of each row's Laplace noise (variance ``2 b²``); 0 if not Laplace."""
        scale = (self.variance.fillna(0.0) / 2.0).pow(0.5)
        return scale if self.laplace else scale * 0.0


def declared_noise(*, release: Release, contribution_bound: float = 1.0) -> DeclaredNoise:
    """Read the noise a release declares: a column of the table, or its privacy policy.

    Args:
        release: The release.
        contribution_bound: Most one device adds to one privacy unit of the release (the
            algorithm's contribution bound; 1 for usual residence), used only when the
            noise has to be derived from the policy's epsilon. Over the provenance's
            ``privacy_units`` U the holder calibrates to the L1 sensitivity ``U L``
            (Laplace) or the L2 sensitivity ``sqrt(U k) L`` (Gaussian, with k the
            provenance's ``pseudonyms``: U counts each of them), and so does this.

    Returns:
        The declared noise per area_code (per row of the table where it has no area_code,
        as a release of flows).

    Raises:
        CellcensusError: If a declared column is not numeric or the policy is garbled.
    """
    table = release.table
    index = (
        pd.Index(table["area_code"].astype(str).to_numpy(), name="area_code")
        if "area_code" in table.columns
        else pd.RangeIndex(len(table), name="row")  # flows: one row per pair of areas
    )
    policy: Mapping[str, Any] = release.provenance.policy or {}
    base = float(policy.get("rounding_base") or 1)
    laplace = _laplace(release.provenance)
    column_variance = _column_variance(table, per_sd=ci95_per_sd(release.provenance))
    if column_variance is not None:
        variance, source = column_variance
        return DeclaredNoise(
            variance=pd.Series(variance.to_numpy(), index=index).fillna(0.0),
            rounding_base=base,
            source=source,
            laplace=laplace,
        )
    dp = policy.get("dp")
    value, source = _policy_variance(
        dp=dp,
        bound=contribution_bound,
        units=release.provenance.privacy_units,
        pseudonyms=release.provenance.pseudonyms,
    )
    return DeclaredNoise(
        variance=pd.Series(value, index=index, dtype="float64"),
        rounding_base=base,
        source=source,
        laplace=laplace,
    )


def sampling_variance(devices: pd.Series, selection_probability: float) -> pd.Series:
    """Binomial variance of each count of devices: ``D (1 - p)`` (NaN where suppressed).

    Each resident is in the data with probability ``p``, independently, so a count is
    binomial, whose variance ``n p (1 - p)`` is estimated by the count ``D`` itself.

    Raises:
        CellcensusError: If the probability is outside (0, 1].
    """
    if not 0.0 < selection_probability <= 1.0:
        raise CellcensusError(
            f"selection probability must be in (0, 1], got {selection_probability}"
        )
    return devices.clip(lower=0.0) * (1.0 - selection_probability)


def count_variance(
    *, devices: pd.Series, noise: DeclaredNoise, selection_probability: float
) -> pd.Series:
    """Variance of each released count around its expectation: sampling, noise, rounding.

    Args:
        devices: Released device counts indexed by area_code (NaN where suppressed).
        noise: The declared noise.
        selection_probability: Probability that a resident is in the data,
            ``market_share * sampling_fraction``, in (0, 1].

    Returns:
        Variance per area_code (NaN where suppressed).

    Raises:
        CellcensusError: If the probability is outside (0, 1].
    """
    sampling = sampling_variance(devices, selection_probability)
    return (sampling + noise.per_count(devices.index)).where(devices.notna())


SIZE_CLASSES = 5
"""Classes of estimated size the model error is fitted in: quintiles of the estimates."""

MIN_AREAS_PER_SIZE_CLASS = 40
"""Fewest calibration areas a size class fits its own model error on (else fewer classes).

At 95 % the conformal rank needs 19 areas to fall inside a class's scores; 40 keep each
class's coverage within about 3.5 points (the spread of a conformal quantile of n scores,
``sqrt(0.95 x 0.05 / n)``).
"""


@dataclass(frozen=True)
class ModelError:
    """The relative model error ``tau`` of each class of estimated size.

    Attributes:
        limits: Upper limit of every class but the last, in estimated persons, increasing
            (empty for a single class); an estimate on a limit is in the class above.
        tau: Relative model error of each class, smallest areas first.
        n_areas: Calibration areas each class's ``tau`` was fitted on.
    """

    limits: tuple[float, ...]
    tau: tuple[float, ...]
    n_areas: tuple[int, ...]

    def of(self, estimate: pd.Series) -> pd.Series:
        """``tau`` of each area, by the class of its estimate (indexed like `estimate`)."""
        values = self.of_values(estimate.to_numpy(dtype="float64"))
        return pd.Series(values, index=estimate.index, dtype="float64")

    def of_values(self, estimate: np.ndarray) -> np.ndarray:
        """``tau`` of each estimate in an array, by its class."""
        taus: np.ndarray = np.asarray(self.tau, dtype="float64")[_size_class(estimate, self.limits)]
        return taus

    def table(self) -> pd.DataFrame:
        """One row per class: ``lower`` and ``upper`` limits, ``n_areas``, ``tau``."""
        edges = (0.0, *self.limits, math.inf)
        return pd.DataFrame(
            {
                "lower": edges[:-1],
                "upper": edges[1:],
                "n_areas": self.n_areas,
                "tau": self.tau,
            }
        )


def model_error(
    *,
    expansion: Expansion,
    variance: pd.Series,
    reference: pd.Series,
    level: float = 0.95,
    n_parameters: int = 0,
) -> float:
    """Relative standard deviation ``tau`` of the error that sampling and noise leave out.

    For each of the n calibration areas, the smallest ``tau`` whose interval would cover its
    reference is found; ``tau`` is the k-th smallest of them, ``k = ceil((n + 1) level)``
    (split-conformal prediction: an exchangeable new area is covered with probability
    ``k / (n + 1)``, the largest of them when k > n), inflated by ``n / (n - n_parameters)``
    for the areas' estimates having been fitted to the same references. One ``tau`` for
    areas of every size: `size_class_model_error` fits one per class of size.

    Args:
        expansion: The estimates.
        variance: Variance of each released count (`count_variance`).
        reference: Known population of the calibration areas (absent or NaN: not used).
        level: Coverage the intervals should reach.
        n_parameters: Constants fitted on the same reference (calibration cells, power-law
            coefficients).

    Returns:
        ``tau`` (0 when no area has a reference).
    """
    fitted = size_class_model_error(
        expansion=expansion,
        variance=variance,
        reference=reference,
        level=level,
        n_parameters=n_parameters,
        size_classes=1,
    )
    return fitted.tau[0]


def size_class_model_error(
    *,
    expansion: Expansion,
    variance: pd.Series,
    reference: pd.Series,
    level: float = 0.95,
    n_parameters: int = 0,
    size_classes: int = SIZE_CLASSES,
    min_areas: int = MIN_AREAS_PER_SIZE_CLASS,
) -> ModelError:
    """``tau`` fitted apart in each class of estimated size (Mondrian split conformal).

    What sampling and noise leave unexplained is not the same share of the estimate at
    every size: the sampling variance can overstate the spread of small areas' estimates,
    and errors that move a share of the devices (homes misplaced, margins calibrated)
    weigh most where sampling is smallest, in the large areas. One ``tau`` for all then
    covers small areas nearly always and large ones less often than `level`. Here the
    areas are put in classes by their *estimate* (quantiles of the estimates of every
    area of the expansion, so that no reference decides a class), and each class's
    ``tau`` is the split-conformal quantile (`model_error`) of its own calibration areas:
    a new area like them is then covered with probability at least `level` within its
    class (Mondrian conformal prediction: Vovk, Gammerman & Shafer 2005, *Algorithmic
    Learning in a Random World*, ch. 4), not only on average over sizes. Fewer classes are
    made when one would hold fewer than `min_areas` calibration areas; with one class
    this is `model_error`. The inflation for the fitted constants is the whole fit's,
    ``n / (n - n_parameters)``.

    Args:
        expansion: The estimates.
        variance: Variance of each released count (`count_variance`).
        reference: Known population of the calibration areas (absent or NaN: not used).
        level: Coverage the intervals should reach in each class.
        n_parameters: Constants fitted on the same reference.
        size_classes: Most classes to make.
        min_areas: Fewest calibration areas per class.

    Returns:
        The classes' limits and ``tau`` (one class of ``tau`` 0 when no area has a
        reference).
    """
    scores = _Scores.of(expansion=expansion, variance=variance, reference=reference, level=level)
    return scores.fit(
        np.ones(scores.codes.size, dtype=bool),
        level=level,
        n_parameters=n_parameters,
        size_classes=size_classes,
        min_areas=min_areas,
    )


@dataclass(frozen=True)
class _Scores:
    """What each calibration area's interval lacks to cover its reference, computed once.

    Attributes:
        codes: Area code of each calibration area (estimate above 0, reference known).
        estimate: Its estimate.
        needed: Its score: the relative variance its interval lacks, ``tau^2`` (at least 0).
        estimates: Every finite estimate above 0 of the expansion, which set the classes.
    """

    codes: np.ndarray
    estimate: np.ndarray
    needed: np.ndarray
    estimates: np.ndarray

    @classmethod
    def of(
        cls, *, expansion: Expansion, variance: pd.Series, reference: pd.Series, level: float
    ) -> _Scores:
        z = NormalDist().inv_cdf(0.5 + level / 2)
        sampling = expansion.gradient**2 * variance.reindex(expansion.estimate.index)
        frame = pd.DataFrame(
            {"estimate": _by_code(expansion.estimate), "sampling": _by_code(sampling)}
        )
        frame["reference"] = _by_code(reference).reindex(frame.index)
        frame = frame.dropna()
        frame = frame[frame["estimate"] > 0]
        needed = ((frame["estimate"] - frame["reference"]) ** 2 / z**2 - frame["sampling"]).clip(
            lower=0.0
        ) / frame["estimate"] ** 2
        estimates = expansion.estimate.to_numpy(dtype="float64")
        return cls(
            codes=frame.index.to_numpy(dtype=str),
            estimate=frame["estimate"].to_numpy(),
            needed=needed.to_numpy(),
            estimates=estimates[np.isfinite(estimates) & (estimates > 0)],
        )

    def fit(
        self,
        used: np.ndarray,
        *,
        level: float,
        n_parameters: int,
        size_classes: int,
        min_areas: int,
    ) -> ModelError:
        """The classes and their ``tau`` fitted on the `used` calibration areas (a mask)."""
        estimate, needed = self.estimate[used], self.needed[used]
        n = estimate.size
        if n == 0:
            return ModelError(limits=(), tau=(0.0,), n_areas=(0,))
        inflation = n / (n - n_parameters) if n > n_parameters else 1.0
        count = max(1, min(size_classes, n // max(min_areas, 1)))
        quantiles = np.quantile(self.estimates, np.arange(1, count) / count) if count > 1 else []
        limits = _merged_limits(
            estimate=estimate, limits=[float(v) for v in quantiles], min_areas=min_areas
        )
        classes = _size_class(estimate, limits)
        sizes = np.bincount(classes, minlength=len(limits) + 1)
        tau = tuple(
            math.sqrt(_conformal_quantile(needed[classes == c], level) * inflation)
            for c in range(len(limits) + 1)
        )
        return ModelError(limits=limits, tau=tau, n_areas=tuple(int(v) for v in sizes))


def _merged_limits(
    *, estimate: np.ndarray, limits: Sequence[float], min_areas: int
) -> tuple[float, ...]:
    """The `limits` left when each class holds at least `min_areas` of the `estimate`s.

    From the smallest class up, a class with too few joins the next; a last class with
    too few joins the one below it.
    """
    sizes = np.bincount(_size_class(estimate, limits), minlength=len(limits) + 1)
    kept: list[float] = []
    held = 0
    for index, size in enumerate(sizes[:-1]):
        held += int(size)
        if held >= min_areas:
            kept.append(limits[index])
            held = 0
    if kept and held + int(sizes[-1]) < min_areas:
        kept.pop()
    return tuple(kept)


def _conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The k-th smallest of the n scores, ``k = ceil((n + 1) level)``; the largest if k > n.

    It covers a new exchangeable score with probability ``k / (n + 1)`` (at least `level`,
    less than `level` + 1 / (n + 1)). 0 for no score.
    """
    n = scores.size
    if n == 0:
        return 0.0
    rank = min(n, math.ceil((n + 1) * level))
    return float(np.sort(scores)[rank - 1])


def _size_class(estimate: np.ndarray, limits: Sequence[float]) -> np.ndarray:
    """Class of each estimate: the number of `limits` at or below it (NaN: the first)."""
    values = np.nan_to_num(estimate, nan=-math.inf)
    classes: np.ndarray = np.searchsorted(np.asarray(limits, dtype="float64"), values, side="right")
    return classes


@dataclass(frozen=True)
class CrossFittedModelError:
    """Model error of each area, fitted on the areas outside its fold.

    Attributes:
        tau: Relative model error of each area, indexed like the estimates.
        folds: What each fold's areas got: the `ModelError` fitted on the other areas.
    """

    tau: pd.Series
    folds: tuple[ModelError, ...]


def cross_fitted_model_error(
    *,
    expansion: Expansion,
    variance: pd.Series,
    reference: pd.Series,
    folds: Sequence[pd.Index],
    level: float = 0.95,
    n_parameters: int = 0,
    size_classes: int = SIZE_CLASSES,
) -> CrossFittedModelError:
    """``tau`` of each area, fitted on the areas outside its fold (`size_class_model_error`).

    Args:
        expansion: The estimates.
        variance: Variance of each released count (`count_variance`).
        reference: Known population of the calibration areas.
        folds: Disjoint sets of area codes (e.g. the two halves of a random split, one area
            each: leave-one-out, or the flows of each home).
        level: Coverage the intervals should reach.
        n_parameters: Constants fitted on the same reference.
        size_classes: Most classes of estimated size (1: one ``tau`` for every size).

    Returns:
        ``tau`` indexed like the estimates, by the class of each area's estimate; an area
        in no fold gets the ``tau`` fitted on every reference. And each fold's fit.
    """
    # Scored once: each fold only ranks the scores of the areas outside it.
    scores = _Scores.of(expansion=expansion, variance=variance, reference=reference, level=level)

    def fitted_on(used: np.ndarray) -> ModelError:
        return scores.fit(
            used,
            level=level,
            n_parameters=n_parameters,
            size_classes=size_classes,
            min_areas=MIN_AREAS_PER_SIZE_CLASS,
        )

    estimate = expansion.estimate.to_numpy(dtype="float64")
    codes = expansion.estimate.index.astype(str).to_numpy()
    tau = fitted_on(np.ones(scores.codes.size, dtype=bool)).of_values(estimate)
    fits = []
    for fold in folds:
        left_out = fold.astype(str).to_numpy()
        fit = fitted_on(~np.isin(scores.codes, left_out))
        inside = np.isin(codes, left_out)
        tau[inside] = fit.of_values(estimate[inside])
        fits.append(fit)
    return CrossFittedModelError(
        tau=pd.Series(tau, index=expansion.estimate.index, dtype="float64"), folds=tuple(fits)
    )


def intervals(
    *, expansion: Expansion, variance: pd.Series, tau: float | pd.Series = 0.0, level: float = 0.95
) -> pd.DataFrame:
    """Standard error and interval of every estimate.

    Args:
        expansion: The estimates.
        variance: Variance of each released count (`count_variance`).
        tau: Relative model error (`model_error`), one value or one per area
            (`ModelError.of`, `CrossFittedModelError.tau`).
        level: Confidence level of the interval, in (0, 1).

    Returns:
        Indexed by area_code: ``estimate``, ``std_error``, ``ci_lower`` (at least 0) and
        ``ci_upper``; NaN where suppressed.

    Raises:
        CellcensusError: If `level` is not in (0, 1) or `tau` is negative.
    """
    if not 0.0 < level < 1.0:
        raise CellcensusError(f"confidence level must be in (0, 1), got {level}")
    values = np.atleast_1d(np.asarray(tau, dtype="float64"))
    if (values < 0).any() or not np.isfinite(values).all():
        raise CellcensusError(f"model error tau must be a non-negative number, got {tau}")
    estimate = expansion.estimate
    aligned = variance.reindex(estimate.index)
    relative = tau.reindex(estimate.index) if isinstance(tau, pd.Series) else tau
    std_error = np.sqrt(expansion.gradient**2 * aligned + (relative * estimate) ** 2)
    bounds = normal_interval(estimate, std_error, level=level)
    return pd.concat([estimate.rename("estimate"), bounds], axis=1)


def normal_interval(
    estimate: pd.Series, std_error: pd.Series, *, level: float = 0.95
) -> pd.DataFrame:
    """``std_error``, ``ci_lower`` and ``ci_upper``: the normal interval at `level`.

    Cut at zero: counts of persons are not negative.
    """
    z = NormalDist().inv_cdf(0.5 + level / 2)
    return pd.DataFrame(
        {
            "std_error": std_error,
            "ci_lower": (estimate - z * std_error).clip(lower=0.0),
            "ci_upper": estimate + z * std_error,
        }
    )


def noisy_interval(
    estimate: pd.Series, std_error: pd.Series, *, laplace: pd.Series, level: float = 0.95
) -> pd.DataFrame:
    """`normal_interval` for an error that is normal plus one Laplace term.

    Where an estimate's error is mostly its own count's Laplace noise, the normal interval
    of the same standard error covers less than `level` (93.7 % at 95 % for Laplace alone:
    its tails are heavier). Here the half-width solves ``P(|N + L| <= h) = level``.

    Args:
        estimate: The estimates.
        std_error: Their standard errors, the Laplace term's variance ``2 b²`` included.
        laplace: Scale ``b`` of the Laplace term in the estimate's units (the estimate's
            own count's noise times its weight there), 0 where there is none.
        level: Confidence level, in (0, 1).

    Returns:
        ``std_error``, ``ci_lower`` (at least 0) and ``ci_upper``.
    """
    scale = np.minimum(np.abs(laplace.to_numpy(dtype="float64")), std_error / math.sqrt(2.0))
    normal = np.sqrt(np.maximum(std_error**2 - 2.0 * scale**2, 0.0))
    half = normal_laplace_half_width(np.asarray(normal), scale, level=level)
    return pd.DataFrame(
        {
            "std_error": std_error,
            "ci_lower": (estimate - half).clip(lower=0.0),
            "ci_upper": estimate + half,
        }
    )


def normal_laplace_half_width(
    sd: np.ndarray, scale: np.ndarray, *, level: float = 0.95
) -> np.ndarray:
    """Half-width ``h`` with ``P(|N + L| <= h) = level``, N ~ N(0, sd²), L ~ Laplace(scale).

    Bisection on the normal-Laplace distribution function (Reed 2006), written in logs so
    that neither term overflows. Between the half-widths of N and of L alone, at level
    ``1 - (1 - level) / 2`` each, lies the answer (the union bound), so 60 halvings
    pin it to ``2**-60`` of that span.
    """
    sd, scale = np.broadcast_arrays(np.asarray(sd, float), np.asarray(scale, float))
    tail = (1.0 - level) / 2.0
    high = NormalDist().inv_cdf(1.0 - tail / 2.0) * sd + scale * math.log(1.0 / tail)
    low = np.zeros_like(high)
    target = 1.0 - tail
    for _ in range(60):
        middle = (low + high) / 2.0
        below = _normal_laplace_cdf(middle, sd, scale) < target
        low = np.where(below, middle, low)
        high = np.where(below, high, middle)
    return (low + high) / 2.0


def _normal_laplace_cdf(y: np.ndarray, sd: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``P(N + L <= y)`` for y >= 0; either part may be 0 (then the other's own CDF).

    ``Phi(z) - phi(z) (R(r - z) - R(r + z)) / 2`` with ``z = y / sd``, ``r = sd / scale``
    and R the Mills ratio, taken as ``erfcx`` (no overflow for r large: little Laplace),
    or in logs where ``r - z`` is negative (erfcx would overflow there).
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        laplace_only = 1.0 - 0.5 * np.exp(-y / scale)
        z = y / sd
        rate = sd / scale
        density = np.exp(-(z**2) / 2.0) / math.sqrt(2.0 * math.pi)
        mills = math.sqrt(math.pi / 2.0)
        lower = np.where(
            rate >= z,
            density * mills * special.erfcx((rate - z) / math.sqrt(2.0)),
            np.exp(rate**2 / 2.0 - y / scale + special.log_ndtr(z - rate)),
        )
        upper = density * mills * special.erfcx((rate + z) / math.sqrt(2.0))
        both = special.ndtr(z) - 0.5 * (lower - upper)
    cdf: np.ndarray = np.where(scale <= 0, special.ndtr(z), np.where(sd <= 0, laplace_only, both))
    return cdf


def ci95_per_sd(provenance: Provenance) -> float:
    """Half-width of a released 95 % noise interval per standard deviation of the noise.

    The holder computes ``ci95`` from the mechanism its policy names (provenance
    ``policy.dp.mechanism``): ``b ln 20 = 2.118 sd`` for Laplace, ``1.96 sd`` for Gaussian.
    An estimator run on noisy per-cell counts (``spatial_estimator: bayesian``) gets a
    bootstrap ``1.96 sd`` (normal approximation) whatever the mechanism.
    """
    return CI95_PER_SD["laplace"] if _laplace(provenance) else CI95_Z


def _laplace(provenance: Provenance) -> bool:
    """Whether each released count carries its own Laplace noise (`ci95_per_sd`)."""
    dp = provenance.policy.get("dp") if provenance.policy else None
    mechanism = str(dp.get("mechanism", "laplace")) if isinstance(dp, Mapping) else None
    bootstrapped = provenance.parameters.get("spatial_estimator") == "bayesian"
    return mechanism == "laplace" and not bootstrapped


def _column_variance(table: pd.DataFrame, *, per_sd: float) -> tuple[pd.Series, str] | None:
    """Noise variance from the table's own columns, if it declares one.

    Its source is said in the report's words: the report's readers see no column names.
    """
    for column, power, what in (
        ("noise_sd", 2, "standard deviation"),
        ("noise_variance", 1, "variance"),
    ):
        if column in table.columns:
            return _numeric(table[column], column) ** power, f"the {what} of the noise{_BESIDE}"
    for low, high in _LOW_HIGH_COLUMNS:
        if {low, high} <= set(table.columns):
            width = _numeric(table[high], high) - _numeric(table[low], low)
            return (width / (2 * per_sd)) ** 2, f"the 95% interval of the noise{_BESIDE}"
    if "ci95" in table.columns:
        return _ci95_variance(table["ci95"], per_sd=per_sd), f"the 95% margin of the noise{_BESIDE}"
    return None


def _ci95_variance(column: pd.Series, *, per_sd: float) -> pd.Series:
    """A ``ci95`` column: a half-width, or a pair ``[low, high]`` per row."""
    sample = column.dropna()
    if len(sample) and isinstance(sample.iloc[0], list | tuple | np.ndarray):
        pairs = column.map(
            lambda pair: (
                (float(pair[1]) - float(pair[0]))
                if isinstance(pair, list | tuple | np.ndarray)
                else math.nan
            )
        )
        return (pairs / (2 * per_sd)) ** 2
    return (_numeric(column, "ci95") / per_sd) ** 2


def _policy_variance(
    *, dp: Any, bound: float, units: int, pseudonyms: int = 1
) -> tuple[float, str]:
    """Noise variance of a differential privacy policy ``{"epsilon", "delta", "mechanism"}``.

    Calibrated as the holder calibrates it: to the L1 sensitivity ``units * bound`` for
    Laplace, the L2 sensitivity ``sqrt(units * pseudonyms) * bound`` for Gaussian (`units`
    counts each of a device's `pseudonyms`, which add to the same cells: docs/disclosure.md).
    """
    if not dp:
        return 0.0, "no noise declared"
    if not isinstance(dp, Mapping) or "epsilon" not in dp:
        raise CellcensusError(f"release policy 'dp' must give an epsilon, got {dp!r}")
    epsilon = float(dp["epsilon"])
    mechanism = str(dp.get("mechanism", "laplace"))
    if mechanism == "laplace":
        sensitivity = units * bound
        scale = sensitivity / epsilon
        return 2 * scale**2, (
            f"Laplace noise, epsilon {epsilon:g}, L1 sensitivity {sensitivity:g} "
            f"({units} privacy units)"
        )
    if mechanism == "gaussian":
        delta = float(dp.get("delta") or 0.0)
        if not 0.0 < delta < 1.0:
            raise CellcensusError(f"Gaussian noise needs a delta in (0, 1), got {delta}")
        sensitivity = math.sqrt(units * max(pseudonyms, 1)) * bound
        sigma = gaussian_sigma(epsilon=epsilon, delta=delta, sensitivity=sensitivity)
        return sigma**2, (
            f"Gaussian noise, epsilon {epsilon:g}, delta {scientific(delta)}, L2 sensitivity "
            f"{sensitivity:g} ({units} privacy units)"
        )
    raise CellcensusError(f"unknown noise mechanism {mechanism!r} in the release policy")


@lru_cache(maxsize=64)
def gaussian_sigma(*, epsilon: float, delta: float, sensitivity: float) -> float:
    """Smallest Gaussian sigma that OpenDP certifies (epsilon, delta)-DP at `sensitivity`.

    The same search as the holder's (zero-concentrated DP converted to approximate DP by
    OpenDP's optimal conversion), so the variance is the one it added; the textbook bound
    ``rho + 2 sqrt(rho log(1/delta)) <= epsilon`` would overstate it by half at epsilon 0.4.
    """
    odp.enable_features("contrib")
    domain = odp.atom_domain(T=float, nan=False)

    def measurement(scale: float) -> Any:
        zcdp = odp.m.make_gaussian(domain, odp.absolute_distance(T=float), scale=scale)
        return odp.c.make_fix_delta(odp.c.make_zCDP_to_approxDP(zcdp), delta)

    return float(odp.binary_search_param(measurement, d_in=sensitivity, d_out=(epsilon, delta)))


def _by_code(series: pd.Series) -> pd.Series:
    """`series` as floats indexed by area_code strings."""
    return series.astype("float64").set_axis(series.index.astype(str))


def _numeric(column: pd.Series, name: str) -> pd.Series:
    try:
        return pd.to_numeric(column, errors="raise").astype("float64").reset_index(drop=True)
    except (TypeError, ValueError) as error:
        raise CellcensusError(f"release column {name!r} is not numeric: {error}") from None
