"""Loaders for the Belgian reference tables (census, register, boundaries, commuting, towns)."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

import pandas as pd
import shapely
from shapely.geometry import shape

CITATION = "Source: Statbel (Directorate-general Statistics - Statistics Belgium)"

_DATA = files("cellcensus.reference") / "data" / "belgium"


def _csv(name: str, **kwargs: Any) -> pd.DataFrame:
    with (_DATA / name).open("rb") as handle:
        frame: pd.DataFrame = pd.read_csv(handle, **kwargs)
        return frame


@cache
def _census_population() -> pd.DataFrame:
    frame = _csv("be_census2011_population_by_municipality.csv", dtype={"nis_code": str})
    return frame.rename(columns={"nis_code": "area_code"})


def census_population() -> pd.DataFrame:
    """Census 2011 population per municipality (589 rows, total 11,000,638).

    Columns: area_code, name_nl, name_fr, nuts1..3, population, male, female and six age groups.
    """
    return _census_population().copy()


@cache
def _census_age_sex() -> pd.DataFrame:
    frame = _csv("be_census2011_population_lau_sex_age5.csv", dtype={"nis_code": str})
    frame = frame.rename(columns={"nis_code": "area_code"})
    return frame[["area_code", "sex", "age_5y", "population"]]


def census_age_sex() -> pd.DataFrame:
    """Census 2011 population by municipality x sex (F/M) x 5-year age band (long form).

    Columns: area_code, sex, age_5y (e.g. ``Y10-14``, ``Y_GE100``), population. Zero cells absent.
    """
    return _census_age_sex().copy()


@cache
def _register_population() -> pd.DataFrame:
    frame = _csv(
        "be_register_population_1jan_2011_2015_by_municipality.csv",
        dtype={"nis_code": str, "arrondissement_nis": str, "province_nis": str, "region_nis": str},
    )
    return frame.rename(columns={"nis_code": "area_code"})


def register_population(year: int) -> pd.DataFrame:
    """Register population on 1 January of `year` (2011 or 2015) per municipality."""
    frame = _register_population()
    if year not in set(frame["year"]):
        raise ValueError(f"register population is shipped for 2011 and 2015, not {year}")
    return frame[frame["year"] == year].drop(columns="year").reset_index(drop=True)


@cache
def _features() -> list[dict[str, Any]]:
    with (_DATA / "be_municipalities_2011_589_wgs84.geojson").open("rb") as handle:
        features: list[dict[str, Any]] = json.load(handle)["features"]
    return features


@cache
def _municipalities() -> pd.DataFrame:
    rows = []
    for feature in _features():
        props = feature["properties"]
        rows.append(
            {
                "area_code": str(props["CD_MUNTY_REFNIS"]),
                "name_nl": props["TX_MUNTY_DESCR_NL"],
                "name_fr": props["TX_MUNTY_DESCR_FR"],
                "arrondissement": str(props["CD_DSTR_REFNIS"]),
                # Brussels-Capital has no province: its region stands in for one.
                "province": str(props["CD_PROV_REFNIS"] or props["CD_RGN_REFNIS"]),
                "region": str(props["CD_RGN_REFNIS"]),
                "area_km2": float(props["area_gis_km2"]),
                "geometry": shape(feature["geometry"]),
            }
        )
    return pd.DataFrame(rows).sort_values("area_code").reset_index(drop=True)


_LEVEL_PROPERTIES = {
    "arrondissement": ("CD_DSTR_REFNIS", "TX_ADM_DSTR_DESCR"),
    "province": ("CD_PROV_REFNIS", "TX_PROV_DESCR"),
    "region": ("CD_RGN_REFNIS", "TX_RGN_DESCR"),
}
"""The geojson's code and name properties (``_NL``, ``_FR``) of each level above municipality."""


def area_names(level: str) -> pd.DataFrame:
    """The areas of `level` (arrondissement of 2011, province or region) and their names.

    Columns: area_code, name_nl, name_fr, nuts1 (the region's NUTS code, which says the
    language of the names in use). Brussels-Capital stands in for a province under its
    region's code and name, as in `municipalities`.
    """
    if level not in _LEVEL_PROPERTIES:
        raise ValueError(f"no names of level {level!r}; levels: {', '.join(_LEVEL_PROPERTIES)}")
    code, name = _LEVEL_PROPERTIES[level]
    rows = {}
    for feature in _features():
        props = feature["properties"]
        key, label = (code, name) if props[code] else _LEVEL_PROPERTIES["region"]
        rows[str(props[key])] = (props[f"{label}_NL"], props[f"{label}_FR"], props["nuts1"])
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=["name_nl", "name_fr", "nuts1"])
    return frame.rename_axis("area_code").sort_index().reset_index()


def municipalities() -> pd.DataFrame:
    """The 589 municipalities of 2011 with parent codes, area and shapely geometry (WGS84).

    Columns: area_code, name_nl, name_fr, arrondissement, province, region, area_km2, geometry.
    Brussels-Capital municipalities have province code "4000" (no province).
    """
    return _municipalities().copy()


@cache
def country_outline() -> shapely.Geometry:
    """Belgium as one (multi)polygon in WGS84: the union of the municipalities."""
    return shapely.union_all(_municipalities()["geometry"].to_numpy())


@cache
def _crosswalk() -> pd.DataFrame:
    frame = _csv(
        "be_nis_crosswalk_2011_589_to_2019_581.csv", dtype={"nis_2011": str, "nis_2019": str}
    )
    frame = frame.rename(columns={"nis_2011": "area_code"})
    frame["arrondissement_2019"] = frame["nis_2019"].str[:2] + "000"
    return frame[["area_code", "nis_2019", "arrondissement_2019"]]


def crosswalk_2019() -> pd.DataFrame:
    """2011 municipality -> 2019 municipality and 2019 arrondissement (the commuting codes)."""
    return _crosswalk().copy()


def arrondissements_2019(crosswalk: pd.DataFrame | None = None) -> pd.Series:
    """The 2019 arrondissement of each 2011 municipality, indexed by its code (``area_code``).

    The codes of the census commuting matrix; from `crosswalk` (shaped as `crosswalk_2019`),
    else from the Belgian one.
    """
    links = _crosswalk() if crosswalk is None else crosswalk
    codes = links["arrondissement_2019"].astype(str).to_numpy()
    return pd.Series(codes, index=pd.Index(links["area_code"].astype(str), name="area_code"))


@cache
def _commuting() -> pd.DataFrame:
    wide = _csv("be_census2011_commuting_arrondissements_2019codes.csv", dtype={"NIS": str})
    long = wide.melt(id_vars="NIS", var_name="work_arrondissement", value_name="workers")
    long = long.rename(columns={"NIS": "home_arrondissement"})
    long["workers"] = long["workers"].astype("int64")
    return long.reset_index(drop=True)


def commuting_matrix() -> pd.DataFrame:
    """Census 2011 commuting between arrondissements (2019 codes), long form.

    Columns: home_arrondissement, work_arrondissement, workers (43 x 43 rows, total 4,304,172).
    """
    return _commuting().copy()


@cache
def _places() -> pd.DataFrame:
    return _csv("be_geonames_places_500.csv", dtype={"name": str})


def places() -> pd.DataFrame:
    """Belgium's towns and villages of 500 inhabitants or more (GeoNames, 2,256 rows).

    Columns: geonameid, name, latitude, longitude (WGS84), population (0 where unknown).
    """
    return _places().copy()
