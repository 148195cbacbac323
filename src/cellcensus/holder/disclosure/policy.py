"""Disclosure policies as data: what each algorithm's releases must go through.

A policy is a frozen value, loadable from a steward's YAML or JSON file and recorded with every
release. The code enforces floors that no policy, default or override, may go below: a
minimum count of at least `MIN_COUNT_FLOOR` devices, rounding to a base of at least 5 when no
noise is added, and a per-release privacy loss of at most `EPSILON_CEILING`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, cast, get_args

import yaml

from cellcensus.errors import CellcensusError

Mechanism = Literal["laplace", "gaussian"]

MIN_COUNT_FLOOR = 10.0
"""No policy may release a count of 10 devices or fewer."""
ROUNDING_FLOOR_WITHOUT_NOISE = 5
"""Without noise, rounding is the only defence against differencing: base 5 at least."""
EPSILON_CEILING = 5.0
"""Most privacy loss (epsilon) a single release may spend."""
DELTA_CEILING = 1e-6
"""Largest delta a single release may spend (Gaussian mechanism only)."""
DEFAULT_EPSILON = 0.4
"""Per-release epsilon of the default policies (see docs/disclosure.md for why)."""


def _check_number(*, name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CellcensusError(f"{name} must be a finite number, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class DifferentialPrivacy:
    """Noise added before release, and the privacy loss each release spends.

    Attributes:
        epsilon: Privacy loss of one release, charged to the analyst's ledger; in
            (0, `EPSILON_CEILING`].
        delta: Probability of exceeding `epsilon`; 0 for Laplace, in (0, `DELTA_CEILING`]
            for Gaussian.
        mechanism: ``"laplace"`` (pure epsilon-DP, L1 sensitivity) or ``"gaussian"``
            ((epsilon, delta)-DP through zero-concentrated DP, L2 sensitivity).
        measure_totals: When coarser totals are released, measure them with noise too
            (epsilon split equally over the levels) and reconcile all levels by least
            squares; False (default) spends all epsilon on the finest level and releases
            totals as sums of its noisy counts (free post-processing, best for the finest
            level).
        noise_releases: How many of a release's cells noise alone may be expected to lift
            above the threshold where no device is: the threshold rises, for each cell, to
            the noise's quantile that keeps it so (`protection.release_threshold`); null
            leaves `min_count` alone. In (0, 100]. Over the 1,849 pairs of a matrix of
            arrondissements, or the 346,921 of municipalities, `min_count` alone lets
            through about 2 and 430 pairs of pure noise at epsilon 0.4.
    """

    epsilon: float = DEFAULT_EPSILON
    delta: float = 0.0
    mechanism: Mechanism = "laplace"
    measure_totals: bool = False
    noise_releases: float | None = 1.0

    def __post_init__(self) -> None:
        _check_number(name="dp.epsilon", value=self.epsilon)
        _check_number(name="dp.delta", value=self.delta)
        if not 0.0 < self.epsilon <= EPSILON_CEILING:
            raise CellcensusError(
                f"dp.epsilon must be in (0, {EPSILON_CEILING}], got {self.epsilon}"
            )
        if self.mechanism not in get_args(Mechanism):
            raise CellcensusError(
                f"dp.mechanism must be one of {get_args(Mechanism)}, got {self.mechanism!r}"
            )
        if self.mechanism == "laplace" and self.delta != 0.0:
            raise CellcensusError(f"dp.delta must be 0 for the Laplace mechanism, got {self.delta}")
        if self.mechanism == "gaussian" and not 0.0 < self.delta <= DELTA_CEILING:
            raise CellcensusError(
                f"dp.delta must be in (0, {DELTA_CEILING}] for the Gaussian mechanism, "
                f"got {self.delta}"
            )
        if not isinstance(self.measure_totals, bool):
            raise CellcensusError(
                f"dp.measure_totals must be true or false, got {self.measure_totals!r}"
            )
        if self.noise_releases is not None:
            _check_number(name="dp.noise_releases", value=self.noise_releases)
            if not 0.0 < self.noise_releases <= 100.0:
                raise CellcensusError(
                    f"dp.noise_releases must be in (0, 100] or null, got {self.noise_releases}"
                )


@dataclass(frozen=True, kw_only=True)
class DisclosurePolicy:
    """How a table of device counts is protected before release.

    Attributes:
        min_count: Counts of this many devices or fewer are suppressed (FlowKit uses 15);
            applied to device counts, never to expanded (scaled) figures. At least
            `MIN_COUNT_FLOOR`.
        rounding_base: Released counts are multiples of this base, rounded consistently
            (the same cell with the same count always gives the same value).
        secondary_suppression: When coarser totals are released too, also suppress the
            next-smallest sibling wherever a suppressed cell could be recovered by
            subtraction.
        dp: Differential privacy; None releases exact counts after threshold and rounding.
    """

    min_count: float = 15.0
    rounding_base: int = 5
    secondary_suppression: bool = True
    dp: DifferentialPrivacy | None = field(default=None)

    def __post_init__(self) -> None:
        _check_number(name="min_count", value=self.min_count)
        if not MIN_COUNT_FLOOR <= self.min_count <= 1000:
            raise CellcensusError(
                f"min_count must be between {MIN_COUNT_FLOOR:g} and 1000 devices, "
                f"got {self.min_count}"
            )
        if isinstance(self.rounding_base, bool) or not isinstance(self.rounding_base, int):
            raise CellcensusError(f"rounding_base must be an integer, got {self.rounding_base!r}")
        floor = 1 if self.dp is not None else ROUNDING_FLOOR_WITHOUT_NOISE
        if not floor <= self.rounding_base <= 100:
            raise CellcensusError(
                f"rounding_base must be between {floor} and 100"
                f"{'' if self.dp else ' when no noise is added (dp is off)'}, "
                f"got {self.rounding_base}"
            )
        if not isinstance(self.secondary_suppression, bool):
            raise CellcensusError(
                f"secondary_suppression must be true or false, got {self.secondary_suppression!r}"
            )

    @property
    def epsilon(self) -> float:
        """Privacy loss one release under this policy spends (0 without DP)."""
        return self.dp.epsilon if self.dp else 0.0

    @property
    def delta(self) -> float:
        """Delta one release under this policy spends (0 without DP or with Laplace)."""
        return self.dp.delta if self.dp else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The policy as it is recorded with each release (and read back by `from_dict`)."""
        return {
            "min_count": self.min_count,
            "rounding_base": self.rounding_base,
            "secondary_suppression": self.secondary_suppression,
            "dp": None if self.dp is None else asdict(self.dp),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "policy") -> DisclosurePolicy:
        """Build a policy from plain data (a steward's file, a release's provenance).

        Args:
            data: Fields of `DisclosurePolicy`; ``dp`` is a mapping of `DifferentialPrivacy`
                fields or null.
            source: Where the data comes from, named in error messages.

        Raises:
            CellcensusError: Unknown field or value out of bounds, naming `source`.
        """
        return DisclosurePolicy().override(data, source=source, merge_dp=False)

    def override(
        self, changes: Mapping[str, Any], *, source: str = "override", merge_dp: bool = True
    ) -> DisclosurePolicy:
        """This policy with some fields changed, checked against the floors.

        Args:
            changes: Fields to change; ``dp`` may be a partial mapping (merged onto the
                current DP settings) or null (no noise).
            source: Where the changes come from, named in error messages.
            merge_dp: Merge a ``dp`` mapping onto the current settings (else start from
                the `DifferentialPrivacy` defaults).

        Raises:
            CellcensusError: Unknown field or value out of bounds, naming `source`.
        """
        if not isinstance(changes, Mapping):
            raise CellcensusError(f"{source}: expected a mapping of policy fields, got {changes!r}")
        _reject_unknown(
            changes,
            allowed=("min_count", "rounding_base", "secondary_suppression", "dp"),
            source=source,
        )
        values = dict(changes)
        if "dp" in values:
            values["dp"] = _dp_from(values["dp"], base=self.dp if merge_dp else None, source=source)
        try:
            return replace(self, **values)
        except CellcensusError as error:
            raise CellcensusError(f"{source}: {error}") from None
        except TypeError as error:
            raise CellcensusError(f"{source}: {error}") from None


_MANY_UNITS = DisclosurePolicy(dp=DifferentialPrivacy(mechanism="gaussian", delta=DELTA_CEILING))
"""For releases where one device adds to U cells (every slot of every date): Gaussian noise
grows with sqrt(U) (L2 sensitivity), Laplace with U (L1), at the same epsilon."""

DEFAULT_POLICIES: Mapping[str, DisclosurePolicy] = MappingProxyType(
    {
        "usual_residence": DisclosurePolicy(dp=DifferentialPrivacy()),
        "present_population": _MANY_UNITS,
        "trips_od": _MANY_UNITS,
    }
)
"""Each certified algorithm's default policy; algorithms not listed get `FALLBACK_POLICY`."""

FALLBACK_POLICY = DisclosurePolicy(dp=DifferentialPrivacy())
"""Policy of an algorithm that has no default of its own: the strict one."""


def policy_for(
    *, algorithm: str, policies: Mapping[str, DisclosurePolicy] = DEFAULT_POLICIES
) -> DisclosurePolicy:
    """The policy that applies to `algorithm`'s releases.

    Args:
        algorithm: Name of a catalogue algorithm.
        policies: Policies per algorithm (the defaults, or others given).

    Returns:
        The algorithm's policy, or `FALLBACK_POLICY` when none is listed.
    """
    return policies.get(algorithm, FALLBACK_POLICY)


def read_policy_file(path: Path) -> dict[str, Any]:
    """A steward's policy file (YAML, or JSON by its suffix): a mapping by algorithm name.

    Raises:
        CellcensusError: Unreadable, malformed or not a mapping, naming the file.
    """
    try:
        text = path.read_text()
    except OSError as error:
        raise CellcensusError(f"cannot read disclosure policies {path}: {error.strerror}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise CellcensusError(f"{path} is not valid {path.suffix[1:] or 'YAML'}: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CellcensusError(f"{path}: expected a mapping of algorithm names to policy fields")
    return cast(dict[str, Any], data)


def _dp_from(
    value: Any, *, base: DifferentialPrivacy | None, source: str
) -> DifferentialPrivacy | None:
    if value is None or isinstance(value, DifferentialPrivacy):
        return value
    if not isinstance(value, Mapping):
        raise CellcensusError(f"{source}: dp must be a mapping or null, got {value!r}")
    _reject_unknown(
        value,
        allowed=("epsilon", "delta", "mechanism", "measure_totals", "noise_releases"),
        source=f"{source}: dp",
    )
    try:
        return replace(base or DifferentialPrivacy(), **dict(value))
    except CellcensusError as error:
        raise CellcensusError(f"{source}: {error}") from None


def _reject_unknown(values: Mapping[str, Any], *, allowed: tuple[str, ...], source: str) -> None:
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise CellcensusError(f"{source}: unknown field(s) {unknown}; allowed: {list(allowed)}")
