"""The engines the catalogue runs on: embedded DuckDB (default) and Apache Spark.

Algorithms are Ibis expressions, so the same code runs on either; only the connection differs.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path
from typing import Any, Literal

import ibis
from ibis.backends import BaseBackend

from cellcensus.errors import CellcensusError, did_you_mean

Engine = Literal["duckdb", "spark"]
ENGINES: tuple[Engine, ...] = ("duckdb", "spark")


def connect(engine: Engine = "duckdb", *, memory_limit: str = "4GB") -> BaseBackend:
    """A fresh Ibis backend on `engine`.

    DuckDB gets a memory limit so large stores spill to disk instead of exhausting memory,
    into `spill_folder`. Spark uses the session from `spark_session()` (local mode unless
    SPARK_MASTER is set).
    """
    if engine == "duckdb":
        con = ibis.duckdb.connect()
        con.raw_sql(f"SET memory_limit='{memory_limit}'")
        con.raw_sql(f"SET temp_directory='{spill_folder()}'")
        # The CLI and the service report progress their own way; DuckDB's bar, printed to
        # stdout on a slow query, would mix into a command's output (its --json too).
        con.raw_sql("SET enable_progress_bar = false")
        # A job run day by day opens every day file in each date's query: their footers
        # are read once (the cache checks each file's modification time).
        con.raw_sql("SET parquet_metadata_cache = true")
        return con
    if engine == "spark":
        return ibis.pyspark.connect(spark_session())
    raise CellcensusError(
        f"unknown engine {engine!r}{did_you_mean(engine, ENGINES)}; choose one of "
        f"{', '.join(ENGINES)}"
    )


@cache
def spill_folder() -> str:
    """Where this process's DuckDB spills: a folder only its user reads, removed at exit.

    DuckDB's default, ``.tmp`` beneath the working folder, is made with the umask (readable
    by everyone, usually) and outlives the process; what spills there is pseudonymised
    events. A process killed before its exit leaves this folder behind, still private.
    """
    folder = tempfile.mkdtemp(prefix="cellcensus-spill-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


LOCAL_SPARK = {
    "spark.master": "local[2]",
    "spark.ui.enabled": "false",
    # The CLI shows its own progress: Spark's stage bars would write over it.
    "spark.ui.showConsoleProgress": "false",
}
"""Settings of a session started from plain Python (local mode on this machine)."""
SPARK_ENVIRONMENT = {
    "SPARK_MASTER": "spark.master",
    "SPARK_EXECUTOR_MEMORY": "spark.executor.memory",
    "SPARK_SHUFFLE_PARTITIONS": "spark.sql.shuffle.partitions",
}
"""Environment variables that override a setting, submitted or not."""
LOCAL_SHUFFLE_PARTITIONS = "8"
"""Shuffle partitions of a local master, unless set (a cluster keeps Spark's default)."""


SPARK_LOG = Path(__file__).with_name("spark_log4j2.properties")
"""Spark's log configuration from plain Python: errors only, from the JVM's start."""


def quiet_start() -> dict[str, str]:
    """The driver's option that logs errors only, unless the operator configures Spark.

    `setLogLevel` acts once the session exists, after Spark's start has logged its warnings;
    an operator's SPARK_CONF_DIR holds their own log4j2.properties and driver options.
    """
    if "SPARK_CONF_DIR" in os.environ:
        return {}
    return {"spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={SPARK_LOG.as_uri()}"}


def private_scratch() -> dict[str, str]:
    """Spark's scratch folder in this process's private one, unless the operator sets it.

    Spark writes its shuffle and spill files (an ingest's raw user_ids among them) under
    ``spark.local.dir``, by default in folders of ``/tmp`` that everyone may read, and a
    killed JVM leaves them there. Beneath `spill_folder` (mode 0700) only the holder reads
    them. An operator's ``SPARK_CONF_DIR`` or ``SPARK_LOCAL_DIRS`` keeps its own choice.
    """
    if "SPARK_CONF_DIR" in os.environ or "SPARK_LOCAL_DIRS" in os.environ:
        return {}
    return {"spark.local.dir": spill_folder()}


@cache
def spark_session() -> Any:
    """The process's Spark session, configured for cellcensus.

    Under ``spark-submit`` (a cluster: YARN, Kubernetes, standalone) the submitted
    configuration is kept (master, executor memory, partitions, UI), so a cluster runs
    cellcensus the way its operators run every Spark job (docs/spark.md); from plain Python,
    `LOCAL_SPARK`, quiet from the start, its scratch files private (`private_scratch`).
    `SPARK_ENVIRONMENT` variables override either. A local master, submitted or not, gets
    `LOCAL_SHUFFLE_PARTITIONS` unless they were set. The
    session time zone is always UTC: the algorithms' local times are computed from UTC
    timestamps.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as error:
        raise CellcensusError(
            "the Spark engine needs PySpark: pip install 'cellcensus[spark]'"
        ) from error
    # spark-submit starts the JVM before Python and hands PySpark its port: its --master and
    # --conf are then already set.
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ
    settings = {} if submitted else LOCAL_SPARK | quiet_start() | private_scratch()
    settings |= {
        key: os.environ[name] for name, key in SPARK_ENVIRONMENT.items() if name in os.environ
    }
    builder = SparkSession.builder.appName("cellcensus").config("spark.sql.session.timeZone", "UTC")
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except RuntimeError as error:
        if "JAVA_GATEWAY_EXITED" not in str(error):
            raise
        raise CellcensusError(
            "Spark could not start (its own message is on standard error): the Spark engine "
            "needs Java 17 (`java` on PATH or a JDK in JAVA_HOME) and a master it can use (here "
            f"{settings.get('spark.master', 'the submitted one')!r}; SPARK_MASTER sets it, "
            "docs/spark.md)"
        ) from error
    session.sparkContext.setLogLevel("ERROR")
    partition_locally(session)
    return session


def partition_locally(session: Any) -> None:
    """Give a local master `LOCAL_SHUFFLE_PARTITIONS`, unless it was given some.

    Spark's default of 200 suits a cluster, where adaptive execution coalesces them after
    each shuffle; on one machine their tasks make a small store's job several times slower.
    """
    conf = session.sparkContext.getConf()
    key = "spark.sql.shuffle.partitions"
    if conf.get("spark.master", "").startswith("local") and not conf.contains(key):
        session.conf.set(key, LOCAL_SHUFFLE_PARTITIONS)


def start(engine: Engine) -> None:
    """Start `engine` now, so that an engine that cannot start fails a job before its charge.

    DuckDB is embedded and always starts; Spark starts the process's session (its JVM),
    which the job then uses.
    """
    if engine == "spark":
        spark_session()


STARTS_SPARK = """
import sys
from cellcensus.errors import CellcensusError
from cellcensus.holder.engines import start
try:
    start("spark")
except CellcensusError as error:
    sys.exit(str(error))
"""


def check_spark_starts(*, timeout_s: float = 300) -> None:
    """Start Spark once in a subprocess, as each job's worker will; refuse if it cannot.

    The service charges a job before its worker starts the engine: with no Java or an
    unusable master, every job would fail after its charge.
    """
    done = subprocess.run(
        [sys.executable, "-c", STARTS_SPARK],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        said = " ".join(done.stderr.strip().splitlines()[-4:])
        raise CellcensusError(f"the service's engine, spark, does not start: {said}")
