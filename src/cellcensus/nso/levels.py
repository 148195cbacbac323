"""Area levels of a release: which one its area codes are at."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from cellcensus.reference import arrondissements_2019

PARENT_LEVELS = ("arrondissement", "province", "region")
"""Columns of the areas table naming a level above the municipality, as a release may use."""
MUNICIPALITY = "municipality"


def level_of(
    codes: pd.Index, areas: pd.DataFrame, *, levels: Sequence[str] = PARENT_LEVELS
) -> str | None:
    """The first of `levels` whose codes `codes` all are, if one is.

    A level is a column of `areas` (``municipality``: its ``area_code``); arrondissements by
    their codes of 2011 or of 2019, the holder's (`arrondissements_2019`).
    """
    for level in levels:
        column = "area_code" if level == MUNICIPALITY else level
        known = set(areas[column].astype(str)) if column in areas.columns else set()
        if level == "arrondissement":
            known |= set(arrondissements_2019().astype(str))
        if codes.isin(known).all():
            return level
    return None
