"""One registry: the built-in catalogue plus algorithms registered through entry points.

Third-party algorithms (entry point group ``cellcensus.algorithms``, each entry an
`Algorithm`) come in as ``draft`` whatever their manifest claims: only a steward certifies,
and a third party can never shadow a built-in name.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from importlib.metadata import entry_points

from cellcensus.errors import CellcensusError, did_you_mean
from cellcensus.holder.algorithms.base import Algorithm, Certification
from cellcensus.holder.algorithms.device_filter import device_filter
from cellcensus.holder.algorithms.home_work_flows import home_work_flows
from cellcensus.holder.algorithms.inbound_tourism import inbound_tourism
from cellcensus.holder.algorithms.internal_migration import internal_migration
from cellcensus.holder.algorithms.present_population import present_population
from cellcensus.holder.algorithms.trips_od import trips_od
from cellcensus.holder.algorithms.usual_environment import usual_environment
from cellcensus.holder.algorithms.usual_residence import (
    usual_residence,
    usual_residence_sensitivity,
)

ENTRY_POINT_GROUP = "cellcensus.algorithms"
BUILT_IN: tuple[Algorithm, ...] = (
    device_filter,
    present_population,
    usual_residence,
    usual_residence_sensitivity,
    usual_environment,
    home_work_flows,
    trips_od,
    inbound_tourism,
    internal_migration,
)


def as_draft(algorithm: Algorithm) -> Algorithm:
    """The same algorithm with its certification level reset to ``draft``."""
    manifest = dataclasses.replace(algorithm.manifest, certification=Certification.DRAFT)
    return dataclasses.replace(algorithm, manifest=manifest)


@cache
def registered_algorithms() -> dict[str, Algorithm]:
    """All algorithms by name: built-ins first, then third-party entry points (as drafts)."""
    found = {algorithm.manifest.name: algorithm for algorithm in BUILT_IN}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        algorithm = entry.load()
        if not isinstance(algorithm, Algorithm):
            raise CellcensusError(
                f"entry point {entry.name!r} ({entry.value}) is not a cellcensus Algorithm"
            )
        found.setdefault(algorithm.manifest.name, as_draft(algorithm))
    return found


def get_algorithm(name: str) -> Algorithm:
    """The algorithm called `name`, or a clear error listing the known ones."""
    algorithms = registered_algorithms()
    if name not in algorithms:
        known = ", ".join(sorted(algorithms))
        raise CellcensusError(
            f"unknown algorithm {name!r}{did_you_mean(name, algorithms)}; known algorithms: {known}"
        )
    return algorithms[name]
