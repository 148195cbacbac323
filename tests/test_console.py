"""What the commands share: the output folder a command may write into."""

from __future__ import annotations

import pytest

from cellcensus.console import output_folder
from cellcensus.errors import CellcensusError


def test_an_output_folder_is_made_or_taken_back_and_nothing_else_is_taken(tmp_path):
    made = output_folder(tmp_path / "a" / "new", marker=".made-by-x", made_by="x")
    assert made.is_dir() and (made / ".made-by-x").is_file()
    (made / "table.csv").write_text("old")
    assert output_folder(made, marker=".made-by-x", made_by="x") == made  # its own, again
    with pytest.raises(CellcensusError, match=r"is a non-empty folder not made by y; give a new"):
        output_folder(made, marker=".made-by-y", made_by="y")
    with pytest.raises(CellcensusError, match=r"--out .*table.csv is a file; give a folder path"):
        output_folder(made / "table.csv", marker=".made-by-x", made_by="x")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert output_folder(empty, marker=".made-by-y", made_by="y") == empty
    assert (made / "table.csv").read_text() == "old"
