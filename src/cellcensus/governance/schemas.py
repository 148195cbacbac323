"""The JSON Schemas of the governance files, generated from their pydantic models.

The schemas are shipped beside the data (`assessment/decision_tree.schema.yaml`,
`cases/case.schema.yaml`) so that stewards and other tools can validate the YAML without
cellcensus. A test checks that the shipped files match the models; after changing a model,
regenerate them with `python -m cellcensus.governance.schemas`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from cellcensus.governance.assessment.tree import DecisionTree
from cellcensus.governance.cases.case import CaseStudy

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
HEADER = "# Generated from {model} by `python -m cellcensus.governance.schemas`; do not edit.\n"


def schema_files() -> dict[Path, type[BaseModel]]:
    """Where each shipped schema lives, and the model it is generated from."""
    root = Path(str(resources.files("cellcensus.governance")))
    return {
        root / "assessment" / "decision_tree.schema.yaml": DecisionTree,
        root / "cases" / "case.schema.yaml": CaseStudy,
    }


def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a model."""
    return {"$schema": JSON_SCHEMA_DIALECT, **model.model_json_schema()}


def schema_text(model: type[BaseModel]) -> str:
    """The schema as the YAML text shipped in the package."""
    body = yaml.safe_dump(json_schema(model), sort_keys=False, allow_unicode=True, width=100)
    return HEADER.format(model=f"{model.__module__}.{model.__name__}") + body


def load_schema(path: Path) -> dict[str, Any]:
    """Read a shipped schema."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def write_schemas() -> list[Path]:
    """Regenerate every shipped schema from its model; return the files written."""
    written = []
    for path, model in schema_files().items():
        path.write_text(schema_text(model), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_schemas():
        print(f"wrote {written_path}")
