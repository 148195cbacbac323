"""The certification workflow: analysts submit modules, stewards test and certify them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from cellcensus.holder.api import schemas
from cellcensus.holder.api.deps import Analyst, AnalystOrSteward, Context, Principal, Steward
from cellcensus.holder.api.limits import refuse_beyond_daily_quota, utc_midnight
from cellcensus.holder.api.problems import ApiError, responses
from cellcensus.holder.api.users import Role
from cellcensus.holder.enclave.certification import AlgorithmSubmission
from cellcensus.holder.enclave.conformance import analyst_report
from cellcensus.holder.enclave.worker import run_conformance as conformance_in_worker

router = APIRouter(prefix="/algorithms/submissions", tags=["certification"])
SubmissionId = Annotated[str, Path(pattern=schemas.JOB_ID)]
COMMON = (401, 403, 422, 429)


def submission_out(submission: AlgorithmSubmission, caller: Principal) -> schemas.SubmissionOut:
    """A submission as the API shows it to `caller` (analysts: the report's outline only)."""
    values = submission.to_dict()
    if caller.user.role is not Role.STEWARD and values["report"] is not None:
        values["report"] = analyst_report(values["report"])
    return schemas.SubmissionOut(**values)


def _visible(ctx: Context, caller: Principal, submission_id: str) -> AlgorithmSubmission:
    try:
        found = ctx.service.submissions.get(submission_id)
    except LookupError:
        raise ApiError(404, f"no algorithm submission {submission_id}") from None
    if caller.user.role is not Role.STEWARD and found.submitted_by != caller.name:
        raise ApiError(404, f"no algorithm submission {submission_id} of yours")
    return found


@router.post(
    "",
    status_code=201,
    response_model=schemas.SubmissionOut,
    responses=responses(*COMMON, 413),
)
def submit_algorithm(
    ctx: Context, caller: Analyst, body: schemas.SubmissionIn
) -> schemas.SubmissionOut:
    """Submit a Python module in the algorithm form; it is stored as a draft with its hash."""
    used = ctx.service.submissions.count_since(
        analyst=caller.name, since=utc_midnight().isoformat(timespec="microseconds")
    )
    limit = ctx.settings.submissions_per_day
    refuse_beyond_daily_quota(used=used, limit=limit, what="algorithm submissions")
    reserved = {
        name
        for name, entry in ctx.service.catalogue.entries().items()
        if entry.submission_id is None
    }
    found = ctx.service.submissions.submit(
        source=body.source, analyst=caller.name, reserved=reserved
    )
    return submission_out(found, caller)


@router.get("", response_model=schemas.SubmissionList, responses=responses(*COMMON))
def list_submissions(ctx: Context, caller: AnalystOrSteward) -> schemas.SubmissionList:
    """Your submissions (a steward sees all), newest first."""
    mine = None if caller.user.role is Role.STEWARD else caller.name
    found = ctx.service.submissions.recent(submitted_by=mine)
    return schemas.SubmissionList(submissions=[submission_out(item, caller) for item in found])


@router.get(
    "/{submission_id}", response_model=schemas.SubmissionOut, responses=responses(*COMMON, 404)
)
def get_submission(
    ctx: Context, caller: AnalystOrSteward, submission_id: SubmissionId
) -> schemas.SubmissionOut:
    """One submission with its conformance report."""
    return submission_out(_visible(ctx, caller, submission_id), caller)


@router.post(
    "/{submission_id}/conformance",
    response_model=schemas.SubmissionOut,
    responses=responses(*COMMON, 404),
)
def run_conformance(
    ctx: Context, caller: Steward, submission_id: SubmissionId
) -> schemas.SubmissionOut:
    """Run the conformance suite on the submission, in a worker subprocess with limits.

    The submitted code never runs in the service: a submission that hangs, exhausts its
    memory or kills its interpreter ends as ``conformance_failed`` with the reason in the
    report's ``error``.
    """
    submission = _visible(ctx, caller, submission_id)
    report = conformance_in_worker(
        ctx.service.submissions.source(submission_id),
        sha256=submission.sha256,
        memory_mb=ctx.settings.job_memory_mb,
        timeout_s=ctx.settings.job_timeout_s,
    )
    found = ctx.service.submissions.record_conformance(
        submission_id, report=report, steward=caller.name
    )
    return submission_out(found, caller)


@router.post(
    "/{submission_id}/certify",
    response_model=schemas.SubmissionOut,
    responses=responses(*COMMON, 404),
)
def certify(ctx: Context, caller: Steward, submission_id: SubmissionId) -> schemas.SubmissionOut:
    """Certify the exact hash that passed conformance; only that code runs afterwards."""
    _visible(ctx, caller, submission_id)
    certified = ctx.service.submissions.certify(submission_id, steward=caller.name)
    return submission_out(certified, caller)
