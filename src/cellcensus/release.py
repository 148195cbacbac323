"""What crosses the trust boundary: a released table and the facts published beside it.

Both sides import this module and nothing else of each other: the holder builds a `Release`,
the NSO reads one (in process or as JSON over HTTP).
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class Provenance:
    """Where a release comes from: enough to reproduce and audit it."""

    job_id: str
    algorithm: str
    version: str
    parameters: dict[str, Any]
    policy: dict[str, Any]
    created_at: str
    engine: str


@dataclass(frozen=True)
class Release:
    """A disclosure-checked table of counts per area, with its provenance.

    Attributes:
        table: One row per key of the public key set (every area); ``device_count`` is null
            where the disclosure policy suppressed the cell.
        provenance: Algorithm, version, parameters, policy and job of this release.
        published: Holder facts released beside the counts (market share, sampling fraction,
            period, subscribers per region when the holder gives them).
    """

    table: pd.DataFrame
    provenance: Provenance
    published: dict[str, Any] = field(default_factory=dict)

    @property
    def n_suppressed(self) -> int:
        """Number of keys whose count was withheld."""
        return int(self.table["device_count"].isna().sum())

    def to_json(self) -> str:
        """Serialise for the wire (HTTP) or for the holder's release archive."""
        return json.dumps(
            {
                "table": json.loads(self.table.to_json(orient="records")),
                "provenance": asdict(self.provenance),
                "published": self.published,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Release:
        """Read a release serialised by `to_json`."""
        data = json.loads(text)
        table = pd.read_json(io.StringIO(json.dumps(data["table"])), orient="records", dtype=False)
        return cls(
            table=table, provenance=Provenance(**data["provenance"]), published=data["published"]
        )
