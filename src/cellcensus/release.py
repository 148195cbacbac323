"""What crosses the trust boundary: a released table and the facts published beside it.

Both sides import this module and nothing else of each other: the holder builds a `Release`,
the NSO reads one (in process or as JSON over HTTP).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from statistics import NormalDist
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from cellcensus.errors import CellcensusError

T = TypeVar("T")


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
    privacy_units: int = 1
    """Units the release spans (e.g. dates x slots), in each of which one device adds at most
    the manifest's contribution bound; the noise is calibrated to all of them at once. Times
    `pseudonyms`: the L1 sensitivity in bounds."""
    pseudonyms: int = 1
    """The most pseudonyms one device has in the release (its key periods): each adds the
    bound to each unit, to the same cells, so the L2 sensitivity is ``sqrt(U k) L`` with U
    `privacy_units` (which counts each pseudonym) and k this."""
    area_level: str | None = None
    """The allocation the areas are of (``municipality``, ``arrondissement``, a holder's own
    level): with the rest, what reproducing the release takes. None in releases made before
    it was recorded."""


PROVENANCE_SUFFIX = ".provenance.json"
"""Suffix of the sidecar that carries a CSV release's provenance (``NAME.provenance.json``)."""
RELEASE_SUFFIXES = (".csv", ".json")
READ_SUFFIXES = (*RELEASE_SUFFIXES, ".parquet")
"""What `Release.read` takes: also the Parquet the service sends, its facts in its metadata."""
PARQUET_KEYS = {"provenance": b"cellcensus.provenance", "published": b"cellcensus.published"}
"""Schema metadata keys of a Parquet release (`holder.api.formats` writes them): its facts."""


_NORMAL = NormalDist()

CI95_PER_SD: dict[str, float] = {
    "laplace": math.log(20.0) / math.sqrt(2.0),  # P(|X| > b ln 20) = 5 %, sd = b sqrt 2
    "gaussian": _NORMAL.inv_cdf(0.975),
}
"""Half-width of a released 95 % noise interval (``ci95``) per deviation of the noise, by the
policy's mechanism: the holder writes ``ci95`` by it and the statistics office reads it back."""


def noise_threshold(
    *, min_count: float, sd: np.ndarray, noise_releases: float | None, laplace: bool
) -> np.ndarray:
    """The noisy count each cell of a release had to exceed to be published.

    `min_count`, or more: noise alone lifts a cell where no device is above `min_count` with
    a small chance, but a release of many cells (a matrix of pairs of areas) has enough of
    them for such cells to outnumber the true ones, each a positive error that a sum over
    the released cells keeps. Each cell's threshold is its noise's quantile ``1 - r / n``
    (n cells, r `noise_releases`, the policy's ``dp.noise_releases``) where that is more:
    Laplace noise of scale b (deviation `sd` = b sqrt 2) exceeds ``b ln(n / 2r)`` with
    chance r / n, normal noise of deviation `sd` exceeds ``sd z(1 - r / n)``. The noise is
    public (its ``ci95``: `CI95_PER_SD`), so is the threshold; the holder withholds by it and
    the statistics office reads it back.
    """
    sd = np.asarray(sd, dtype=np.float64)
    floor = np.full(len(sd), float(min_count))
    if noise_releases is None or not len(sd):
        return floor
    share = min(noise_releases / len(sd), 0.5)
    if laplace:
        quantile = sd / math.sqrt(2.0) * math.log(0.5 / share)
    else:
        quantile = sd * _NORMAL.inv_cdf(1.0 - share)
    threshold: np.ndarray = np.maximum(floor, np.nan_to_num(quantile))
    return threshold


def provenance_path(table: Path) -> Path:
    """The provenance sidecar of a release table: ``out/x.csv`` -> ``out/x.provenance.json``."""
    return table.with_suffix(PROVENANCE_SUFFIX)


def published_period(published: Mapping[str, Any]) -> tuple[date, date] | None:
    """The first and last day a release's job read, as its holder publishes them (``period``).

    None when the period is not published; a published day that is not a date is refused.
    """
    period = published.get("period")
    if not isinstance(period, Mapping) or not (period.get("start") and period.get("end")):
        return None
    try:
        start, end = (date.fromisoformat(str(period[key])[:10]) for key in ("start", "end"))
    except ValueError:
        raise CellcensusError(
            f"the release's published period {dict(period)!r} is not two dates YYYY-MM-DD"
        ) from None
    return start, end


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
        """Serialise for the wire (HTTP) or for the holder's release archive.

        ``columns`` keeps the table's column order and types, which the records lose (their
        keys are sorted, and a count column with suppressed cells would read back as floats).
        """
        return json.dumps(
            {
                "table": json.loads(self.table.to_json(orient="records")),
                "columns": self.columns(),
                "provenance": asdict(self.provenance),
                "published": self.published,
            },
            sort_keys=True,
        )

    def columns(self) -> list[dict[str, str]]:
        """The table's column names and types, in order, as the release files record them."""
        return [
            {"name": str(name), "dtype": str(dtype)} for name, dtype in self.table.dtypes.items()
        ]

    def provenance_document(self) -> dict[str, Any]:
        """What a release file carries besides its table.

        ``provenance``, ``published`` and the table's ``columns``, whose types a CSV cannot
        keep (text or number, whole or not).
        """
        return {
            "provenance": asdict(self.provenance),
            "published": self.published,
            "columns": self.columns(),
        }

    def write(self, path: Path) -> list[Path]:
        """Write the release to `path` (``.json``, or ``.csv`` with its provenance sidecar).

        A ``.json`` file is the wire format (table, provenance and published facts in one
        document). A ``.csv`` file holds the table only, so `provenance_document` is written
        beside it to ``NAME.provenance.json`` first: a CSV release never exists without its
        provenance (algorithm and version, parameters, policy with the epsilon and delta
        spent, privacy units, time, job id, engine), as the HTTP service sends it in the
        ``Cellcensus-Provenance`` header.

        Returns:
            The files written: the table, then its sidecar (CSV).
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in RELEASE_SUFFIXES:
            raise ValueError(f"{path}: a release is written as .csv or .json, not {suffix!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".json":
            path.write_text(self.to_json(), encoding="utf-8")
            return [path]
        sidecar = provenance_path(path)
        sidecar.write_text(
            json.dumps(self.provenance_document(), indent=2, sort_keys=True) + "\n",
            encoding="utf-8",
        )
        path.write_text(self.to_csv(), encoding="utf-8")
        return [path, sidecar]

    def to_csv(self) -> str:
        """The table as CSV text: what `write` puts in a .csv file and the service sends."""
        return str(self.table.to_csv(index=False))

    @classmethod
    def read(cls, path: Path | str) -> Release:
        """Read a release file as `write` (and ``cellcensus run --out``) wrote it.

        ``NAME.json`` is the whole release; ``NAME.csv`` is its table, read with the
        provenance, published facts and column types of ``NAME.provenance.json`` beside it;
        ``NAME.parquet`` is the service's Parquet, the facts in its schema metadata.

        Raises:
            CellcensusError: the file or its sidecar is missing, or is not a release.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in READ_SUFFIXES:
            raise CellcensusError(
                f"{path}: a release is a .csv, .json or .parquet file, not {suffix!r}"
            )
        if suffix == ".json":
            return _parsed(path, lambda: cls.from_json(_text(path)))
        if suffix == ".parquet":
            return _parsed(path, lambda: _from_parquet(cls, path))
        text = _text(path)  # a missing table is named before its missing sidecar
        sidecar = provenance_path(path)
        if not sidecar.is_file():
            raise CellcensusError(
                f"{path}: its provenance {sidecar.name} is missing; a CSV release is read "
                "with the sidecar `cellcensus run --out` wrote beside it (the service sends a "
                "CSV's provenance in headers: download format=json or format=parquet instead)"
            )
        document = _parsed(sidecar, lambda: json.loads(_text(sidecar)))
        # Each fault is the file's it is in: the sidecar's facts, or the table's columns.
        provenance, published = _parsed(
            sidecar, lambda: (Provenance(**document["provenance"]), document["published"])
        )
        table = _parsed(path, lambda: _csv_table(text, document.get("columns"), path=path))
        return cls(table=table, provenance=provenance, published=published)

    @classmethod
    def from_json(cls, text: str) -> Release:
        """Read a release serialised by `to_json`."""
        data = json.loads(text)
        table = pd.read_json(io.StringIO(json.dumps(data["table"])), orient="records", dtype=False)
        if "columns" in data:  # releases archived before it keep the types read from JSON
            table = _typed(table, data["columns"])
        return cls(
            table=table, provenance=Provenance(**data["provenance"]), published=data["published"]
        )


def _from_parquet(cls: type[Release], path: Path) -> Release:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        raise CellcensusError(f"{path}: no such release file") from None
    except (OSError, pa.ArrowException) as error:
        raise CellcensusError(f"{path}: cannot be read as a release ({error})") from None
    metadata = table.schema.metadata or {}
    if missing := [name for name, key in PARQUET_KEYS.items() if key not in metadata]:
        raise CellcensusError(
            f"{path}: not a cellcensus release (no {' or '.join(missing)} in its metadata); "
            "read the Parquet the service sent"
        )
    return cls(
        table=table.to_pandas(),
        provenance=Provenance(**json.loads(metadata[PARQUET_KEYS["provenance"]])),
        published=json.loads(metadata[PARQUET_KEYS["published"]]),
    )


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CellcensusError(f"{path}: no such release file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise CellcensusError(f"{path}: cannot be read as a release ({error})") from None


def _parsed(path: Path, read: Callable[[], T]) -> T:
    """What `read` gives, or an error naming `path` where it is not a release."""
    try:
        return read()
    except CellcensusError:
        raise
    except (ValueError, KeyError, TypeError) as error:
        raise CellcensusError(
            f"{path}: not a cellcensus release ({type(error).__name__}: {error}); read the "
            "file `cellcensus run --out` wrote"
        ) from None


def _csv_table(text: str, columns: list[dict[str, str]] | None, *, path: Path) -> pd.DataFrame:
    """A CSV release's table, in the columns and types its sidecar recorded.

    Raises:
        CellcensusError: The table lacks a column the sidecar names (a header edited).
    """
    _check_field_counts(text, path=path)
    # Every column as text first: area codes keep their leading zeros.
    table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""])
    columns = columns or _untyped(list(table.columns))
    if missing := [column["name"] for column in columns if column["name"] not in table]:
        raise CellcensusError(
            f"{path}: no column {', '.join(missing)}, which its provenance "
            f"{provenance_path(path).name} names (the table has {', '.join(table.columns)}); "
            f"{UNEDITED}"
        )
    for column in columns:
        if column["dtype"] in NUMBERS:
            _check_numbers(table[column["name"]], column["dtype"], path=path)
    return _typed(table, columns)


UNEDITED = "read the file `cellcensus run --out` wrote, unedited"
"""What to do about a CSV release that is not as it was written."""

NUMBERS = {"Int64": "a whole number", "int64": "a whole number", "float64": "a number"}
"""Numeric column types of a release table, and what each value must be."""


def _check_field_counts(text: str, *, path: Path) -> None:
    """Refuse a CSV line with more or fewer fields than the header.

    Read as empty, a missing count or interval would silently change the estimates.
    """
    reader = csv.reader(io.StringIO(text))
    start = 1
    try:
        header = next(reader, [])
        start = reader.line_num + 1  # where the next record starts (it may span lines)
        for row in reader:
            if row and len(row) != len(header):
                raise CellcensusError(
                    f"{path}: line {start} has {len(row)} field(s) where the header has "
                    f"{len(header)}; {UNEDITED}"
                )
            start = reader.line_num + 1
    except csv.Error as error:  # a field past the csv module's limit: a quote left open
        raise CellcensusError(
            f"{path}: cannot be split into fields from line {start} on ({error}); {UNEDITED}"
        ) from None


def _check_numbers(values: pd.Series, dtype: str, *, path: Path) -> None:
    """Refuse a value of a numeric column that is not a number (or not whole), naming its row."""
    numbers = pd.to_numeric(values, errors="coerce")
    bad = values.notna() & numbers.isna()
    if dtype.lower() == "int64":
        bad |= numbers.notna() & (numbers % 1 != 0)
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise CellcensusError(
            f"{path}: row {row + 1} (after the header): {values.name} is "
            f"{values.iloc[row]!r}, not {NUMBERS[dtype]}; {UNEDITED}"
        )


def _untyped(names: list[str]) -> list[dict[str, str]]:
    """Types of a sidecar that recorded none: keys as text, counts and intervals as numbers."""
    numbers = {"device_count": "Int64", "ci95": "float64"}
    return [{"name": name, "dtype": numbers.get(name, "str")} for name in names]


def _typed(table: pd.DataFrame, columns: list[dict[str, str]]) -> pd.DataFrame:
    """`table` in the column order and types `to_json` recorded (dates as JSON gave them)."""
    names = [column["name"] for column in columns]
    if table.empty:
        table = pd.DataFrame(columns=names)
    types = {
        column["name"]: column["dtype"]
        for column in columns
        if not column["dtype"].startswith("datetime")  # the records hold epoch milliseconds
    }
    return table[names].astype(types)
