"""The synthetic country: a stand-in for reality whose ground truth is known.

`synthesize` builds persons from the census 2011 (home, age, sex, work place from the commuting
matrix), their phones with three operators, machines and foreign visitors, the data holder's
radio network, and how they all move and use their phones day by day; it writes the holder's
network events, its cells and the ground truth as a dataset folder in the docs/schema.md contract.
The model, its parameters and their sources are described in ``docs/world.md``.
"""

from cellcensus.world.params import WorldParams
from cellcensus.world.synthesis import WorldSummary, synthesize

__all__ = ["WorldParams", "WorldSummary", "synthesize"]
