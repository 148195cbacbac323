"""The catalogue's defaults: what a job that gives no parameter runs with."""

from __future__ import annotations

import dataclasses

import pytest

from cellcensus.errors import CellcensusError
from cellcensus.holder.enclave.catalogue import Catalogue, parameter_defaults


class NoSubmissions:
    def certified(self) -> list[tuple[object, str]]:
        return []


CATALOGUE = Catalogue(NoSubmissions())  # type: ignore[arg-type]


@pytest.mark.parametrize("entry", CATALOGUE.entries().values(), ids=lambda entry: entry.name)
def test_the_defaults_are_what_a_job_giving_no_parameter_runs_with(entry):
    defaults = parameter_defaults(entry)
    try:
        given_none = CATALOGUE.normalize(entry, {})
    except CellcensusError:  # some parameters must be given: those have no default
        required = set(entry.parameters_schema["required"])
        assert required and not required & set(defaults)
        assert defaults["filters"] == parameter_defaults(CATALOGUE.get("device_filter"))["filters"]
    else:
        assert defaults == given_none
    assert CATALOGUE.defaults()[entry.name, entry.version] == defaults


def test_a_submissions_defaults_come_from_its_schema():
    schema = {
        "type": "object",
        "properties": {
            "min_nights": {"type": "integer", "default": 3},
            "label": {"type": "string"},
        },
    }
    entry = dataclasses.replace(
        CATALOGUE.get("usual_residence"), parameters_schema=schema, submission_id="s-1"
    )
    assert parameter_defaults(entry) == {"min_nights": 3}
