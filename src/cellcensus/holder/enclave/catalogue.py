"""What analysts may run: the built-in registry plus submissions the steward certified.

Every entry carries the SHA-256 of its code: the source file of a built-in module, the pinned
source of a certified submission. Jobs record it, so a release names the exact code that made it.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import sys
from dataclasses import dataclass
from functools import cache
from typing import Any

import jsonschema
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from cellcensus.errors import CellcensusError, did_you_mean
from cellcensus.holder.algorithms import Algorithm, get_algorithm, registered_algorithms
from cellcensus.holder.enclave.certification import Submissions


@dataclass(frozen=True)
class CatalogueEntry:
    """One runnable algorithm as the service sees it.

    Attributes:
        name: Algorithm name used in jobs.
        version: Semantic version.
        certification: Level that decides who may run it (the steward's for submissions).
        code_hash: SHA-256 of the code that runs.
        summary: One line on what it computes.
        outputs: Released columns.
        parameters_schema: JSON schema of the parameters.
        submission_id: The certified submission, for submitted algorithms.
    """

    name: str
    version: str
    certification: str
    code_hash: str
    summary: str
    outputs: tuple[str, ...]
    parameters_schema: dict[str, Any]
    submission_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready public description."""
        return {
            "name": self.name,
            "version": self.version,
            "certification": self.certification,
            "code_hash": self.code_hash,
            "summary": self.summary,
            "outputs": list(self.outputs),
            "parameters_schema": self.parameters_schema,
            "origin": "submission" if self.submission_id else "built-in",
        }


@cache
def builtin_code_hash(name: str) -> str:
    """SHA-256 of the source file of the module that defines built-in algorithm `name`."""
    algorithm = get_algorithm(name)
    module = sys.modules[algorithm.compute.__module__]
    path = inspect.getsourcefile(module)
    if path is None:
        return hashlib.sha256(name.encode()).hexdigest()
    with open(path, "rb") as handle:  # noqa: PTH123 - path is a str from inspect
        return hashlib.sha256(handle.read()).hexdigest()


def _builtin_entry(algorithm: Algorithm) -> CatalogueEntry:
    manifest = algorithm.manifest
    return CatalogueEntry(
        name=manifest.name,
        version=manifest.version,
        certification=manifest.certification.value,
        code_hash=builtin_code_hash(manifest.name),
        summary=manifest.summary,
        outputs=tuple(manifest.outputs),
        parameters_schema=manifest.parameters_schema(),
    )


class Catalogue:
    """Resolves algorithm names to entries and, in workers, to code."""

    def __init__(self, submissions: Submissions) -> None:
        self.submissions = submissions

    def entries(self) -> dict[str, CatalogueEntry]:
        """All runnable algorithms by name (built-ins cannot be shadowed)."""
        found = {name: _builtin_entry(a) for name, a in registered_algorithms().items()}
        for submission, _source in self.submissions.certified():
            report = submission.report or {}
            manifest = report.get("manifest", {})
            found.setdefault(
                submission.name,
                CatalogueEntry(
                    name=submission.name,
                    version=submission.version,
                    certification="certified",
                    code_hash=submission.sha256,
                    summary=str(manifest.get("summary", "")),
                    outputs=tuple(manifest.get("outputs", ("area_code", "device_count"))),
                    parameters_schema=dict(manifest.get("parameters_schema", {})),
                    submission_id=submission.id,
                ),
            )
        return found

    def get(self, name: str) -> CatalogueEntry:
        """The entry called `name`, or an error listing the known ones."""
        entries = self.entries()
        if name not in entries:
            known = ", ".join(sorted(entries))
            raise CellcensusError(
                f"unknown algorithm {name[:64]!r}{did_you_mean(name, entries)}; "
                f"known algorithms: {known}"
            )
        return entries[name]

    def normalize(self, entry: CatalogueEntry, parameters: dict[str, Any]) -> dict[str, Any]:
        """Validate parameters and return them in canonical form (defaults filled in)."""
        if entry.submission_id is None:
            parsed = get_algorithm(entry.name).manifest.parse(parameters)
            return dict(parsed.model_dump(mode="json"))
        try:
            jsonschema.validate(parameters, entry.parameters_schema)
        except jsonschema.ValidationError as error:
            where = ".".join(str(part) for part in error.absolute_path) or "parameters"
            raise CellcensusError(f"{entry.name}: parameter '{where}': {error.message}") from None
        given = with_defaults(parameters, entry.parameters_schema)
        return dict(json.loads(json.dumps(given, sort_keys=True)))

    def defaults(self) -> dict[tuple[str, str], dict[str, Any]]:
        """Each algorithm's `parameter_defaults`, by its name and version."""
        return {
            (entry.name, entry.version): parameter_defaults(entry)
            for entry in self.entries().values()
        }

    def load(self, entry: CatalogueEntry) -> Algorithm:
        """The code of a built-in `entry`.

        Raises:
            CellcensusError: `entry` is a submission: its code runs only in a confined child
                of a worker (`enclave.confined`), never where releases are protected.
        """
        if entry.submission_id is not None:
            raise CellcensusError(f"{entry.name} is submitted code: it runs only confined")
        return get_algorithm(entry.name)


def parameter_defaults(entry: CatalogueEntry) -> dict[str, Any]:
    """The value each parameter of `entry` takes when a job does not give it, as JSON.

    A built-in's from its parameter model, nested models walked (a parameter a job must
    give has none); a submission's from its schema's top-level `default`s.
    """
    if entry.submission_id is not None:
        return with_defaults({}, entry.parameters_schema)
    model = get_algorithm(entry.name).manifest.parameters
    return dict(to_jsonable_python(_model_defaults(model)))


def _model_defaults(model: type[BaseModel]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if not field.is_required():
            found[name] = field.get_default(call_default_factory=True)
        elif isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            found[name] = _model_defaults(field.annotation)
    return found


def with_defaults(parameters: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """`parameters` with the defaults `schema` declares for those not given.

    What a submitted model would have filled in: the job records it, and its period
    (``start``, ``end``) and slots (``slot_minutes``) set the release's public keys.
    """
    properties = schema.get("properties")
    defaults = {}
    if isinstance(properties, dict):
        defaults = {
            name: spec["default"]
            for name, spec in properties.items()
            if isinstance(spec, dict) and "default" in spec
        }
    return {**defaults, **parameters}
