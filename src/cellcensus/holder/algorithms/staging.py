"""Materialising intermediate tables on Spark, so shared steps are computed once.

An algorithm is one Ibis expression. DuckDB plans shared subexpressions (common table
expressions) once; Spark inlines them and recomputes them at every use, which turns an
algorithm that reads the kept events in three places into three passes over the month.
Algorithms therefore pass such intermediate tables through `StoreTables.materialize`; on
Spark, `SparkStaging` computes each one once, keeps it in executor memory (spilling to disk)
under a temporary view, and `release` frees them.

(Caching a SQL *view* with ``CACHE TABLE`` does not work here: Spark never matches the cache
of a view whose query has common table expressions, which Ibis emits. The data frame is
cached instead, and the view names the cached data frame.)
"""

from __future__ import annotations

import uuid
from typing import Any

import ibis.expr.types as ir
from ibis.backends import BaseBackend


class SparkStaging:
    """`StoreTables.materialize` for the PySpark backend: compute and cache each stage once.

    Use as ``StoreTables(..., materialize=staging)`` and call `release` when the job's
    result has been collected.
    """

    def __init__(self, con: BaseBackend, session: Any) -> None:
        """Stage on Ibis backend `con`, whose Spark session is `session`."""
        self.con = con
        self.session = session
        self.frames: dict[str, Any] = {}

    def __call__(self, table: ir.Table) -> ir.Table:
        """Compute `table` now, cache it, and return an expression reading the cache."""
        name = f"cellcensus_stage_{uuid.uuid4().hex}"
        self.con._run_pre_execute_hooks(table)  # registers the expression's memtables
        frame = self.session.sql(str(self.con.compile(table))).cache()
        frame.count()  # compute it now, once
        frame.createOrReplaceTempView(name)
        self.frames[name] = frame
        return self.con.table(name)

    def release(self) -> None:
        """Drop every cached stage (frees executor memory)."""
        for name, frame in self.frames.items():
            self.session.catalog.dropTempView(name)
            frame.unpersist()
        self.frames.clear()
