"""Statistical production: from one release to estimates by every estimator, with quality.

`estimate_all` runs every expansion and calibration estimator on a release, attaches an
interval to every estimate, validates each estimator against the census (all areas, and a
hold-out: fitted on a random half of the municipalities, judged on the other half), and
picks the default estimator by cross-validation on other, independent random splits (so
that the hold-out error reported for it is not the one it was chosen for). Its
`EstimationResult` feeds ``metrics.json``, the output files (`cellcensus.nso.dissemination`)
and the report (`cellcensus.nso.report`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from cellcensus.errors import SCHEMA_DOC, CellcensusError
from cellcensus.nso.calibration import (
    DEFAULT_BOUNDS,
    CalibrationMethod,
    CalibrationNotConvergedError,
    UnreachableMarginError,
    calibrate,
    check_bounds,
    density_classes,
)
from cellcensus.nso.estimation import released_devices
from cellcensus.nso.expansion import (
    DEFAULT_OWNERSHIP_BY_AGE,
    Expansion,
    age_coverage_correction,
    coverage_by_age,
    devices_per_person_correction,
    national_expansion,
    regional_expansion,
)
from cellcensus.nso.power_law import TooFewCalibrationAreasError, power_law_expansion
from cellcensus.nso.uncertainty import (
    DeclaredNoise,
    count_variance,
    cross_fitted_model_error,
    declared_noise,
    intervals,
    size_class_model_error,
)
from cellcensus.nso.validation import (
    Agreement,
    agreement,
    error_by_size_class,
    holdout_split,
    interval_coverage,
)
from cellcensus.reference import belgium
from cellcensus.release import Release


@dataclass(frozen=True)
class EstimatorInfo:
    """What an estimator is, for tables and the report.

    Attributes:
        name: Stable identifier (key of ``metrics.json``).
        label: Short human name.
        description: One sentence on what it does.
        supervised: Whether it is fitted on per-area reference values (then its hold-out
            result is the honest one).
    """

    name: str
    label: str
    description: str
    supervised: bool


ESTIMATORS: tuple[EstimatorInfo, ...] = (
    EstimatorInfo(
        "national",
        "National factor",
        "Every count times 1 / (market share × sampling fraction).",
        supervised=False,
    ),
    EstimatorInfo(
        "regional",
        "Regional factors",
        "Every count times its region's population over the holder's subscribers there.",
        supervised=False,
    ),
    EstimatorInfo(
        "devices_per_person",
        "Devices per person",
        "Regional (or national) factor divided by the resident devices per subscriber.",
        supervised=False,
    ),
    EstimatorInfo(
        "age_coverage",
        "Age coverage",
        "Devices per person, corrected for each area's share of residents of phone-owning age.",
        supervised=False,
    ),
    EstimatorInfo(
        "power_law",
        "Power law (Deville et al. 2014)",
        "Population density as a power of device density, fitted on calibration areas.",
        supervised=True,
    ),
    EstimatorInfo(
        "ratio_calibrated",
        "Ratio to margins",
        "Age coverage, scaled so that each margin group adds up to its known total.",
        supervised=True,
    ),
    EstimatorInfo(
        "greg_calibrated",
        "GREG to margins",
        "Age coverage, linearly calibrated to margin groups and density classes.",
        supervised=True,
    ),
    EstimatorInfo(
        "raking_calibrated",
        "Raking to margins",
        "Age coverage, raked to margin groups and density classes.",
        supervised=True,
    ),
    EstimatorInfo(
        "logit_calibrated",
        "Bounded logit to margins",
        "Age coverage, calibrated to margin groups and density classes with every weight "
        f"kept within bounds ({DEFAULT_BOUNDS[0]:g} and {DEFAULT_BOUNDS[1]:g} unless set; "
        "Deville & Särndal's logit method).",
        supervised=True,
    ),
)
"""Every estimator `estimate_all` runs, in the order of the report."""
TIE = 1e-4
"""Relative gap of selection scores below which two estimators tie (the earlier is chosen)."""
SELECTION_SPLITS = 5
"""Random halvings of the areas the default is chosen on, each half judged by the other.

One half of one split chose age coverage over GREG on a 0.1 x 28-day world where GREG was
the better on the census, on the other half of that split and on one half of each of four
other splits: the split's own noise (docs/estimation.md). Five splits cost ten more fits
(0.3 s at 589 municipalities). The uncalibrated corrections take their region's and
country's population from the whole reference in every fold (the subscribers they divide
it by are the whole region's), the calibrated ones their margins from the half they are
fitted on: the choice leans towards the former.
"""

ESTIMATOR_INFO: Mapping[str, EstimatorInfo] = MappingProxyType({e.name: e for e in ESTIMATORS})


@dataclass(frozen=True)
class EstimationOptions:
    """Choices of `estimate_all`; the defaults are those of the report.

    Attributes:
        ownership_by_age: Phone ownership by lower age limit, for the age coverage correction.
        devices_per_subscriber: Resident devices per subscriber if known; None to estimate
            it from the release.
        margin_level: Column of the areas table whose groups are the calibration margins
            (``arrondissement``, ``province`` or ``region``).
        n_density_classes: Density classes raked to as a second margin (0 for none).
        logit_bounds: ``(L, U)``, ``0 <= L < 1 < U``: the bounded calibration's weights stay
            between them (`calibration.DEFAULT_BOUNDS` unless given).
        holdout_fraction: Share of areas in the calibration half of the hold-out.
        seed: Seed of the splits the default estimator is chosen on (``(seed, k)`` for the
            k-th of `SELECTION_SPLITS`); the hold-out split reported (and the halves of the
            cross-fitted model error) uses ``seed + 1``.
        level: Confidence level of the intervals.
        contribution_bound: Most one device adds to one privacy unit of the release (the
            algorithm's bound), for noise derived from epsilon when no column declares it.
        default: Estimator reported as the official one; None picks the one whose
            cross-validated estimates are closest to the calibration reference over the
            selection splits (population-weighted), so that the reported hold-out split
            is not one it was chosen on.
    """

    ownership_by_age: Mapping[int, float] = field(
        default_factory=lambda: MappingProxyType(dict(DEFAULT_OWNERSHIP_BY_AGE))
    )
    devices_per_subscriber: float | None = None
    margin_level: str = "province"
    n_density_classes: int = 5
    logit_bounds: tuple[float, float] = DEFAULT_BOUNDS
    holdout_fraction: float = 0.5
    seed: int = 0
    level: float = 0.95
    contribution_bound: float = 1.0
    default: str | None = None

    def __post_init__(self) -> None:
        check_bounds(self.logit_bounds)  # refused before any estimate, not after
        if self.seed < 0:
            raise CellcensusError(
                f"seed {self.seed}: must be a non-negative integer (the random halves of the "
                "municipalities are drawn from it)"
            )


@dataclass(frozen=True)
class EstimatorOutcome:
    """One estimator's estimates, intervals and quality.

    Attributes:
        info: What the estimator is.
        table: Indexed by area_code: ``released_devices``, ``estimate``, ``std_error``,
            ``ci_lower``, ``ci_upper``, ``factor`` (fitted on all calibration areas).
        holdout_table: The same columns, fitted on the calibration half only.
        agreement: Estimates against the census over all areas.
        holdout: Hold-out estimates against the census over the validation half.
        coverage: Share of areas whose census value is inside the interval (all areas; out
            of sample, each half's ``tau`` being fitted on the other half).
        holdout_coverage: The same over the validation half, hold-out intervals.
        model_error: Largest relative model error ``tau`` in the intervals of each half of
            the hold-out split (calibration half, validation half), each fitted on the other.
        model_error_by_size: ``tau`` of each class of estimated size in each half: ``half``
            (``calibration`` or ``validation``: whose intervals get it), ``lower`` and
            ``upper`` (estimated persons), ``n_areas`` (of the other half, fitted on) and
            ``tau`` (`cellcensus.nso.uncertainty.size_class_model_error`).
        by_size_class: `cellcensus.nso.validation.error_by_size_class` over all areas,
            with the coverage and median width of the intervals in each class.
        parameters: Constants given or fitted.
        assumptions: Under which the estimator is unbiased.
        selection_score: Population-weighted error against the calibration reference of
            each half of every selection split, fitted on its other half, pooled: how the
            default is chosen without looking at the reported split.
        error_sources: Indexed by area_code: the standard error each source adds to the
            estimate, in persons: ``sampling`` (who is in the data), ``noise`` (the
            disclosure noise and rounding the release declares) and ``model`` (the model
            error ``tau``); NaN where suppressed.
    """

    info: EstimatorInfo
    table: pd.DataFrame
    holdout_table: pd.DataFrame
    agreement: Agreement
    holdout: Agreement
    coverage: float
    holdout_coverage: float
    model_error: tuple[float, ...]
    by_size_class: pd.DataFrame
    parameters: Mapping[str, float]
    assumptions: tuple[str, ...]
    selection_score: float = math.nan
    error_sources: pd.DataFrame = field(default_factory=pd.DataFrame)
    model_error_by_size: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def name(self) -> str:
        """The estimator's identifier."""
        return self.info.name

    @property
    def median_relative_ci(self) -> float:
        """Median of the interval half-width relative to the estimate (precision)."""
        table = self.table[self.table["estimate"] > 0]
        if table.empty:
            return math.nan
        half = (table["ci_upper"] - table["ci_lower"]) / 2 / table["estimate"]
        return float(half.median())

    def error_summary(self) -> dict[str, float]:
        """How much each source of error weighs, over the released areas.

        Returns:
            ``median_relative_se_sampling``, ``..._noise`` and ``..._model``: median standard
            error of each source as a share of the estimate; ``noise_variance_share``: share
            of the total variance (summed over areas) due to the disclosure noise;
            ``noise_to_sampling_se``: median ratio of the noise to the sampling error.
        """
        names = ("sampling", "noise", "model")
        parts = self.error_sources
        if parts.empty or not set(names) <= set(parts.columns):
            return {}
        estimate = self.table["estimate"].reindex(parts.index)
        usable = parts[(estimate > 0) & parts["sampling"].notna()]
        relative = usable.div(estimate.reindex(usable.index), axis=0)
        variance = (usable[list(names)] ** 2).sum()
        total = float(variance.sum())
        ratio = (usable["noise"] / usable["sampling"].where(usable["sampling"] > 0)).dropna()
        summary = {f"median_relative_se_{name}": float(relative[name].median()) for name in names}
        summary["noise_variance_share"] = float(variance["noise"] / total) if total else math.nan
        summary["noise_to_sampling_se"] = float(ratio.median()) if len(ratio) else math.nan
        return summary

    def metrics(self) -> dict[str, Any]:
        """The estimator's block of ``metrics.json`` (NaN written as null)."""
        return _json_ready(
            {
                "label": self.info.label,
                "supervised": self.info.supervised,
                "agreement": self.agreement.to_dict(),
                "holdout": self.holdout.to_dict(),
                "interval_coverage": self.coverage,
                "holdout_interval_coverage": self.holdout_coverage,
                "median_relative_ci": self.median_relative_ci,
                "model_error": self.model_error,
                "model_error_by_size": self.model_error_by_size.to_dict(orient="records"),
                "selection_score": self.selection_score,
                "parameters": dict(self.parameters),
                "by_size_class": self.by_size_class.to_dict(orient="records"),
                "error_sources": self.error_summary(),
            }
        )


@dataclass(frozen=True)
class EstimationResult:
    """Every estimator's outcome on one release, and the default among them.

    Attributes:
        algorithm: The release's algorithm (e.g. ``usual_residence``): the key of the default
            estimator's block in ``metrics.json``.
        default: Name of the default (official) estimator.
        outcomes: Outcome per estimator name, in report order.
        skipped: Estimators that could not run, with the reason.
        census: The validation reference per area_code.
        calibration_reference: The known totals used for fitting, per area_code.
        calibration_areas: Areas of the reported hold-out's calibration half.
        validation_areas: Areas of its validation half.
        selection_splits: The halves of each split the default was chosen on (other seeds).
        noise: The noise the release declared.
        published: The holder facts of the release.
        options: The choices made.
        released_at: When the enclave made the release (ISO 8601, from its provenance).
    """

    algorithm: str
    default: str
    outcomes: Mapping[str, EstimatorOutcome]
    skipped: Mapping[str, str]
    census: pd.Series
    calibration_reference: pd.Series
    calibration_areas: pd.Index
    validation_areas: pd.Index
    selection_splits: tuple[tuple[pd.Index, pd.Index], ...]
    noise: DeclaredNoise
    published: Mapping[str, Any]
    options: EstimationOptions
    released_at: str = ""

    @property
    def best(self) -> EstimatorOutcome:
        """The default estimator's outcome."""
        return self.outcomes[self.default]

    @property
    def reference_agreement(self) -> Agreement:
        """The calibration reference against the census: how independent a check the census is.

        Exact (0 error) with the default reference, the census itself; the register of
        1 January 2011 is within 0.14 % of the census for the median municipality, but 0.45 %
        below it in total (1.6 % in Brussels-Capital).
        """
        return agreement(estimate=self.calibration_reference, reference=self.census)

    def comparison(self) -> pd.DataFrame:
        """Estimators side by side: one row each, indexed by name."""
        rows = []
        for outcome in self.outcomes.values():
            full, held = outcome.agreement, outcome.holdout
            rows.append(
                {
                    "estimator": outcome.name,
                    "label": outcome.info.label,
                    "supervised": outcome.info.supervised,
                    "pearson_r": full.pearson_r,
                    "log_r2": full.log_r2,
                    "log_slope": full.log_slope,
                    "ape_median": full.ape_median,
                    "ape_p90": full.ape_p90,
                    "weighted_ape": full.weighted_ape,
                    "relative_bias": full.relative_bias,
                    "holdout_ape_median": held.ape_median,
                    "holdout_weighted_ape": held.weighted_ape,
                    "holdout_log_slope": held.log_slope,
                    "interval_coverage": outcome.coverage,
                    "holdout_interval_coverage": outcome.holdout_coverage,
                    "median_relative_ci": outcome.median_relative_ci,
                }
            )
        return pd.DataFrame(rows).set_index("estimator")

    def metrics_json(self) -> dict[str, Any]:
        """The content of ``metrics.json``, NaN written as null.

        Returns:
            Under the algorithm's name, the default estimator's agreement with the census
            (the keys of `Agreement` plus ``estimator`` and ``interval_coverage``); under
            ``estimators``, one block per estimator (`EstimatorOutcome.metrics`); under
            ``skipped_estimators``, why an estimator did not run.
        """
        block: dict[str, Any] = {
            **self.best.agreement.to_dict(),
            "estimator": self.default,
            "interval_coverage": self.best.coverage,
        }
        return _json_ready(
            {
                self.algorithm: block,
                "estimators": {name: o.metrics() for name, o in self.outcomes.items()},
                "skipped_estimators": dict(self.skipped),
            }
        )

    def estimates(self, name: str | None = None) -> pd.DataFrame:
        """One estimator's table beside the census (default: the default estimator).

        Args:
            name: An estimator name.

        Returns:
            Indexed by area_code: the outcome's table columns and ``census``.

        Raises:
            CellcensusError: If the estimator is unknown or was skipped.
        """
        chosen = name or self.default
        if chosen not in self.outcomes:
            raise CellcensusError(
                f"no estimates for {chosen!r}; estimators run: {sorted(self.outcomes)}"
            )
        table = self.outcomes[chosen].table.copy()
        table["census"] = self.census.reindex(table.index)
        return table

    def long_table(self) -> pd.DataFrame:
        """Every estimator's estimates in long form: one row per estimator and area."""
        parts = [
            outcome.table.reset_index().assign(estimator=name)
            for name, outcome in self.outcomes.items()
        ]
        return pd.concat(parts, ignore_index=True)


def estimate_all(
    *,
    release: Release,
    census: pd.DataFrame | None = None,
    calibration_reference: pd.DataFrame | None = None,
    areas: pd.DataFrame | None = None,
    age_structure: pd.DataFrame | None = None,
    options: EstimationOptions | None = None,
) -> EstimationResult:
    """Estimate the population of every area with every estimator, with intervals and quality.

    Args:
        release: What the enclave released (``area_code``, ``device_count``, optional
            noise columns) with its published facts (``market_share``,
            ``sampling_fraction``, optional ``subscribers_by_region``).
        census: Validation reference: ``area_code`` and ``population`` (default: Belgian
            census 2011).
        calibration_reference: Known totals used to fit and calibrate: ``area_code`` and
            ``population`` (default: the census 2011, the population the estimates are of:
            the census then checks the spatial pattern of the estimates, not their level;
            the register of 1 January 2011 counts 0.45 % fewer residents, 1.6 % fewer in
            Brussels-Capital, and calibrating to it carried that gap into every calibrated
            estimate). Areas it lacks are fitted on by none; the population of their
            region (and of the country) is then unknown, so the regional factor (and,
            without ``subscribers_by_region``, devices per person) is skipped.
        areas: ``area_code``, ``region``, ``area_km2`` and the `EstimationOptions.margin_level`
            column (default: Belgian municipalities 2011).
        age_structure: Long ``area_code``, ``age_5y``, ``population`` (default: Belgian
            census 2011 by age and sex).
        options: Choices (default `EstimationOptions()`).

    Returns:
        The outcome of every estimator that could run, and the default one.

    Raises:
        CellcensusError: If the release lacks a published fact, a table lacks a column, or
            the requested default estimator did not run.
    """
    options = options or EstimationOptions()
    if options.default is not None and options.default not in ESTIMATOR_INFO:
        raise CellcensusError(
            f"default estimator {options.default!r} is not one of {sorted(ESTIMATOR_INFO)}"
        )
    inputs = _Inputs.of(
        release=release,
        census=census,
        calibration_reference=calibration_reference,
        areas=areas,
        age_structure=age_structure,
        options=options,
    )
    selection = tuple(
        _split(inputs=inputs, seed=(options.seed, k), fraction=0.5) for k in range(SELECTION_SPLITS)
    )
    calibration_areas, validation_areas = _split(
        inputs=inputs, seed=options.seed + 1, fraction=options.holdout_fraction
    )
    fits = _Fits.of(inputs=inputs, calibration_areas=calibration_areas, selection=selection)
    outcomes = {
        name: replace(
            _outcome(
                inputs=inputs,
                full=full,
                held=fits.held[name],
                calibration_areas=calibration_areas,
                validation_areas=validation_areas,
            ),
            selection_score=_selection_score(inputs=inputs, folds=fits.folds, name=name),
        )
        for name, full in fits.full.items()
    }
    return EstimationResult(
        algorithm=release.provenance.algorithm,
        default=_default(outcomes=outcomes, requested=options.default, skipped=fits.skipped),
        outcomes=outcomes,
        skipped=fits.skipped,
        census=inputs.census,
        calibration_reference=inputs.reference,
        calibration_areas=calibration_areas,
        validation_areas=validation_areas,
        selection_splits=selection,
        noise=inputs.noise,
        published=dict(release.published),
        options=options,
        released_at=release.provenance.created_at,
    )


@dataclass(frozen=True)
class _Inputs:
    """Everything the estimators read, aligned on area_code strings."""

    devices: pd.Series
    census: pd.Series
    reference: pd.Series
    areas: pd.DataFrame
    coverage: pd.DataFrame
    noise: DeclaredNoise
    variance: pd.Series
    market_share: float
    sampling_fraction: float
    subscribers_by_region: Mapping[str, float] | None
    options: EstimationOptions

    @classmethod
    def of(
        cls,
        *,
        release: Release,
        census: pd.DataFrame | None,
        calibration_reference: pd.DataFrame | None,
        areas: pd.DataFrame | None,
        age_structure: pd.DataFrame | None,
        options: EstimationOptions,
    ) -> _Inputs:
        published = release.published
        for fact in ("market_share", "sampling_fraction"):
            if fact not in published:
                raise CellcensusError(
                    f"the release does not publish {fact!r}; the holder must publish it "
                    f"beside the counts (metadata.json, see {SCHEMA_DOC})"
                )
        market_share = float(published["market_share"])
        sampling_fraction = float(published["sampling_fraction"])
        devices = released_devices(table=release.table)
        noise = declared_noise(release=release, contribution_bound=options.contribution_bound)
        area_table = _keyed(
            areas if areas is not None else belgium.municipalities(),
            name="areas",
            columns=("region", "area_km2", options.margin_level),
        )
        by_region = published.get("subscribers_by_region")
        reference = _population(
            calibration_reference,
            name="calibration_reference",
            default=belgium.census_population,
        )
        if calibration_reference is not None:
            _check_overlap(reference, devices, name="calibration_reference")
        return cls(
            devices=devices,
            census=_population(census, name="census", default=belgium.census_population),
            reference=reference,
            areas=area_table,
            coverage=coverage_by_age(
                age_population=(
                    age_structure if age_structure is not None else belgium.census_age_sex()
                ),
                ownership_by_age=options.ownership_by_age,
            ),
            noise=noise,
            variance=count_variance(
                devices=devices,
                noise=noise,
                selection_probability=market_share * sampling_fraction,
            ),
            market_share=market_share,
            sampling_fraction=sampling_fraction,
            subscribers_by_region=(
                {str(k): float(v) for k, v in by_region.items()} if by_region else None
            ),
            options=options,
        )


NO_SUBSCRIBERS_BY_REGION = "the release does not publish subscribers_by_region"
"""Why the regional factor is skipped when the holder gives no subscribers per region."""

_Fitted = dict[str, tuple[Expansion, int]]
"""Expansion per estimator name, with the number of constants fitted on per-area references."""


def negative_estimates(*fits: _Fitted) -> dict[str, str]:
    """Why each estimator that gave a negative population in any of `fits` is left out.

    A linear (GREG) calibration's weight 1 + x'lambda goes below 0 where an area holds few
    devices against its margin (tiny worlds, heavy noise): such an estimate is no population.
    """
    reasons: dict[str, str] = {}
    for fitted in fits:
        for name, (expansion, _) in fitted.items():
            below = expansion.estimate.index[expansion.estimate < 0]
            if len(below) and name not in reasons:
                reasons[name] = (
                    f"negative estimates for {len(below)} area(s), e.g. {below[0]} (its "
                    "calibration weights went below 0); raking keeps them positive, the "
                    "bounded (logit) calibration within its bounds"
                )
    return reasons


@dataclass(frozen=True)
class _Fits:
    """Every estimator fitted on each reference, and why those that are not were left out.

    Attributes:
        full: Fitted on the whole calibration reference.
        held: Fitted on the calibration half of the hold-out split.
        folds: Fitted on each half of every selection split, with the other half (whose
            reference judges the fit, to choose the default). An estimator a fold cannot
            fit is missing from that fold only: it gets no selection score.
        skipped: Why each estimator missing from `full` and `held` was left out.
    """

    full: _Fitted
    held: _Fitted
    folds: tuple[tuple[_Fitted, pd.Index], ...]
    skipped: dict[str, str]

    @classmethod
    def of(
        cls,
        *,
        inputs: _Inputs,
        calibration_areas: pd.Index,
        selection: tuple[tuple[pd.Index, pd.Index], ...],
    ) -> _Fits:
        """Fit on each reference; an estimator failing on one is left out or not chosen.

        One that fails or goes negative on all areas or on the hold-out half is in none;
        one that does on a selection fold stays, but is not chosen as the default.
        """
        full, skipped = _fit_all(inputs=inputs, reference=inputs.reference)
        held, held_failed = _fit_all(
            inputs=inputs, reference=inputs.reference.reindex(calibration_areas)
        )
        folds = tuple(
            (_fit_fold(inputs=inputs, areas=fitted_on), judged_on)
            for first, second in selection
            for fitted_on, judged_on in ((first, second), (second, first))
        )
        on_half = {
            name: f"{reason} (fitted on half of the areas, for validation)"
            for name, reason in held_failed.items()
        }
        for name, reason in {**on_half, **negative_estimates(full, held)}.items():
            skipped.setdefault(name, reason)
            for fitted in (full, held, *(fold for fold, _ in folds)):
                fitted.pop(name, None)
        return cls(full=full, held=held, folds=folds, skipped=skipped)


def _fit_fold(*, inputs: _Inputs, areas: pd.Index) -> _Fitted:
    """Every estimator that can be fitted on `areas`' references without a negative estimate."""
    fitted, _ = _fit_all(inputs=inputs, reference=inputs.reference.reindex(areas))
    for name in negative_estimates(fitted):
        del fitted[name]
    return fitted


def _fit_all(*, inputs: _Inputs, reference: pd.Series) -> tuple[_Fitted, dict[str, str]]:
    """Run every estimator, fitting what needs fitting on `reference` (NaN: not used)."""
    fitted: _Fitted = {}
    skipped: dict[str, str] = {}
    national = national_expansion(
        devices=inputs.devices,
        market_share=inputs.market_share,
        sampling_fraction=inputs.sampling_fraction,
    )
    fitted["national"] = (national, 0)
    base, groups = national, None
    regions = inputs.areas["region"].reindex(inputs.devices.index).dropna().unique()
    unknown = _without_reference(inputs=inputs, regions=regions)
    if not inputs.subscribers_by_region:
        skipped["regional"] = NO_SUBSCRIBERS_BY_REGION
    elif unknown is not None:
        skipped["regional"] = (
            f"{unknown}, so the population of its region is unknown: {_EVERY_AREA}"
        )
    else:
        regional = _regional(inputs=inputs)
        fitted["regional"] = (regional, 0)
        base, groups = regional, inputs.areas["region"]
    unknown_total = _without_reference(inputs=inputs, regions=None)
    if (
        inputs.options.devices_per_subscriber is None
        and not inputs.subscribers_by_region
        and unknown_total is not None
    ):
        skipped["devices_per_person"] = (
            f"{unknown_total}, so the population the subscribers are a share of is unknown: "
            f"{_EVERY_AREA}"
        )
        per_person = base
    else:
        per_person = devices_per_person_correction(
            base=base,
            subscribers=_subscribers(inputs=inputs),
            known_ratio=inputs.options.devices_per_subscriber,
            population=inputs.reference,
        )
        fitted["devices_per_person"] = (per_person, 0)
    covered = age_coverage_correction(base=per_person, coverage=inputs.coverage, groups=groups)
    fitted["age_coverage"] = (covered, 0)
    try:
        law = power_law_expansion(
            devices=inputs.devices, area_km2=inputs.areas["area_km2"], reference=reference
        )
    except TooFewCalibrationAreasError as error:  # small data: the others still run
        skipped["power_law"] = str(error)
    else:
        fitted["power_law"] = (law, 3)  # alpha, beta and the smearing factor
    methods: tuple[CalibrationMethod, ...] = ("ratio", "linear", "raking", "logit")
    for method in methods:
        name = _calibrated_name(method)
        try:
            fitted[name] = _calibrated(
                inputs=inputs, base=covered, reference=reference, method=method
            )
        # A wrong reference, or margins no allowed weights reach (logit's bounds): the others run.
        except (UnreachableMarginError, CalibrationNotConvergedError) as error:
            skipped[name] = str(error) + (_WIDER if method == "logit" else "")
    return fitted, skipped


_WIDER = " (EstimationOptions.logit_bounds; `cellcensus estimate --logit-bounds LOWER UPPER`)"


_EVERY_AREA = "give the calibration reference every area of the areas table, with its residents"


def _without_reference(*, inputs: _Inputs, regions: Any) -> str | None:
    """Which areas of `regions` (None: of every region) the calibration reference lacks.

    A region's (or the country's) population is the sum of its areas' references, all of
    them: summed over the areas the reference gives, it would fall short by the others',
    and every factor taken from it with it (a province left out of the register put the
    regional factor of its region 27 % too low). None when every area has a reference.
    """
    region = inputs.areas["region"]
    chosen = region.index if regions is None else region.index[region.isin(regions)]
    reference = inputs.reference.reindex(chosen)
    counted = inputs.devices.reindex(chosen) > 0
    # 0 residents where the release counted devices is no population: a misaligned code.
    absent = chosen[reference.isna().to_numpy()]
    zero = chosen[((reference <= 0) & counted).to_numpy()]
    said = [
        f"{what} {len(areas)} area(s) of the areas table, e.g. {areas[0]} (region "
        f"{region[areas[0]]})"
        for what, areas in (
            ("the calibration reference lacks", absent),
            ("the calibration reference gives 0 residents where devices were counted to", zero),
        )
        if not areas.empty
    ]
    if not said:
        return None
    return "; ".join(said)


def _regional(*, inputs: _Inputs) -> Expansion:
    regions = inputs.areas["region"]
    population = inputs.reference.groupby(regions.reindex(inputs.reference.index)).sum()
    return regional_expansion(
        devices=inputs.devices,
        regions=regions,
        region_population={str(k): float(v) for k, v in population.items()},
        subscribers_by_region=inputs.subscribers_by_region or {},
    )


def _subscribers(*, inputs: _Inputs) -> float:
    """Subscribers in the data: published per region, else implied by the market share."""
    if inputs.subscribers_by_region:
        return float(sum(inputs.subscribers_by_region.values()))
    total = float(inputs.reference.sum())
    return inputs.market_share * inputs.sampling_fraction * total


def _calibrated(
    *, inputs: _Inputs, base: Expansion, reference: pd.Series, method: CalibrationMethod
) -> tuple[Expansion, int]:
    level = inputs.options.margin_level
    partitions = {level: inputs.areas[level]}
    if method != "ratio" and inputs.options.n_density_classes > 0:
        partitions["density"] = density_classes(
            estimate=base.estimate,
            area_km2=inputs.areas["area_km2"],
            n_classes=inputs.options.n_density_classes,
        )
    result = calibrate(
        expansion=base,
        reference=reference,
        partitions=partitions,
        method=method,
        bounds=inputs.options.logit_bounds if method == "logit" else None,
        name=_calibrated_name(method),
    )
    return result.expansion, int(result.expansion.parameters["fitted_constants"])


def _calibrated_name(method: CalibrationMethod) -> str:
    return "greg_calibrated" if method == "linear" else f"{method}_calibrated"


def _outcome(
    *,
    inputs: _Inputs,
    full: tuple[Expansion, int],
    held: tuple[Expansion, int],
    calibration_areas: pd.Index,
    validation_areas: pd.Index,
) -> EstimatorOutcome:
    expansion, n_fitted = full
    level = inputs.options.level
    halves = (calibration_areas, validation_areas)
    cross_fitted = cross_fitted_model_error(
        expansion=expansion,
        variance=inputs.variance,
        reference=inputs.reference,
        folds=halves,
        level=level,
        n_parameters=n_fitted,
    )
    tau = cross_fitted.tau
    table = _table(expansion=expansion, variance=inputs.variance, tau=tau, level=level)
    held_expansion, held_fitted = held
    held_tau = size_class_model_error(
        expansion=held_expansion,
        variance=inputs.variance,
        reference=inputs.reference.reindex(calibration_areas),
        level=level,
        n_parameters=held_fitted,
    ).of(held_expansion.estimate)
    held_table = _table(
        expansion=held_expansion, variance=inputs.variance, tau=held_tau, level=level
    )
    validation = inputs.census.reindex(validation_areas).dropna()
    return EstimatorOutcome(
        info=ESTIMATOR_INFO[expansion.name],
        table=table,
        holdout_table=held_table,
        agreement=agreement(estimate=table["estimate"], reference=inputs.census),
        holdout=agreement(estimate=held_table["estimate"], reference=validation),
        coverage=interval_coverage(
            lower=table["ci_lower"], upper=table["ci_upper"], reference=inputs.census
        ),
        holdout_coverage=interval_coverage(
            lower=held_table["ci_lower"], upper=held_table["ci_upper"], reference=validation
        ),
        model_error=tuple(float(tau[tau.index.isin(half)].max()) for half in halves),
        model_error_by_size=pd.concat(
            [
                fit.table().assign(half=half)
                for half, fit in zip(("calibration", "validation"), cross_fitted.folds, strict=True)
            ],
            ignore_index=True,
        ),
        by_size_class=error_by_size_class(
            estimate=table["estimate"],
            reference=inputs.census,
            lower=table["ci_lower"],
            upper=table["ci_upper"],
        ),
        parameters=dict(expansion.parameters),
        assumptions=tuple(expansion.assumptions.values()),
        error_sources=_error_sources(inputs=inputs, expansion=expansion, tau=tau),
    )


def _split(
    *, inputs: _Inputs, seed: int | tuple[int, int], fraction: float
) -> tuple[pd.Index, pd.Index]:
    """A random `fraction` of the areas with a reference, within each margin group, and the rest."""
    options = inputs.options
    return holdout_split(
        codes=inputs.reference.index,
        fraction=fraction,
        seed=seed,
        strata=inputs.areas[options.margin_level],
    )


def _selection_score(
    *, inputs: _Inputs, folds: tuple[tuple[_Fitted, pd.Index], ...], name: str
) -> float:
    """Weighted error against the calibration reference, pooled over folds.

    Each fold's estimates are judged on the areas it was not fitted on; suppressed areas
    (no estimate) are left out, as `agreement` leaves them out. NaN (never the default)
    for an estimator a fold could not fit.
    """
    if any(name not in fitted for fitted, _ in folds):
        return math.nan
    error = total = 0.0
    for fitted, judged_on in folds:
        estimate = fitted[name][0].estimate.reindex(judged_on)
        reference = inputs.reference.reindex(judged_on)
        kept = estimate.notna() & reference.notna()
        error += float((estimate[kept] - reference[kept]).abs().sum())
        total += float(reference[kept].sum())
    return error / total if total > 0 else math.nan


def _error_sources(*, inputs: _Inputs, expansion: Expansion, tau: pd.Series) -> pd.DataFrame:
    """Standard error of each estimate from sampling, disclosure noise and model error."""
    devices = inputs.devices.reindex(expansion.estimate.index)
    probability = inputs.market_share * inputs.sampling_fraction
    noise = inputs.noise
    added = noise.variance.reindex(devices.index).fillna(0.0) + noise.rounding_variance
    gradient = expansion.gradient.abs()
    released = devices.notna()
    frame = pd.DataFrame(
        {
            "sampling": gradient * np.sqrt(devices.clip(lower=0.0) * (1.0 - probability)),
            "noise": (gradient * np.sqrt(added)).where(released),
            "model": (tau.reindex(devices.index) * expansion.estimate).abs().where(released),
        }
    )
    return frame.rename_axis("area_code")


def _table(
    *, expansion: Expansion, variance: pd.Series, tau: float | pd.Series, level: float
) -> pd.DataFrame:
    bounds = intervals(expansion=expansion, variance=variance, tau=tau, level=level)
    bounds.insert(0, "released_devices", expansion.devices)
    bounds["factor"] = expansion.factor
    return bounds.rename_axis("area_code")


def _default(
    *, outcomes: Mapping[str, EstimatorOutcome], requested: str | None, skipped: Mapping[str, str]
) -> str:
    if requested is not None:
        if requested not in outcomes:
            reason = skipped.get(requested, "no such estimator")
            raise CellcensusError(
                f"default estimator {requested!r} did not run ({reason}); choose one of "
                f"{sorted(outcomes)}"
            )
        return requested
    scores = {
        name: outcome.selection_score
        for name, outcome in outcomes.items()
        if not math.isnan(outcome.selection_score)
    }
    if not scores:
        return next(iter(outcomes))
    # Scores this close are no evidence either way (the split's noise is far larger):
    # the first in report order wins, so that a near twin (logit beside raking) added to
    # the comparison does not take the default by a rounding.
    best = min(scores.values())
    return next(name for name, score in scores.items() if score <= best * (1 + TIE))


def _keyed(table: pd.DataFrame, *, name: str, columns: tuple[str, ...]) -> pd.DataFrame:
    missing = [c for c in ("area_code", *columns) if c not in table.columns]
    if missing:
        raise CellcensusError(f"{name} table lacks column(s) {missing}; it has {list(table)}")
    keyed = table.assign(area_code=table["area_code"].astype(str)).set_index("area_code")
    for column in columns:
        if column != "area_km2":
            keyed[column] = keyed[column].astype(str)
    return keyed


def _population(
    table: pd.DataFrame | None, *, name: str, default: Callable[[], pd.DataFrame]
) -> pd.Series:
    frame = default() if table is None else table
    missing = [c for c in ("area_code", "population") if c not in frame.columns]
    if missing:
        raise CellcensusError(f"{name} table lacks column(s) {missing}; it has {list(frame)}")
    series = pd.Series(
        frame["population"].astype("float64").to_numpy(),
        index=pd.Index(frame["area_code"].astype(str).to_numpy(), name="area_code"),
        name=name,
    )
    if series.index.duplicated().any():
        raise CellcensusError(f"{name} table repeats an area_code")
    return series


def _check_overlap(reference: pd.Series, devices: pd.Series, *, name: str) -> None:
    """Refuse a reference given for none of the released areas: nothing would be fitted.

    Typically codes of another level or year, or a filter that kept no row; without this
    every estimator would fall back to the national factor without a word.
    """
    if reference.reindex(devices.index).notna().any():
        return
    given = f"{len(reference):,} area(s), e.g. {reference.index[0]}" if len(reference) else "none"
    raise CellcensusError(
        f"{name} gives the population of no area of the release ({given}; the release's "
        f"area codes are like {devices.index[0]}): give area_code and population at the "
        "release's level"
    )


def json_ready(value: Mapping[str, Any]) -> dict[str, Any]:
    """A mapping ready for ``metrics.json``: NaN and infinities None, numpy scalars plain."""
    return _json_ready(value)


def _json_ready(value: Mapping[str, Any]) -> dict[str, Any]:
    """NaN and infinities become None, numpy scalars plain Python numbers."""
    return {str(key): _plain(item) for key, item in value.items()}


def _plain(value: Any) -> Any:
    """NaN and infinities become None, numpy scalars plain Python numbers."""
    if isinstance(value, Mapping):
        return _json_ready(value)
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
