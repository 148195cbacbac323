"""The schema of a case study (shipped as `case.schema.yaml`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from cellcensus.governance.vocabulary import (
    BusinessModelId,
    Motivation,
    SourceType,
    StatisticalDomain,
)

CASE_ID = r"^[a-z0-9]+(-[a-z0-9]+)*$"
URL = r"^https?://[^\s/$.?#][^\s]*$"
Year = Annotated[int, Field(ge=1990, le=2100)]


class Source(BaseModel):
    """A public document that supports the facts of a case."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str = Field(min_length=5)
    url: str = Field(pattern=URL)


class CaseStudy(BaseModel):
    """One real data-sharing partnership; every fact comes from its cited public sources."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=CASE_ID, description="Kebab-case identifier, also the file name.")
    title: str = Field(min_length=5)
    countries: list[str] = Field(min_length=1, description="Where the data was collected.")
    years: list[Year] = Field(min_length=1, description="Years of documented activity.")
    data_holder: str = Field(min_length=2, description="Who held the data.")
    partners: list[str] = Field(default_factory=list, description="Other organisations.")
    source_type: SourceType
    statistical_domains: list[StatisticalDomain] = Field(min_length=1)
    business_model: BusinessModelId = Field(description="The closest of the five models.")
    business_model_note: str = Field(
        min_length=10,
        description="Why, from the sources: the classification is an editorial reading.",
    )
    motivations: list[Motivation] = Field(
        default_factory=list, description="The six Rs the sources document (may be empty)."
    )
    privacy_safeguards: list[str] = Field(
        default_factory=list, description="Protections the sources describe."
    )
    outcome: str = Field(min_length=10, description="What came out, and its value.")
    risks_met: list[str] = Field(
        default_factory=list, description="Risks or limitations the sources report."
    )
    sources: list[Source] = Field(min_length=1, description="Public documents: title and URL.")
