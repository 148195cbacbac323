"""Input files in the docs/schema.md contract: finding them, checking them, reading them typed.

Every check that can refuse a delivery (a missing file or column, a file that is not what its
extension says) runs here, on headers and footers only, before the store is touched.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cellcensus.errors import SCHEMA_DOC, InputDataError

EVENT_REQUIRED: tuple[str, ...] = ("user_id", "timestamp", "cell_id", "event_type", "mcc", "mnc")
EVENT_OPTIONAL: tuple[str, ...] = ("tac",)
CELL_REQUIRED: tuple[str, ...] = ("cell_id", "latitude", "longitude")
CELL_OPTIONAL: tuple[str, ...] = (
    "site_id",
    "azimuth_deg",
    "beam_width_deg",
    "range_m",
    "technology",
    "valid_from",
    "valid_to",
)

PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"
CSV_DELIMITERS = (",", ";", "\t", "|")
_HEADER_BYTES = 1 << 20


@dataclass(frozen=True)
class CsvGroup:
    """CSV files sharing a delimiter and a header (one DuckDB scan)."""

    files: tuple[Path, ...]
    delimiter: str
    header: tuple[str, ...]


@dataclass(frozen=True)
class TableFiles:
    """The files of one input table, checked: Parquet groups (one schema each), CSV groups."""

    what: str
    location: Path
    parquet: tuple[tuple[Path, ...], ...]
    csv: tuple[CsvGroup, ...]


def sql_string(text: str | Path) -> str:
    """A SQL string literal of `text`."""
    return "'" + str(text).replace("'", "''") + "'"


def sql_list(paths: tuple[Path, ...]) -> str:
    """A SQL list literal of file paths."""
    return "[" + ", ".join(sql_string(path) for path in paths) + "]"


def find_table(*, location: Path, what: str, required: tuple[str, ...]) -> TableFiles:
    """Find and check the files of an input table (a file or a folder of files).

    Args:
        location: A ``.parquet``, ``.csv`` or ``.csv.gz`` file, or a folder searched
            recursively for them (hive partitions like ``date=YYYY-MM-DD/`` included).
        what: The table's name for messages (``events``, ``cells``).
        required: Columns every file must have.

    Returns:
        The files, grouped for reading.

    Raises:
        InputDataError: If there are no such files, or a folder holds a file of another
            format, or one is unreadable, is not what its extension says, or lacks a
            required column.
    """
    if not location.exists():
        raise InputDataError(f"{what}: {location} does not exist; give a file or a folder")
    if location.is_dir():
        files = sorted(
            path
            for path in location.rglob("*")
            if path.is_file()
            and not any(part.startswith((".", "_")) for part in path.relative_to(location).parts)
        )
        _refuse_other_files(files, what=what)
        if not files:
            raise InputDataError(
                f"{what}: no .parquet, .csv or .csv.gz files under {location}; "
                "put the delivery's files there"
            )
    else:
        if _format(location) is None:
            raise InputDataError(
                f"{what}: {location} is neither .parquet nor .csv/.csv.gz; "
                "export it in one of those formats"
            )
        files = [location]
    by_schema: dict[str, list[Path]] = {}
    by_header: dict[tuple[str, tuple[str, ...]], list[Path]] = {}
    for path in files:
        if _format(path) == "parquet":
            schema = check_parquet(path=path, what=what, required=required)
            signature = ";".join(f"{field.name}:{field.type}" for field in schema)
            by_schema.setdefault(signature, []).append(path)
        else:
            delimiter, header = check_csv(path=path, what=what, required=required)
            by_header.setdefault((delimiter, header), []).append(path)
    return TableFiles(
        what=what,
        location=location,
        parquet=tuple(tuple(group) for group in by_schema.values()),
        csv=tuple(
            CsvGroup(files=tuple(group), delimiter=delimiter, header=header)
            for (delimiter, header), group in by_header.items()
        ),
    )


def _refuse_other_files(files: list[Path], *, what: str) -> None:
    """Refuse a file of another format among the table's: skipping it would lose its rows.

    Hidden files and those starting with ``_`` (``_SUCCESS``, checksums) are not data.
    """
    others = [path for path in files if _format(path) is None]
    if others:
        more = f" (and {len(others) - 1} other file(s))" if len(others) > 1 else ""
        raise InputDataError(
            f"{what}: {others[0]}{more} is neither .parquet nor .csv/.csv.gz; export it in "
            "one of those formats, or move it out of the folder if it holds no rows"
        )


def _format(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    return None


def check_parquet(*, path: Path, what: str, required: tuple[str, ...]) -> pa.Schema:
    """Check that `path` is a readable Parquet file with the `required` columns.

    Returns:
        The file's Arrow schema (read from the footer only).

    Raises:
        InputDataError: Naming the file (and column) and what to do.
    """
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
            size = handle.seek(0, 2)
            handle.seek(max(size - 4, 0))
            tail = handle.read(4)
    except OSError as error:
        raise InputDataError(
            f"{what}: cannot read {path} ({error.strerror}); check that it exists and is readable"
        ) from None
    if head != PARQUET_MAGIC or tail != PARQUET_MAGIC:
        kind = "a gzip file" if head[:2] == GZIP_MAGIC else "not a Parquet file"
        if head[:2] != GZIP_MAGIC and _looks_like_text(head):
            kind = "text (CSV?), not Parquet"
        raise InputDataError(
            f"{what}: {path} is {kind} although named .parquet (or is truncated); "
            "re-export it as Parquet or give it the extension of its real format"
        )
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException) as error:
        raise InputDataError(
            f"{what}: {path} is not a readable Parquet file ({_first_line(error)}); re-export it"
        ) from None
    _require_columns(path=path, what=what, found=schema.names, required=required)
    return schema


def check_csv(*, path: Path, what: str, required: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """Check that `path` is a (gzip) CSV file whose header has the `required` columns.

    Returns:
        The delimiter among ``, ; TAB |`` that splits the header into the required columns,
        and the header's column names.

    Raises:
        InputDataError: Naming the file (and column) and what to do.
    """
    gzipped = path.name.lower().endswith(".gz")
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
        if gzipped and head[:2] != GZIP_MAGIC:
            raise InputDataError(
                f"{what}: {path} is named .csv.gz but is not gzip-compressed; "
                "rename it to .csv (or compress it)"
            )
        if head == PARQUET_MAGIC or (not gzipped and head[:2] == GZIP_MAGIC):
            kind = "Parquet" if head == PARQUET_MAGIC else "gzip-compressed"
            real = ".parquet" if head == PARQUET_MAGIC else ".csv.gz"
            raise InputDataError(f"{what}: {path} is a {kind} file named .csv; rename it to {real}")
        opener = gzip.open if gzipped else open
        with opener(path, "rb") as stream:
            first = stream.readline(_HEADER_BYTES)
    except InputDataError:
        raise
    except (OSError, EOFError) as error:
        reason = getattr(error, "strerror", None) or _first_line(error)
        raise InputDataError(
            f"{what}: cannot read {path} ({reason}); check the file and re-export it"
        ) from None
    if not first.strip():
        raise InputDataError(
            f"{what}: {path} is empty or has no header line; a CSV needs a header with "
            f"{', '.join(required)}"
        )
    try:
        header = first.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError:
        raise InputDataError(
            f"{what}: the header of {path} is not UTF-8 text; export the CSV as UTF-8"
        ) from None
    best: tuple[int, str, list[str]] | None = None
    for delimiter in CSV_DELIMITERS:
        names = [name.strip().strip('"').strip() for name in header.split(delimiter)]
        found = sum(name in names for name in required)
        if best is None or found > best[0]:
            best = (found, delimiter, names)
    assert best is not None
    _require_columns(path=path, what=what, found=best[2], required=required)
    return best[1], _column_names(best[2], path=path, what=what)


def _column_names(header: list[str], *, path: Path, what: str) -> tuple[str, ...]:
    """The header's names, each once, to declare the CSV's columns by.

    A line ending with a delimiter (a spreadsheet export) has an empty last name: such a
    column is named by its place, as nothing reads it.

    Raises:
        InputDataError: If a name repeats: which of the columns holds it would be a guess.
    """
    names = [name or f"column{index}" for index, name in enumerate(header)]
    repeated = next((name for name in names if names.count(name) > 1), None)
    if repeated is not None:
        raise InputDataError(f"{what}: {path} has column {repeated} twice; export each column once")
    return tuple(names)


def _require_columns(*, path: Path, what: str, found: list[str], required: tuple[str, ...]) -> None:
    missing = [name for name in required if name not in found]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise InputDataError(
            f"{what}: {path} lacks required column{plural} {', '.join(missing)} "
            f"(it has {', '.join(found[:12]) or 'none'}); export the columns of {SCHEMA_DOC}"
        )


def _looks_like_text(head: bytes) -> bool:
    return bool(head) and all(32 <= byte < 127 or byte in (9, 10, 13) for byte in head)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def scan_sql(*, table: TableFiles, rejects: str | None = None) -> list[str]:
    """SQL scans of the table's files: one per Parquet schema group, one per CSV group.

    Parquet files are read with their own types; CSV files (one header per scan, since
    DuckDB keeps rejects only without union_by_name) as text (``all_varchar``), with
    malformed lines, and lines with too few or too many fields, collected in DuckDB's reject
    tables named ``{rejects}_errors_i`` and ``{rejects}_scans_i`` when `rejects` is given
    (otherwise such a line raises: a short line of the cells table padded with NULLs would
    lose its last fields, such as the date a cell was retired, without a word).

    Returns:
        ``FROM``-able SQL expressions.
    """
    scans = [
        f"read_parquet({sql_list(group)}, union_by_name=true, hive_partitioning=false)"
        for group in table.parquet
    ]
    for index, group in enumerate(table.csv):
        named = (
            None if rejects is None else (f"{rejects}_errors_{index}", f"{rejects}_scans_{index}")
        )
        scans.append(csv_scan(group, rejects=named))
    return scans


def csv_scan(
    group: CsvGroup, *, rejects: tuple[str, str] | None = None, filename: bool = False
) -> str:
    """The SQL scan of a CSV group (see `scan_sql`).

    With `rejects` (two table names: errors, scans) its faulty lines are kept there; with
    `filename`, each row names its file (column ``filename``).
    """
    # Every column as text, declared from the header: a line with more fields than the
    # header is then an error (kept as a reject), not a reason to invent a column.
    columns = ", ".join(f"{sql_string(name)}: 'VARCHAR'" for name in group.header)
    options = [
        "header=true",
        "auto_detect=false",
        f"columns={{{columns}}}",
        "hive_partitioning=false",
        f"delim={sql_string(group.delimiter)}",
        "quote='\"'",
        "escape='\"'",
        "compression='auto'",
        "null_padding=false",
    ]
    if rejects is not None:
        # A line with too few fields is then a reject too, quarantined with a reason of
        # its own rather than as a row of empty fields.
        options += [
            "ignore_errors=true",
            "store_rejects=true",
            f"rejects_table={sql_string(rejects[0])}",
            f"rejects_scan={sql_string(rejects[1])}",
        ]
    if filename:
        options.append("filename=true")
    return f"read_csv({sql_list(group.files)}, {', '.join(options)})"


def data_lines(path: Path) -> int:
    """Lines of a CSV file (plain or gzip) that are neither its header nor blank."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as handle:
        return sum(1 for line in handle if line.strip(b"\r\n")) - 1
