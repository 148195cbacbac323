"""A repository of real case studies of sharing privately held data for public statistics.

One YAML file per case in `studies/`, validated by `case.schema.yaml`; every fact comes from a
cited public source. Adding a case is adding a file.
"""

from cellcensus.governance.cases.case import CaseStudy, Source
from cellcensus.governance.cases.repository import (
    CaseMatch,
    DataUseFeatures,
    closest_cases,
    filter_cases,
    find_case,
    load_cases,
)

__all__ = [
    "CaseMatch",
    "CaseStudy",
    "DataUseFeatures",
    "Source",
    "closest_cases",
    "filter_cases",
    "find_case",
    "load_cases",
]
