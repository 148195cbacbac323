"""Calibration of area estimates to known totals: ratio, GREG (linear), raking and logit.

The area estimates are adjusted by a weight ``g`` per area so that, over the calibration
areas, they add up exactly to known totals (margins): the census or register population of
each arrondissement, of each class of areas, or any auxiliary total. Small areas borrow strength
from the margins they belong to. This is the calibration of Deville & Särndal (1992),
"Calibration estimators in survey sampling", JASA 87(418), applied with the areas as units
and their first estimates as design weights:

- ``ratio``: one partition; every area of a group gets the group's ratio of known total to
  estimated total (post-stratification).
- ``linear`` (GREG): ``g = 1 + x'lambda``; one step, may give negative weights in extreme
  cases.
- ``raking``: ``g = exp(x'lambda)``; always positive; with several partitions it is
  iterative proportional fitting.
- ``logit`` (bounded): ``g = F(x'lambda)`` with Deville & Särndal's logit function, which
  keeps every weight strictly within bounds ``(L, U)``, ``0 <= L < 1 < U``: no negative or
  extreme weight, and margins out of reach of the bounds are an error, not missed totals.

The weight is a function of the area's auxiliaries ``x``, so areas outside the calibration
set (the validation half of a hold-out, areas whose reference is unknown) get the weight of
their groups too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import special

from cellcensus.errors import CellcensusError
from cellcensus.nso.expansion import Expansion

CalibrationMethod = Literal["ratio", "linear", "raking", "logit"]
"""How the weights depend on the auxiliaries; see the module docstring."""

DEFAULT_BOUNDS: tuple[float, float] = (0.5, 2.0)
"""Bounds ``(L, U)`` of the logit method's weights unless given.

No area's first estimate is more than halved or doubled: the margins correct the first
estimates' errors by group (market shares, second SIMs), which move the weights by a few
per cent (0.96 to 1.05 on the simulated release with realistic biases); a weight near 0.5 or
2 would rather signal a wrong reference or release. Symmetric on the log scale (``L = 1/U``),
the logit function then agrees with raking's ``exp`` to second order near ``g = 1``.
"""

FloatArray = NDArray[np.float64]
WeightFunction = Callable[[FloatArray], FloatArray]
"""``g(u)`` or its derivative ``g'(u)``, with ``u = x'lambda`` per area."""


class CalibrationNotConvergedError(CellcensusError):
    """Newton steps did not bring the calibrated totals to the margins within the tolerance.

    Margins inconsistent with each other, or out of reach of the weights the method allows
    (positive ones for raking, those within the bounds for logit): no weights are returned.
    """


class UnreachableMarginError(CellcensusError):
    """A margin group's known total cannot be met by weighting its first estimates.

    A population total below 0, a total of 0 where the release counted devices, or a
    positive total where it counted none: the reference is wrong or misaligned (codes of
    another year, missing values filled with 0), and weights would hide it.
    """


@dataclass(frozen=True)
class Calibration:
    """A calibrated expansion and the evidence that the margins hold.

    Attributes:
        expansion: The calibrated estimates (its factor is the base factor times ``g``).
        g_weights: The weight of each released area, indexed by area_code.
        margins: One row per margin cell: ``margin`` (partition or covariate name),
            ``group``, ``target`` (known total over the calibration areas), ``initial`` and
            ``calibrated`` (estimated totals over the same areas, before and after).
        iterations: Newton steps taken (0 for the closed-form ratio).
        method: The calibration method.
    """

    expansion: Expansion
    g_weights: pd.Series
    margins: pd.DataFrame
    iterations: int
    method: CalibrationMethod


def calibrate(
    *,
    expansion: Expansion,
    reference: pd.Series,
    partitions: Mapping[str, pd.Series],
    covariates: pd.DataFrame | None = None,
    method: CalibrationMethod = "raking",
    bounds: tuple[float, float] | None = None,
    name: str | None = None,
    tolerance: float = 1e-10,
    max_iterations: int = 100,
) -> Calibration:
    """Calibrate `expansion` so that its totals over the calibration areas match the reference.

    Args:
        expansion: The estimates to calibrate.
        reference: Known population of the calibration areas, indexed by area_code; areas
            absent or NaN are not in the calibration set (they are still weighted).
        partitions: Named groupings of the areas (area_code -> group code), e.g.
            ``{"arrondissement": ...}``; every released area needs a group in each. The
            targets are the reference totals of each group over the calibration areas.
        covariates: Numeric auxiliaries per area_code (e.g. share of children); the target
            of a column is ``sum(reference * column)`` over the calibration areas.
        method: ``"ratio"`` (exactly one partition, no covariates), ``"linear"``,
            ``"raking"`` or ``"logit"``.
        bounds: ``(L, U)`` with ``0 <= L < 1 < U``: every weight of the logit method lies
            strictly between them. Logit only; None gives `DEFAULT_BOUNDS`.
        name: Name of the calibrated estimator (default ``"<method>_calibrated"``).
        tolerance: Largest relative gap between a calibrated total and its target.
        max_iterations: Most Newton steps.

    Returns:
        The calibration. Released areas in a group without calibration areas keep weight 1
        for that group.

    Raises:
        UnreachableMarginError: If a group's known total is negative, 0 where its
            calibration areas have a positive first estimate, or positive where they have
            none (weights would set every area of the group to 0 or fail to move it).
        CalibrationNotConvergedError: If the targets cannot be met (for logit: the bounds
            may be too tight).
        CellcensusError: If an input is inconsistent, or bounds are given to a method other
            than logit or are not ``0 <= L < 1 < U``.
    """
    _check_method(method=method, partitions=partitions, covariates=covariates, bounds=bounds)
    bounds = bounds or DEFAULT_BOUNDS
    released = expansion.estimate.dropna().index
    design = _design(index=released, partitions=partitions, covariates=covariates)
    ref = reference.astype("float64").set_axis(reference.index.astype(str)).reindex(released)
    in_set = ref.notna().to_numpy()
    x_all = design.to_numpy(dtype="float64")
    x_cal = x_all[in_set]
    d = expansion.estimate.reindex(released).to_numpy(dtype="float64")[in_set]
    targets = ref.to_numpy()[in_set] @ x_cal
    support = np.abs(x_cal).sum(axis=0) > 0
    _check_reachable(design=design, d=d, x=x_cal, targets=targets, support=support)
    lambdas = np.zeros(x_all.shape[1])
    iterations = 0
    weight, slope = _weight_functions(method=method, bounds=bounds)
    if support.any():
        solve = (
            _solve_ratio
            if method == "ratio"
            else _solve_newton(weight, slope, method=method, hint=_unmet_hint(method, bounds))
        )
        lambdas[support], iterations = solve(
            d, x_cal[:, support], targets[support], tolerance, max_iterations
        )
    g = pd.Series(weight(x_all @ lambdas), index=released)
    parameters = {
        "calibration_cells": float(support.sum()),
        # Two partitions' groups each add up to every area: one of their cells is fixed
        # by the others. The constants fitted are the independent ones.
        "fitted_constants": float(np.linalg.matrix_rank(x_cal[:, support])),
    }
    assumptions = {
        "margins": "The known totals (margins) are right, and within a margin group the "
        "first estimate errs by the same proportion in every area.",
    }
    if method == "logit":
        parameters |= {"lower_bound": bounds[0], "upper_bound": bounds[1]}
        assumptions["bounds"] = (
            f"Every area's population lies between {bounds[0]:g} and {bounds[1]:g} times its "
            "first estimate (the bounds of the weights)."
        )
    calibrated = expansion.rescaled(
        by=g, name=name or f"{method}_calibrated", parameters=parameters, assumptions=assumptions
    )
    margins = _margin_table(
        design=design.loc[in_set],
        targets=targets,
        initial=d,
        calibrated=d * g.to_numpy()[in_set],
    )
    return Calibration(
        expansion=calibrated,
        g_weights=g,
        margins=margins,
        iterations=iterations,
        method=method,
    )


def _check_reachable(
    *,
    design: pd.DataFrame,
    d: FloatArray,
    x: FloatArray,
    targets: FloatArray,
    support: NDArray[np.bool_],
) -> None:
    """Refuse a partition group whose known total no positive weight can reach."""
    initial = d @ x
    margins = design.columns.get_level_values(0)
    groups = design.columns.get_level_values(1)
    for column, (margin, group) in enumerate(zip(margins, groups, strict=True)):
        if margin == "covariate" or not support[column]:
            continue
        target, first = float(targets[column]), float(initial[column])
        if target < 0 or (target == 0) != (first == 0):
            raise UnreachableMarginError(
                f"margin {margin!r}, group {group!r}: known total {target:,.0f} against a first "
                f"estimate of {first:,.0f} over its calibration areas; a population total "
                "cannot be negative, nor 0 where devices were counted (or positive where none "
                "were): check that the reference is aligned on the release's area codes"
            )


def density_classes(*, estimate: pd.Series, area_km2: pd.Series, n_classes: int = 5) -> pd.Series:
    """Classes of areas by estimated population density (quantiles), for a calibration margin.

    The classes come from the estimate, not the reference, so that they can be formed for
    areas whose reference is unknown (and leak nothing in a hold-out).

    Args:
        estimate: Estimated population indexed by area_code (NaN areas get no class).
        area_km2: Land area per area_code.
        n_classes: Number of classes of about equal numbers of areas.

    Returns:
        Class labels ``"d1"`` (sparsest) to ``"d<n>"`` indexed by area_code.

    Raises:
        CellcensusError: If `n_classes` is below 1.
    """
    if n_classes < 1:
        raise CellcensusError(f"n_classes must be at least 1, got {n_classes}")
    km2 = area_km2.astype("float64").set_axis(area_km2.index.astype(str))
    density = (estimate / km2.reindex(estimate.index)).dropna()
    ranks = density.rank(method="first")
    numbers = (ranks / len(density) * n_classes).apply(math.ceil).clip(1, n_classes)
    return "d" + numbers.astype(int).astype(str)


def logit_weight(u: FloatArray, *, bounds: tuple[float, float]) -> FloatArray:
    """Deville & Särndal's bounded calibration function ``g(u)``, that of the logit distance.

    ``g(u) = (L(U-1) + U(1-L) e^{Au}) / ((U-1) + (1-L) e^{Au})``, ``A = (U-L)/((1-L)(U-1))``,
    rises from ``L`` to ``U`` with ``g(0) = 1`` and ``g'(0) = 1``. It is computed as
    ``L + (U-L) expit(Au + c)``, ``c = log((1-L)/(U-1))``, so that no ``u`` overflows.

    Args:
        u: ``x'lambda`` per area.
        bounds: ``(L, U)``, ``0 <= L < 1 < U``.

    Returns:
        The weight per area, within ``[L, U]`` (strictly inside unless ``|u|`` is huge).

    Raises:
        CellcensusError: If the bounds are not ``0 <= L < 1 < U``.
    """
    lower, upper = check_bounds(bounds)
    z = _logit_argument(u, lower=lower, upper=upper)
    return np.asarray(lower + (upper - lower) * special.expit(z), dtype=np.float64)


def logit_weight_derivative(u: FloatArray, *, bounds: tuple[float, float]) -> FloatArray:
    """``g'(u) = (U-L) A expit(z) expit(-z)`` of `logit_weight`, ``z = Au + c``; 1 at 0.

    Raises:
        CellcensusError: If the bounds are not ``0 <= L < 1 < U``.
    """
    lower, upper = check_bounds(bounds)
    z = _logit_argument(u, lower=lower, upper=upper)
    slope = (upper - lower) * _logit_rate(lower=lower, upper=upper)
    return np.asarray(slope * special.expit(z) * special.expit(-z), dtype=np.float64)


def _logit_rate(*, lower: float, upper: float) -> float:
    return (upper - lower) / ((1.0 - lower) * (upper - 1.0))


def _logit_argument(u: FloatArray, *, lower: float, upper: float) -> FloatArray:
    """``z = Au + c``, shifted so that ``g(0) = 1``."""
    shift = math.log((1.0 - lower) / (upper - 1.0))
    # expit is flat beyond |z| ~ 750; the clip only keeps A u from overflowing.
    clipped = np.clip(np.asarray(u, dtype=np.float64), -1e250, 1e250)
    return np.asarray(_logit_rate(lower=lower, upper=upper) * clipped + shift)


def check_bounds(bounds: tuple[float, float]) -> tuple[float, float]:
    """`bounds` as ``(L, U)`` floats, refused unless ``0 <= L < 1 < U`` (finite)."""
    lower, upper = (float(bound) for bound in bounds)
    if not (math.isfinite(upper) and 0.0 <= lower < 1.0 < upper):
        raise CellcensusError(
            f"logit calibration bounds must satisfy 0 <= lower < 1 < upper (finite), got "
            f"lower={lower:g}, upper={upper:g}: the weights start at 1 and stay between the "
            f"bounds; give e.g. {DEFAULT_BOUNDS[0]:g} and {DEFAULT_BOUNDS[1]:g}"
        )
    return lower, upper


def _check_method(
    *,
    method: str,
    partitions: Mapping[str, pd.Series],
    covariates: pd.DataFrame | None,
    bounds: tuple[float, float] | None,
) -> None:
    if method not in _METHODS:
        raise CellcensusError(
            f"calibration method must be one of {sorted(_METHODS)}, got {method!r}"
        )
    if bounds is not None and method != "logit":
        raise CellcensusError(
            f"bounds {bounds} apply to the 'logit' method only, not to {method!r}: use "
            "method='logit' to keep the weights within bounds, or leave bounds out"
        )
    if method == "logit":
        check_bounds(bounds or DEFAULT_BOUNDS)
    if method == "ratio" and (len(partitions) != 1 or covariates is not None):
        raise CellcensusError(
            "ratio calibration takes exactly one partition and no covariates; use "
            "'linear' or 'raking' for several margins"
        )
    if not partitions and (covariates is None or covariates.empty):
        raise CellcensusError("calibration needs at least one partition or covariate")


def _design(
    *, index: pd.Index, partitions: Mapping[str, pd.Series], covariates: pd.DataFrame | None
) -> pd.DataFrame:
    """One column per group of each partition (0/1) and per covariate."""
    columns: list[pd.DataFrame] = []
    for margin, groups in partitions.items():
        keyed = groups.dropna().astype(str)
        keyed.index = keyed.index.astype(str)
        aligned = keyed.reindex(index)
        if aligned.isna().any():
            missing = list(index[aligned.isna().to_numpy()])[:5]
            raise CellcensusError(f"partition {margin!r} has no group for area_code {missing}")
        dummies = pd.get_dummies(aligned, dtype="float64")
        dummies.columns = pd.MultiIndex.from_product([[margin], dummies.columns.astype(str)])
        columns.append(dummies)
    if covariates is not None and not covariates.empty:
        values = covariates.astype("float64").set_axis(covariates.index.astype(str))
        aligned_values = values.reindex(index)
        if aligned_values.isna().any().any():
            raise CellcensusError("covariates lack a value for a released area")
        aligned_values.columns = pd.MultiIndex.from_product(
            [["covariate"], aligned_values.columns.astype(str)]
        )
        columns.append(aligned_values)
    return pd.concat(columns, axis=1)


def _solve_ratio(
    d: FloatArray, x: FloatArray, targets: FloatArray, tolerance: float, max_iterations: int
) -> tuple[FloatArray, int]:
    """Closed form: ``g = target / estimate`` per group, as ``lambda = g - 1`` (linear g)."""
    del tolerance, max_iterations
    estimated = d @ x
    if np.any(estimated <= 0):
        raise CellcensusError("ratio calibration: a group's estimated total is zero")
    return targets / estimated - 1.0, 0


def _solve_newton(
    g: WeightFunction, g_prime: WeightFunction, *, method: str, hint: str
) -> Callable[[FloatArray, FloatArray, FloatArray, float, int], tuple[FloatArray, int]]:
    """Newton steps on the calibration equations; `hint` says why they may not converge."""

    def solve(
        d: FloatArray, x: FloatArray, targets: FloatArray, tolerance: float, max_iterations: int
    ) -> tuple[FloatArray, int]:
        lambdas = np.zeros(x.shape[1])
        scale = np.maximum(np.abs(targets), 1.0)
        gap = targets - (d * g(x @ lambdas)) @ x
        for iteration in range(1, max_iterations + 1):
            jacobian = (x * (d * g_prime(x @ lambdas))[:, None]).T @ x
            step = np.asarray(np.linalg.lstsq(jacobian, gap, rcond=None)[0], dtype=np.float64)
            lambdas, gap = _line_search(d=d, x=x, targets=targets, lambdas=lambdas, step=step, g=g)
            if np.max(np.abs(gap) / scale) < tolerance:
                return lambdas, iteration
        raise CalibrationNotConvergedError(
            f"{method} calibration did not converge in {max_iterations} steps (largest "
            f"relative gap {np.max(np.abs(gap) / scale):.2e}); {hint}"
        )

    return solve


def _unmet_hint(method: str, bounds: tuple[float, float]) -> str:
    if method == "logit":
        return (
            f"the bounds ({bounds[0]:g}, {bounds[1]:g}) may be too tight for these margins: "
            "widen them (a lower bound nearer 0, an upper one higher), or check the margins"
        )
    return "the margins may be inconsistent or out of reach of positive weights"


def _line_search(
    *,
    d: FloatArray,
    x: FloatArray,
    targets: FloatArray,
    lambdas: FloatArray,
    step: FloatArray,
    g: WeightFunction,
) -> tuple[FloatArray, FloatArray]:
    """Halve the Newton step until the gap to the targets shrinks (raking, logit overshoot)."""
    current = np.linalg.norm(targets - (d * g(x @ lambdas)) @ x)
    size = 1.0
    for _ in range(40):
        trial = lambdas + size * step
        with np.errstate(over="ignore"):
            gap = targets - (d * g(x @ trial)) @ x
        if np.all(np.isfinite(gap)) and np.linalg.norm(gap) <= current:
            return trial, gap
        size /= 2
    return lambdas, targets - (d * g(x @ lambdas)) @ x


def _linear(u: FloatArray) -> FloatArray:
    return 1.0 + u


def _ones(u: FloatArray) -> FloatArray:
    return np.ones_like(u)


def _exp(u: FloatArray) -> FloatArray:
    return np.exp(np.clip(u, -50, 50))


_METHODS: tuple[str, ...] = get_args(CalibrationMethod)


def _weight_functions(
    *, method: str, bounds: tuple[float, float]
) -> tuple[WeightFunction, WeightFunction]:
    """``g`` and ``g'`` of `method` (ratio's closed form is a linear ``g``)."""
    if method == "logit":
        return (
            lambda u: logit_weight(u, bounds=bounds),
            lambda u: logit_weight_derivative(u, bounds=bounds),
        )
    if method == "raking":
        return _exp, _exp
    return _linear, _ones


def _margin_table(
    *,
    design: pd.DataFrame,
    targets: FloatArray,
    initial: FloatArray,
    calibrated: FloatArray,
) -> pd.DataFrame:
    x = design.to_numpy(dtype="float64")
    return pd.DataFrame(
        {
            "margin": design.columns.get_level_values(0),
            "group": design.columns.get_level_values(1),
            "target": targets,
            "initial": initial @ x,
            "calibrated": calibrated @ x,
        }
    )
