"""Materialising intermediate tables on Spark, so shared steps are computed once.

An algorithm is one Ibis expression. DuckDB plans shared subexpressions (common table
expressions) once; Spark inlines them and recomputes them at every use, which turns an
algorithm that reads the kept events in three places into three passes over the month. Algorithms
therefore pass such intermediate tables through `StoreTables.materialize`; on Spark,
`SparkStaging` caches each one eagerly under a temporary view, and `release` drops them.
"""

from __future__ import annotations

import uuid
from typing import Any

import ibis.expr.types as ir
from ibis.backends import BaseBackend


class SparkStaging:
    """`StoreTables.materialize` for the PySpark backend: cache each stage once.

    Use as ``StoreTables(..., materialize=staging)`` and call `release` when the job's
    result has been collected.
    """

    def __init__(self, con: BaseBackend, session: Any) -> None:
        """Stage on Ibis backend `con`, whose Spark session is `session`."""
        self.con = con
        self.session = session
        self.views: list[str] = []

    def __call__(self, table: ir.Table) -> ir.Table:
        """Compute `table` now, cache it, and return an expression reading the cache."""
        name = f"cellcensus_stage_{uuid.uuid4().hex}"
        view = self.con.create_view(name, table, overwrite=True)
        self.session.sql(f"CACHE TABLE `{name}`")
        self.views.append(name)
        return view

    def release(self) -> None:
        """Drop every cached stage (frees executor memory)."""
        for name in self.views:
            self.session.catalog.dropTempView(name)
        self.views.clear()
