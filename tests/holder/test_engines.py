"""The Spark session honours spark-submit's configuration, and local defaults elsewhere.

Each case starts its own JVM in a subprocess (the session is one per process), as an operator
would: `spark-submit --master ...` on a cluster, plain Python on one machine.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "api"))

from tiny_store import build_store  # type: ignore[import-not-found]

pytestmark = [pytest.mark.spark, pytest.mark.slow]

SCRIPT = """
from cellcensus.holder.engines import spark_session
session = spark_session()
conf = session.sparkContext.getConf()
print("MASTER", conf.get("spark.master"))
print("PARTITIONS", session.conf.get("spark.sql.shuffle.partitions"))
print("TIMEZONE", conf.get("spark.sql.session.timeZone"))
print("PROGRESS", conf.get("spark.ui.showConsoleProgress", "unset"))
"""


def without_spark_settings() -> dict[str, str]:
    """This environment without Spark's variables, this Python's programs first on PATH."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SPARK_", "PYSPARK_"))}
    bindir = str(Path(sys.executable).parent)
    return clean | {"PATH": bindir + os.pathsep + clean.get("PATH", "")}


def settings(command: list[str], env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    script = tmp_path / "session.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [*command, str(script)],
        env=without_spark_settings() | env,
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    return dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)


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


def test_plain_python_runs_local_and_the_environment_overrides(tmp_path: Path) -> None:
    found = settings([sys.executable], {"SPARK_SHUFFLE_PARTITIONS": "5"}, tmp_path)
    # No stage progress bars over the CLI's spinner.
    assert found == {
        "MASTER": "local[2]",
        "PARTITIONS": "5",
        "TIMEZONE": "UTC",
        "PROGRESS": "false",
    }
    assert settings([sys.executable], {}, tmp_path)["PARTITIONS"] == "8"


def test_a_local_run_shows_no_spark_log_below_errors(tmp_path: Path) -> None:
    store = build_store(tmp_path / "store")
    out = tmp_path / "homes.csv"
    run = ["run", "usual_residence", "--engine", "spark", "--store", str(store), "--out", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "cellcensus", *run],
        env=without_spark_settings(),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert out.is_file()
    # Spark's own start (log4j's WARN lines, the shell's "Setting default log level") is
    # silent; only the JVM's note on its incubator modules is not Spark's to silence.
    assert not re.search(r"\bWARN\b|Setting default log level|log4j", done.stderr), done.stderr
