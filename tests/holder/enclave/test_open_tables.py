"""`open_tables` runs per-day steps one date at a time only on a store large enough to gain.

On Spark it reads the store as the local folder it is, wherever the cluster's default file
system points.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from cellcensus.holder.algorithms import get_algorithm
from cellcensus.holder.enclave.compute import open_tables
from cellcensus.holder.store import Store


def test_event_rows_counts_every_stored_event(store: Path) -> None:
    opened = Store(store)
    assert opened.event_rows() == sum(pq.read_table(path).num_rows for path in opened.event_files())
    assert opened.event_rows() > 0


def test_a_small_store_runs_the_period_at_once_and_a_large_one_day_by_day(store: Path) -> None:
    opened = Store(store)
    small = open_tables(opened)
    large = open_tables(opened, per_day_from=opened.event_rows())
    assert not small.per_day and large.per_day
    assert small.dates == large.dates == tuple(opened.days()) and len(large.dates) == 7
    for name in ("usual_residence", "present_population"):
        algorithm = get_algorithm(name)
        at_once, by_day = algorithm.run(small, {}), algorithm.run(large, {})
        keys = [column for column in at_once.columns if column != "device_count"]
        pd.testing.assert_frame_equal(
            at_once.sort_values(keys, ignore_index=True),
            by_day.sort_values(keys, ignore_index=True),
        )


SPARK_SCRIPT = """
import sys
from cellcensus.holder.enclave.compute import open_tables
from cellcensus.holder.store import Store
tables = open_tables(Store(sys.argv[1]), engine="spark")
print(*(table.count().execute() for table in (tables.events, tables.cells, tables.allocation)))
"""


def stored_rows(store: Path) -> list[int]:
    tables = open_tables(Store(store))
    return [table.count().execute() for table in (tables.events, tables.cells, tables.allocation)]


@pytest.mark.spark
@pytest.mark.slow
def test_spark_reads_the_store_folder_on_a_cluster_whose_default_file_system_is_hdfs(
    store: Path, tmp_path: Path
) -> None:
    # A YARN cluster reads a path without a scheme from HDFS; none listens here, so reading
    # the store from the default file system would fail.
    script = tmp_path / "rows.py"
    script.write_text(SPARK_SCRIPT)
    submit = Path(sys.executable).parent / "spark-submit"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SPARK_", "PYSPARK_"))}
    clean["PYSPARK_PYTHON"] = sys.executable
    done = subprocess.run(
        [
            str(submit),
            "--master",
            "local[1]",
            "--conf",
            "spark.hadoop.fs.defaultFS=hdfs://localhost:1",
            str(script),
            os.path.relpath(store, tmp_path),  # as an operator types it, from its own folder
        ],
        cwd=tmp_path,
        env=clean,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert [int(rows) for rows in done.stdout.split()[-3:]] == stored_rows(store)
    assert min(stored_rows(store)) > 0
