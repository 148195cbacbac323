"""The engines the catalogue runs on: embedded DuckDB (default) and Apache Spark.

Algorithms are Ibis expressions, so the same code runs on either; only the connection differs.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any, Literal

import ibis
from ibis.backends import BaseBackend

from cellcensus.errors import CellcensusError

Engine = Literal["duckdb", "spark"]
ENGINES: tuple[Engine, ...] = ("duckdb", "spark")


def connect(engine: Engine = "duckdb", *, memory_limit: str = "4GB") -> BaseBackend:
    """A fresh Ibis backend on `engine`.

    DuckDB gets a memory limit so large stores spill to disk instead of exhausting memory.
    Spark uses the session from `spark_session()` (local mode unless SPARK_MASTER is set).
    """
    if engine == "duckdb":
        con = ibis.duckdb.connect()
        con.raw_sql(f"SET memory_limit='{memory_limit}'")
        return con
    if engine == "spark":
        return ibis.pyspark.connect(spark_session())
    raise CellcensusError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")


@cache
def spark_session() -> Any:
    """The process's Spark session, configured for cellcensus (UTC, quiet, few partitions).

    Environment: SPARK_MASTER (default ``local[2]``), SPARK_EXECUTOR_MEMORY, and
    SPARK_SHUFFLE_PARTITIONS (default 8; raise it on a real cluster).
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as error:
        raise CellcensusError(
            "the Spark engine needs PySpark: pip install 'cellcensus[spark]'"
        ) from error
    builder = (
        SparkSession.builder.appName("cellcensus")
        .master(os.environ.get("SPARK_MASTER", "local[2]"))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", os.environ.get("SPARK_SHUFFLE_PARTITIONS", "8"))
    )
    if "SPARK_EXECUTOR_MEMORY" in os.environ:
        builder = builder.config("spark.executor.memory", os.environ["SPARK_EXECUTOR_MEMORY"])
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session
