"""The field's words shared by the decision tree and the case studies.

The five business models of public-private partnerships for statistics follow the PARIS21
discussion paper "Public-Private Partnerships for Statistics: Lessons Learned, Future Steps"
(2016); the six motivations of companies (the six Rs) follow the GovLab's work on data
collaboratives.
"""

from __future__ import annotations

from typing import Literal, get_args

BusinessModelId = Literal[
    "in_house_production",
    "sending_data_to_end_users",
    "trusted_third_party",
    "remote_access",
    "moving_algorithms",
]
"""The five ways a company and a data user can share the value of the company's data."""

Motivation = Literal[
    "research_and_insights",
    "revenue",
    "responsibility",
    "reciprocity",
    "reputation",
    "regulatory_compliance",
]
"""Why a company shares data: the six Rs."""

SourceType = Literal[
    "telecom",
    "card_transactions",
    "scanner",
    "web",
    "social_media",
    "sensors",
]
"""The kind of privately held data a case draws on."""

StatisticalDomain = Literal[
    "population",
    "mobility",
    "tourism",
    "disaster_response",
    "health",
    "prices",
    "economy",
    "development",
]
"""The statistical domain a case or an assessed data use belongs to."""

ValueChainStage = Literal["collection", "processing", "sharing", "analysing", "using"]
"""Stages of the data value chain at which risks arise."""

BUSINESS_MODELS: tuple[str, ...] = get_args(BusinessModelId)
MOTIVATIONS: tuple[str, ...] = get_args(Motivation)
SOURCE_TYPES: tuple[str, ...] = get_args(SourceType)
STATISTICAL_DOMAINS: tuple[str, ...] = get_args(StatisticalDomain)
VALUE_CHAIN_STAGES: tuple[str, ...] = get_args(ValueChainStage)
