"""Reading the governance layer's YAML files, with one-line messages for a person to act on."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from cellcensus.errors import CellcensusError

ModelT = TypeVar("ModelT", bound=BaseModel)


def read_yaml(path: Path) -> Any:
    """Parse a YAML file.

    Args:
        path: The file to read.

    Returns:
        The parsed document.

    Raises:
        CellcensusError: The file is missing or is not valid YAML (the message gives the line).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CellcensusError(f"{path}: no such file") from None
    except OSError as error:
        raise CellcensusError(f"{path}: cannot read it ({error.strerror})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise CellcensusError(f"{path}: not valid YAML ({_yaml_problem(error)})") from None


def _yaml_problem(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or "syntax error"
    if mark is None:
        return str(problem)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"


def validation_message(error: ValidationError) -> str:
    """Describe the first problem of a pydantic validation error in one line.

    Args:
        error: The error pydantic raised.

    Returns:
        "at <location>: <message>", the location dotted as in the YAML file.
    """
    first = error.errors()[0]
    parts = [str(part) for part in first["loc"]]
    message = first["msg"].removeprefix("Value error, ")
    if parts[-2:-1] and parts[-1] == "[key]":  # pydantic's mark after a mapping's wrong key
        *parts, key, _ = parts
        message = f"'{key}' is not allowed as a key: {message}"
    location = ".".join(parts) or "top level"
    return f"at {location}: {message}"


def validate_file(model: type[ModelT], document: Any, *, source: Path) -> ModelT:
    """Validate a parsed YAML document against a pydantic model.

    Args:
        model: The model the document must follow.
        document: The parsed YAML.
        source: Where the document came from, for the message.

    Returns:
        The validated model.

    Raises:
        CellcensusError: The document breaks the schema (the message names the field).
    """
    try:
        return model.model_validate(document)
    except ValidationError as error:
        raise CellcensusError(f"{source}: {validation_message(error)}") from None
