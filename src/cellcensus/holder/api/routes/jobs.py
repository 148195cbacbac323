"""Analysts' routes: submit a job, poll it, fetch its result; and `/me`, who the caller is."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Response
from fastapi.concurrency import run_in_threadpool

from cellcensus.holder.api import schemas
from cellcensus.holder.api.deps import (
    Analyst,
    AnalystOrSteward,
    Caller,
    Context,
    Principal,
    ServiceContext,
)
from cellcensus.holder.api.formats import (
    MEDIA_TYPES,
    NoGeoJSONError,
    ResultFormat,
    area_geometries,
    negotiate,
    render,
)
from cellcensus.holder.api.limits import refuse_beyond_daily_quota, utc_midnight
from cellcensus.holder.api.problems import ApiError, responses
from cellcensus.holder.api.users import Role, Scope
from cellcensus.holder.enclave.jobs import Job, JobStatus
from cellcensus.holder.enclave.service import JobRequest
from cellcensus.holder.store.layout import without_store_path

router = APIRouter(tags=["jobs"])
JobId = Annotated[str, Path(pattern=schemas.JOB_ID, description="Job id (32 hex digits).")]


def job_view(ctx: ServiceContext, job: Job) -> schemas.JobOut:
    """A job as the API shows it to its analyst or a steward, its error without the store's path.

    Its ``formats`` are those stored with its release when the release was made
    (`offered_formats`, the rule `render` applies): showing a job reads no release.
    """
    links = schemas.JobLinks(self=f"/jobs/{job.id}")
    if job.status is JobStatus.RELEASED:
        links.result = f"/jobs/{job.id}/result"
    return schemas.JobOut(
        id=job.id,
        analyst=job.analyst,
        status=job.status.value,
        stage=job.stage,
        algorithm=job.algorithm,
        version=job.version,
        code_hash=job.code_hash,
        level=job.level,
        project=job.project,
        parameters=job.parameters,
        epsilon=job.epsilon,
        delta=job.delta,
        cached=job.cached_from is not None,
        cached_from=job.cached_from,
        error=None if job.error is None else without_store_path(job.error, ctx.settings.store),
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        formats=list(job.formats),
        links=links,
    )


@router.post(
    "/jobs",
    status_code=202,
    response_model=schemas.JobOut,
    responses=responses(401, 403, 413, 422, 429),
)
def submit_job(
    ctx: Context, caller: Analyst, body: schemas.JobCreate, response: Response
) -> schemas.JobOut:
    """Submit a job: 202 with Location of the job to poll (identical requests reuse work)."""
    request = JobRequest(
        algorithm=body.algorithm, parameters=body.parameters, level=body.level, project=body.project
    )
    # Out of scope whatever the period: said before its parameters are judged.
    _check_scope(ctx, caller, algorithm=body.algorithm, level=body.level)
    try:
        new = ctx.service.prepare(analyst=caller.name, request=request)
    except Exception as error:
        _audit_refusal(ctx, caller, body, str(error))
        raise
    _check_scope(ctx, caller, algorithm=new.algorithm, level=new.level, period=new.period)
    _check_quota(ctx, caller)
    submission = ctx.service.enqueue(new)
    if submission.job.status is JobStatus.QUEUED:
        ctx.pool.wake()
    response.headers["Location"] = f"/jobs/{submission.job.id}"
    return job_view(ctx, submission.job)


def _audit_refusal(ctx: Context, caller: Principal, body: schemas.JobCreate, reason: str) -> None:
    ctx.service.audit_refusal(
        analyst=caller.name, algorithm=body.algorithm, reason=reason, level=body.level
    )


def _check_scope(
    ctx: Context,
    caller: Principal,
    *,
    algorithm: str,
    level: str,
    period: tuple[dt.date, dt.date] | None = None,
) -> None:
    """Refuse a job no scope of the token and of the user allows (None: over any period).

    The period is the one `prepare` worked out: the store's days are not listed again.
    """
    in_token = any(
        Scope.parse(text).allows(algorithm=algorithm, level=level, period=period)
        for text in caller.claims.scopes
    )
    if in_token and ctx.users.allowed(caller.user, algorithm=algorithm, level=level, period=period):
        return
    span = "*" if period is None else f"{period[0]}..{period[1]}"
    ctx.service.audit.append(
        actor=caller.name,
        action="job.forbidden",
        target=f"algorithm:{algorithm}",
        details={"level": level, "period": span},
    )
    raise ApiError(
        403, f"your scopes do not allow {algorithm}:{level}:{span}; ask the steward for this scope"
    )


def _jobs_per_day(ctx: Context, caller: Principal) -> int:
    """The caller's own daily quota of jobs (0: none), else the service's."""
    limit = caller.user.jobs_per_day
    return ctx.settings.jobs_per_day if limit is None else limit


def _check_quota(ctx: Context, caller: Principal) -> None:
    since = utc_midnight().isoformat(timespec="microseconds")
    used = ctx.service.book.count_since(analyst=caller.name, since=since)
    refuse_beyond_daily_quota(used=used, limit=_jobs_per_day(ctx, caller), what="jobs")


MAX_PAGE = 1000
"""The most jobs `GET /jobs` answers at once."""


@router.get("/jobs", response_model=schemas.JobList, responses=responses(401, 403, 422, 429))
def list_jobs(
    ctx: Context,
    caller: AnalystOrSteward,
    response: Response,
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE, description=f"Jobs per page, 1 to {MAX_PAGE}.")
    ] = 100,
    before: Annotated[
        str | None,
        Query(
            pattern=schemas.JOB_ID,
            description="Only jobs submitted before this one (the last job of the previous "
            "page): what links.next of a page asks for.",
        ),
    ] = None,
) -> schemas.JobList:
    """Your jobs, newest first, a page at a time (a steward sees everyone's).

    A page holds at most `limit` jobs; ``links.next`` (also in the ``Link`` header,
    ``rel="next"``) is the page of the older ones, null on the last page. Pages follow from a
    job rather than an offset, so a job submitted meanwhile shifts nothing.
    """
    analyst = None if caller.user.role is Role.STEWARD else caller.name
    after = None if before is None else _page_start(ctx, caller, before)
    found = ctx.service.book.recent(analyst=analyst, limit=limit + 1, before=after)
    page = found[:limit]
    here = f"/jobs?limit={limit}" + ("" if before is None else f"&before={before}")
    links = schemas.JobListLinks(self=here)
    if len(found) > limit:
        links.next = f"/jobs?limit={limit}&before={page[-1].id}"
        response.headers["Link"] = f'<{links.next}>; rel="next"'
    return schemas.JobList(jobs=[job_view(ctx, job) for job in page], links=links)


def _page_start(ctx: Context, caller: Principal, before: str) -> Job:
    """The job a page starts before; 422 for one the caller may not see (or none)."""
    job = ctx.service.book.get(before)
    if job is None or (caller.user.role is not Role.STEWARD and job.analyst != caller.name):
        raise ApiError(
            422,
            f"before: no job {before} of yours to list the jobs before; take it from the "
            "links.next of a page of GET /jobs",
        )
    return job


def _visible_job(ctx: Context, caller: Principal, job_id: str) -> Job:
    job = ctx.service.book.get(job_id)
    if job is None or (caller.user.role is not Role.STEWARD and job.analyst != caller.name):
        raise ApiError(404, f"no job {job_id} of yours")
    return job


@router.get(
    "/jobs/{job_id}", response_model=schemas.JobOut, responses=responses(401, 403, 404, 422, 429)
)
def get_job(ctx: Context, caller: AnalystOrSteward, job_id: JobId) -> schemas.JobOut:
    """A job's status and stage; ``links.result`` and ``formats`` once it is released."""
    return job_view(ctx, _visible_job(ctx, caller, job_id))


@router.get(
    "/jobs/{job_id}/result",
    responses={
        200: {
            "description": "The release in the requested format.",
            "content": {media: {} for media in MEDIA_TYPES.values()},
        },
        **responses(401, 403, 404, 406, 409, 422, 429),
    },
)
async def get_result(
    ctx: Context,
    caller: Analyst,
    job_id: JobId,
    format: Annotated[
        ResultFormat | None, Query(description="Default: from the Accept header.")
    ] = None,
    accept: Annotated[str, Header()] = "application/json",
) -> Response:
    """The released table with its provenance: JSON, CSV, GeoJSON or Parquet.

    GeoJSON places a table of areas on the areas' geometries and an origin-destination table
    on lines between area centroids; a table without an area column answers 406.

    Async: a finished job and its release are answered from memory once read (they never
    change), so serving a cached result blocks nothing.
    """
    job = _visible_job(ctx, caller, job_id)
    if job.status in (JobStatus.FAILED, JobStatus.REJECTED):
        why = without_store_path(job.error, ctx.settings.store) if job.error else job.stage
        raise ApiError(
            409,
            f"job {job.id} is {job.status.value} and will never be released: {why}",
        )
    if job.status is not JobStatus.RELEASED:
        raise ApiError(
            409,
            f"job {job.id} is {job.status.value} ({job.stage}); nothing to fetch "
            f"yet: poll GET /jobs/{job.id}",
        )
    body = ctx.service.release_of(job)
    chosen = negotiate(format, accept)
    geometries = (
        area_geometries(ctx.settings.store, job.level) if chosen is ResultFormat.GEOJSON else None
    )
    if chosen is ResultFormat.JSON:  # served as stored: no work to move off the event loop
        content, headers = render(body, chosen)
    else:
        try:
            content, headers = await run_in_threadpool(render, body, chosen, geometries=geometries)
        except NoGeoJSONError as error:
            raise ApiError(406, f"job {job.id}: {error}") from None
    headers["Content-Disposition"] = f'attachment; filename="{job.id}.{chosen.value}"'
    return Response(content=content, media_type=MEDIA_TYPES[chosen], headers=headers)


@router.get("/me", response_model=schemas.Me, responses=responses(401, 403, 429))
def me(ctx: Context, caller: Caller) -> schemas.Me:
    """Who you are: your name and role; an analyst's scopes, budget left and quotas too.

    Every role may ask; a user whose password a steward set is answered 403 until they
    choose their own, as on every route but the account's.
    """
    if caller.user.role is not Role.ANALYST:
        return schemas.Me(username=caller.name, role=caller.user.role.value)
    # Every project the steward gave a budget in, whether or not a job ran there yet: no
    # other (a project without a budget would only invite a refused job).
    budget = [
        schemas.BudgetOut(
            project=standing.project,
            epsilon_left=standing.left.epsilon,
            delta_left=standing.left.delta,
        )
        for standing in ctx.service.budget_standings(analyst=caller.name)
    ]
    midnight = utc_midnight()
    quota = schemas.QuotaOut(
        jobs_per_day=_jobs_per_day(ctx, caller),
        jobs_today=ctx.service.book.count_since(
            analyst=caller.name, since=midnight.isoformat(timespec="microseconds")
        ),
        requests_per_minute=caller.user.requests_per_minute or ctx.settings.requests_per_minute,
    )
    return schemas.Me(
        username=caller.name,
        role=caller.user.role.value,
        scopes=list(caller.user.scopes),
        budget=budget,
        quota=quota,
    )
