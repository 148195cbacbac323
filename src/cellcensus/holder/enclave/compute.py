"""The pure computation of a release: store tables -> algorithm -> disclosure policy.

Nothing here records anything: the in-process runner and the service's worker subprocesses
both call `compute_release`, and the caller decides what is recorded and released.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cellcensus.errors import CellcensusError
from cellcensus.holder.algorithms import Algorithm, StoreTables
from cellcensus.holder.disclosure import DisclosurePolicy, protect
from cellcensus.holder.engines import Engine, connect
from cellcensus.holder.store.layout import Store
from cellcensus.release import Provenance, Release

PUBLISHED_FACTS = ("market_share", "sampling_fraction", "period", "subscribers_by_region")
LEVEL_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

Progress = Callable[[str], None]


def open_tables(
    store: Store,
    *,
    engine: Engine = "duckdb",
    level: str = "municipality",
    memory_limit: str = "4GB",
) -> StoreTables:
    """Open the store's tables through Ibis on `engine`."""
    check_level(store, level)
    con = connect(engine, memory_limit=memory_limit) if engine == "duckdb" else connect(engine)
    # DuckDB reads the day files by glob; Spark discovers the date= partitions itself.
    where = store.events_dir if engine == "spark" else store.events_dir / "**" / "*.parquet"
    events = con.read_parquet(str(where))
    cells = con.read_parquet(str(store.cells_path))
    allocation = con.read_parquet(str(store.allocation_path(level)))
    return StoreTables(events=events, cells=cells, allocation=allocation)


def area_levels(store: Store) -> list[str]:
    """The area levels the store has an allocation for (e.g. ``municipality``)."""
    folder = store.allocation_dir
    if not folder.is_dir():
        return []
    return sorted(path.stem for path in folder.glob("*.parquet") if LEVEL_PATTERN.match(path.stem))


def check_level(store: Store, level: str) -> None:
    """Refuse an area level that is malformed or has no allocation in the store."""
    if not LEVEL_PATTERN.match(level):
        raise CellcensusError(
            f"area level {level[:40]!r} is not a level name (lowercase letters, digits, _)"
        )
    if not store.allocation_path(level).exists():
        known = ", ".join(area_levels(store)) or "none"
        raise CellcensusError(
            f"no {level} allocation in store {store.root}; known levels: {known} "
            "(run `cellcensus ingest` first)"
        )


def published_facts(store: Store) -> dict[str, Any]:
    """Holder facts released beside every table (market share, sampling fraction, period)."""
    metadata = store.metadata()
    return {name: metadata[name] for name in PUBLISHED_FACTS if name in metadata}


def compute_release(
    *,
    store: Path,
    algorithm: Algorithm,
    parameters: dict[str, Any],
    level: str,
    policy: DisclosurePolicy,
    engine: Engine,
    job_id: str,
    progress: Progress | None = None,
    memory_limit: str = "4GB",
) -> Release:
    """Run `algorithm` on the store and protect its output; record nothing.

    Raises:
        CellcensusError: bad parameters, unknown area level, or output outside the key set.
    """
    say = progress or (lambda _stage: None)
    parsed = algorithm.manifest.parse(parameters).model_dump(mode="json")
    say("opening store")
    opened = Store(store)
    tables = open_tables(opened, engine=engine, level=level, memory_limit=memory_limit)
    say("computing")
    raw = algorithm.expression(tables, parameters).to_pandas()
    say("protecting")
    keys = tables.allocation.select("area_code").distinct().to_pandas()["area_code"]
    table = protect(raw, keys=list(keys), policy=policy)
    provenance = Provenance(
        job_id=job_id,
        algorithm=algorithm.manifest.name,
        version=algorithm.manifest.version,
        parameters=parsed,
        policy=policy.to_dict(),
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        engine=engine,
    )
    return Release(table=table, provenance=provenance, published=published_facts(opened))
