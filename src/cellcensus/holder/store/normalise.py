"""SQL that turns one input scan, whatever its column types, into the contract's typed columns.

Parquet files arrive with their writer's types (timestamps typed or as text, mcc as int or
string), CSV files as text. Each scan gets a SELECT producing the same typed columns, plus, for
values that do not parse, their text (kept for the quarantine, which must show what was wrong).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from cellcensus.errors import SCHEMA_DOC, InputDataError

_INTEGER = re.compile(r"^U?(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT)$")
_DECIMAL = re.compile(r"^(FLOAT|DOUBLE|REAL|DECIMAL(\(\d+,\s*\d+\))?)$")
_TIMESTAMP = re.compile(r"^TIMESTAMP(_S|_MS|_NS)?$")
_NESTED = re.compile(r"^(STRUCT|MAP|UNION)\b|\[\d*\]$")
_FRACTIONAL = re.compile(r"^(FLOAT|DOUBLE|REAL|DECIMAL\(\d+,\s*[1-9]\d*\))$")
"""Number types whose text carries a fraction ("32470000001.0"): not an identifier's text."""

EARLIEST = "TIMESTAMPTZ '1970-01-01 00:00:00+00'"
LATEST = "TIMESTAMPTZ '2200-01-01 00:00:00+00'"
"""Timestamps outside [1970, 2200) are not network events: they count as malformed."""

NORMALISED_EVENT_COLUMNS: tuple[str, ...] = (
    "user_id",
    "ts",
    "ts_text",
    "cell_id",
    "event_type",
    "mcc",
    "mcc_text",
    "mnc",
    "mnc_text",
    "tac",
)


def _all_null(found: str | None) -> bool:
    """A column that is missing, or whose writer knew only NULLs (Parquet's null type)."""
    return found is None or found.strip('"') == "NULL"


def quote(name: str) -> str:
    """A SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _type_error(*, source: str, column: str, found: str, expected: str) -> InputDataError:
    return InputDataError(
        f"{source}: column {column} has type {found}; expected {expected} (see {SCHEMA_DOC}); "
        "re-export it with that type"
    )


def _text(*, types: Mapping[str, str], column: str, source: str, pad: int = 0) -> str:
    """A string column as VARCHAR; empty text counts as missing."""
    found = types.get(column)
    if found is None or _all_null(found):
        return "CAST(NULL AS VARCHAR)"
    name = quote(column)
    if found == "VARCHAR":
        return f"NULLIF({name}, '')"
    if _NESTED.search(found) or _FRACTIONAL.match(found):
        raise _type_error(source=source, column=column, found=found, expected="a string")
    text = f"CAST({name} AS VARCHAR)"
    if pad and _INTEGER.match(found):
        return f"lpad({text}, {pad}, '0')"
    return f"NULLIF({text}, '')"


def _timestamp(*, types: Mapping[str, str], column: str, source: str) -> str:
    """A timestamp column as TIMESTAMPTZ; text without an offset, and naive types, are UTC."""
    found = types[column]
    name = quote(column)
    if _all_null(found):
        return "CAST(NULL AS TIMESTAMPTZ)"
    if found == "TIMESTAMP WITH TIME ZONE":
        return name
    if _TIMESTAMP.match(found):
        return f"CAST({name} AS TIMESTAMPTZ)"
    if found == "VARCHAR":
        return f"TRY_CAST({name} AS TIMESTAMPTZ)"
    raise _type_error(
        source=source, column=column, found=found, expected="a timestamp or ISO-8601 text"
    )


def _integer(*, types: Mapping[str, str], column: str, source: str) -> str:
    """An integer code column as INTEGER (NULL where the value is not an integer)."""
    found = types[column]
    name = quote(column)
    if _all_null(found):
        return "CAST(NULL AS INTEGER)"
    if _INTEGER.match(found):
        return f"TRY_CAST({name} AS INTEGER)"
    if _DECIMAL.match(found):
        return f"CASE WHEN {name} = floor({name}) THEN TRY_CAST({name} AS INTEGER) END"
    if found == "VARCHAR":
        # Digits only (a float export's ".0" allowed): a cast would round "206.5" to 207 and
        # read "2e2" or "0x10" as numbers, turning a garbled code into another network's.
        digits = f"regexp_extract({name}, '^\\s*([0-9]+)(\\.0*)?\\s*$', 1)"
        return f"TRY_CAST(NULLIF({digits}, '') AS INTEGER)"
    raise _type_error(source=source, column=column, found=found, expected="an integer")


def _raw(*, types: Mapping[str, str], column: str) -> str:
    name = quote(column)
    if _all_null(types[column]):
        return "CAST(NULL AS VARCHAR)"
    return f"NULLIF({name}, '')" if types[column] == "VARCHAR" else name


def event_select(*, scan: str, types: Mapping[str, str], source: str) -> str:
    """SELECT of the normalised event columns (`NORMALISED_EVENT_COLUMNS`) from one scan.

    ``ts``, ``mcc`` and ``mnc`` are NULL where the input is missing or malformed;
    ``ts_text``, ``mcc_text`` and ``mnc_text`` hold the input text only where it is malformed,
    so that "missing" and "malformed" stay apart.

    Args:
        scan: A FROM-able SQL expression (a read_parquet or read_csv call).
        types: Column name -> DuckDB type of the scan.
        source: The input's name for messages.

    Raises:
        InputDataError: If a column has a type that cannot hold its contract value.
    """
    inner = ", ".join(
        [
            f"{_text(types=types, column='user_id', source=source)} AS user_id",
            f"{_timestamp(types=types, column='timestamp', source=source)} AS ts_parsed",
            f"{_raw(types=types, column='timestamp')} AS ts_raw",
            f"{_text(types=types, column='cell_id', source=source)} AS cell_id",
            f"{_text(types=types, column='event_type', source=source)} AS event_type",
            f"{_integer(types=types, column='mcc', source=source)} AS mcc_parsed",
            f"{_raw(types=types, column='mcc')} AS mcc_raw",
            f"{_integer(types=types, column='mnc', source=source)} AS mnc_parsed",
            f"{_raw(types=types, column='mnc')} AS mnc_raw",
            f"{_text(types=types, column='tac', source=source, pad=8)} AS tac",
        ]
    )
    outer = normalised_columns(ts_ok=f"(ts_parsed >= {EARLIEST} AND ts_parsed < {LATEST})")
    return f"SELECT {', '.join(outer)} FROM (SELECT {inner} FROM {scan})"


def normalised_columns(*, ts_ok: str) -> list[str]:
    """The normalised event columns from the typed (``*_parsed``) and raw (``*_raw``) ones.

    The SQL is read by DuckDB and by Spark alike (``STRING`` is DuckDB's VARCHAR).

    Args:
        ts_ok: SQL that is true where ``ts_parsed`` is a network event's time.
    """
    outer = [
        "user_id",
        f"CASE WHEN {ts_ok} THEN ts_parsed END AS ts",
        f"CASE WHEN ts_raw IS NOT NULL AND NOT coalesce({ts_ok}, false) "
        "THEN CAST(ts_raw AS STRING) END AS ts_text",
        "cell_id",
        "event_type",
    ]
    for code in ("mcc", "mnc"):
        valid = f"({code}_parsed BETWEEN 0 AND 999)"
        outer += [
            f"CASE WHEN {valid} THEN {code}_parsed END AS {code}",
            f"CASE WHEN {code}_raw IS NOT NULL AND NOT coalesce({valid}, false) "
            f"THEN CAST({code}_raw AS STRING) END AS {code}_text",
        ]
    return [*outer, "tac"]


def empty_fields(row: str = "") -> dict[str, str]:
    """Per required field of the contract, SQL true where a normalised row leaves it empty.

    The SQL is read by DuckDB and by Spark alike.

    Args:
        row: Prefix of the normalised columns (``"d."``), if any.
    """
    return {
        "user_id": f"{row}user_id IS NULL",
        "timestamp": f"({row}ts IS NULL AND {row}ts_text IS NULL)",
        "cell_id": f"{row}cell_id IS NULL",
        "event_type": f"{row}event_type IS NULL",
        "mcc": f"({row}mcc IS NULL AND {row}mcc_text IS NULL)",
        "mnc": f"({row}mnc IS NULL AND {row}mnc_text IS NULL)",
    }


def malformed_fields(*, tac_ok: str, row: str = "") -> dict[str, str]:
    """Per field, SQL true where it is malformed in a row whose required fields are all there.

    Args:
        tac_ok: SQL true where the row's tac is 8 digits, NULL where it has none (each engine
            writes its own regular expression).
        row: Prefix of the normalised columns (``"d."``), if any.
    """
    return {
        "timestamp": f"{row}ts IS NULL",
        "mcc": f"{row}mcc IS NULL",
        "mnc": f"{row}mnc IS NULL",
        "tac": f"NOT coalesce({tac_ok}, true)",
    }


def any_field(fields: Mapping[str, str]) -> str:
    """SQL true where any of `fields`' conditions is."""
    return "(" + " OR ".join(fields.values()) + ")"


def fields_at_fault(*, tac_ok: str) -> str:
    """SQL of the quarantine's ``field``: the fields that gave a rejected row its reason.

    Comma-separated in the contract's order, for ``null_field`` and ``malformed_value`` (whose
    reason does not say which field to fix); NULL for the other reasons. `tac_ok` is as for
    `malformed_fields`; the row's columns are read without a prefix.
    """
    named = {
        "null_field": empty_fields(),
        "malformed_value": malformed_fields(tac_ok=tac_ok),
    }
    cases = " ".join(
        f"WHEN '{reason}' THEN concat_ws(',', "
        + ", ".join(f"CASE WHEN {sql} THEN '{name}' END" for name, sql in fields.items())
        + ")"
        for reason, fields in named.items()
    )
    return f"CASE reason {cases} END"


CELL_TEXT = ("cell_id", "site_id", "technology")
CELL_NUMBERS = ("latitude", "longitude", "azimuth_deg", "beam_width_deg", "range_m")
CELL_DATES = ("valid_from", "valid_to")


def cell_select(*, scan: str, types: Mapping[str, str], source: str) -> str:
    """SELECT of the typed cell columns from one scan, with the text beside converted ones.

    Each converted column gets a ``<column>__raw`` twin holding its input text, so that values
    that do not parse can be reported.

    Raises:
        InputDataError: If a column has a type that cannot hold its contract value.
    """
    columns = []
    for column in CELL_TEXT:
        columns.append(f"{_text(types=types, column=column, source=source)} AS {column}")
    for column in (*CELL_NUMBERS, *CELL_DATES):
        found = types.get(column)
        name = quote(column)
        kind = "DOUBLE" if column in CELL_NUMBERS else "DATE"
        if found is None or _all_null(found):
            columns += [
                f"CAST(NULL AS {kind}) AS {column}",
                f"CAST(NULL AS VARCHAR) AS {column}__raw",
            ]
            continue
        text = f"NULLIF(trim(CAST({name} AS VARCHAR)), '')"
        if column in CELL_NUMBERS:
            if _INTEGER.match(found) or _DECIMAL.match(found):
                typed = f"CAST({name} AS DOUBLE)"
            elif found == "VARCHAR":
                typed = f"TRY_CAST({text} AS DOUBLE)"
            else:
                raise _type_error(source=source, column=column, found=found, expected="a number")
        elif found == "DATE":
            typed = name
        elif found.startswith("TIMESTAMP"):
            typed = f"CAST({name} AS DATE)"
        elif found == "VARCHAR":
            typed = (
                f"coalesce(TRY_CAST({text} AS DATE), CAST(TRY_CAST({text} AS TIMESTAMP) AS DATE))"
            )
        else:
            raise _type_error(source=source, column=column, found=found, expected="a date")
        columns += [f"{typed} AS {column}", f"{text} AS {column}__raw"]
    return f"SELECT {', '.join(columns)} FROM {scan}"
