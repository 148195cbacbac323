"""The parameter schemas the catalogue publishes carry every rule the parameters are judged by.

Clients (the portal, OpenAPI tools, `cellcensus algorithms --json`) read a parameter's format
and bounds from the schema before they submit: a rule the model enforces but the schema hides
is learnt only from a refusal.
"""

from __future__ import annotations

import json
import typing
from typing import Any

import annotated_types
import pytest
import typer
from pydantic import BaseModel, StringConstraints
from pydantic.fields import FieldInfo
from typer.testing import CliRunner

from cellcensus.holder.algorithms import registered_algorithms
from cellcensus.holder.algorithms.commands import register

BUILT_IN = sorted(registered_algorithms())
KEYWORDS = {
    annotated_types.Ge: ("ge", "minimum"),
    annotated_types.Le: ("le", "maximum"),
    annotated_types.Gt: ("gt", "exclusiveMinimum"),
    annotated_types.Lt: ("lt", "exclusiveMaximum"),
}
"""Each numeric constraint of pydantic's metadata: its attribute and its JSON schema keyword."""

RULES_BETWEEN_PARAMETERS = {
    "_period_ordered": {"end": "not before start"},
    "_periods_ordered": {
        "before_end": "not before before_start, and before after_start",
        "after_end": "not before after_start",
    },
    "_spans_within_a_day": {
        "max_carry_minutes": "together with max_backfill_minutes, at most a day",
        "max_backfill_minutes": "together with max_carry_minutes, at most a day",
    },
}
"""Each model validator of the built-in parameters, and what the schema says of it where."""


def _constraints(metadata: list[Any]) -> dict[str, Any]:
    """The JSON schema keywords the constraints in pydantic `metadata` should publish."""
    found: dict[str, Any] = {}
    for item in metadata:
        if isinstance(item, FieldInfo):
            found |= _constraints(item.metadata)
        elif type(item) in KEYWORDS:
            attribute, keyword = KEYWORDS[type(item)]
            found[keyword] = getattr(item, attribute)
        elif isinstance(item, StringConstraints) and item.pattern is not None:
            found["pattern"] = item.pattern
    return found


def _expected(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[Any, ...]]:
    """(path, keyword, value) for every constraint of every leaf and list item of `model`."""
    rules = []
    for name, field in model.model_fields.items():
        path = (*prefix, name)
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            rules += _expected(kind, path)
            continue
        for keyword, value in _constraints(field.metadata).items():
            rules.append((path, keyword, value))
        if typing.get_origin(kind) is tuple:  # tuple[Item, ...]: the items' own constraints
            item = typing.get_args(kind)[0]
            if typing.get_origin(item) is typing.Annotated:
                for keyword, value in _constraints(list(item.__metadata__)).items():
                    rules.append(((*path, "items"), keyword, value))
    return rules


def _published(schema: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    """The schema of the parameter at `path` (``items`` for a list's items), $refs followed."""
    node = schema
    for name in path:
        node = node["items"] if name == "items" else node["properties"][name]
        if "$ref" in node:
            node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return node


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_constraint_of_a_parameter_is_in_its_published_schema(name):
    algorithm = registered_algorithms()[name]
    schema = algorithm.manifest.parameters_schema()
    rules = _expected(algorithm.manifest.parameters)
    hidden = [
        (path, keyword, value)
        for path, keyword, value in rules
        if _published(schema, path).get(keyword) != value
    ]
    assert hidden == [], f"{name}: constraints its schema does not publish"


def test_the_check_sees_list_items_constraints():
    rules = _expected(registered_algorithms()["usual_residence"].manifest.parameters)
    assert (("filters", "m2m_tacs", "items"), "pattern", "^[0-9]{8}$") in rules


def test_a_tac_s_format_is_published_in_the_catalogue_and_by_the_command():
    schema = registered_algorithms()["usual_residence"].manifest.parameters_schema()
    tacs = _published(schema, ("filters", "m2m_tacs"))
    assert tacs["items"] == {"type": "string", "pattern": "^[0-9]{8}$"}
    assert "8 digits" in tacs["description"]
    app = typer.Typer()
    register(app)
    printed = CliRunner().invoke(app, ["algorithms", "--json"])
    assert printed.exit_code == 0, printed.output
    catalogue = {entry["name"]: entry for entry in json.loads(printed.output)}
    parameters = catalogue["usual_residence"]["parameters"]
    assert _published(parameters, ("filters", "m2m_tacs", "items"))["pattern"] == "^[0-9]{8}$"


def test_every_rule_between_parameters_is_said_in_their_descriptions():
    said: list[tuple[str, str, str]] = []
    for name in BUILT_IN:
        model = registered_algorithms()[name].manifest.parameters
        schema = model.model_json_schema()
        validators = model.__pydantic_decorators__.model_validators
        for validator in validators:
            assert validator in RULES_BETWEEN_PARAMETERS, f"{name}: describe {validator}"
            for field, words in RULES_BETWEEN_PARAMETERS[validator].items():
                description = _published(schema, (field,)).get("description", "")
                if words not in description:
                    said.append((name, field, words))
    assert said == [], "rules between parameters their descriptions do not state"
