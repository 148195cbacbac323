"""The algorithm catalogue: certified, versioned units that run where the data is."""

from cellcensus.holder.algorithms.base import (
    COUNT,
    EVENTS_SCHEMA,
    Algorithm,
    Certification,
    Key,
    KeyDomain,
    Manifest,
    Parameters,
    StoreTables,
)
from cellcensus.holder.algorithms.registry import get_algorithm, registered_algorithms

__all__ = [
    "COUNT",
    "EVENTS_SCHEMA",
    "Algorithm",
    "Certification",
    "Key",
    "KeyDomain",
    "Manifest",
    "Parameters",
    "StoreTables",
    "get_algorithm",
    "registered_algorithms",
]
