"""The pure computation of a release: store tables -> algorithm -> disclosure protection.

Nothing here records anything: the in-process runner and the service's worker subprocesses
both call `compute_release`, and the caller decides what is recorded and released.

An algorithm's output has one or more key columns (its manifest's `keys`); the public key set
is the product of their domains (every area of the level, every date of the period, every
slot of a day, every declared category), so that a row's presence leaks nothing. Several keys
are protected as one composite key and split back afterwards.

The noise is calibrated to the whole release: an algorithm whose contribution bound holds
per privacy unit (its manifest's `unit_keys`, e.g. per date and slot) releases as many units
as the product of those keys' domains, and one device may add up to the bound in each of
them (`privacy_units`). A key rotation gives each device a new pseudonym, so over days of k
key periods one device is k pseudonyms, each adding up to the bound to each unit and to the
same cells: the bound per unit is multiplied by k (`pseudonyms`).
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import datetime as dt
import hashlib
import itertools
import math
import secrets
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import ibis.expr.types as ir
import numpy as np
import pandas as pd
from ibis.backends import BaseBackend

from cellcensus.errors import CellcensusError, did_you_mean
from cellcensus.holder.algorithms import Algorithm, Key, KeyDomain, Parameters, StoreTables
from cellcensus.holder.algorithms.base import (
    AREA_KEY,
    COUNT,
    FOOTPRINT_LEVEL,
    FOOTPRINT_TABLES,
    MissingFootprintError,
    StoreLayout,
    TileFootprint,
)
from cellcensus.holder.algorithms.staging import DuckDBStaging, SparkStaging, stage_name
from cellcensus.holder.disclosure import Charge, DisclosurePolicy, measure, protect
from cellcensus.holder.enclave.manifests import RecordedManifest
from cellcensus.holder.engines import Engine, connect, spark_session
from cellcensus.holder.geo.allocation import GRID_LEVEL, ROLLED_UP_LEVELS
from cellcensus.holder.geo.tile_footprint import footprint_path, has_footprint
from cellcensus.holder.store import Store
from cellcensus.holder.store.device_days import fresh as fresh_device_days
from cellcensus.holder.store.device_days import positions_of_one_network
from cellcensus.holder.store.key_record import read_key_record
from cellcensus.holder.store.layout import LEVEL_PATTERN
from cellcensus.holder.store.pseudonym import create_key, remove_killed_asides
from cellcensus.notation import date_runs
from cellcensus.release import CI95_PER_SD, Provenance, Release

PUBLISHED_FACTS = (
    "market_share",
    "sampling_fraction",
    "roaming_share",
    "period",
    "timezone",
    "subscribers_by_region",
    "synthetic",
)
"""Holder facts released beside every table; the time zone is that of its local dates and hours."""
COMPOSITE = "__cell__"
BOOTSTRAP_DRAWS = 20
"""Draws of the parametric bootstrap of a post-processed release's noise error."""
SEPARATOR = "\x1f"

PER_DAY_FROM = 40_000_000
"""Stored events from which DuckDB runs the per-day steps one date at a time.

Each date is then a query of its own, so memory holds a day (`device_filter.Scope.daily`),
but every query has a fixed cost. Measured on 2 cores (30 days; whole period / per date):
usual_residence 0.36 / 0.91 s at 2 M events, 3.4 / 3.6 s at 30 M, 32 / 28 s at 131 M;
present_population 1.2 / 3.4 s, 12.3 / 13.5 s, 107 / 43 s.
"""

Progress = Callable[[str], None]


def open_tables(
    store: Store,
    *,
    engine: Engine = "duckdb",
    level: str = "municipality",
    memory_limit: str = "4GB",
    per_day_from: int = PER_DAY_FROM,
) -> StoreTables:
    """Open the store's tables through Ibis on `engine`, staging stages on it (`staging`).

    On DuckDB, a store of at least `per_day_from` events runs per-day steps one date at a
    time (`StoreTables.per_day`); a smaller one runs them over the period at once, which is
    faster where it fits in memory. The device filter reads the store's device-day summaries
    where every stored day has a fresh one (`holder.store.device_days`). `Algorithm.run`
    and `Algorithm.exact` free the staged tables once the result is collected.
    """
    check_level(store, level)
    con = connect(engine, memory_limit=memory_limit) if engine == "duckdb" else connect(engine)
    staging: DuckDBStaging | SparkStaging = (
        DuckDBStaging(con) if engine == "duckdb" else SparkStaging(con, spark_session())
    )
    events = _read(con, _partitioned(store.events_dir, engine), engine)
    cells = _read(con, store.cells_path, engine)
    allocation = _read(con, store.allocation_path(level), engine)
    per_day = engine == "duckdb" and store.event_rows() >= per_day_from
    device_days, positions = None, False
    if fresh_device_days(store):
        device_days = _read(con, _partitioned(store.device_days_dir, engine), engine)
        positions = positions_of_one_network(store)
    footprint = None
    if level == FOOTPRINT_LEVEL and has_footprint(store):
        footprint = TileFootprint(
            *(_read(con, footprint_path(store, name), engine) for name in FOOTPRINT_TABLES)
        )
    return StoreTables(
        events=events,
        cells=cells,
        allocation=allocation,
        materialize=staging,
        per_day=per_day,
        dates=tuple(store.days()),
        footprint=footprint,
        device_days=device_days,
        positions=positions,
        level=level,
    )


def _partitioned(folder: Path, engine: Engine) -> Path:
    """What `engine` reads for a folder of ``date=`` partitions."""
    # DuckDB reads the day files by glob; Spark discovers the date= partitions itself.
    return folder if engine == "spark" else folder / "**" / "*.parquet"


def _read(con: BaseBackend, path: Path, engine: Engine) -> ir.Table:
    """The Parquet file or folder `path` of the store as a table of `con`.

    Spark reads a path without a scheme from the cluster's default file system (HDFS on
    YARN), so it is given the ``file://`` URI of the store's local folder; Ibis's own
    `read_parquet` would strip the scheme again.
    """
    if engine == "duckdb":
        return con.read_parquet(str(path))
    name = stage_name()
    spark_session().read.parquet(path.absolute().as_uri()).createOrReplaceTempView(name)
    return con.table(name)


Reader = Literal["holder", "analyst"]
"""Who reads a refusal: the holder, who runs the store's commands, or an analyst of the
service, who asks the holder for what the store lacks."""


def check_level(store: Store, level: str, *, reader: Reader = "holder") -> None:
    """Refuse an area level that is malformed or has no allocation in the store."""
    if not LEVEL_PATTERN.match(level):
        raise CellcensusError(
            f"area level {level[:40]!r} is not a level name (lowercase letters, digits, _)"
        )
    if not store.allocation_path(level).exists():
        known = ", ".join(store.area_levels()) or "none"
        raise CellcensusError(
            f"no {level} allocation in store {store.root}"
            f"{did_you_mean(level, store.area_levels())}; known levels: {known} "
            f"({_allocation_hint(store, level, reader)})"
        )
    if store.allocation_made_from_other_cells(level):
        again = (
            f"run `{allocate_command(store, level)}` again"
            if reader == "holder"
            else "ask the data holder to allocate it again"
        )
        raise CellcensusError(
            f"the {level} allocation of store {store.root} was made from another cells table "
            f"than the store's (a later ingest changed it); {again}"
        )


def check_job(
    store: Store,
    algorithm: Algorithm | None,
    *,
    parameters: dict[str, Any],
    level: str,
    reader: Reader = "holder",
    days: Sequence[dt.date] | None = None,
) -> None:
    """Refuse a job the store cannot serve, from its layout alone, before it is charged.

    The level must be allocated, the period must hold some of the store's days, and the
    algorithm's precondition must hold (e.g. the tile footprint its estimator reads, enough
    nights in its period for its `min_nights`). None of this reads an event, so a refusal
    here reveals nothing and costs no budget. `algorithm` is None for submitted code, which
    never runs in the service process. A refusal tells `reader` what to do. `days` are the
    store's days if the caller listed them already (`Store.days`); else they are listed once
    here for every check.
    """
    days = store.days() if days is None else list(days)
    check_level(store, level, reader=reader)
    check_no_lost_days(store, reader=reader, days=days)
    check_period(store, parameters, reader=reader, days=days)
    if algorithm is not None:
        layout = StoreLayout(level=level, footprint=has_footprint(store), days=tuple(days))
        try:
            algorithm.check(parameters, layout)
        except MissingFootprintError as error:
            action = (
                f"run `cellcensus store allocate --store {store.root} --tile-footprint`"
                if reader == "holder"
                else "ask the data holder to make it"
            )
            raise CellcensusError(error.told(action)) from None


def check_no_lost_days(
    store: Store, *, reader: Reader, days: Sequence[dt.date] | None = None
) -> None:
    """Refuse a store that lost day files (`Store.lost_days`): jobs would count without them.

    The holder is told how to restore them; an analyst, who cannot, to ask the holder.
    `days` are the stored days if listed already.
    """
    if reader == "holder":
        store.check_no_lost_days(days)
        return
    lost = store.lost_days(days)
    if lost:
        named = ", ".join(day.isoformat() for day in lost[:3])
        more = f" and {len(lost) - 3} more" if len(lost) > 3 else ""
        raise CellcensusError(
            f"the store lacks the events of {len(lost)} day(s) ({named}{more}) that it holds "
            "device-day summaries of (day files removed): jobs are refused until they are "
            "restored or purged; ask the data holder"
        )


def check_period(
    store: Store,
    parameters: dict[str, Any],
    *,
    reader: Reader = "holder",
    days: Sequence[dt.date] | None = None,
) -> None:
    """Refuse a period reaching beyond the days the store holds.

    Its dates outside them would be released as counts of nothing but noise, and its published
    period would claim days the job never read. The held days are public (deliveries, not
    persons); a day missing between them is left out of the date keys (`key_domain`). A
    store that holds no day (none ingested, or every one purged) is refused as such: no
    period can be chosen in it. `days` are the stored days if listed already.
    """
    days = store.days() if days is None else list(days)
    if not days:
        action = (
            f"ingest a delivery first (`cellcensus ingest --store {store.root} --dataset ...`)"
            if reader == "holder"
            else "ask the data holder to ingest a delivery"
        )
        raise CellcensusError(f"store {store.root} holds no day of events; {action}")
    start, end = job_period(store, parameters, days=days)
    within = [day for day in days if start <= day <= end]
    if within and days[0] <= start and end <= days[-1]:
        return
    told = "reaches beyond the days" if within else "holds none of the days"
    raise CellcensusError(
        f"the period {start} to {end} {told} in store {store.root} ({date_runs(days)}): "
        "choose start and end among them"
    )


def _allocation_hint(store: Store, level: str, reader: Reader) -> str:
    """How `reader` gets an allocation at `level`, naming the grid's level to one who means it."""
    if reader == "analyst":
        hint = f"ask the data holder to allocate the {level} level"
        grid = f"the INSPIRE 1 km grid's level is {GRID_LEVEL}"
    else:
        hint = f"run `{allocate_command(store, level)}` first"
        grid = (
            f"the INSPIRE 1 km grid's level is {GRID_LEVEL}, allocated by "
            f"`{allocate_command(store, GRID_LEVEL)}`"
        )
    if "grid" in level and level != GRID_LEVEL:
        return f"{grid}; for areas of your own, {hint}"
    return hint


def allocate_command(store: Store, level: str) -> str:
    """The command that allocates the store's cells to `level`."""
    # The default level: what an ingest allocates, made again without the delivery.
    if level == "municipality":
        return f"cellcensus store allocate --store {store.root}"
    if level == GRID_LEVEL:
        return f"cellcensus store allocate --store {store.root} --grid"
    if level in ROLLED_UP_LEVELS:
        return f"cellcensus store allocate --store {store.root} --level {level}"
    return f"cellcensus store allocate --store {store.root} --level {level} --areas AREAS.geojson"


def published_facts(store: Store, period: tuple[dt.date, dt.date]) -> dict[str, Any]:
    """Holder facts released beside every table: market share, sampling fraction, period, time zone.

    The period is that of the job (`job_period`), not of the store's last delivery; the days
    in it the store does not hold are listed as ``days_missing``.
    """
    metadata = store.metadata()
    facts = {name: metadata[name] for name in PUBLISHED_FACTS if name in metadata}
    facts["period"] = {"start": period[0].isoformat(), "end": period[1].isoformat()}
    held = set(store.days())
    if missing := [day.isoformat() for day in period_days(period) if day not in held]:
        facts["days_missing"] = missing  # between deliveries: nothing was read on them
    return facts


ROUNDING_KEY_BYTES = 32
"""The least a rounding secret holds: a shorter one puts each cell's grid within guessing."""


def rounding_secret(store: Path) -> bytes:
    """The holder's secret keying the consistent-rounding grid (``STORE/enclave/rounding.key``).

    Created with mode 0600 on first use, whole or not at all (`create_key`); refused if
    others can read it or if it is too short to be secret (an empty key, of a creation cut
    short by an older version, would round every cell on a grid anyone can compute).
    """
    path = Path(store) / "enclave" / "rounding.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_killed_asides(path)  # a secret a killed process left aside is no key's
        create_key(key_file=path, secret=secrets.token_hex(ROUNDING_KEY_BYTES).encode())
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise CellcensusError(f"rounding key {path} is readable by others; run: chmod 600 {path}")
    secret = path.read_bytes().strip()
    if len(secret) < ROUNDING_KEY_BYTES:
        raise CellcensusError(
            f"rounding key {path} holds {len(secret)} bytes, too few to be secret (at least "
            f"{ROUNDING_KEY_BYTES}); remove it and the next release makes a new one"
        )
    return secret


def period_days(period: tuple[dt.date, dt.date]) -> list[dt.date]:
    """Every date from the period's first to its last."""
    return [period[0] + dt.timedelta(days=k) for k in range((period[1] - period[0]).days + 1)]


def job_period(
    store: Store, parameters: dict[str, Any], *, days: Sequence[dt.date] | None = None
) -> tuple[dt.date, dt.date]:
    """The days a job reads: its ``start``/``end`` parameters, else the store's first or last day.

    Not the last delivery's period (``metadata.json``, read only for a store without days):
    after weekly deliveries a job without dates reads every stored day, and its scope, key
    domain and published period must say so. `days` are the stored days if listed already.
    """
    days = store.days() if days is None else days
    if days:
        first, last = days[0], days[-1]
    else:
        period = store.metadata()["period"]
        first, last = period["start"], period["end"]
    start = parameters.get("start") or first
    end = parameters.get("end") or last
    return dt.date.fromisoformat(str(start)[:10]), dt.date.fromisoformat(str(end)[:10])


def key_domain(
    key: Key, *, tables: StoreTables, parsed: object, period: tuple[dt.date, dt.date]
) -> list[Any]:
    """The public values of one key column (`parsed`: the parameters, as attributes)."""
    if key.domain is KeyDomain.AREA:
        return sorted(tables.allocation.select("area_code").distinct().to_pandas()["area_code"])
    if key.domain is KeyDomain.DATE:
        # The stored days in the period: a day missing between them is no date of the release.
        if tables.dates:
            return [day for day in tables.dates if period[0] <= day <= period[1]]
        return period_days(period)
    if key.domain is KeyDomain.SLOT:
        minutes = getattr(parsed, "slot_minutes", None)
        if not isinstance(minutes, int):
            raise CellcensusError(f"key {key.name} counts slots but there is no slot_minutes")
        return list(range(1440 // minutes))
    return list(key.values)


def privacy_units(unit_keys: Sequence[str], domains: dict[str, list[Any]]) -> int:
    """How many privacy units a release spans: the product of its unit keys' domain sizes.

    A manifest's contribution bound holds per value of its `unit_keys` (e.g. 1 per local
    date and slot for present population); a release over D dates of S slots lets one device
    contribute in all D x S of them. 1 when the bound is for the whole release.
    """
    missing = [name for name in unit_keys if name not in domains]
    if missing:
        raise CellcensusError(f"unit keys {missing} are not keys of the release ({list(domains)})")
    return math.prod(max(len(domains[name]), 1) for name in unit_keys)


def pseudonyms(store: Store, period: tuple[dt.date, dt.date]) -> int:
    """The most pseudonyms one device has in a release over `period`: its key periods.

    A key rotation gives every device a new pseudonym from its first day on, so over days of
    k key periods one device counts as k devices, each of which may add the bound to each
    unit, and to the same cells (the same home, the same area at the same hour): the bound
    per unit is k times the manifest's. This holds for units of dates too: a device's
    position carried across midnight (`present_population`) puts both of its pseudonyms in
    the slots around the rotation. Multiplying the units instead would be right for L1 but
    give an L2 sensitivity of sqrt(k) where it is k.
    """
    return key_periods_spanned(store, period)


def key_periods_spanned(store: Store, period: tuple[dt.date, dt.date]) -> int:
    """How many of the store's key periods (`keys.json`) hold its days within `period`."""
    starts = sorted(key.valid_from for key in read_key_record(store) if key.valid_from)
    days = [day for day in store.days() if period[0] <= day <= period[1]]
    return max(1, len({bisect.bisect_right(starts, day) for day in days}))


def protect_release(
    raw: pd.DataFrame,
    *,
    domains: dict[str, list[Any]],
    policy: DisclosurePolicy,
    contribution_bound: float,
    charge: Charge | None,
    rounding_key: bytes | None,
    measured_ci95: list[float] | None = None,
    units: int = 1,
) -> pd.DataFrame:
    """Protect `raw` over the product of the key domains; one row per public key.

    `measured_ci95`: `raw` is already private (see `private_finish`), one ci95 per key.
    `units`: privacy units the release spans (`privacy_units`); the bound holds in each.
    """
    names = list(domains)
    if len(names) == 1:
        return protect(
            raw,
            keys=[str(v) for v in domains[names[0]]],
            policy=policy,
            key=names[0],
            contribution_bound=contribution_bound,
            units=units,
            charge=charge,
            rounding_key=rounding_key,
            measured_ci95=measured_ci95,
        )
    missing = [name for name in names if name not in raw.columns]
    if missing:
        raise CellcensusError(f"algorithm output lacks key column(s) {missing}")
    combined = raw.assign(**{COMPOSITE: _joined(raw[name] for name in names)})
    table = protect(
        combined[[COMPOSITE, "device_count"]],
        keys=_composite(list(domains.values())),
        policy=policy,
        key=COMPOSITE,
        contribution_bound=contribution_bound,
        units=units,
        charge=charge,
        rounding_key=rounding_key,
        measured_ci95=measured_ci95,
    )
    return _split(table, names, domains)


def private_finish(
    algorithm: Algorithm,
    tables: StoreTables,
    parsed: Parameters,
    *,
    policy: DisclosurePolicy,
    charge: Charge | None,
    seed: str,
    domains: dict[str, list[Any]],
    units: int,
    period: tuple[dt.date, dt.date] | None = None,
    per_device: int = 1,
) -> tuple[pd.DataFrame, list[float] | None]:
    """Noise on the algorithm's counts per cell, then its `finish` step on the noisy counts.

    `finish` (e.g. the Bayesian spatial estimator) is not a sum of per-device contributions,
    so the noise goes where the contribution bound holds: the counts per cell (and per value
    of the release's other keys, e.g. date and slot), over every cell of the allocation.
    What `finish` makes of them is post-processing. The noisy counts are not clipped at 0,
    which would add about half the noise's scale to every cell holding little (summed over
    thousands of cells, far more than the counts): a step that cannot take a negative count
    clips it itself (`spatial._observed`), and the finished counts are clipped per key. Its
    error is found by a parametric bootstrap: `finish` again on the noisy counts with fresh
    noise of the same scale (normal approximation), which reads nothing but the noisy counts.

    Returns:
        The finished counts, and the ci95 of each public key (the composite of the key
        columns, sorted as `protect_release` sorts them); or, when the expression does not
        return counts per cell, its output and None (the usual protection applies).
    """
    assert algorithm.finish is not None
    exact = algorithm.exact(tables, parsed)
    if "cell_id" not in exact.columns:  # this parameter set needs no finishing
        return algorithm.finish(exact, tables, parsed), None
    cells = tables.allocation.select("cell_id").distinct().to_pandas()["cell_id"].tolist()
    cells = [*cells, *algorithm.pooled_cells]
    others = {name: values for name, values in domains.items() if name != AREA_KEY.name}
    measured = [*others, "cell_id"]
    noisy, sd = measure(
        exact.assign(**{COMPOSITE: _joined(exact[name] for name in measured)}),
        keys=_composite([*others.values(), cells]),
        policy=policy,
        key=COMPOSITE,
        contribution_bound=algorithm.manifest.bound(parsed, period) * per_device,
        charge=charge,
        units=units,
    )
    noisy = _split(noisy, measured, domains)
    finished = algorithm.finish(noisy, tables, parsed)
    # Released counts are non-negative, as `protect` requires: clipped once, per public key.
    finished = finished.assign(device_count=finished["device_count"].clip(lower=0.0))
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8]))
    draws = []
    for _ in range(BOOTSTRAP_DRAWS):
        again = noisy["device_count"] + rng.normal(0.0, sd)
        redone = algorithm.finish(noisy.assign(device_count=again), tables, parsed)
        draws.append(redone.set_index(_joined(redone[name] for name in domains))["device_count"])
    spread = pd.concat(draws, axis=1).std(axis=1)
    ci95 = CI95_PER_SD["gaussian"] * spread.reindex(
        sorted(_composite(list(domains.values())))
    ).fillna(0.0)
    return finished, [float(value) for value in ci95]


def _composite(domains: list[list[Any]]) -> list[str]:
    """Every combination of the domains' values, as composite keys."""
    return [SEPARATOR.join(str(v) for v in values) for values in itertools.product(*domains)]


def _split(table: pd.DataFrame, names: list[str], domains: dict[str, list[Any]]) -> pd.DataFrame:
    """The composite key of `table` split back into its columns (slots back to integers)."""
    if len(names) == 1:
        return table.rename(columns={COMPOSITE: names[0]})
    parts = table[COMPOSITE].str.split(SEPARATOR, expand=True)
    parts.columns = names
    for name, values in domains.items():
        if name in parts and values and all(isinstance(value, int) for value in values):
            parts[name] = parts[name].astype("int64")
    return pd.concat([parts, table.drop(columns=COMPOSITE)], axis=1)


def _joined(columns: Any) -> pd.Series:
    strings: list[pd.Series] = [column.astype(str) for column in columns]
    joined: pd.Series = strings[0]
    for column in strings[1:]:
        joined = joined + SEPARATOR + column
    return joined


def compute_release(
    *,
    store: Path | str,
    algorithm: Algorithm,
    parameters: dict[str, Any],
    level: str,
    policy: DisclosurePolicy,
    engine: Engine,
    job_id: str,
    charge: Charge | None = None,
    progress: Progress | None = None,
    memory_limit: str = "4GB",
    reader: Reader = "holder",
) -> Release:
    """Run `algorithm` on the store and protect its output; record nothing.

    Args:
        store: The holder's store folder.
        algorithm: What to run (already checked for certification by the caller).
        parameters: Raw parameters (validated by the manifest here).
        level: Area level of the allocation.
        policy: Disclosure policy to apply.
        engine: ``duckdb`` or ``spark``.
        job_id: Recorded in the provenance.
        charge: The ledger's receipt; required when the policy adds noise.
        progress: Called with the name of each stage.
        memory_limit: DuckDB memory limit (spills to disk beyond it).
        reader: Who reads a refusal (`check_job`).

    Raises:
        CellcensusError: bad parameters, unknown area level, or output outside the key set.
        DisclosureError: a noisy policy without a covering charge.
    """
    say = progress or (lambda _stage: None)
    parsed = algorithm.manifest.parse(parameters)
    say("opening store")
    opened = Store(Path(store))
    # The store may have changed since the job was submitted.
    check_job(opened, algorithm, parameters=parameters, level=level, reader=reader)
    with reading(opened):
        tables = open_tables(opened, engine=engine, level=level, memory_limit=memory_limit)
        say("computing")
        period = job_period(opened, parsed.model_dump(mode="json"))
        domains = {
            key.name: key_domain(key, tables=tables, parsed=parsed, period=period)
            for key in algorithm.manifest.keys
        }
        ci95 = None
        if algorithm.finish is not None and policy.dp is not None:
            raw, ci95 = private_finish(
                algorithm,
                tables,
                parsed,
                policy=policy,
                charge=charge,
                seed=job_id,
                domains=domains,
                units=privacy_units(algorithm.manifest.unit_keys, domains),
                period=period,
                per_device=pseudonyms(opened, period),
            )
        else:
            raw = algorithm.run(tables, parameters)
    say("protecting")
    return _protected(
        raw,
        store=opened,
        domains=domains,
        unit_keys=algorithm.manifest.unit_keys,
        bound=algorithm.manifest.bound(parsed, period),
        measured_ci95=ci95,
        provenance=Provenance(
            job_id=job_id,
            algorithm=algorithm.manifest.name,
            version=algorithm.manifest.version,
            parameters=parsed.model_dump(mode="json"),
            policy=policy.to_dict(),
            created_at=_now(),
            engine=engine,
            area_level=level,
        ),
        policy=policy,
        charge=charge,
        period=period,
    )


@contextlib.contextmanager
def reading(store: Store) -> Iterator[None]:
    """Turn an engine's failure to read one of the store's files into an error naming it.

    `Store.read_failed` says what the file is now: gone, replaced while the job read it, or
    damaged. The engine's own message (on Spark, a JVM stack trace with the store's absolute path),
    which the job's error would otherwise carry to the analyst, stays as the error's cause.
    """
    try:
        yield
    except CellcensusError:
        raise
    except Exception as error:
        damaged = store.file_named_in(str(error))
        if damaged is None:
            raise
        raise store.read_failed(damaged) from error


def _protected(
    raw: pd.DataFrame,
    *,
    store: Store,
    domains: dict[str, list[Any]],
    unit_keys: Sequence[str],
    bound: float,
    measured_ci95: list[float] | None,
    provenance: Provenance,
    policy: DisclosurePolicy,
    charge: Charge | None,
    period: tuple[dt.date, dt.date],
) -> Release:
    """The release of `raw` protected over its key domains, with its privacy units recorded.

    Each of a device's pseudonyms (`pseudonyms`) may add `bound` to each privacy unit.
    """
    units = privacy_units(unit_keys, domains)
    per_device = pseudonyms(store, period)
    table = protect_release(
        raw,
        domains=domains,
        policy=policy,
        contribution_bound=bound * per_device,
        charge=charge,
        rounding_key=rounding_secret(store.root),
        measured_ci95=measured_ci95,
        units=units,
    )
    provenance = dataclasses.replace(
        provenance, privacy_units=units * per_device, pseudonyms=per_device
    )
    return Release(table=table, provenance=provenance, published=published_facts(store, period))


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def compute_submitted_release(
    *,
    store: Path | str,
    manifest: RecordedManifest,
    exact: Callable[[], pd.DataFrame],
    parameters: dict[str, Any],
    level: str,
    policy: DisclosurePolicy,
    job_id: str,
    charge: Charge | None = None,
    progress: Progress | None = None,
    reader: Reader = "holder",
) -> Release:
    """Protect a submitted algorithm's exact output with its recorded manifest; record nothing.

    Nothing of the submitted module runs here: `exact` returns the table its confined child
    computed (`confined.exact_output`), and the keys, their domains, the bound and the
    privacy unit come from the manifest recorded at certification.

    Args:
        store: The holder's store folder.
        manifest: The submission's recorded manifest.
        exact: Runs the submitted computation elsewhere and returns its exact output.
        parameters: The job's parameters (checked against the schema, defaults filled in).
        level: Area level of the allocation.
        policy: Disclosure policy to apply.
        job_id: Recorded in the provenance.
        charge: The ledger's receipt; required when the policy adds noise.
        progress: Called with the name of each stage.
        reader: Who reads a refusal (`check_job`).

    Raises:
        CellcensusError: the store cannot serve the job, or the output does not fit the
            manifest (`checked_output`).
    """
    say = progress or (lambda _stage: None)
    say("opening store")
    opened = Store(Path(store))
    # The store may have changed since the job was submitted.
    check_job(opened, None, parameters=parameters, level=level, reader=reader)
    tables = open_tables(opened, level=level, memory_limit="256MB")  # the allocation only
    period = job_period(opened, parameters)
    given = SimpleNamespace(**parameters)
    domains = {
        key.name: key_domain(key, tables=tables, parsed=given, period=period)
        for key in manifest.keys
    }
    say("computing")
    raw = checked_output(exact(), domains=domains)
    say("protecting")
    return _protected(
        raw,
        store=opened,
        domains=domains,
        unit_keys=manifest.unit_keys,
        bound=manifest.contribution_bound,
        measured_ci95=None,
        provenance=Provenance(
            job_id=job_id,
            algorithm=manifest.name,
            version=manifest.version,
            parameters=parameters,
            policy=policy.to_dict(),
            created_at=_now(),
            engine="duckdb",  # the confined child's
            area_level=level,
        ),
        policy=policy,
        charge=charge,
        period=period,
    )


def checked_output(raw: pd.DataFrame, *, domains: dict[str, list[Any]]) -> pd.DataFrame:
    """Submitted code's exact output, refused unless it fits the public key domains.

    The key columns and `device_count`, nothing else; each key's values of a key type
    (strings, integers, dates) and within its public domain; each key combination once;
    counts numbers, finite and non-negative. Refusals count the faulty rows or columns but
    never name their values: which keys the exact output holds is what protection hides.
    """
    expected = [*domains, COUNT]
    missing = [name for name in expected if name not in raw.columns]
    extra = len(set(raw.columns) - set(expected))
    if missing or extra:
        raise CellcensusError(
            f"the output lacks column(s) {missing} and has {extra} column(s) outside its "
            f"manifest; it must have exactly {expected}"
        )
    raw = raw.assign(
        **{
            name: _checked_key(raw[name], name=name, domain=domain)
            for name, domain in domains.items()
        }
    )
    repeated = int(raw.duplicated(subset=list(domains)).sum())
    if repeated:
        raise CellcensusError(f"the output repeats key combinations ({repeated} rows)")
    counts = raw[COUNT]
    if not pd.api.types.is_numeric_dtype(counts) or pd.api.types.is_bool_dtype(counts):
        raise CellcensusError(f"the output's {COUNT} is not a number column")
    values = counts.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = int((~np.isfinite(values) | (values < 0.0)).sum())
    if bad:
        raise CellcensusError(
            f"the output has a missing, infinite or negative {COUNT} in {bad} row(s)"
        )
    return raw[expected].assign(**{COUNT: values})


def _checked_key(column: pd.Series, *, name: str, domain: list[Any]) -> pd.Series:
    """A key column checked against its domain: of its type, within its values.

    Dates may come as timestamps at midnight (what DuckDB's dates become in pandas); they
    are returned as dates, as the domain holds them.
    """
    kind = _kind(domain)
    if kind is dt.date and pd.api.types.is_datetime64_dtype(column):
        if column.isna().any() or (column != column.dt.normalize()).any():
            raise CellcensusError(f"the output's key {name} has times that are not dates")
        column = pd.Series(column.dt.date, index=column.index, dtype=object)
    integers = pd.api.types.is_integer_dtype(column)
    objects = pd.api.types.is_string_dtype(column) or pd.api.types.is_object_dtype(column)
    if not (integers if kind is int else objects):
        raise CellcensusError(
            f"the output's key {name} is not of its domain's type ({kind.__name__})"
        )
    kinds = (int, np.integer) if kind is int else (kind,)
    odd = sum(not isinstance(value, kinds) or isinstance(value, dt.datetime) for value in column)
    if odd:
        raise CellcensusError(f"the output's key {name} has {odd} value(s) of another type")
    public = {str(value) for value in domain}
    outside = sum(str(value) not in public for value in column)
    if outside:
        raise CellcensusError(
            f"the output has {outside} {name} value(s) outside the public key domain"
        )
    return column


def _kind(domain: list[Any]) -> type:
    """The type of a key domain's values: dates, slot integers, or strings (areas, categories)."""
    for kind in (dt.date, int):
        if domain and all(isinstance(value, kind) for value in domain):
            return kind
    return str
