r"""CSV event files read on Spark's executors as DuckDB's `sources.scan_sql` reads them.

Each group's files are read as lines (``spark.read.text``), split into fields by a regular
expression in Spark SQL (no Python UDFs) and numbered as the file's lines, for the quarantine's
``file:line``. What DuckDB's reader does, and so what this does:

- the first line is the header (checked on the driver, `sources.check_csv`); a blank line
  (``\n`` or ``\r\n``) is no row but counts in the numbering;
- a field is quoted (``"..."``, a quote inside doubled, spaces around the quotes dropped;
  several quoted parts separated by spaces are one value, spaces kept) or unquoted (anything
  but the delimiter, not starting with a quote, spaces kept); an empty field is NULL;
- a line with fewer fields than the header, or more unless every field past the header's is
  empty, has the wrong field count; a quoted field followed by other text, or a line that is
  not UTF-8, is malformed (whatever its field count).

A quoted field holding a line break (or never closed) cannot be numbered line by line, nor
can a carriage return inside a line or a file mixing ``\r\n`` and ``\n`` line ends: each
refuses the delivery (DuckDB fails on the last two too, and on a quote never closed that takes
later lines into its field; it reads a quoted line break, as CSV allows).

Lines are numbered without a shuffle: each line gets ``monotonically_increasing_id()`` (its
task's number, then its place in the task) and its file split's start (``_metadata``). One
aggregation gives each split's first id and line count; the driver adds up the counts of a
file's earlier splits, so a line's number is its id plus its split's offset. A second job
brings back the ids of the faulty lines (DuckDB keeps those lines on its driver too) and of
those that refuse. The split lines, ids included, are kept (memory, then the executors' disks)
for these jobs and the ingest's two passes over the rows, so the text is read and split once.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from cellcensus.errors import InputDataError
from cellcensus.holder.store.sources import CsvGroup

_TEXT = "regexp_replace(value, '\\r$', '')"
"""A line without its CRLF's carriage return (lines are split at ``\\n`` only)."""

_UNQUOTED = (
    "NULLIF(CASE WHEN f RLIKE {quoted} THEN replace(regexp_replace("
    "regexp_extract(f, {quoted}, 1), '\"( +)\"', '$1'), '\"\"', '\"') ELSE f END, '')"
)
"""A field's value: a quoted field's text between its quotes, its quoted parts joined by the
spaces between them, doubled quotes made one."""


def _sql_text(text: str) -> str:
    """A Spark SQL string literal (whose parser reads backslash escapes)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _column(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def line_sql(delimiter: str, *, width: int) -> dict[str, str]:
    """Spark SQL of a line's ``refused`` fault, ``values`` and ``fault`` (its quarantine reason).

    Args:
        delimiter: The group's delimiter.
        width: The number of the header's columns.
    """
    d = r"\t" if delimiter == "\t" else re.escape(delimiter)
    part = r'"(?:[^"]|"")*"'
    field = rf'(?: *{part}(?: +{part})* *|(?! *")[^{d}]*)'
    whole = _sql_text(f"^{field}(?:{d}{field})*\\z")
    each = _sql_text(f"{d}({field})(?={d}|\\z)")
    quoted = _sql_text(r'^ *"(.*)" *\z')
    split = f"regexp_extract_all(concat({_sql_text(delimiter)}, text), {each}, 1)"
    values = f"transform({split}, f -> {_UNQUOTED.format(quoted=quoted)})"
    quotes = "(length(text) - length(replace(text, '\"', '')))"
    surplus = (
        f"exists(slice(values, {width + 1}, greatest(size(values) - {width}, 1)), "
        "v -> v IS NOT NULL)"
    )
    # A line without quotes always parses, and is split without the field regex.
    plain = "instr(text, '\"') = 0"
    fields = f"transform(split(text, {_sql_text(d)}, -1), f -> NULLIF(f, ''))"
    return {
        "refused": (
            "CASE WHEN instr(text, '\\r') > 0 THEN 'carriage return' "
            f"WHEN NOT {plain} AND text NOT RLIKE {whole} AND {quotes} % 2 = 1 "
            "THEN 'open quote' END"
        ),
        "values": f"CASE WHEN {plain} THEN {fields} WHEN text RLIKE {whole} THEN {values} END",
        "fault": (
            "CASE WHEN text = '' THEN NULL "
            "WHEN values IS NULL OR text RLIKE '\\\\x{FFFD}' THEN 'malformed_row' "
            f"WHEN size(values) < {width} OR {surplus} THEN 'wrong_field_count' END"
        ),
    }


class CsvLines:
    """The lines of one CSV group, numbered, with each line's fields or its fault."""

    def __init__(self, session: Any, group: CsvGroup, *, uri: Callable[[Path], str]) -> None:
        from pyspark import StorageLevel

        sql = line_sql(group.delimiter, width=len(group.header))
        self.group = group
        self.session = session
        self.names = {str(path.absolute()): str(path) for path in group.files}
        self.lines = (
            session.read.option("lineSep", "\n")
            .text([uri(path) for path in group.files])  # a list: its second argument is wholetext
            .selectExpr(
                "_metadata.file_path AS file",
                "_metadata.file_block_start AS block",
                "monotonically_increasing_id() AS row_id",
                f"{_TEXT} AS text",
                "endswith(value, '\\r') AS crlf",
            )
            .selectExpr(
                "file",
                "block",
                "row_id",
                "crlf",
                "text = '' AS blank",
                f"{sql['refused']} AS refused",
                f"{sql['values']} AS values",
                "text",
            )
            .selectExpr("*", f"{sql['fault']} AS fault")
            .drop("text")
            .persist(StorageLevel.MEMORY_AND_DISK)  # read by four jobs; spilt past memory
        )

    def release(self) -> None:
        """Free the parsed lines kept for the jobs that read them."""
        self.lines.unpersist()

    def number(self) -> tuple[Any, list[tuple[str, str]]]:
        """Number the lines; refuse the files if a line cannot be read line by line.

        Returns:
            Each split's ``delta`` (a small DataFrame on ``file`` and ``block``: a line's
            number is its ``row_id`` plus its split's delta), and the faulty lines as
            ``file:line`` (the file named as DuckDB names it) with their reason.

        Raises:
            InputDataError: At the first line holding an open quote or a carriage return.
        """
        from pyspark.sql import functions as F  # noqa: N812 (PySpark's convention)

        splits = (
            self.lines.groupBy("file", "block")
            .agg(
                F.min("row_id").alias("first_id"),
                F.count("*").alias("lines"),
                F.expr("count_if(crlf)").alias("crlf"),
                F.expr("max_by(crlf, row_id)").alias("last_crlf"),
            )
            .collect()
        )
        faults = self.lines.where("refused IS NOT NULL OR fault IS NOT NULL").selectExpr(
            "file", "block", "row_id", "refused", "fault"
        )
        self._refuse_mixed_line_ends(splits)
        deltas = self._deltas(splits)
        found = self._faults(faults.collect(), deltas)
        frame = self.session.createDataFrame(
            [(file, block, delta) for (file, block), delta in deltas.items()],
            schema="file string, block bigint, delta bigint",
        )
        return frame, found

    def _refuse_mixed_line_ends(self, splits: list[Any]) -> None:
        r"""Refuse a file whose lines end some in ``\r\n``, some in ``\n``, as DuckDB does.

        A file's last line may have no end at all.
        """
        for file, parts in _by_file(splits).items():
            crlf = sum(part["crlf"] for part in parts)
            others = sum(part["lines"] for part in parts) - crlf
            last = max(parts, key=lambda split: split["block"])["last_crlf"]
            if crlf and (others > 1 or (others == 1 and last)):
                raise InputDataError(
                    f"events: {self._name(file)} ends some lines with \\r\\n and others with "
                    "\\n, which DuckDB does not read either; re-export it with one kind of "
                    "line end"
                )

    def _name(self, file: str) -> str:
        """The file as DuckDB names it (as found), from Spark's URI of it."""
        path = unquote(urlparse(file).path)
        return self.names.get(path, path)

    @staticmethod
    def _deltas(splits: list[Any]) -> dict[tuple[str, int], int]:
        deltas = {}
        for file, parts in _by_file(splits).items():
            offset = 0
            for part in sorted(parts, key=lambda split: split["block"]):
                deltas[(file, part["block"])] = offset - part["first_id"] + 1
                offset += part["lines"]
        return deltas

    def _faults(
        self, faults: list[Any], deltas: dict[tuple[str, int], int]
    ) -> list[tuple[str, str]]:
        numbered = sorted(
            (
                self._name(fault["file"]),
                fault["row_id"] + deltas[(fault["file"], fault["block"])],
                fault["refused"],
                fault["fault"],
            )
            for fault in faults
        )
        data = [fault for fault in numbered if fault[1] > 1]  # line 1 is the header
        for name, line, refused, _ in data:
            if refused is not None:
                raise _refusal(name, line=line, fault=refused)
        return [(f"{name}:{line}", reason) for name, line, _, reason in data]

    def rows(self, deltas: Any) -> Any:
        """The data lines' fields as the header's columns, as text (faulty lines apart)."""
        from pyspark.sql import functions as F  # noqa: N812 (PySpark's convention)

        kept = self.lines.join(F.broadcast(deltas), ["file", "block"]).where(
            "row_id + delta > 1 AND NOT blank AND fault IS NULL"
        )
        return kept.selectExpr(
            *(
                f"try_element_at(values, {index + 1}) AS {_column(name)}"
                for index, name in enumerate(self.group.header)
            )
        )


def _by_file(splits: list[Any]) -> dict[str, list[Any]]:
    by_file: dict[str, list[Any]] = defaultdict(list)
    for split in splits:
        by_file[split["file"]].append(split)
    return by_file


def _refusal(name: str, *, line: int, fault: str) -> InputDataError:
    if fault == "carriage return":
        what = "holds a carriage return that does not end it"
    else:
        what = "has a quoted field that does not end on it (a line break inside quotes?)"
    return InputDataError(
        f"events: line {line} of {name} {what}; the Spark engine reads CSV line by line: "
        "re-export the file with its quotes closed on each line and one kind of line end "
        "(\\n or \\r\\n), or deliver Parquet"
    )
