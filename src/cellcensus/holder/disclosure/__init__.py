"""Disclosure control applied to every release, before anything leaves the enclave.

`protect` is the one function every release goes through; policies say what it applies,
the ledger accounts for the privacy loss of noisy releases. See docs/disclosure.md.
"""

from cellcensus.holder.disclosure.hierarchy import Hierarchy, belgian_hierarchy
from cellcensus.holder.disclosure.ledger import (
    Budget,
    Charge,
    PrivacyLedger,
    Role,
    ledger_metadata,
)
from cellcensus.holder.disclosure.policy import (
    DEFAULT_POLICIES,
    FALLBACK_POLICY,
    DifferentialPrivacy,
    DisclosurePolicy,
    policy_for,
    read_policy_file,
)
from cellcensus.holder.disclosure.protection import measure, protect

__all__ = [
    "DEFAULT_POLICIES",
    "FALLBACK_POLICY",
    "Budget",
    "Charge",
    "DifferentialPrivacy",
    "DisclosurePolicy",
    "Hierarchy",
    "PrivacyLedger",
    "Role",
    "belgian_hierarchy",
    "ledger_metadata",
    "measure",
    "policy_for",
    "protect",
    "read_policy_file",
]
