"""The NSO's production of usual residents from one release, as the demo and the command run it."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from cellcensus.errors import CellcensusError
from cellcensus.nso.production import EstimationOptions, EstimationResult
from cellcensus.nso.residents import check_release, estimate_residents
from cellcensus.nso.simulation import SimulatedRelease
from cellcensus.reference import arrondissements_2019, municipalities
from cellcensus.release import Release


def at_codes(release: Release, codes: list[str]) -> Release:
    """`release` with one row per code (the first rows' counts)."""
    table = release.table.head(len(codes)).assign(area_code=codes)
    return replace(release, table=table.reset_index(drop=True))


def test_estimate_residents_is_estimate_all_on_a_release_it_can_use(
    unbiased: SimulatedRelease, unbiased_result: EstimationResult
):
    result = estimate_residents(unbiased.release)
    assert result.default == unbiased_result.default
    pd.testing.assert_frame_equal(result.best.table, unbiased_result.best.table)
    chosen = estimate_residents(
        unbiased.release, options=EstimationOptions(default="national", margin_level="region")
    )
    assert (chosen.default, chosen.options.margin_level) == ("national", "region")


def test_a_municipality_release_passes_and_another_algorithms_does_not(
    unbiased: SimulatedRelease,
):
    check_release(unbiased.release)
    flows = replace(
        unbiased.release,
        provenance=replace(unbiased.release.provenance, algorithm="home_work_flows"),
    )
    with pytest.raises(CellcensusError, match=r"flows\.json is a release of home_work_flows, not"):
        estimate_residents(flows, source="flows.json")


@pytest.mark.parametrize(
    ("level", "codes"),
    [
        ("arrondissement", sorted(set(municipalities()["arrondissement"]))),
        # The holder sums municipalities to the arrondissements of 2019 (58000, not 54000).
        ("arrondissement", sorted(set(arrondissements_2019()))),
        ("province", sorted(set(municipalities()["province"]))),
        ("region", ["2000", "3000", "4000"]),
    ],
)
def test_a_release_at_a_parent_level_is_refused_by_its_level(unbiased, level, codes):
    with pytest.raises(CellcensusError) as refused:
        check_release(at_codes(unbiased.release, codes), source="r.csv")
    said = str(refused.value)
    assert said.startswith(f"r.csv: its {len(codes)} areas are {level}s (e.g. {codes[0]}")
    assert "--level municipality" in said


def test_a_release_whose_codes_are_partly_no_municipality_is_refused_naming_one(unbiased):
    codes = ["11001", "11002", "CRS3035RES1000mN3100000E3900000"]
    with pytest.raises(CellcensusError, match=r"1 of its 3 area codes are no municipality's"):
        check_release(at_codes(unbiased.release, codes))
