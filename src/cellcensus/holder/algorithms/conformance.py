"""`check_algorithm`: the conformance suite every algorithm of the registry must pass.

In the spirit of scikit-learn's ``check_estimator``: one shared set of checks, run by the test
command on every registered algorithm (built-in or third-party), on a small deterministic
world (`conformance_world`):

- the manifest is complete and consistent (keys, bound, examples that parse);
- out-of-range and unknown parameters are refused with a `CellcensusError` naming them;
- the output has exactly the declared columns and key types, unique non-null keys inside
  the public key set, and finite non-negative counts;
- results are deterministic: the same on a second run and on shuffled input rows;
- the contribution bound holds on adversarial data: adding one device with a huge number of
  events (a million by default) over every cell, day and hour changes the release by at most
  the declared bound within each privacy unit, for a domestic and for a roaming adversary;
- the device filter gives the same results from the store's device-day summaries as from
  the events;
- DuckDB and PySpark (local mode) give the same results.

Each check raises `ConformanceError` (an AssertionError) saying what failed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
import typing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from typing import Any

import annotated_types
import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
from ibis.backends import BaseBackend
from pydantic import BaseModel

from cellcensus.errors import CellcensusError
from cellcensus.holder.algorithms.base import (
    ALLOCATION_SCHEMA,
    COUNT,
    EVENTS_SCHEMA,
    FOOTPRINT_TABLES,
    Algorithm,
    Key,
    KeyDomain,
    Parameters,
    Period,
    StoreTables,
    TileFootprint,
)
from cellcensus.holder.algorithms.staging import DuckDBStaging, SparkStaging
from cellcensus.holder.store.device_days import one_network, summary_of

START = dt.date(2011, 3, 7)
DAYS = 14
HOME_MCC = 206
UTC_OFFSET_HOURS = 1  # Brussels in March before the DST change
M2M_TAC = "35000001"
PHONE_TAC = "35123456"
EVENT_TYPES = ("call_out", "call_in", "sms_out", "sms_in", "data")
TOLERANCE = 1e-9


class ConformanceError(AssertionError):
    """An algorithm broke the catalogue's contract."""


@dataclass(frozen=True)
class World:
    """A store's tables as pandas frames: the conformance world or a hand-made one."""

    events: pd.DataFrame
    cells: pd.DataFrame
    allocation: pd.DataFrame
    footprint: dict[str, pd.DataFrame] | None = None
    """The tile footprint's tables by name (``cells``, ``serving``, ``tiles``), if any."""
    summarised: bool = False
    """Whether the device filter reads device-day summaries of the events, as on a store
    whose days all have one (`holder.store.device_days`)."""

    @cached_property
    def arrow(self) -> dict[str, pa.Table]:
        """The tables as Arrow, in the store's schemas (converted once).

        A hand-made allocation without `overlap_km2` gets the weights (cells of 1 km²);
        one without validity dates holds for all time (null dates).
        """
        allocation = self.allocation
        if "overlap_km2" not in allocation:
            allocation = allocation.assign(overlap_km2=allocation["weight"])
        for column in ("valid_from", "valid_to"):
            if column not in allocation:
                allocation = allocation.assign(**{column: None})
        optional = {
            f"footprint_{name}": pa.Table.from_pandas(frame, preserve_index=False)
            for name, frame in (self.footprint or {}).items()
        }
        events = pa.Table.from_pandas(
            self.events, schema=EVENTS_SCHEMA.to_pyarrow(), preserve_index=False
        )
        if self.summarised:
            optional["device_days"] = summary_of(events)
        return optional | {
            "events": events,
            "cells": pa.Table.from_pandas(self.cells, preserve_index=False),
            "allocation": pa.Table.from_pandas(
                allocation, schema=ALLOCATION_SCHEMA.to_pyarrow(), preserve_index=False
            ),
        }

    def tables(self) -> StoreTables:
        """The world as Ibis memtables (run on any backend with ``con.to_pandas``)."""
        return self._memtables

    @cached_property
    def _memtables(self) -> StoreTables:
        # The same memtables every time: a backend registers each one once.
        return StoreTables(
            events=ibis.memtable(self.arrow["events"]),
            cells=ibis.memtable(self.arrow["cells"]),
            allocation=ibis.memtable(self.arrow["allocation"]),
            dates=self.days,
            footprint=self._footprint(lambda name: ibis.memtable(self.arrow[name])),
            device_days=self._device_days(lambda name: ibis.memtable(self.arrow[name])),
            positions=self.positions,
        )

    @property
    def positions(self) -> bool:
        """Whether the summaries' hourly positions are each device's whole day's."""
        return self.summarised and one_network(self.arrow["device_days"])

    def _device_days(self, table: Callable[[str], ir.Table]) -> ir.Table | None:
        return table("device_days") if self.summarised else None

    def _footprint(self, table: Callable[[str], ir.Table]) -> TileFootprint | None:
        if self.footprint is None:
            return None
        return TileFootprint(*(table(f"footprint_{name}") for name in FOOTPRINT_TABLES))

    @cached_property
    def days(self) -> tuple[dt.date, ...]:
        """Every local date the events hold (a store's day partitions)."""
        return tuple(sorted(set(self.events["local_date"])))

    @property
    def dates(self) -> list[dt.date]:
        """Local dates of the world's period."""
        return [START + dt.timedelta(days=day) for day in range(DAYS)]

    @property
    def areas(self) -> list[str]:
        """Area codes of the allocation."""
        return sorted(set(self.allocation["area_code"]))

    def with_events(self, extra: pd.DataFrame) -> World:
        """The same world with more events."""
        events = pd.concat([self.events, extra], ignore_index=True)
        return dataclasses.replace(self, events=events)

    def shuffled(self, seed: int) -> World:
        """The same world with every table's rows in another order."""

        def shuffled(frame: pd.DataFrame) -> pd.DataFrame:
            return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)

        footprint = self.footprint and {
            name: shuffled(frame) for name, frame in self.footprint.items()
        }
        return World(
            events=shuffled(self.events),
            cells=shuffled(self.cells),
            allocation=shuffled(self.allocation),
            footprint=footprint,
        )


def events_frame(rows: Sequence[tuple[int, dt.datetime, str, str, int, str]]) -> pd.DataFrame:
    """Events in the store's schema from (device, local time, cell, type, mcc, tac) rows.

    Local times are Brussels winter time (UTC+1), like the conformance world's.
    """
    frame = pd.DataFrame(
        rows, columns=["device_id", "local_time", "cell_id", "event_type", "mcc", "tac"]
    )
    local = pd.to_datetime(frame.pop("local_time"))
    frame.insert(
        1, "timestamp", (local - pd.Timedelta(hours=UTC_OFFSET_HOURS)).dt.tz_localize("UTC")
    )
    frame.insert(2, "local_date", local.dt.date)
    frame.insert(3, "local_hour", local.dt.hour.astype("int8"))
    frame.insert(7, "mnc", np.where(frame["mcc"] == HOME_MCC, 1, 10).astype("int32"))
    return frame.astype({"device_id": "int64", "mcc": "int32"})[list(EVENTS_SCHEMA.names)]


def _cells() -> pd.DataFrame:
    ids = [f"C{number:02d}" for number in range(12)]
    return pd.DataFrame(
        {
            "cell_id": ids,
            "site_id": [f"S{number // 2:02d}" for number in range(12)],
            "latitude": [50.8 + 0.01 * (number // 2) for number in range(12)],
            "longitude": [4.3 + 0.01 * (number // 2) for number in range(12)],
            "azimuth_deg": [0.0 if number % 2 == 0 else 180.0 for number in range(12)],
        }
    )


def _allocation() -> pd.DataFrame:
    rows = [
        ("C00", "A1", 1.0), ("C01", "A1", 1.0), ("C02", "A1", 0.5), ("C02", "A2", 0.5),
        ("C03", "A2", 1.0), ("C04", "A2", 0.75), ("C04", "A3", 0.25), ("C05", "A3", 1.0),
        ("C06", "A3", 1.0), ("C07", "A3", 0.5), ("C07", "A4", 0.5), ("C08", "A4", 1.0),
        ("C09", "A4", 1.0), ("C10", "A1", 0.25), ("C10", "A4", 0.75), ("C11", "A2", 1.0),
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["cell_id", "area_code", "weight"])


def _at(day: int, hour: int, minute: int) -> dt.datetime:
    return dt.datetime.combine(START + dt.timedelta(days=day), dt.time(hour, minute))


def _resident_rows(rng: np.random.Generator, device: int) -> Iterator[tuple[Any, ...]]:
    cells = [f"C{number:02d}" for number in range(12)]
    home, work, other, moved = rng.choice(cells, size=4, replace=False)
    works = device % 4 != 0
    migrant = device % 10 == 3
    for day in range(DAYS):
        at_home = moved if migrant and day >= DAYS // 2 else home
        weekday = (START + dt.timedelta(days=day)).weekday() < 5
        for hour in rng.choice([20, 21, 22, 23, 0, 1, 5, 6], size=3, replace=False):
            yield device, _at(day, int(hour), int(rng.integers(60))), at_home
        if works and weekday and rng.random() < 0.9:
            for hour in (9, 12, 16):
                yield device, _at(day, hour, int(rng.integers(60))), work
        else:
            yield device, _at(day, 11, int(rng.integers(60))), at_home
        if rng.random() < 0.4:
            yield device, _at(day, 18, 5), other
            yield device, _at(day, 18, 50), other


def _roamer_rows(rng: np.random.Generator, device: int) -> Iterator[tuple[Any, ...]]:
    hotel, sight = rng.choice([f"C{number:02d}" for number in range(12)], size=2, replace=False)
    first = int(rng.integers(DAYS - 6))
    for day in range(first, first + int(rng.integers(2, 6))):
        yield device, _at(day, 22, int(rng.integers(60))), hotel
        yield device, _at(day + 1, 6, int(rng.integers(60))), hotel
        yield device, _at(day, 14, int(rng.integers(60))), sight


def conformance_world(*, seed: int = 0, residents: int = 40, roamers: int = 8) -> World:
    """A small deterministic country: 12 cells on 6 sites, 4 areas, 14 days.

    Residents (1..) sleep at home and mostly work elsewhere on weekdays, some move home
    half-way; roamers (1001..) stay a few nights; three M2M SIMs (2001.., the first with an
    M2M TAC) sit at one cell sending data; three devices (3001..) are seen once.
    """
    rng = np.random.default_rng(seed)
    rows: list[tuple[Any, ...]] = []
    for device in range(1, residents + 1):
        for number, (device_id, when, cell) in enumerate(_resident_rows(rng, device)):
            rows.append((device_id, when, cell, EVENT_TYPES[number % 5], HOME_MCC, PHONE_TAC))
    for device in range(1001, 1001 + roamers):
        mcc = 208 if device % 2 else 234
        for number, (device_id, when, cell) in enumerate(_roamer_rows(rng, device)):
            rows.append((device_id, when, cell, EVENT_TYPES[number % 5], mcc, PHONE_TAC))
    for number, device in enumerate((2001, 2002, 2003)):
        tac = M2M_TAC if number == 0 else PHONE_TAC
        for day in range(DAYS):
            for hour in range(0, 24, 3):
                rows.append((device, _at(day, hour, 7), f"C{number:02d}", "data", HOME_MCC, tac))
    for device in (3001, 3002, 3003):
        rows.append((device, _at(device % 7, 12, 0), "C05", "call_out", HOME_MCC, PHONE_TAC))
    return World(events=events_frame(rows), cells=_cells(), allocation=_allocation())


def adversary_events(*, n_events: int, device_id: int, mcc: int, seed: int = 1) -> pd.DataFrame:
    """One device with `n_events` events spread over every cell, day, hour and event type."""
    rng = np.random.default_rng(seed)
    minutes = rng.integers(0, DAYS * 24 * 60, size=n_events)
    local = pd.Timestamp(START) + pd.to_timedelta(np.sort(minutes), unit="min")
    frame = pd.DataFrame(
        {
            "device_id": np.full(n_events, device_id, dtype="int64"),
            "timestamp": (local - pd.Timedelta(hours=UTC_OFFSET_HOURS)).tz_localize("UTC"),
            "local_date": local.date,
            "local_hour": local.hour.astype("int8"),
            "cell_id": np.array([f"C{number:02d}" for number in range(12)])[
                rng.integers(0, 12, size=n_events)
            ],
            "event_type": np.array(EVENT_TYPES)[np.arange(n_events) % len(EVENT_TYPES)],
            "mcc": np.full(n_events, mcc, dtype="int32"),
            "mnc": np.full(n_events, 1, dtype="int32"),
            "tac": PHONE_TAC,
        }
    )
    return frame[list(EVENTS_SCHEMA.names)]


def parameter_sets(algorithm: Algorithm) -> list[dict[str, Any]]:
    """The defaults (when every parameter has one) and the manifest's examples."""
    sets: list[dict[str, Any]] = []
    try:
        algorithm.manifest.parse({})
        sets.append({})
    except CellcensusError:
        pass
    sets.extend(algorithm.manifest.examples)
    if not sets:
        raise ConformanceError(
            f"{algorithm.manifest.name}: has required parameters but no examples to run"
        )
    return sets


def digest(table: pa.Table) -> str:
    """A fingerprint of `table`'s schema and rows (its Arrow IPC stream, hashed)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()


class Runner:
    """Runs algorithms on worlds on one Ibis backend.

    On DuckDB the world's tables are registered under fixed names and each (algorithm,
    parameters) is compiled to SQL once, then run on every world (base, shuffled, attacked):
    compiling costs more than running on a small world. Other backends run memtables.
    DuckDB aggregates day by day (`StoreTables.per_day`, the dates' parts in one query) unless
    `by_day` is false: then over the whole period at once, as a small store and Spark do
    (`enclave.compute.open_tables`), and compiled about six times faster for a 14-day world.
    """

    def __init__(self, con: BaseBackend, *, by_day: bool = True) -> None:
        self.con = con
        self.fast = con.name == "duckdb"
        self.by_day = by_day and self.fast
        self._sql: dict[str, str] = {}

    def run(self, algorithm: Algorithm, world: World, values: dict[str, Any]) -> pd.DataFrame:
        """The algorithm's exact output on `world`, normalised (see `normalised`)."""
        if not self.fast:
            return self._run_slow(algorithm, world, values)
        self._register(world)
        days = world.days if self.by_day else ()
        shape = [world.footprint is not None, world.summarised, world.positions]
        # The network's tables too: an expression may hold a small table computed from them
        # while it is built (`present_population.by_key`).
        network = [digest(world.arrow[name]) for name in ("cells", "allocation")]
        key = json.dumps(
            [algorithm.manifest.name, values, days, shape, network], sort_keys=True, default=str
        )
        if key not in self._sql:
            expression = algorithm.expression(self._tables(world, per_day=self.by_day), values)
            self.con._run_pre_execute_hooks(expression)  # registers the expression's memtables
            self._sql[key] = str(self.con.compile(expression))
        frame = self.con.con.execute(self._sql[key]).fetch_df()
        return normalised(finished(algorithm, frame, world.tables(), values), algorithm)

    def run_staged(
        self, algorithm: Algorithm, world: World, values: dict[str, Any]
    ) -> pd.DataFrame:
        """As `run`, but staged as on a store (`staging.DuckDBStaging`).

        Each date's part of every per-day step, and every shared stage, is its own query.
        """
        self._register(world)
        tables = self._tables(world, per_day=True, materialize=DuckDBStaging(self.con))
        frame = algorithm.exact(tables, algorithm.manifest.parse(values))
        return normalised(finished(algorithm, frame, world.tables(), values), algorithm)

    def _register(self, world: World) -> None:
        for name, table in world.arrow.items():
            self.con.con.register(f"conformance_{name}", table)

    def _tables(self, world: World, **options: Any) -> StoreTables:
        """The registered world's tables (after `_register`), with StoreTables `options`."""
        events, cells, allocation = map(self._registered, ("events", "cells", "allocation"))
        return StoreTables(
            events,
            cells,
            allocation,
            dates=world.days,
            footprint=world._footprint(self._registered),
            device_days=world._device_days(self._registered),
            positions=world.positions,
            **options,
        )

    def _registered(self, name: str) -> ir.Table:
        return self.con.table(f"conformance_{name}")

    def _run_slow(self, algorithm: Algorithm, world: World, values: dict[str, Any]) -> pd.DataFrame:
        tables = world.tables()
        staging = None
        if self.con.name == "pyspark":
            from cellcensus.holder.engines import spark_session

            staging = SparkStaging(self.con, spark_session())
            tables = dataclasses.replace(tables, materialize=staging)
        try:
            frame = self.con.to_pandas(algorithm.expression(tables, values))
        finally:
            if staging is not None:
                staging.release()
        return normalised(finished(algorithm, frame, world.tables(), values), algorithm)


def finished(
    algorithm: Algorithm, frame: pd.DataFrame, tables: StoreTables, values: dict[str, Any]
) -> pd.DataFrame:
    """`frame` after the algorithm's `finish` step (if it has one), as `Algorithm.run` does."""
    if algorithm.finish is None:
        return frame
    return algorithm.finish(frame, tables, algorithm.manifest.parse(values))


def run(
    algorithm: Algorithm, world: World, values: dict[str, Any], con: BaseBackend | Runner
) -> pd.DataFrame:
    """The algorithm's exact output on `world`, rows sorted by key, dates as `datetime.date`."""
    return as_runner(con).run(algorithm, world, values)


def as_runner(con: BaseBackend | Runner) -> Runner:
    """`con` itself if it is a Runner, else a new Runner on it."""
    return con if isinstance(con, Runner) else Runner(con)


def normalised(frame: pd.DataFrame, algorithm: Algorithm) -> pd.DataFrame:
    """Rows sorted by the keys, date keys as `datetime.date`, counts as float."""
    frame = frame.copy()
    for key in algorithm.manifest.keys:
        if key.name not in frame:
            continue
        if key.domain is KeyDomain.DATE:
            frame[key.name] = pd.to_datetime(frame[key.name]).dt.date
        elif key.domain is KeyDomain.SLOT:
            frame[key.name] = frame[key.name].astype("int64")
        else:
            frame[key.name] = frame[key.name].astype(object)
    if COUNT in frame:
        frame[COUNT] = frame[COUNT].astype("float64")
    keys = [name for name in algorithm.manifest.key_names if name in frame]
    return frame.sort_values(keys).reset_index(drop=True) if keys else frame


def _fail(algorithm: Algorithm, message: str) -> ConformanceError:
    return ConformanceError(f"{algorithm.manifest.name}: {message}")


def check_manifest(algorithm: Algorithm) -> None:
    """Name, version, keys, bound and examples are complete and consistent."""
    manifest = algorithm.manifest
    if not manifest.name.isidentifier() or manifest.name != manifest.name.lower():
        raise _fail(algorithm, "name must be a lowercase identifier")
    parts = manifest.version.split(".")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        raise _fail(algorithm, f"version {manifest.version!r} is not semantic (X.Y.Z)")
    names = manifest.key_names
    if not names or len(set(names)) != len(names) or COUNT in names:
        raise _fail(algorithm, f"keys {names} must be non-empty, unique, without {COUNT}")
    if not set(manifest.unit_keys) <= set(names):
        raise _fail(algorithm, f"unit_keys {manifest.unit_keys} are not all keys")
    for key in manifest.keys:
        if (key.domain is KeyDomain.CATEGORY) != bool(key.values):
            raise _fail(algorithm, f"key {key.name!r}: only category keys list values")
    if not (manifest.contribution_bound > 0 and math.isfinite(manifest.contribution_bound)):
        raise _fail(algorithm, "contribution_bound must be positive and finite")
    if not issubclass(manifest.parameters, Parameters):
        raise _fail(algorithm, "parameters must subclass cellcensus Parameters")
    if not manifest.reference.strip() or not manifest.summary.strip():
        raise _fail(algorithm, "summary and reference must be given")
    for values in parameter_sets(algorithm):
        bound = manifest.bound(manifest.parse(values))
        if not 0 < bound <= manifest.contribution_bound:
            raise _fail(algorithm, f"bound {bound} for {values} exceeds the declared one")


def out_of_range_cases(
    model: type[BaseModel], base: dict[str, Any], prefix: str = ""
) -> Iterator[tuple[dict[str, Any], str]]:
    """(parameters, name of the bad parameter) for every bounded or enumerated field."""
    if not prefix:
        yield {**base, "no_such_parameter": 1}, "no_such_parameter"
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            nested = base.get(name, {})
            for bad, where in out_of_range_cases(annotation, nested, f"{prefix}{name}."):
                yield {**base, name: bad}, where
            continue
        for value in _bad_values(annotation, info.metadata):
            yield {**base, name: value}, f"{prefix}{name}"


def _bad_values(annotation: Any, metadata: list[Any]) -> Iterator[Any]:
    for constraint in metadata:
        if isinstance(constraint, annotated_types.Ge):
            yield typing.cast(Any, constraint.ge) - 1
        elif isinstance(constraint, annotated_types.Gt):
            yield constraint.gt
        elif isinstance(constraint, annotated_types.Le):
            yield typing.cast(Any, constraint.le) + 1
        elif isinstance(constraint, annotated_types.Lt):
            yield constraint.lt
    if typing.get_origin(annotation) is typing.Literal or (
        isinstance(annotation, type) and issubclass(annotation, Enum)
    ):
        yield "no-such-choice"


def check_parameters_refused(algorithm: Algorithm) -> None:
    """Unknown and out-of-range parameters raise a CellcensusError naming the parameter."""
    base = parameter_sets(algorithm)[0]
    cases = list(out_of_range_cases(algorithm.manifest.parameters, base))
    for values, where in cases:
        try:
            algorithm.manifest.parse(values)
        except CellcensusError as error:
            if f"'{where}'" not in str(error):
                raise _fail(algorithm, f"refusal of {where} does not name it: {error}") from None
            continue
        raise _fail(algorithm, f"accepted an out-of-range {where}: {values}")


def check_schema(algorithm: Algorithm, world: World, con: BaseBackend | Runner) -> None:
    """Declared columns and key types; unique, non-null keys in the key set; counts >= 0."""
    runner = as_runner(con)
    for values in parameter_sets(algorithm):
        if algorithm.finish is None:  # else the expression is not the release yet
            _check_types(algorithm, algorithm.expression(world.tables(), values).schema())
        frame = runner.run(algorithm, world, values)
        if tuple(frame.columns) != algorithm.manifest.outputs:
            raise _fail(algorithm, f"columns {tuple(frame.columns)} for {values}")
        _check_rows(algorithm, frame, values, world)


def _check_types(algorithm: Algorithm, schema: ibis.Schema) -> None:
    for key in algorithm.manifest.keys:
        kind = schema.get(key.name, None)
        expected = {
            KeyDomain.DATE: "date",
            KeyDomain.SLOT: "integer",
        }.get(key.domain, "string")
        if kind is None or not getattr(kind, f"is_{expected}")():
            raise _fail(algorithm, f"key {key.name!r} has type {kind}, expected {expected}")
    if COUNT not in schema or not schema[COUNT].is_numeric():
        raise _fail(algorithm, f"{COUNT} must be numeric")


def _check_rows(
    algorithm: Algorithm, frame: pd.DataFrame, values: dict[str, Any], world: World
) -> None:
    keys = list(algorithm.manifest.key_names)
    if frame[keys].isna().any().any():
        raise _fail(algorithm, f"null keys for {values}")
    if frame.duplicated(keys).any():
        raise _fail(algorithm, f"duplicate key rows for {values}")
    counts = frame[COUNT].to_numpy(dtype="float64")
    if not (np.isfinite(counts).all() and (counts >= -TOLERANCE).all()):
        raise _fail(algorithm, f"counts must be finite and non-negative for {values}")
    public = algorithm.public_keys(values, areas=world.areas, dates=world.dates)
    outside = frame[keys].merge(public, how="left", on=keys, indicator=True)
    if (outside["_merge"] == "left_only").any():
        example = outside[outside["_merge"] == "left_only"].iloc[0].to_dict()
        raise _fail(algorithm, f"key outside the public key set for {values}: {example}")


def _same(algorithm: Algorithm, left: pd.DataFrame, right: pd.DataFrame, what: str) -> None:
    try:
        pd.testing.assert_frame_equal(
            left, right, check_dtype=False, check_exact=False, rtol=TOLERANCE, atol=TOLERANCE
        )
    except AssertionError as error:
        raise _fail(algorithm, f"{what}: {error}") from None


def check_deterministic(algorithm: Algorithm, world: World, con: BaseBackend | Runner) -> None:
    """The same result on a second run and on input rows in another order."""
    runner = as_runner(con)
    shuffled_world = world.shuffled(seed=7)
    for values in parameter_sets(algorithm):
        first = runner.run(algorithm, world, values)
        _same(algorithm, first, runner.run(algorithm, world, values), f"second run of {values}")
        shuffled = runner.run(algorithm, shuffled_world, values)
        _same(algorithm, first, shuffled, f"shuffled input for {values}")


_ATTACKED: dict[tuple[int, int, int], tuple[World, World]] = {}


def attacked_world(world: World, *, n_events: int, mcc: int) -> World:
    """`world` plus one adversarial device (cached: building a million events takes time)."""
    key = (id(world), n_events, mcc)
    if key not in _ATTACKED:
        adversary = adversary_events(n_events=n_events, device_id=9_999_999, mcc=mcc)
        _ATTACKED[key] = (world, world.with_events(adversary))
    return _ATTACKED[key][1]


def check_contribution_bound(
    algorithm: Algorithm,
    world: World,
    con: BaseBackend | Runner,
    *,
    n_events: int = 1_000_000,
    n_events_other_sets: int = 20_000,
) -> None:
    """One adversarial device moves the release by at most the bound per privacy unit.

    The adversary (a domestic one, then an inbound roamer) has `n_events` events for the
    first parameter set and `n_events_other_sets` for the others (same shape, cheaper).
    """
    manifest = algorithm.manifest
    runner = as_runner(con)
    unfinished = dataclasses.replace(algorithm, finish=None)
    for number, values in enumerate(parameter_sets(algorithm)):
        parsed = manifest.parse(values)
        base = runner.run(unfinished, world, values)
        measured = noised_stage(algorithm, base)
        size = n_events if number == 0 else min(n_events, n_events_other_sets)
        for mcc in (HOME_MCC, 208):
            attacked = attacked_world(world, n_events=size, mcc=mcc)
            bound = manifest.bound(parsed, job_period(attacked, parsed))
            change = _change(measured, base, runner.run(unfinished, attacked, values))
            if change > bound + 1e-6:
                raise _fail(
                    algorithm,
                    f"one device (mcc {mcc}, {size} events) changed the release by "
                    f"{change:g} > bound {bound:g} for {values}",
                )


def job_period(world: World, parsed: Parameters) -> Period:
    """The period a job on `world` reads, as the enclave sees it (`enclave.compute.job_period`).

    Its ``start`` and ``end``, else the first and last dates of the world's events.
    """
    start, end = getattr(parsed, "start", None), getattr(parsed, "end", None)
    return (start or world.days[0], end or world.days[-1])


def noised_stage(algorithm: Algorithm, output: pd.DataFrame) -> Algorithm:
    """What the noise is added to: the output, or, before a `finish` step, counts per cell.

    When an algorithm's expression returns counts per cell (``cell_id``, in place of the
    area key), the enclave noises them and runs `finish` on the noisy counts
    (`enclave.compute.private_finish`), so that is where the bound must hold, per privacy
    unit as before. `output` is the expression's output (before `finish`).
    """
    if algorithm.finish is None or "cell_id" not in output.columns:
        return algorithm
    others = tuple(key for key in algorithm.manifest.keys if key.domain is not KeyDomain.AREA)
    manifest = dataclasses.replace(
        algorithm.manifest, keys=(*others, Key("cell_id", KeyDomain.CATEGORY))
    )
    return dataclasses.replace(algorithm, manifest=manifest, finish=None)


def _change(algorithm: Algorithm, base: pd.DataFrame, attacked: pd.DataFrame) -> float:
    keys = list(algorithm.manifest.key_names)
    both = base.merge(attacked, how="outer", on=keys, suffixes=("_base", "_attacked"))
    both = both.fillna({f"{COUNT}_base": 0.0, f"{COUNT}_attacked": 0.0})
    both["change"] = (both[f"{COUNT}_attacked"] - both[f"{COUNT}_base"]).abs()
    units = list(algorithm.manifest.unit_keys)
    if not units:
        return float(both["change"].sum())
    return float(both.groupby(units)["change"].sum().max()) if len(both) else 0.0


def check_engines_agree(
    algorithm: Algorithm,
    world: World,
    engines: dict[str, BaseBackend | Runner],
    sets: Sequence[dict[str, Any]] | None = None,
) -> None:
    """Every engine gives the same result as the first one.

    For each of `sets`, by default the algorithm's `parameter_sets`.
    """
    (first_name, first), *others = ((name, as_runner(con)) for name, con in engines.items())
    for values in parameter_sets(algorithm) if sets is None else sets:
        expected = first.run(algorithm, world, values)
        for name, runner in others:
            got = runner.run(algorithm, world, values)
            _same(algorithm, expected, got, f"{name} differs from {first_name} for {values}")


def check_day_by_day(algorithm: Algorithm, world: World, con: BaseBackend) -> None:
    """The same result day by day as over the whole period at once.

    Day by day is checked twice: as one query of per-date branches, and as a store runs it,
    each date's part and each shared stage its own query (`Runner.run_staged`).
    """
    by_day, at_once = Runner(con), Runner(con, by_day=False)
    for values in parameter_sets(algorithm):
        whole = at_once.run(algorithm, world, values)
        for how, result in (
            ("day by day", by_day.run(algorithm, world, values)),
            ("staged day by day", by_day.run_staged(algorithm, world, values)),
        ):
            _same(algorithm, whole, result, f"{how} differs from the whole period for {values}")


def check_device_days(algorithm: Algorithm, world: World, con: BaseBackend | Runner) -> None:
    """The same result with the filter reading device-day summaries as from the events.

    On DuckDB also staged date by date (`Runner.run_staged`), as a store runs it: there the
    filter reads each date's summaries on their own.
    """
    runner = as_runner(con)
    summarised = dataclasses.replace(world, summarised=True)
    for values in parameter_sets(algorithm):
        events = runner.run(algorithm, world, values)
        what = f"device-day summaries change the result for {values}"
        _same(algorithm, events, runner.run(algorithm, summarised, values), what)
        if runner.fast:
            staged = runner.run_staged(algorithm, summarised, values)
            _same(algorithm, events, staged, f"{what}, staged day by day")


def check_algorithm(
    algorithm: Algorithm,
    *,
    engines: dict[str, BaseBackend] | None = None,
    adversary_events: int = 1_000_000,
    world: World | None = None,
) -> None:
    """Run every conformance check on `algorithm`.

    Args:
        algorithm: The algorithm to check.
        engines: Ibis backends by name; the first runs the single-engine checks, and all of
            them must agree (default: a fresh DuckDB only).
        adversary_events: Events of the adversarial device of the bound check.
        world: Tables to run on (default: `conformance_world()`).

    Raises:
        ConformanceError: the first check that fails, saying what and for which parameters.
    """
    world = world or conformance_world()
    # Over the whole period: `check_day_by_day` shows the per-day plans give the same.
    runners = {
        name: Runner(con, by_day=False)
        for name, con in (engines or {"duckdb": ibis.duckdb.connect()}).items()
    }
    runner = next(iter(runners.values()))
    check_manifest(algorithm)
    check_parameters_refused(algorithm)
    check_schema(algorithm, world, runner)
    check_deterministic(algorithm, world, runner)
    check_contribution_bound(algorithm, world, runner, n_events=adversary_events)
    check_device_days(algorithm, world, runner)
    if runner.fast:
        check_day_by_day(algorithm, world, runner.con)
    if len(runners) > 1:
        check_engines_agree(algorithm, world, dict(runners))
