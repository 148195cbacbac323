"""Small synthetic worlds shared by the world tests (generated once per session)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from cellcensus.world import WorldParams, WorldSummary, synthesize
from cellcensus.world.country import SyntheticCountry, build_country

SMALL = WorldParams(scale=0.002, days=3, seed=7, start=date(2011, 3, 11))
"""Friday 11 to Sunday 13 March 2011: a working day and a weekend, sites switched on/off."""


@pytest.fixture(scope="session")
def small_params() -> WorldParams:
    return SMALL


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> WorldSummary:
    return synthesize(out=tmp_path_factory.mktemp("world") / "small", params=SMALL)


@pytest.fixture(scope="session")
def small_country() -> SyntheticCountry:
    return build_country(params=SMALL)


@pytest.fixture(scope="session")
def world_folder(small_world: WorldSummary) -> Path:
    return small_world.out
