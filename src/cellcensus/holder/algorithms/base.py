"""What every algorithm of the catalogue declares: its manifest and its computation."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any, Literal, Protocol

import ibis
import ibis.expr.datatypes as dtypes
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
from ibis.common.exceptions import IbisError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cellcensus.errors import CellcensusError
from cellcensus.holder.algorithms.spatial import AreaFootprint, area_footprint
from cellcensus.holder.algorithms.staging import Inline, Staging

COUNT = "device_count"
"""The count column of every release: distinct devices (or device-nights), maybe fractional."""

EVENTS_SCHEMA = ibis.schema(
    {
        "device_id": "int64",
        "timestamp": "timestamp('UTC')",
        "local_date": "date",
        "local_hour": "int8",
        "cell_id": "string",
        "event_type": "string",
        "mcc": "int32",
        "mnc": "int32",
        "tac": "string",
    }
)
"""The store's pseudonymised events, as every algorithm reads them."""

ALLOCATION_SCHEMA = ibis.schema(
    {
        "cell_id": "string",
        "area_code": "string",
        "weight": "float64",
        "overlap_km2": "float64",
        "valid_from": "date",
        "valid_to": "date",
    }
)
"""Cell -> area allocation: each cell's weights sum to 1 per version; overlap_km2 is
footprint ∩ area; valid_from, valid_to (inclusive, null = open) bound each version of a
cell's weights (see `areas` for which version a row uses)."""


class Certification(StrEnum):
    """How far an algorithm has been vetted; analysts run only `certified` by default."""

    DRAFT = "draft"
    CONTRIB = "contrib"
    CERTIFIED = "certified"


class KeyDomain(StrEnum):
    """Where the public values of an output key come from (the disclosure layer's key set)."""

    AREA = "area"
    """Every area code of the allocation level the job runs at."""
    DATE = "date"
    """Every local date of the period."""
    SLOT = "slot"
    """Every time slot of a day: 0 .. 1440 // slot_minutes - 1 (needs `slot_minutes`)."""
    CATEGORY = "category"
    """A fixed list of values declared in the manifest."""


@dataclass(frozen=True)
class Key:
    """One key column of a release and its public domain.

    Attributes:
        name: Column name.
        domain: Where its values come from.
        values: The values of a `CATEGORY` key (empty otherwise).
    """

    name: str
    domain: KeyDomain
    values: tuple[str, ...] = ()


AREA_KEY = Key("area_code", KeyDomain.AREA)


class Parameters(BaseModel):
    """Base of every algorithm's parameter model: frozen, no unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class PeriodParameters(Parameters):
    """Parameters of an algorithm run over a period of local dates (both ends inclusive)."""

    start: dt.date | None = Field(default=None, description="First local date (default: all).")
    end: dt.date | None = Field(
        default=None, description="Last local date (default: all); not before start."
    )

    @model_validator(mode="after")
    def _period_ordered(self) -> PeriodParameters:
        if self.start and self.end and self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self

    def known_period(self, dates: Sequence[dt.date]) -> tuple[dt.date | None, dt.date | None]:
        """`start` and `end`, else the first and last of the store's `dates` (public).

        None where neither is known (`StoreTables.dates` is empty for a hand-built table).
        """
        first = self.start if self.start is not None else (dates[0] if dates else None)
        last = self.end if self.end is not None else (dates[-1] if dates else None)
        return first, last


FOOTPRINT_TABLES = ("cells", "serving", "tiles")
"""The tables of a `TileFootprint`, in order."""
FOOTPRINT_LEVEL = "municipality"
"""The area level the footprint's tiles are labelled with: the only level it serves."""
TILE_FOOTPRINT_COMMAND = "cellcensus store allocate --store STORE --tile-footprint"
"""What keeps the tile footprint in a store."""


@dataclass(frozen=True)
class StoreLayout:
    """What a store holds besides its events: all a job is checked against before its charge.

    Attributes:
        level: The job's area level (one the store has an allocation for).
        footprint: Whether the store holds a tile footprint of its current cells.
        days: The local dates the store holds events for (public: the store's period).
    """

    level: str
    footprint: bool
    days: tuple[dt.date, ...]

    def days_within(self, start: dt.date | None, end: dt.date | None) -> list[dt.date]:
        """The store's days from `start` to `end` (both inclusive; None: unbounded)."""
        return [d for d in self.days if (start is None or d >= start) and (end is None or d <= end)]


def check_days(
    layout: StoreLayout,
    start: dt.date | None,
    end: dt.date | None,
    *,
    least: int,
    parameter: str,
    unit: Literal["nights", "weekdays"] = "nights",
    period: str = "the period",
) -> None:
    """Refuse a period whose stored days hold fewer nights (weekdays) than `parameter` asks.

    No device could then qualify and the release would be empty: it is refused before its
    charge. n days span at most n + 1 nights (each dated by its evening, the first one's
    evening the day before), and hold the weekdays among them.
    """
    days = layout.days_within(start, end)
    if unit == "nights":
        held = len(days) + 1 if days else 0
    else:
        held = sum(day.weekday() < 5 for day in days)
    if held < least:
        counted = f"{held} {unit[:-1] if held == 1 else unit}"
        raise CellcensusError(
            f"{period} ({start or 'the first stored day'} to {end or 'the last'}) holds "
            f"{len(days)} of the store's days, at most {counted}: fewer than {parameter} "
            f"({least}), so no device could qualify; choose a longer period or lower {parameter}"
        )


class SpatialParameters(Protocol):
    """Parameters that choose a spatial estimator (present population, inbound tourism)."""

    @property
    def spatial_estimator(self) -> str:
        """'allocation', 'bayesian', ..."""


def bayesian_needs_footprint(params: SpatialParameters, layout: StoreLayout) -> None:
    """The Bayesian estimator reads the tile footprint, at the level its tiles serve."""
    if params.spatial_estimator == "bayesian":
        check_footprint("bayesian", layout)


def check_footprint(estimator: str, layout: StoreLayout) -> None:
    """Refuse `estimator`, which reads the tile footprint, where the layout has none to read."""
    if layout.level != FOOTPRINT_LEVEL or not layout.footprint:
        raise footprint_refusal(estimator, level=layout.level)


def footprint_refusal(estimator: str, *, level: str) -> CellcensusError:
    """Why `estimator`, which reads the tile footprint, has none at `level`."""
    if level != FOOTPRINT_LEVEL:
        return CellcensusError(
            f"the {estimator} estimator only supports the {FOOTPRINT_LEVEL} level (the tile "
            f"footprint places its tiles in {FOOTPRINT_LEVEL}s), not {level}: use "
            f"spatial_estimator=allocation at {level} level"
        )
    return MissingFootprintError(estimator)


class MissingFootprintError(CellcensusError):
    """An estimator that reads the tile footprint, on a store without one of its current cells.

    Raised where the store is not known; `enclave.compute.check_job` says what to do with the
    store's path, to the holder or to an analyst (`told`).
    """

    def __init__(self, estimator: str) -> None:
        self.estimator = estimator
        super().__init__(self.told(f"run `{TILE_FOOTPRINT_COMMAND}`"))

    def told(self, action: str) -> str:
        """The refusal, ending with what to do."""
        return (
            f"the {self.estimator} estimator needs the store's tile footprint of its current "
            f"cells (made again after an ingest that changes the cells): {action}"
        )


@dataclass(frozen=True)
class TileFootprint:
    """The network's footprint on tiles (`holder.geo.tile_footprint`), for `posterior`.

    Attributes:
        cells: cell_id, sector: the antenna sector of each cell.
        serving: sector, tile, probability: P(sector | tile), at least 1e-3.
        tiles: tile, area_code, share, log_prior: each tile's part in each area it overlaps
            (one row for a tile inside one), its share of the tile and the log of its prior
            mass (density times share).
    """

    cells: ir.Table
    serving: ir.Table
    tiles: ir.Table

    @cached_property
    def per_area(self) -> AreaFootprint:
        """The footprint summed per area (`spatial.area_footprint`), computed once."""
        return area_footprint(self)


@dataclass(frozen=True)
class StoreTables:
    """The store's tables as the algorithms see them (Ibis, any backend).

    Attributes:
        events: Pseudonymised events, `EVENTS_SCHEMA`.
        cells: Network topology, one row per cell version (docs/schema.md cells).
        allocation: cell_id, area_code, weight (each cell's weights sum to 1), and the
            validity of each version of a cell's weights (valid_from, valid_to).
        materialize: Called by algorithms on an intermediate table that later steps read
            several times (dropped devices, home cells), and (`each`) on the dates' parts of
            a per-day step: it computes them now, each on its own (`staging`). The default
            (`staging.Inline`) leaves them in the expression, planned at once.
        per_day: Whether the per-day steps aggregate one of `dates` at a time
            (`device_filter.Scope.daily`): with a staging `materialize`, each date is its own
            query and memory holds a day, not the period, so a month costs thirty days.
            False: each step is one aggregation over the period (Spark, whose shuffles
            already bound it).
        dates: The local dates the events hold, where known (the store's day partitions):
            the dates of the per-day steps, and the night sets of a period that fits one bit
            set are counted from its first night (`places.night_sets`).
        footprint: The tile footprint, where the store holds one and `level` is the one it
            serves, `FOOTPRINT_LEVEL` (else None).
        device_days: The store's device-day summaries (`holder.store.device_days`, one row
            per device, local date and home network), where every stored day has a fresh
            one: the device filter then reads them (`device_filter.device_day_counts`)
            instead of every event of the period.
        positions: Whether `device_days` lists each device under one home network a day, so
            that a row's hourly `positions` (each an hour and a `cell_key`) are its whole
            day's: `present_population` then reads them for hourly and daily slots instead
            of the events.
        level: The area level of `allocation`.
    """

    events: ir.Table
    cells: ir.Table
    allocation: ir.Table
    materialize: Staging = field(default_factory=Inline)
    per_day: bool = False
    dates: tuple[dt.date, ...] = ()
    footprint: TileFootprint | None = None
    device_days: ir.Table | None = None
    positions: bool = False
    level: str = FOOTPRINT_LEVEL

    def release(self) -> None:
        """Free what `materialize` staged (the tables stay readable until then)."""
        self.materialize.release()


def cell_key(cell_id: str) -> int:
    """The integer that stands for `cell_id` in the device-day summaries' `positions`.

    A 64-bit hash of the id, the same for every day and every store: jobs join and compare
    integers where they would strings, and no dictionary has to be kept with the store.
    Jobs refuse a cells table where two ids share a key (about one chance in 10^9 among a
    million cells).
    """
    digest = hashlib.blake2b(cell_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def cell_keys(cell_ids: Iterable[str]) -> pa.Table:
    """cell_id, cell: each of `cell_ids` with its `cell_key`."""
    ids = list(cell_ids)
    keys = pa.array([cell_key(cell_id) for cell_id in ids], pa.int64())
    return pa.table({"cell_id": pa.array(ids, pa.string()), "cell": keys})


Period = tuple[dt.date, dt.date]
"""A job's first and last local date (both inclusive)."""


def _no_bound(_params: Any, _period: Period | None) -> float | None:
    return None


@dataclass(frozen=True)
class Manifest:
    """The public description of an algorithm: what a steward certifies.

    Attributes:
        name: Identifier used in jobs and the API.
        version: Semantic version; a change of computation bumps it.
        certification: Vetting level.
        summary: One line on what it computes.
        parameters: Pydantic model of the typed, bounded parameters.
        keys: Key columns of the released table, in order; `device_count` follows them.
        privacy_unit: What one contribution bound is stated for, in words.
        contribution_bound: Most one device adds to the release (sum of |device_count|
            changes) within one privacy unit, at the most permissive allowed parameters.
        reference: Literature the method follows.
        unit_keys: Key columns that identify a privacy unit: the bound holds for each of
            their values separately (e.g. each date and slot). Empty: the whole release.
        bound_for: The (tighter) bound for given parsed parameters and, where known, the
            job's period (public: the days the store holds), which can cap what a device
            adds over it (e.g. its nights); default: the static one.
        examples: Parameter sets the conformance suite runs (besides the defaults), valid on
            the conformance world (14 days from Monday 7 March 2011).
    """

    name: str
    version: str
    certification: Certification
    summary: str
    parameters: type[Parameters]
    keys: tuple[Key, ...]
    privacy_unit: str
    contribution_bound: float
    reference: str
    unit_keys: tuple[str, ...] = ()
    bound_for: Callable[[Any, Period | None], float | None] = _no_bound
    examples: tuple[dict[str, Any], ...] = field(default=())

    @property
    def key_names(self) -> tuple[str, ...]:
        """Names of the key columns, in order."""
        return tuple(key.name for key in self.keys)

    @property
    def outputs(self) -> tuple[str, ...]:
        """Columns of the released table: the keys, then `device_count`."""
        return (*self.key_names, COUNT)

    def parse(self, values: dict[str, Any]) -> Parameters:
        """Validate raw parameter values, naming the parameter that is wrong."""
        try:
            return self.parameters.model_validate(values)
        except ValidationError as error:
            first = error.errors()[0]
            if not first["loc"]:  # a rule between parameters: no one parameter to name
                rule = first["msg"].removeprefix("Value error, ")
                raise CellcensusError(f"{self.name}: {rule}") from None
            where = ".".join(str(part) for part in first["loc"])
            if first["type"] == "extra_forbidden":
                known = ", ".join(self._parameter_names(first["loc"][:-1])) or "none"
                raise CellcensusError(
                    f"{self.name}: no parameter '{where}'; its parameters there: {known}"
                ) from None
            said = first["msg"].removeprefix("Value error, ")
            raise CellcensusError(
                f"{self.name}: parameter '{where}': {said} (got {first.get('input')!r})"
            ) from None

    def _parameter_names(self, group: tuple[int | str, ...]) -> list[str]:
        """The parameter names in `group` (a nested model's path; empty for the top level)."""
        model: Any = self.parameters
        for name in group:
            model = model.model_fields[str(name)].annotation
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                return []
        prefix = "".join(f"{name}." for name in group)
        return [prefix + name for name in model.model_fields]

    def bound(self, params: Parameters, period: Period | None = None) -> float:
        """The contribution bound per privacy unit for these parsed parameters.

        `period` is the job's first and last day; None: the bound over any period.
        """
        specific = self.bound_for(params, period)
        return self.contribution_bound if specific is None else specific

    def default_bound(self) -> float | None:
        """The bound at the default parameters; None where a parameter has no default."""
        try:
            return self.bound(self.parse({}))
        except CellcensusError:
            return None

    def parameters_schema(self) -> dict[str, Any]:
        """JSON schema of the parameters (feeds the API and `cellcensus algorithms`)."""
        return self.parameters.model_json_schema()

    def describe(self) -> dict[str, Any]:
        """The manifest as plain data (`cellcensus algorithms --json`, the API's catalogue)."""
        return {
            "name": self.name,
            "version": self.version,
            "certification": str(self.certification),
            "summary": self.summary,
            "keys": [
                {"name": key.name, "domain": str(key.domain), "values": list(key.values)}
                for key in self.keys
            ],
            "outputs": list(self.outputs),
            "privacy_unit": self.privacy_unit,
            "unit_keys": list(self.unit_keys),
            "contribution_bound": self.contribution_bound,
            "contribution_bound_at_defaults": self.default_bound(),
            "reference": self.reference,
            "parameters": self.parameters_schema(),
        }


Compute = Callable[[StoreTables, Any], ir.Table]

# What the parsed parameters need of the store's layout (`StoreLayout`), checked before the
# job is charged: raises CellcensusError naming what is missing. It must not read events.
Precondition = Callable[[Any, StoreLayout], None]


# A step on the (small) aggregate that is iterative rather than relational. When the
# expression returns counts per cell (`cell_id`, `device_count`), `finish` turns them into the
# release's keys; under differential privacy the enclave noises the counts per cell first and
# runs `finish` on the noisy counts (post-processing; see enclave.compute.private_finish).
Finish = Callable[[pd.DataFrame, StoreTables, Any], pd.DataFrame]


@dataclass(frozen=True)
class Algorithm:
    """A manifest with its computation, a function from store tables and parameters to counts."""

    manifest: Manifest
    compute: Compute
    finish: Finish | None = None
    precondition: Precondition | None = None
    pooled_cells: tuple[str, ...] = ()
    """Cell ids beyond the network's in `compute`'s counts per cell, for `finish` (the
    enclave noises them with the real cells): counts that no cell places."""

    def check(self, values: dict[str, Any], layout: StoreLayout) -> None:
        """Refuse parameters the store's layout cannot serve (no event is read)."""
        if self.precondition is not None:
            self.precondition(self.manifest.parse(values), layout)

    def expression(self, tables: StoreTables, values: dict[str, Any]) -> ir.Table:
        """Build the Ibis expression for validated parameters.

        Only the stages `tables.materialize` computes on their own, and small tables of the
        network (`present_population.by_key`), run while it is built: the expression is
        bound to the tables' data, not only to their names.
        """
        return self.compute(tables, self.manifest.parse(values))

    def exact(self, tables: StoreTables, params: Parameters) -> pd.DataFrame:
        """The expression's result for parsed parameters, collected; its stages released."""
        try:
            result: pd.DataFrame = self.compute(tables, params).to_pandas()
        finally:
            tables.release()
        return result

    def run(self, tables: StoreTables, values: dict[str, Any]) -> pd.DataFrame:
        """Compute on the tables' engine, then apply `finish` to the (small) aggregate.

        `finish` is for steps that are iterative rather than relational, such as the
        Bayesian spatial estimator; it sees only aggregates, so engines still agree.
        """
        params = self.manifest.parse(values)
        raw = self.exact(tables, params)
        return raw if self.finish is None else self.finish(raw, tables, params)

    def public_keys(
        self, values: dict[str, Any], *, areas: Sequence[str], dates: Sequence[dt.date]
    ) -> pd.DataFrame:
        """Every key combination a release may hold: the disclosure layer's public key set.

        Args:
            values: The job's raw parameters (for the slots of the day, when keyed by slot).
            areas: Every area code of the job's allocation level.
            dates: Every local date of the job's period.

        Returns:
            One row per key combination, columns `manifest.key_names`, sorted.
        """
        params = self.manifest.parse(values)
        domains = [_domain(key, params, areas=areas, dates=dates) for key in self.manifest.keys]
        rows = list(itertools.product(*domains))
        return pd.DataFrame(rows, columns=list(self.manifest.key_names))


def _domain(
    key: Key, params: Parameters, *, areas: Sequence[str], dates: Sequence[dt.date]
) -> list[Any]:
    if key.domain is KeyDomain.AREA:
        return sorted(areas)
    if key.domain is KeyDomain.DATE:
        return sorted(dates)
    if key.domain is KeyDomain.SLOT:
        return list(range(1440 // int(params.slot_minutes)))  # type: ignore[attr-defined]
    return list(key.values)


@ibis.udf.scalar.builtin(name="epoch")  # type: ignore[untyped-decorator]
def _duckdb_epoch(timestamp: dtypes.Timestamp(timezone="UTC")) -> dtypes.float64:  # type: ignore[valid-type, empty-body]
    """DuckDB's ``epoch`` of a zoned timestamp: seconds since 1970."""


def whole_seconds(timestamp: ir.TimestampValue) -> ir.IntegerValue:
    """Whole seconds since 1970 (truncated, as Spark's unix_timestamp), on every engine.

    On DuckDB, `epoch` reads the zoned timestamp itself. Ibis's `epoch_seconds` first casts
    it to a plain timestamp, and that time zone conversion per event costs three times the
    rest (measured on 76 M events).
    """
    duckdb = engine_of(timestamp) == "duckdb"
    seconds = _duckdb_epoch(timestamp) if duckdb else timestamp.epoch_seconds()
    return seconds.floor().cast("int64")


def engine_of(expression: ir.Expr) -> str | None:
    """The name of the backend `expression` is bound to, or None.

    An unbound expression (of memtables only) may run on any engine: an algorithm then
    writes the form every engine runs.
    """
    try:
        return str(expression._find_backend(use_default=False).name)
    except IbisError:
        return None


def in_period(table: ir.Table, params: PeriodParameters, column: str = "local_date") -> ir.Table:
    """Rows of `table` whose `column` falls in the parameters' period."""
    if params.start is not None:
        table = table.filter(table[column] >= params.start)
    if params.end is not None:
        table = table.filter(table[column] <= params.end)
    return table


def night_of(events: ir.Table, *, night_start_hour: int) -> ir.Value:
    """The night an event belongs to: the local date of the evening that started it."""
    return ibis.ifelse(
        events.local_hour >= night_start_hour,
        events.local_date,
        events.local_date - ibis.interval(days=1),
    )


def one() -> ir.FloatingValue:
    """The float 1 (a bare ``1.0`` literal is a DECIMAL on Spark, which then rounds products)."""
    return ibis.literal(1, type="int64").cast("float64")


def first_per_group(table: ir.Table, group: Sequence[str], order: Sequence[Any]) -> ir.Table:
    """The first row of each group in a total order (ties must be broken by `order`)."""
    rank = ibis.row_number().over(group_by=list(group), order_by=list(order))
    return table.mutate(_rank=rank).filter(ibis._._rank == 0).drop("_rank")
