"""What protects a submission's jobs: its recorded manifest, and the checks of its output."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pandas as pd
import pytest

from cellcensus.errors import CellcensusError
from cellcensus.holder.algorithms.base import Key, KeyDomain
from cellcensus.holder.enclave.certification import Submissions
from cellcensus.holder.enclave.compute import checked_output
from cellcensus.holder.enclave.manifests import (
    BOUND_FOR_REFUSED,
    FINISH_REFUSED,
    RecordedManifest,
)
from cellcensus.holder.enclave.state import submissions as submissions_table

DESCRIBED: dict[str, Any] = {
    "name": "first_cell",
    "version": "0.1.0",
    "keys": [
        {"name": "area_code", "domain": "area", "values": []},
        {"name": "slot", "domain": "slot", "values": []},
    ],
    "unit_keys": ["slot"],
    "contribution_bound": 1.0,
    "parameters_schema": {"properties": {"slot_minutes": {"default": 720}}},
    "finish": False,
    "bound_for": False,
}


def recorded(**changes: Any) -> RecordedManifest:
    return RecordedManifest.from_dict({**DESCRIBED, **changes}, name="first_cell", version="0.1.0")


def test_a_described_manifest_is_recorded_as_data():
    manifest = recorded()
    assert manifest.keys == (Key("area_code", KeyDomain.AREA), Key("slot", KeyDomain.SLOT))
    assert manifest.outputs == ("area_code", "slot", "device_count")
    again = RecordedManifest.from_dict(manifest.to_dict(), name="first_cell", version="0.1.0")
    assert again == manifest


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"finish": True}, "finish step"),
        ({"bound_for": True}, "bound_for callable"),
        ({"name": "other"}, "another algorithm"),
        ({"contribution_bound": math.nan}, "finite"),
        ({"contribution_bound": 0}, "above 0"),
        ({"contribution_bound": True}, "must be a number"),
        ({"keys": []}, "at least one"),
        ({"keys": [{"name": "area_code", "domain": "anywhere"}]}, "no known domain"),
        ({"keys": [{"name": "device_count", "domain": "area"}]}, "lowercase"),
        ({"keys": [{"name": "kind", "domain": "category", "values": []}]}, "distinct values"),
        ({"unit_keys": ["date"]}, "among its keys"),
    ],
)
def test_a_manifest_the_protection_cannot_use_is_refused(changes, reason):
    with pytest.raises(CellcensusError, match=reason):
        recorded(**changes)


DOMAINS = {"area_code": ["11001", "11002"], "slot": [0, 1]}


def output(**columns: Any) -> pd.DataFrame:
    base = {"area_code": ["11001", "11002"], "slot": [0, 1], "device_count": [3.0, 4.0]}
    return pd.DataFrame({**base, **columns})


def test_an_output_within_its_domains_is_kept():
    checked = checked_output(output(), domains=DOMAINS)
    assert list(checked.columns) == ["area_code", "slot", "device_count"]
    assert checked["device_count"].tolist() == [3.0, 4.0]


DATES = {"local_date": [dt.date(2011, 3, 7), dt.date(2011, 3, 8)]}


@pytest.mark.parametrize(
    "values", [[dt.date(2011, 3, 8)], pd.to_datetime(["2011-03-08"]).astype("datetime64[s]")]
)
def test_a_date_key_may_be_dates_or_timestamps_at_midnight(values):
    table = pd.DataFrame({"local_date": values, "device_count": [2]})
    checked = checked_output(table, domains=DATES)
    assert checked["local_date"].tolist() == [dt.date(2011, 3, 8)]


def test_a_date_key_with_a_time_is_refused():
    table = pd.DataFrame({"local_date": pd.to_datetime(["2011-03-08 10:00"]), "device_count": [2]})
    with pytest.raises(CellcensusError, match="times that are not dates"):
        checked_output(table, domains=DATES)


@pytest.mark.parametrize(
    ("table", "reason"),
    [
        (output(secret_column=[1, 2]), "1 column\\(s\\) outside its manifest"),
        (output().drop(columns="slot"), "lacks column\\(s\\) \\['slot'\\]"),
        (output(area_code=["11001", "99999"]), "1 area_code value\\(s\\) outside"),
        (output(slot=[0.0, 1.0]), "slot is not of its domain's type \\(int\\)"),
        (output(slot=[0, 7]), "1 slot value\\(s\\) outside"),
        (output(area_code=["11001", "11001"], slot=[0, 0]), "repeats key combinations"),
        (output(device_count=[-1.0, 2.0]), "negative device_count in 1 row"),
        (output(device_count=[math.inf, math.nan]), "in 2 row"),
        (output(device_count=["3", "4"]), "not a number column"),
        (output(area_code=[11001, 11002]), "area_code is not of its domain's type"),
        (output(area_code=["11001", None]), "area_code has 1 value\\(s\\) of another type"),
    ],
)
def test_an_output_off_its_manifest_is_refused_without_naming_its_keys(table, reason):
    with pytest.raises(CellcensusError, match=reason) as refused:
        checked_output(table, domains=DOMAINS)
    assert "99999" not in str(refused.value) and "secret" not in str(refused.value)


SOURCE = """
from cellcensus.holder.algorithms.base import AREA_KEY, Algorithm, Manifest

first_cell = Algorithm(
    manifest=Manifest(name="first_cell", version="0.1.0", keys=(AREA_KEY,)),
    compute=None,
)
"""


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (SOURCE.replace("compute=None,", "compute=None, finish=None,"), FINISH_REFUSED),
        (SOURCE.replace("keys=(AREA_KEY,)", "keys=(), bound_for=len"), BOUND_FOR_REFUSED),
    ],
)
def test_a_finish_step_or_a_callable_bound_is_refused_at_submission(state, source, reason):
    with pytest.raises(CellcensusError) as refused:
        Submissions(state).submit(source=source, analyst="alice", reserved=set())
    assert reason in str(refused.value)


def test_a_finish_step_the_conformance_run_saw_is_refused_at_certification(state):
    submissions = Submissions(state)
    draft = submissions.submit(source=SOURCE, analyst="alice", reserved=set())
    report = {"sha256": draft.sha256, "passed": True, "manifest": {**DESCRIBED, "finish": True}}
    submissions.record_conformance(draft.id, report=report, steward="steward")
    with pytest.raises(CellcensusError, match="finish step"):
        submissions.certify(draft.id, steward="steward")
    assert submissions.get(draft.id).status == "conformance_passed"


def test_certification_records_the_manifest(state):
    submissions = Submissions(state)
    draft = submissions.submit(source=SOURCE, analyst="alice", reserved=set())
    report = {"sha256": draft.sha256, "passed": True, "manifest": DESCRIBED}
    submissions.record_conformance(draft.id, report=report, steward="steward")
    submissions.certify(draft.id, steward="steward")
    assert submissions.manifest(draft.id) == recorded()


def test_a_submission_certified_before_manifests_were_recorded_uses_its_report(state):
    submissions = Submissions(state)
    draft = submissions.submit(source=SOURCE, analyst="alice", reserved=set())
    report = {"sha256": draft.sha256, "passed": True, "manifest": DESCRIBED}
    submissions.record_conformance(draft.id, report=report, steward="steward")
    submissions.certify(draft.id, steward="steward")
    with state.write() as conn:
        conn.execute(submissions_table.update().values(manifest=None))
    assert submissions.manifest(draft.id) == recorded()
