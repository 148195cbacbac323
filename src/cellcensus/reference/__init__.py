"""Real public reference data shipped with the package (Belgium: Statbel, GeoNames).

Every table of areas comes back with `area_code` as a 5-character string (Statbel NIS code),
the identifier used across cellcensus. See `data/belgium/PROVENANCE.md` for sources and
licences.
"""

from cellcensus.reference.belgium import (
    CITATION,
    area_names,
    arrondissements_2019,
    census_age_sex,
    census_population,
    commuting_matrix,
    country_outline,
    crosswalk_2019,
    municipalities,
    places,
    register_population,
)

__all__ = [
    "CITATION",
    "area_names",
    "arrondissements_2019",
    "census_age_sex",
    "census_population",
    "commuting_matrix",
    "country_outline",
    "crosswalk_2019",
    "municipalities",
    "places",
    "register_population",
]
