"""The synthetic country: a stand-in for reality whose ground truth is known.

`synthesize` builds persons from the census 2011 (home, age, sex, work place from the commuting
matrix), an operator's radio network and its subscribers, and writes their network events, the
cells and the ground truth as a dataset folder in the SCHEMA.md contract.
"""

from cellcensus.world.params import WorldParams
from cellcensus.world.synthesis import WorldSummary, synthesize

__all__ = ["WorldParams", "WorldSummary", "synthesize"]
