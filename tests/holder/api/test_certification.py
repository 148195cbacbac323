"""The certification workflow: submit -> draft with hash -> conformance -> certify -> run."""

from __future__ import annotations

import hashlib

import pytest

pytestmark = pytest.mark.slow

MODULE = '''
"""First cell: each device counted once, in the area of the smallest cell id it used."""
from pydantic import Field

from cellcensus.holder.algorithms.base import (
    AREA_KEY, Algorithm, Certification, Manifest, Parameters,
)


class FirstCellParameters(Parameters):
    min_events: int = Field(default=1, ge=1, le=1000, description="Least events seen.")


def compute(tables, params):
    events = tables.events
    seen = events.group_by("device_id").agg(cell_id=events.cell_id.min(), n=events.count())
    seen = seen.filter(seen.n >= params.min_events)
    located = seen.join(tables.allocation, "cell_id")
    return located.group_by("area_code").agg(device_count=located.weight.sum())


first_cell = Algorithm(
    manifest=Manifest(
        name="first_cell",
        version="0.1.0",
        certification=Certification.DRAFT,
        summary="Devices per area of their smallest cell id.",
        parameters=FirstCellParameters,
        keys=(AREA_KEY,),
        privacy_unit="device over the period",
        contribution_bound=1.0,
        reference="A test of the certification workflow.",
    ),
    compute=compute,
)
'''
BAD = MODULE.replace(
    "agg(device_count=located.weight.sum())", 'agg(device_count=located.n.sum().cast("float64"))'
).replace('"first_cell"', '"event_cell"')


def test_submit_check_certify_then_run(service):
    alice, steward = service.auth("alice"), service.auth("steward")
    post = service.client.post
    draft = post("/algorithms/submissions", json={"source": MODULE}, headers=alice).json()
    assert draft["status"] == "draft"
    assert draft["sha256"] == hashlib.sha256(MODULE.encode()).hexdigest()
    job = {"algorithm": "first_cell", "parameters": {}}
    assert post("/jobs", json=job, headers=alice).status_code == 422  # not runnable yet
    early = post(f"/algorithms/submissions/{draft['id']}/certify", headers=steward)
    assert early.status_code == 422 and "conformance first" in early.json()["detail"]
    assert (
        post(f"/algorithms/submissions/{draft['id']}/conformance", headers=alice).status_code == 403
    )
    checked = post(f"/algorithms/submissions/{draft['id']}/conformance", headers=steward).json()
    assert checked["status"] == "conformance_passed", checked["report"]
    certified = post(f"/algorithms/submissions/{draft['id']}/certify", headers=steward).json()
    assert certified["status"] == "certified" and certified["certified_by"] == "steward"
    entry = service.client.get("/algorithms/first_cell").json()
    assert entry["code_hash"] == draft["sha256"] and entry["origin"] == "submission"
    service.client.put("/users/alice/scopes", json={"scopes": ["first_cell:*:*"]}, headers=steward)
    alice = service.auth("alice")
    submitted = post("/jobs", json=job, headers=alice)
    assert submitted.status_code == 202, submitted.text
    done = service.wait(submitted.json()["id"], alice)
    assert done["status"] == "released", done
    assert done["code_hash"] == draft["sha256"]


def test_failing_submission_cannot_be_certified(service):
    alice, steward = service.auth("alice"), service.auth("steward")
    post = service.client.post
    draft = post("/algorithms/submissions", json={"source": BAD}, headers=alice).json()
    checked = post(f"/algorithms/submissions/{draft['id']}/conformance", headers=steward).json()
    assert checked["status"] == "conformance_failed"
    failed = [check for check in checked["report"]["checks"] if not check["passed"]]
    assert failed and failed[0]["name"] == "contribution_bound"
    refused = post(f"/algorithms/submissions/{draft['id']}/certify", headers=steward)
    assert refused.status_code == 422


def test_submissions_are_checked_without_running_them(service):
    alice = service.auth("alice")
    post = service.client.post
    broken = post("/algorithms/submissions", json={"source": "def f(:\n"}, headers=alice)
    assert broken.status_code == 422 and "line 1" in broken.json()["detail"]
    nameless = post(
        "/algorithms/submissions", json={"source": "import os\nos.system('x')\n"}, headers=alice
    )
    assert nameless.status_code == 422 and "Manifest" in nameless.json()["detail"]
    builtin = MODULE.replace('"first_cell"', '"usual_residence"')
    taken = post("/algorithms/submissions", json={"source": builtin}, headers=alice)
    assert taken.status_code == 422 and "built-in" in taken.json()["detail"]
