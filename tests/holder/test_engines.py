"""The Spark session honours spark-submit's configuration, and local defaults elsewhere.

Each configuration starts its own JVM in a subprocess (the session is one per process), as an
operator would: `spark-submit --master ...` on a cluster, plain Python on one machine. The
tests of one configuration share its run (`spark_from_plain_python`): a JVM's start costs tens
of seconds.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.spark, pytest.mark.slow]

SCRIPT = """
from cellcensus.holder.engines import spark_session
session = spark_session()
conf = session.sparkContext.getConf()
print("MASTER", conf.get("spark.master"))
print("PARTITIONS", session.conf.get("spark.sql.shuffle.partitions"))
print("TIMEZONE", conf.get("spark.sql.session.timeZone"))
print("PROGRESS", conf.get("spark.ui.showConsoleProgress", "unset"))
# A window over all rows: Spark warns that it moves them to one partition, unless quiet.
session.range(3).selectExpr("row_number() over (order by id) as n").collect()
"""

# After `SCRIPT`: a shuffle, then where Spark keeps its scratch files.
SCRATCH = """
import glob, os, stat
session.range(1000).selectExpr("id % 7 AS k").distinct().collect()  # a shuffle
folder = session.sparkContext.getConf().get("spark.local.dir", "unset")
print("FOLDER", folder)
print("MODE", oct(stat.S_IMODE(os.stat(folder).st_mode)) if os.path.isdir(folder) else "none")
print("BLOCKS", len(glob.glob(os.path.join(folder, "blockmgr-*"))))
"""


def without_spark_settings() -> dict[str, str]:
    """This environment without Spark's variables, this Python's programs first on PATH."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SPARK_", "PYSPARK_"))}
    bindir = str(Path(sys.executable).parent)
    return clean | {"PATH": bindir + os.pathsep + clean.get("PATH", "")}


def started(
    command: list[str], env: dict[str, str], tmp_path: Path, *, then: str = ""
) -> tuple[dict[str, str], str]:
    """The session's settings as `command` (Python, or spark-submit) starts it, with what
    `then` (more of the script) prints, and stderr."""
    script = tmp_path / "session.py"
    script.write_text(SCRIPT + then)
    done = subprocess.run(
        [*command, str(script)],
        env=without_spark_settings() | env,
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    found = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
    return found, done.stderr


def settings(command: list[str], env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return started(command, env, tmp_path)[0]


def test_spark_submit_configuration_is_kept(tmp_path: Path) -> None:
    submit = str(Path(sys.executable).parent / "spark-submit")
    found = settings(
        [submit, "--master", "local[1]", "--conf", "spark.sql.shuffle.partitions=3"],
        {},
        tmp_path,
    )
    assert found == {
        "MASTER": "local[1]",
        "PARTITIONS": "3",
        "TIMEZONE": "UTC",
        "PROGRESS": "unset",
    }


def test_spark_submit_on_one_machine_gets_the_local_partitions(tmp_path: Path) -> None:
    # Not Spark's 200, which are for a cluster (docs/spark.md).
    submit = str(Path(sys.executable).parent / "spark-submit")
    found = settings([submit, "--master", "local[1]"], {}, tmp_path)
    assert (found["MASTER"], found["PARTITIONS"]) == ("local[1]", "8")
    found = settings([submit, "--master", "local[1]"], {"SPARK_SHUFFLE_PARTITIONS": "5"}, tmp_path)
    assert found["PARTITIONS"] == "5"


@pytest.fixture(scope="module")
def spark_from_plain_python(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], str]:
    """A session started from plain Python, its partitions set by the environment, after a
    shuffle (`SCRATCH`): its settings and scratch folder, and stderr."""
    tmp_path = tmp_path_factory.mktemp("plain-python")
    return started([sys.executable], {"SPARK_SHUFFLE_PARTITIONS": "5"}, tmp_path, then=SCRATCH)


def test_plain_python_runs_local_quiet_and_the_environment_overrides(
    spark_from_plain_python: tuple[dict[str, str], str], tmp_path: Path
) -> None:
    found, stderr = spark_from_plain_python
    # No stage progress bars over the CLI's spinner.
    assert {key: found[key] for key in ("MASTER", "PARTITIONS", "TIMEZONE", "PROGRESS")} == {
        "MASTER": "local[2]",
        "PARTITIONS": "5",
        "TIMEZONE": "UTC",
        "PROGRESS": "false",
    }
    # Spark's own start (log4j's WARN lines, the shell's "Setting default log level") and the
    # query's warning are silent; only the JVM's note on its incubator modules is not Spark's
    # to silence.
    assert not re.search(r"\bWARN\b|Setting default log level|log4j", stderr), stderr
    found, stderr = started([sys.executable], {"SPARK_CONF_DIR": str(tmp_path)}, tmp_path)
    assert found["PARTITIONS"] == "8"
    # With a configuration folder of the operator's, Spark logs as that folder says: here
    # nothing, so Spark's defaults (the check above could fail).
    assert "Setting default log level" in stderr


def test_plain_python_keeps_spark_scratch_files_in_a_private_folder(
    spark_from_plain_python: tuple[dict[str, str], str],
) -> None:
    # Shuffle files hold an ingest's raw user_ids: not in /tmp folders everyone may read.
    found = spark_from_plain_python[0]
    assert Path(found["FOLDER"]).name.startswith("cellcensus-spill-"), found
    assert found["MODE"] == "0o700"
    assert int(found["BLOCKS"]) >= 1  # Spark's block manager works beneath it
    assert not Path(found["FOLDER"]).exists()  # removed when the process ended
