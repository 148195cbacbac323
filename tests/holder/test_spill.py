"""DuckDB's spill files (pseudonymised events) go to a folder only the holder reads, and go."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SPILLS = """
import json, os
from cellcensus.holder.engines import connect, spill_folder
con = connect(memory_limit="50MB")
con.raw_sql("CREATE TABLE t AS SELECT range AS i, random() AS r FROM range(30000000)")
paths = [row[0] for row in con.raw_sql("SELECT path FROM duckdb_temporary_files()").fetchall()]
mode = os.stat(spill_folder()).st_mode & 0o777
bar = con.raw_sql("SELECT current_setting('enable_progress_bar')").fetchone()[0]
print(json.dumps({"paths": paths, "folder": spill_folder(), "mode": mode, "bar": bar}))
"""


def test_duckdb_spills_into_a_private_folder_removed_at_exit(tmp_path: Path) -> None:
    # A table larger than the memory limit: DuckDB writes it to its temporary directory.
    done = subprocess.run(
        [sys.executable, "-c", SPILLS], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    said = json.loads(done.stdout)  # and no progress bar of DuckDB's on stdout

    assert said["paths"], "nothing spilled: the test's table fits in memory"
    assert all(Path(path).parent == Path(said["folder"]) for path in said["paths"])
    assert said["mode"] == 0o700
    assert not Path(said["folder"]).exists()  # removed when the process ended
    assert list(tmp_path.iterdir()) == []  # not DuckDB's default `.tmp` of the working folder
    assert said["bar"] is False  # a slow query's bar would go into the command's stdout
