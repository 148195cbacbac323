"""What an ingest did: rows read, stored and quarantined (by reason), days, devices."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

QUARANTINE_REASONS: tuple[str, ...] = (
    "null_field",
    "malformed_value",
    "malformed_row",
    "wrong_field_count",
    "unknown_event_type",
    "outside_period",
    "unknown_cell",
    "cell_not_valid",
    "duplicate",
)
"""Why a row was quarantined, in the order the checks apply (a row gets the first that fails).

The quarantine's ``field`` names the fields at fault for ``null_field`` and ``malformed_value``
(docs/store.md, *The quarantine*).

- ``null_field``: a required field (user_id, timestamp, cell_id, event_type, mcc, mnc) is empty.
- ``malformed_value``: a timestamp that does not parse (or lies before 1970 or after 2199), an
  mcc or mnc that is not an integer in 0-999, a tac that is not 8 digits.
- ``malformed_row``: a CSV line that cannot be split into fields (a quote not closed on it,
  text after a closing quote, bytes that are not UTF-8); it keeps only its file and line
  number. A quote left open that takes later lines into its field refuses the delivery.
- ``wrong_field_count``: a CSV line with fewer fields than the header, or more (but for empty
  ones at its end); it keeps only its file and line number.
- ``unknown_event_type``: not one of call_out, call_in, sms_out, sms_in, data, location_update.
- ``outside_period``: the local date is outside the delivery's period.
- ``unknown_cell``: the cell_id is not in the cells table.
- ``cell_not_valid``: the cell exists but none of its versions is valid on that local date.
- ``duplicate``: an exact copy of a stored row (one copy is stored, the others quarantined).
"""


@dataclass(frozen=True)
class IngestReport:
    """The account of one ingest; ``rows_stored + rows_quarantined == rows_read`` always.

    Attributes:
        rows_read: Input rows (CSV: records the parser saw, malformed ones included).
        rows_stored: Rows written to the store's day partitions.
        rows_quarantined_by_reason: Quarantined rows per reason, every reason listed.
        days: Local dates (ISO) that received events, in order.
        distinct_devices: Distinct pseudonymised devices among the stored rows.
        period_start: First local day of the delivery (ISO).
        period_end: Last local day of the delivery (ISO, inclusive).
        rows_stored_by_day: Stored rows per local date (ISO).
        seconds: Wall-clock duration of the ingest.
        days_replaced: Local dates (ISO) of the period that the store held before, whose
            events this delivery replaced; those not among `days` now hold none.
    """

    rows_read: int
    rows_stored: int
    rows_quarantined_by_reason: dict[str, int]
    days: list[str]
    distinct_devices: int
    period_start: str
    period_end: str
    rows_stored_by_day: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    days_replaced: list[str] = field(default_factory=list)

    @property
    def days_emptied(self) -> list[str]:
        """Days the store held before whose events are gone: the delivery has none of them."""
        return [day for day in self.days_replaced if day not in self.days]

    @property
    def rows_quarantined(self) -> int:
        """All quarantined rows, whatever the reason."""
        return sum(self.rows_quarantined_by_reason.values())

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready values (with the total of quarantined rows)."""
        return {**asdict(self), "rows_quarantined": self.rows_quarantined}

    def to_json(self) -> str:
        """The report as an indented JSON document."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> IngestReport:
        """Read a report written by `to_json`."""
        document = json.loads(text)
        document.pop("rows_quarantined", None)
        return cls(**document)
