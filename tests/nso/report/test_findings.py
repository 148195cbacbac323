"""The findings of the figures' text alternatives say what the numbers show, not more."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cellcensus.nso.report.figures import (
    ERROR_MAP_PNG,
    INTERVALS_PNG,
    MAPS_PNG,
    RELATIVE_ERROR_BREAKS,
    SCATTER_PNG,
    classify,
)
from cellcensus.nso.report.findings import residents_findings


def test_the_scatter_claims_no_agreement_the_numbers_do_not_show() -> None:
    # Estimates that know nothing of the census: its dots lie nowhere near the diagonal.
    census = np.geomspace(1_000, 100_000, 40)
    estimate = census[::-1]
    table = pd.DataFrame(
        {
            "area_code": [f"{code:05d}" for code in range(40)],
            "name": [f"m{code}" for code in range(40)],
            "estimate": estimate,
            "census": census,
            "relative_error": estimate / census - 1,
        }
    )

    said = residents_findings(table)[SCATTER_PNG]

    assert "lie along the diagonal" not in said
    assert "On the diagonal, estimate and census agree. Over the 40 dots" in said
    assert "correlation of the logarithms -1.000" in said


def _table(estimate: list[float], census: list[float]) -> pd.DataFrame:
    table = pd.DataFrame(
        {
            "area_code": [f"{i:05d}" for i in range(len(estimate))],
            "name": [f"m{i}" for i in range(len(estimate))],
            "estimate": estimate,
            "census": census,
        }
    )
    table["relative_error"] = (table["estimate"] - table["census"]) / table["census"]
    return table


def test_the_error_map_counts_an_error_on_a_limit_in_the_colour_the_map_gives_it() -> None:
    # +10% and -10% exactly, one well inside and one each well above and below.
    table = _table([1_100.0, 900.0, 1_000.0, 1_300.0, 700.0], [1_000.0] * 5)
    drawn = classify(values=table["relative_error"], breaks=RELATIVE_ERROR_BREAKS)
    red = int((drawn >= RELATIVE_ERROR_BREAKS.index(0.1)).sum())
    blue = int((drawn < RELATIVE_ERROR_BREAKS.index(-0.1)).sum())
    assert (red, blue) == (2, 1)  # the map colours +10% as "+10% to +20%", -10% pale

    said = residents_findings(table)[ERROR_MAP_PNG]

    assert said.startswith(
        "2 municipalities are within 10% of the census (white and pale), 2 are 10% or more "
        "above it (red) and 1 more than 10% below it (blue)."
    ), said


def test_the_scatter_counts_the_dots_it_draws_on_its_logarithmic_axes() -> None:
    # An estimate of 0 (no device counted) is compared, but no dot on log axes.
    table = _table([0.0, 1_000.0, 2_000.0, 3_000.0], [500.0, 1_100.0, 1_900.0, 3_000.0])

    said = residents_findings(table)[SCATTER_PNG]

    assert "Over the 3 dots" in said, said


def test_the_intervals_width_is_said_to_go_the_way_the_numbers_go() -> None:
    census = [1_000.0, 2_000.0, 30_000.0, 40_000.0]
    table = _table(census, census)
    widths = {"narrow": [0.2, 0.2, 0.05, 0.05], "widen": [0.05, 0.05, 0.2, 0.2]}
    said = {}
    for trend, relative in widths.items():
        half = table["estimate"] * relative
        bounded = table.assign(ci_lower=table["estimate"] - half, ci_upper=table["estimate"] + half)
        said[trend] = residents_findings(bounded)[INTERVALS_PNG]

    assert (
        "The intervals narrow as municipalities grow: a median of ±20.0% under 5,000 "
        in (said["narrow"])
    )
    assert (
        "The intervals widen as municipalities grow: a median of ±5.0% under 5,000 "
        in (said["widen"])
    )


def test_the_maps_speak_of_other_municipalities_only_where_there_are_others() -> None:
    area_km2 = pd.Series([1.0, 1.0], index=["00000", "00001"])
    alike = _table([60.0, 500.0], [70.0, 520.0])  # both in the same class on both maps
    apart = _table([60.0, 500.0], [40.0, 520.0])  # the first one class lower on the census's

    said = residents_findings(alike, area_km2=area_km2)[MAPS_PNG]
    other = residents_findings(apart, area_km2=area_km2)[MAPS_PNG]

    assert said.startswith(
        "2 of the 2 municipalities with an estimate are in the same density class on both maps."
    ), said
    assert other.startswith(
        "1 of the 2 municipalities with an estimate are in the same "
        "density class on both maps, the others in a neighbouring class."
    ), other


def test_with_nothing_released_every_figure_says_so_rather_than_counting_zeros() -> None:
    table = _table([np.nan, np.nan, np.nan], [500.0, 1_100.0, 1_900.0])
    table = table.assign(ci_lower=np.nan, ci_upper=np.nan)

    said = residents_findings(table, area_km2=pd.Series(1.0, index=table["area_code"]))

    assert set(said) == {MAPS_PNG, SCATTER_PNG, ERROR_MAP_PNG, INTERVALS_PNG}
    for finding in said.values():
        assert finding == "None of the 3 municipalities has an estimate: all are withheld."
