"""docs/algorithms/ describes the catalogue the registry holds: names, keys, defaults."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from cellcensus.holder.algorithms.registry import registered_algorithms

DOCS = Path(__file__).resolve().parents[3] / "docs" / "algorithms"


def _catalogue_table() -> dict[str, tuple[list[str], str]]:
    """Each algorithm of docs/algorithms/README.md's table: its keys and its note's file."""
    rows = {}
    for line in (DOCS / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 5:
            name = cells[0].strip("`")
            note = re.fullmatch(r"\[[^]]+\]\(([^)]+)\)", cells[4])
            rows[name] = ([key.strip() for key in cells[1].split(",")], note[1] if note else "")
    return rows


def _defaults(model: type[BaseModel], prefix: str = "") -> dict[str, Any]:
    """Every parameter's default, nested groups by their dotted and their own name."""
    found: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        group = field.annotation
        if isinstance(group, type) and issubclass(group, BaseModel):
            nested = _defaults(group, f"{prefix}{name}.")
            found |= nested | {key.rsplit(".", 1)[1]: value for key, value in nested.items()}
        else:
            found[prefix + name] = field.default
    return found


def test_the_catalogue_table_lists_each_registered_algorithm_with_its_keys_and_note():
    table, algorithms = _catalogue_table(), registered_algorithms()
    assert sorted(table) == sorted(algorithms)
    for name, (keys, note) in table.items():
        assert keys == list(algorithms[name].manifest.key_names), name
        assert (DOCS / note).is_file(), (name, note)


def _written_defaults() -> list[tuple[str, str, str, str]]:
    """(note, algorithm, parameter, value) for each "`parameter` (value)" a note writes."""
    found = []
    for name, (_, note) in _catalogue_table().items():
        text = (DOCS / note).read_text(encoding="utf-8")
        defaults = _defaults(registered_algorithms()[name].manifest.parameters)
        for match in re.finditer(r"`([\w.]+)` \((?:default )?(-?[\d.]+)\)", text):
            if match[1] in defaults:
                found.append((note, name, match[1], match[2]))
    return found


def test_the_notes_give_defaults_to_check():
    assert len({(note, parameter) for note, _, parameter, _ in _written_defaults()}) >= 12


@pytest.mark.parametrize(("note", "algorithm", "parameter", "written"), _written_defaults())
def test_each_default_a_note_writes_is_the_parameters_default(note, algorithm, parameter, written):
    defaults = _defaults(registered_algorithms()[algorithm].manifest.parameters)
    assert float(written) == defaults[parameter], f"{note}: `{parameter}` ({written})"
