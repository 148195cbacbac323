"""The holder's store: ingest, validate, quarantine, pseudonymise, day-partitioned Parquet.

Inside the operator's firewall. Raw subscriber identifiers are replaced by keyed pseudonyms
before anything is written (one key per period, `key_rotation.py`); every input row is either
stored or quarantined with a reason. Old days are purged and the purge recorded (`retention.py`).
"""

from cellcensus.holder.store.ingestion import EVENT_TYPES, ingest, ingest_dataset
from cellcensus.holder.store.key_rotation import rotate_key
from cellcensus.holder.store.layout import CELL_COLUMNS, EVENT_COLUMNS, Store
from cellcensus.holder.store.metadata import REQUIRED_METADATA
from cellcensus.holder.store.pseudonym import default_key_file, device_id, load_or_create_key
from cellcensus.holder.store.report import QUARANTINE_REASONS, IngestReport
from cellcensus.holder.store.retention import PurgeRecord, purge

__all__ = [
    "CELL_COLUMNS",
    "EVENT_COLUMNS",
    "EVENT_TYPES",
    "QUARANTINE_REASONS",
    "REQUIRED_METADATA",
    "IngestReport",
    "PurgeRecord",
    "Store",
    "default_key_file",
    "device_id",
    "ingest",
    "ingest_dataset",
    "load_or_create_key",
    "purge",
    "rotate_key",
]
