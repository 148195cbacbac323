"""Reading, filtering and matching the case studies."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from cellcensus.errors import CellcensusError
from cellcensus.governance.cases.case import CaseStudy
from cellcensus.governance.loading import read_yaml, validate_file
from cellcensus.governance.vocabulary import BUSINESS_MODELS, SOURCE_TYPES

MATCH_POINTS = {"business_model": 3, "source_type": 2, "domain": 2, "motivation": 1, "country": 2}


def default_cases_directory() -> Path:
    """The directory of case studies shipped with cellcensus."""
    return Path(str(resources.files("cellcensus.governance.cases") / "studies"))


def load_case(path: Path) -> CaseStudy:
    """Read and validate one case file; its name must be its id.

    Raises:
        CellcensusError: The file breaks the schema or is misnamed (the message names it).
    """
    case = validate_file(CaseStudy, read_yaml(path), source=path)
    if path.stem != case.id:
        raise CellcensusError(f"{path}: the file must be named after its id, '{case.id}.yaml'")
    return case


def load_cases(directory: Path | None = None) -> list[CaseStudy]:
    """Read every case study of a directory, sorted by id.

    Args:
        directory: Where the `*.yaml` case files are; the shipped repository by default.

    Returns:
        The validated case studies.

    Raises:
        CellcensusError: A file is invalid, or the directory has no case.
    """
    folder = directory or default_cases_directory()
    cases = [load_case(path) for path in sorted(folder.glob("*.yaml"))]
    if not cases:
        raise CellcensusError(f"{folder}: no case study (*.yaml) found")
    return sorted(cases, key=lambda case: case.id)


def find_case(cases: Iterable[CaseStudy], case_id: str) -> CaseStudy:
    """Return the case with this id.

    Raises:
        CellcensusError: No case has this id.
    """
    for case in cases:
        if case.id == case_id:
            return case
    raise CellcensusError(f"no case study '{case_id}'; run `cellcensus cases` to list them")


def filter_cases(
    cases: Iterable[CaseStudy],
    *,
    country: str | None = None,
    model: str | None = None,
    source: str | None = None,
) -> list[CaseStudy]:
    """Keep the cases that match every filter given.

    Args:
        cases: The cases to filter.
        country: Part of a country name, any case.
        model: A business model id (dashes or underscores).
        source: A data source type.

    Returns:
        The matching cases, in their order.

    Raises:
        CellcensusError: The model or source is not one of the known values.
    """
    model_id = _known_value("business model", model, BUSINESS_MODELS)
    source_type = _known_value("source", source, SOURCE_TYPES)
    return [
        case
        for case in cases
        if (country is None or _in_country(case, country))
        and (model_id is None or case.business_model == model_id)
        and (source_type is None or case.source_type == source_type)
    ]


def _known_value(kind: str, value: str | None, known: Sequence[str]) -> str | None:
    if value is None:
        return None
    normalised = value.strip().lower().replace("-", "_").replace(" ", "_")
    if normalised not in known:
        raise CellcensusError(f"unknown {kind} '{value}'; choose from {', '.join(known)}")
    return normalised


def _in_country(case: CaseStudy, country: str) -> bool:
    wanted = _folded(country.strip())
    return any(wanted in _folded(name) for name in case.countries)


def _folded(text: str) -> str:
    """Lower case without accents: 'cote' finds Côte d'Ivoire, as typed on any keyboard."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char)).casefold()


@dataclass(frozen=True)
class DataUseFeatures:
    """How an assessed data use is described in the case studies' words."""

    business_model: str
    source_types: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()
    motivations: frozenset[str] = frozenset()
    country: str | None = None


@dataclass(frozen=True)
class CaseMatch:
    """A case study close to an assessed data use, and what they share."""

    case: CaseStudy
    score: int
    shared: tuple[str, ...]


def closest_cases(
    cases: Iterable[CaseStudy], features: DataUseFeatures, *, limit: int = 3
) -> list[CaseMatch]:
    """Rank the case studies by what they share with a data use.

    Points: same business model 3, same source 2, a shared domain 2, each shared motivation 1,
    same country 2. Ties keep the cases' id order.

    Args:
        cases: The case studies.
        features: The assessed data use.
        limit: How many to return.

    Returns:
        The closest cases with a positive score, best first.
    """
    matches = [_match(case, features) for case in cases]
    ranked = sorted((m for m in matches if m.score > 0), key=lambda m: -m.score)
    return ranked[:limit]


def _match(case: CaseStudy, features: DataUseFeatures) -> CaseMatch:
    shared: list[str] = []
    score = 0
    if case.business_model == features.business_model:
        shared.append(f"business model: {case.business_model}")
        score += MATCH_POINTS["business_model"]
    if case.source_type in features.source_types:
        shared.append(f"source: {case.source_type}")
        score += MATCH_POINTS["source_type"]
    for domain in sorted(features.domains & set(case.statistical_domains)):
        shared.append(f"domain: {domain}")
        score += MATCH_POINTS["domain"]
    for motivation in sorted(features.motivations & set(case.motivations)):
        shared.append(f"motivation: {motivation}")
        score += MATCH_POINTS["motivation"]
    if features.country and _in_country(case, features.country):
        shared.append(f"country: {features.country}")
        score += MATCH_POINTS["country"]
    return CaseMatch(case=case, score=score, shared=tuple(shared))
