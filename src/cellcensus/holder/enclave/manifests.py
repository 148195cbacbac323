"""The manifest of a certified submission, as recorded in the state database.

A job of submitted code is protected by a worker that never imports the submitted module
(`enclave.confined`). What the protection needs of the algorithm (its keys and their public
domains, its contribution bound, its privacy unit) therefore comes from this record: the
manifest the conformance run described, checked here by the service's own code and stored
with the submission when the steward certifies it.

A manifest may also hold code: a `bound_for` callable, a `finish` step. Neither can be
recorded as data, and a `finish` step would run on exact counts outside the protection, so
submissions that have them are refused.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from cellcensus.errors import CellcensusError
from cellcensus.holder.algorithms.base import COUNT, Key, KeyDomain

KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_CATEGORIES = 10_000
"""Most values a category key may declare (its domain is released in full)."""

FINISH_REFUSED = (
    "a submitted algorithm cannot have a finish step: it would run on the exact counts outside "
    "the disclosure protection; compute the whole release in the Ibis expression (compute), "
    "or propose the step for the built-in catalogue"
)
BOUND_FOR_REFUSED = (
    "a submitted manifest cannot have a bound_for callable: the bound that calibrates the "
    "noise is recorded as a number at certification; state the bound at the most permissive "
    "parameters in contribution_bound"
)


@dataclass(frozen=True)
class RecordedManifest:
    """What protecting a submitted algorithm's output needs, as plain data.

    Attributes:
        name: The algorithm's name.
        version: Its version.
        keys: Key columns of the release and their public domains, in order.
        unit_keys: Keys of the privacy unit (the bound holds per value of them).
        contribution_bound: Most one device adds per privacy unit.
        parameters_schema: JSON schema of the parameters.
    """

    name: str
    version: str
    keys: tuple[Key, ...]
    unit_keys: tuple[str, ...]
    contribution_bound: float
    parameters_schema: dict[str, Any]

    @property
    def outputs(self) -> tuple[str, ...]:
        """Columns of the exact output: the keys, then `device_count`."""
        return (*(key.name for key in self.keys), COUNT)

    def to_dict(self) -> dict[str, Any]:
        """The stored form (the shape of `Manifest.describe`, keys first)."""
        return {
            "name": self.name,
            "version": self.version,
            "keys": [
                {"name": key.name, "domain": str(key.domain), "values": list(key.values)}
                for key in self.keys
            ],
            "unit_keys": list(self.unit_keys),
            "contribution_bound": self.contribution_bound,
            "parameters_schema": self.parameters_schema,
        }

    @classmethod
    def from_dict(cls, values: Any, *, name: str, version: str) -> RecordedManifest:
        """Check a described manifest (untrusted: a submission's own) and record it.

        Args:
            values: A manifest as `conformance.manifest_summary` describes it.
            name: The submission's name (from its source's syntax tree).
            version: The submission's version.

        Raises:
            CellcensusError: Not a manifest of that algorithm, or one the protection cannot
                use (a callable bound, a finish step, a key or bound out of shape).
        """
        if not isinstance(values, dict):
            raise CellcensusError("the submission has no recorded manifest; run conformance")
        if (values.get("name"), values.get("version")) != (name, version):
            raise CellcensusError(
                f"the conformance run described another algorithm than {name} {version}"
            )
        refuse_code(values)
        keys = tuple(_key(item) for item in _list(values.get("keys"), "keys"))
        names = [key.name for key in keys]
        if not keys or len(set(names)) < len(names):
            raise CellcensusError("manifest: keys must be at least one, each named once")
        unit_keys = tuple(str(item) for item in _list(values.get("unit_keys", []), "unit_keys"))
        if not set(unit_keys) <= set(names):
            raise CellcensusError(f"manifest: unit_keys must be among its keys {names}")
        schema = values.get("parameters_schema", values.get("parameters"))
        if not isinstance(schema, dict):
            raise CellcensusError("manifest: parameters_schema must be a JSON schema object")
        return cls(
            name=name,
            version=version,
            keys=keys,
            unit_keys=unit_keys,
            contribution_bound=_bound(values.get("contribution_bound")),
            parameters_schema=schema,
        )


def refuse_code(values: dict[str, Any]) -> None:
    """Refuse a described manifest whose algorithm has a finish step or a callable bound."""
    if values.get("finish"):
        raise CellcensusError(FINISH_REFUSED)
    if values.get("bound_for"):
        raise CellcensusError(BOUND_FOR_REFUSED)


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise CellcensusError(f"manifest: {what} must be a list")
    return value


def _key(item: Any) -> Key:
    """One key from its description, its name and domain checked."""
    if not isinstance(item, dict):
        raise CellcensusError("manifest: each key must be an object with a name and a domain")
    name = item.get("name")
    if not isinstance(name, str) or not KEY_PATTERN.match(name) or name == COUNT:
        raise CellcensusError(f"manifest: key name {str(name)[:70]!r} must be lowercase a-z0-9_")
    try:
        domain = KeyDomain(str(item.get("domain")))
    except ValueError:
        known = ", ".join(str(domain) for domain in KeyDomain)
        raise CellcensusError(f"manifest: key {name} has no known domain ({known})") from None
    values = _list(item.get("values", []), f"the values of key {name}")
    if domain is KeyDomain.CATEGORY:
        if not values or len(values) > MAX_CATEGORIES or len(set(map(str, values))) < len(values):
            raise CellcensusError(
                f"manifest: category key {name} needs 1 to {MAX_CATEGORIES} distinct values"
            )
        if not all(isinstance(value, str) for value in values):
            raise CellcensusError(f"manifest: the values of key {name} must be strings")
    elif values:
        raise CellcensusError(f"manifest: only a category key declares values ({name})")
    return Key(name, domain, tuple(values))


def _bound(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CellcensusError("manifest: contribution_bound must be a number")
    if not math.isfinite(value) or value <= 0:
        raise CellcensusError("manifest: contribution_bound must be finite and above 0")
    return float(value)
