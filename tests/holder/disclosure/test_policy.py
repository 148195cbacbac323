import dataclasses
import json
import re
from pathlib import Path

import pytest

from cellcensus.errors import CellcensusError
from cellcensus.holder.disclosure import (
    DEFAULT_POLICIES,
    FALLBACK_POLICY,
    DifferentialPrivacy,
    DisclosurePolicy,
    policy_for,
)
from cellcensus.holder.disclosure.policy import DEFAULT_EPSILON, MIN_COUNT_FLOOR


def test_default_policy_thresholds_at_15_rounds_to_5_and_adds_noise():
    policy = policy_for(algorithm="usual_residence")
    assert policy.min_count == 15
    assert policy.rounding_base == 5
    assert policy.dp == DifferentialPrivacy(epsilon=DEFAULT_EPSILON)
    assert policy.epsilon == DEFAULT_EPSILON
    assert policy.delta == 0.0


def test_unknown_algorithm_gets_the_strict_fallback():
    assert policy_for(algorithm="not_in_catalogue") == FALLBACK_POLICY
    assert FALLBACK_POLICY.dp is not None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"min_count": -1}, "min_count"),
        ({"min_count": MIN_COUNT_FLOOR - 1}, "min_count must be between 10"),
        ({"min_count": float("nan")}, "min_count"),
        ({"rounding_base": 2}, "rounding_base must be between 5 and 100 when no noise"),
        ({"rounding_base": 2.5}, "rounding_base must be an integer"),
        ({"secondary_suppression": "yes"}, "secondary_suppression"),
    ],
)
def test_policy_floors_are_enforced(fields, message):
    with pytest.raises(CellcensusError, match=message):
        DisclosurePolicy(**fields)


def test_small_rounding_base_is_allowed_only_with_noise():
    assert DisclosurePolicy(rounding_base=1, dp=DifferentialPrivacy()).rounding_base == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"epsilon": 0}, "epsilon must be in"),
        ({"epsilon": 6.0}, "epsilon must be in"),
        ({"epsilon": True}, "epsilon must be a finite number"),
        ({"delta": 1e-7}, "delta must be 0 for the Laplace"),
        ({"mechanism": "gaussian"}, "delta must be in"),
        ({"mechanism": "gaussian", "delta": 1e-3}, "delta must be in"),
        ({"mechanism": "exponential"}, "mechanism must be one of"),
    ],
)
def test_dp_bounds_are_enforced(fields, message):
    with pytest.raises(CellcensusError, match=message):
        DifferentialPrivacy(**fields)


def test_policy_round_trips_through_its_dict():
    policy = DisclosurePolicy(
        min_count=20, dp=DifferentialPrivacy(epsilon=0.3, delta=1e-7, mechanism="gaussian")
    )
    recorded = policy.to_dict()
    assert recorded["dp"] == {
        "epsilon": 0.3,
        "delta": 1e-7,
        "mechanism": "gaussian",
        "measure_totals": False,
        "noise_releases": 1.0,
    }
    assert json.loads(json.dumps(recorded)) == recorded
    assert DisclosurePolicy.from_dict(recorded) == policy


def test_override_merges_dp_and_keeps_the_rest():
    policy = DEFAULT_POLICIES["usual_residence"].override({"min_count": 25, "dp": {"epsilon": 0.2}})
    assert policy.min_count == 25
    assert policy.rounding_base == 5
    assert policy.dp == DifferentialPrivacy(epsilon=0.2)


def test_override_can_switch_noise_off_but_not_below_the_floors():
    assert DEFAULT_POLICIES["usual_residence"].override({"dp": None}).dp is None
    with pytest.raises(CellcensusError, match=r"steward\.yaml: min_count must be between"):
        DEFAULT_POLICIES["usual_residence"].override({"min_count": 5}, source="steward.yaml")


def test_override_rejects_unknown_fields_naming_them():
    with pytest.raises(CellcensusError, match=r"unknown field\(s\) \['min_cuont'\]"):
        FALLBACK_POLICY.override({"min_cuont": 20})
    with pytest.raises(CellcensusError, match=r"dp: unknown field\(s\) \['eps'\]"):
        FALLBACK_POLICY.override({"dp": {"eps": 1}})


def test_the_policy_table_of_docs_disclosure_md_gives_the_defaults():
    docs = Path(__file__).resolve().parents[3] / "docs" / "disclosure.md"
    written = dict(re.findall(r"^\| `([\w.]+)` \| ([^|]+) \|", docs.read_text(), flags=re.M))
    defaults = {**DisclosurePolicy().to_dict(), **dataclasses.asdict(DifferentialPrivacy())}
    checked = 0
    for field, text in written.items():
        name = field.removeprefix("dp.")
        if name == "dp":
            continue  # "per algorithm"
        value = text.strip().strip("`")
        expected = defaults[name]
        if isinstance(expected, bool):
            assert value == str(expected).lower(), field
        elif isinstance(expected, str):
            assert value == expected, field
        else:
            assert float(value) == expected, field
        checked += 1
    assert checked == len(defaults) - 1  # every field but dp, which is per algorithm
