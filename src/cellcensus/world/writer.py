"""Writing a world as a dataset folder in the docs/schema.md contract, byte-identical for a seed."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from cellcensus.errors import CellcensusError

EVENTS_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("cell_id", pa.string()),
        ("event_type", pa.string()),
        ("mcc", pa.int32()),
        ("mnc", pa.int32()),
        ("tac", pa.string()),
    ]
)
CELLS_SCHEMA = pa.schema(
    [
        ("cell_id", pa.string()),
        ("site_id", pa.string()),
        ("latitude", pa.float64()),
        ("longitude", pa.float64()),
        ("azimuth_deg", pa.float64()),
        ("beam_width_deg", pa.float64()),
        ("range_m", pa.float64()),
        ("technology", pa.string()),
        ("valid_from", pa.date32()),
        ("valid_to", pa.date32()),
    ]
)
PERSONS_SCHEMA = pa.schema(
    [
        ("person_id", pa.string()),
        ("home_area", pa.string()),
        ("work_area", pa.string()),
        ("age", pa.int32()),
        ("sex", pa.string()),
    ]
)
DEVICES_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("person_id", pa.string()),
        ("kind", pa.string()),
        ("mcc", pa.int32()),
        ("mnc", pa.int32()),
    ]
)
PRESENCE_SCHEMA = pa.schema(
    [("person_id", pa.string()), ("hour", pa.timestamp("us", tz="UTC")), ("area", pa.string())]
)
MIGRATIONS_SCHEMA = pa.schema(
    [
        ("person_id", pa.string()),
        ("date", pa.date32()),
        ("from_area", pa.string()),
        ("to_area", pa.string()),
    ]
)
ROAMER_STAYS_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("mcc", pa.int32()),
        ("mnc", pa.int32()),
        ("country", pa.string()),
        ("arrival", pa.timestamp("us", tz="UTC")),
        ("departure", pa.timestamp("us", tz="UTC")),
        ("nights", pa.int32()),
        ("area", pa.string()),
    ]
)
MACHINES_SCHEMA = pa.schema(
    [("user_id", pa.string()), ("machine", pa.string()), ("moving", pa.bool_())]
)
TACS_SCHEMA = pa.schema([("tac", pa.string()), ("device_type", pa.string())])

ROW_GROUP_ROWS = 1_000_000
"""Fixed row group size: part of what makes the files byte-identical from run to run."""

WORLD_FILE = "world.json"
GENERATED = ("events", "truth", "cells.parquet", "metadata.json")
"""What a world writes besides `WORLD_FILE`, and all that is removed when one is overwritten."""


def check_folder(out: Path) -> None:
    """Refuse an output that a world may not be written to, changing nothing.

    Args:
        out: The dataset folder.

    Raises:
        CellcensusError: If `out` is a file, or a non-empty folder that is not a world.
    """
    if out.exists() and not out.is_dir():
        raise CellcensusError(
            f"output {out} is a file; give the path of a new folder, an empty one, "
            "or a previous world to overwrite"
        )
    if out.is_dir() and any(out.iterdir()) and not (out / WORLD_FILE).is_file():
        raise CellcensusError(
            f"output folder {out} is not empty and holds no {WORLD_FILE}, so it is not a "
            "previous world; choose a new or empty folder (nothing was changed)"
        )


def prepare_folder(out: Path) -> None:
    """Make `out` ready for a world: create it, or clear a previous world written there.

    Args:
        out: The dataset folder.

    Raises:
        CellcensusError: If `out` is a file, or a non-empty folder that is not a world.
    """
    check_folder(out)
    if out.is_dir():
        for name in GENERATED:
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    out.mkdir(parents=True, exist_ok=True)


def write_parquet(
    table: pa.Table,
    path: Path,
    *,
    sorted_times: str | None = None,
    plain: tuple[str, ...] = (),
) -> None:
    """Write one Parquet file with fixed settings (compression, row groups, encodings).

    Dictionary-typed string columns are written as plain Parquet strings: the Arrow schema is
    not stored, so readers see the contract's ``string`` type, not a dictionary.

    Args:
        table: The table.
        path: The file to write; its folder is created.
        sorted_times: A sorted timestamp column to delta-encode (a third of the plain size);
            it alone gets statistics, which are costly to compute on strings.
        plain: Columns with too many distinct values for a dictionary (subscriber ids).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    dictionary_columns = [
        name for name in table.column_names if name != sorted_times and name not in plain
    ]
    pq.write_table(
        table,
        path,
        compression="zstd",
        row_group_size=ROW_GROUP_ROWS,
        use_dictionary=dictionary_columns,
        column_encoding={sorted_times: "DELTA_BINARY_PACKED"} if sorted_times else None,
        write_statistics=[sorted_times] if sorted_times else True,
        store_schema=False,
    )


def day_partition(folder: Path, day: date) -> Path:
    """The file of one local day in a hive-partitioned folder (``date=YYYY-MM-DD``)."""
    return folder / f"date={day.isoformat()}" / "part-0.parquet"


def write_json(document: dict[str, Any], path: Path) -> None:
    """Write a JSON document with sorted keys and a final newline (stable bytes)."""
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
