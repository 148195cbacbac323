"""The power-law estimator of Deville et al. (2014), fitted on a calibration set of areas.

Deville, Linard, Martin, Gilbert, Stevens, Gaughan, Blondel & Tatem (2014), "Dynamic
population mapping using mobile phone data", PNAS 111(45), 15888-15893: population density
is a power of the density of phone users, ``rho_pop = alpha * rho_phone ** beta``, with
``alpha`` and ``beta`` fitted by least squares on the logarithms over areas where both are
known. With ``beta < 1`` a phone counts for more persons in sparse areas than in dense ones
(rural residents own or use phones less; dense areas attract second phones and machines).

The law is fitted in logarithms, so ``exp`` of the fitted line is the *median* population at
a device density, not the mean: with residuals of sd ``sigma`` in logs it falls short of the
mean by ``exp(sigma² / 2)`` (1.1 % at sigma = 0.15), and so would the sum of the estimates.
The estimate is multiplied by Duan's smearing factor, the mean of ``exp`` of the fit's
residuals (Duan 1983, "Smearing estimate: a nonparametric retransformation method", Journal
of the American Statistical Association 78(383), 605-610), which needs no normality of the
residuals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cellcensus.errors import CellcensusError
from cellcensus.nso.expansion import Expansion


class TooFewCalibrationAreasError(CellcensusError):
    """The release has too few areas with a count and a reference to fit the law on."""


MIN_CALIBRATION_AREAS = 10
"""Fewer areas than this with a device count and a reference cannot fit the power law."""


@dataclass(frozen=True)
class PowerLaw:
    """A fitted ``density = alpha * device_density ** beta``.

    Attributes:
        alpha: Persons per km² at one device per km² (the median: ``exp`` of the intercept
            fitted in logs).
        beta: Elasticity of population density with respect to device density.
        r2: Share of the variance of log population density the fit explains.
        n_areas: Areas the fit used.
        smearing: Duan's retransformation factor, the mean of ``exp`` of the residuals in
            logs: the mean population at a device density is ``smearing`` times the median.
    """

    alpha: float
    beta: float
    r2: float
    n_areas: int
    smearing: float = 1.0

    def expand(self, *, devices: pd.Series, area_km2: pd.Series) -> Expansion:
        """Apply the fitted law to released counts.

        Args:
            devices: Released device counts indexed by area_code (NaN where suppressed).
            area_km2: Land area of each area, indexed by area_code.

        Returns:
            The expansion named ``"power_law"``; an area with 0 devices gets 0 persons and
            an undefined factor.

        Raises:
            CellcensusError: If a released area lacks a positive area.
        """
        km2 = _areas(area_km2=area_km2, index=devices.index)
        estimate = km2 * self.smearing * self.alpha * (devices / km2) ** self.beta
        factor = (estimate / devices).where(devices > 0)
        return Expansion(
            name="power_law",
            devices=devices,
            estimate=estimate,
            factor=factor,
            gradient=self.beta * factor,
            parameters={
                "alpha": self.alpha,
                "beta": self.beta,
                "r2": self.r2,
                "n_areas": float(self.n_areas),
                "smearing": self.smearing,
            },
            assumptions={
                "power_law": "Population density is the same power of device density "
                "everywhere, with the exponent fitted on the calibration areas.",
                "calibration_areas": "The calibration areas are like the others (the relation "
                "holds out of sample).",
            },
        )


def fit_power_law(*, devices: pd.Series, area_km2: pd.Series, reference: pd.Series) -> PowerLaw:
    """Fit ``log(reference / km2) = log(alpha) + beta * log(devices / km2)`` by least squares.

    With Duan's smearing factor of the residuals, to turn the median back into the mean.

    Args:
        devices: Released device counts indexed by area_code.
        area_km2: Land area per area_code.
        reference: Known population of the calibration areas (areas absent or NaN are not
            used; neither are areas without a positive count or reference).

    Returns:
        The fitted law.

    Raises:
        CellcensusError: If fewer than `MIN_CALIBRATION_AREAS` areas can be used, or their
            device densities are all equal.
    """
    ref = reference.astype("float64").set_axis(reference.index.astype(str)).reindex(devices.index)
    km2 = area_km2.astype("float64").set_axis(area_km2.index.astype(str)).reindex(devices.index)
    usable = (devices > 0) & (ref > 0) & (km2 > 0)
    if int(usable.sum()) < MIN_CALIBRATION_AREAS:
        raise TooFewCalibrationAreasError(
            f"the power law needs at least {MIN_CALIBRATION_AREAS} calibration areas with a "
            f"released count and a reference; got {int(usable.sum())} (areas withheld as too "
            "small have no count): give a dataset with more devices or days, or more "
            "reference areas"
        )
    x = np.log((devices[usable] / km2[usable]).to_numpy())
    y = np.log((ref[usable] / km2[usable]).to_numpy())
    if np.ptp(x) == 0:
        raise CellcensusError("the power law cannot be fitted: all device densities are equal")
    beta, log_alpha = np.polyfit(x, y, 1)
    residual = y - (log_alpha + beta * x)
    r2 = 1.0 - float(residual.var() / y.var()) if y.var() > 0 else math.nan
    return PowerLaw(
        alpha=float(math.exp(log_alpha)),
        beta=float(beta),
        r2=r2,
        n_areas=int(usable.sum()),
        smearing=float(np.mean(np.exp(residual))),
    )


def power_law_expansion(
    *, devices: pd.Series, area_km2: pd.Series, reference: pd.Series
) -> Expansion:
    """Fit the power law on the calibration areas and apply it to every released area.

    Args:
        devices: Released device counts indexed by area_code.
        area_km2: Land area per area_code.
        reference: Known population of the calibration areas.

    Returns:
        The expansion named ``"power_law"``.
    """
    law = fit_power_law(devices=devices, area_km2=area_km2, reference=reference)
    return law.expand(devices=devices, area_km2=area_km2)


def _areas(*, area_km2: pd.Series, index: pd.Index) -> pd.Series:
    km2 = area_km2.astype("float64").set_axis(area_km2.index.astype(str)).reindex(index)
    bad = index[~(km2 > 0).to_numpy()]
    if len(bad):
        raise CellcensusError(f"area_km2 is missing or not positive for area_code {list(bad)[:5]}")
    return km2
