"""The shipped JSON Schemas are the ones the models generate, and are valid schemas."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
from pydantic import BaseModel

from cellcensus.governance.schemas import load_schema, schema_files, schema_text

SCHEMAS = list(schema_files().items())


@pytest.mark.parametrize(("path", "model"), SCHEMAS, ids=[p.name for p, _ in SCHEMAS])
def test_shipped_schema_matches_its_model(path: Path, model: type[BaseModel]) -> None:
    assert path.read_text(encoding="utf-8") == schema_text(model), (
        f"{path.name} is stale: run `python -m cellcensus.governance.schemas`"
    )
    jsonschema.Draft202012Validator.check_schema(load_schema(path))


def test_package_data_pattern_ships_every_governance_yaml() -> None:
    import tomllib
    from fnmatch import fnmatch

    root = Path(__file__).parents[2]
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["cellcensus"]
    package = root / "src" / "cellcensus"
    files = [p.relative_to(package).as_posix() for p in (package / "governance").rglob("*.yaml")]
    assert len(files) >= 25
    missing = [f for f in files if not any(fnmatch(f, pattern) for pattern in patterns)]
    assert missing == []
