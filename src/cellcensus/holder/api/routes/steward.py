"""Stewards' routes: users, scopes, budgets, policies, the approval queue, job diagnostics."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Path, Response

from cellcensus.holder.api import schemas
from cellcensus.holder.api.deps import Context, Steward
from cellcensus.holder.api.problems import ApiError, responses
from cellcensus.holder.api.routes.jobs import JobId, job_view
from cellcensus.holder.api.tokens import revoke_all
from cellcensus.holder.api.users import LastStewardError, Role, User, check_scopes
from cellcensus.holder.disclosure.ledger import Standing
from cellcensus.holder.enclave.jobs import JobStatus

router = APIRouter(tags=["steward"])
Username = Annotated[str, Path(pattern=schemas.USERNAME)]
PolicyKey = Annotated[str, Path(pattern=r"^(\*|[a-z][a-z0-9_]{0,63})$")]
COMMON = (401, 403, 422, 429)


def user_out(user: User) -> schemas.UserOut:
    """A user as the API shows it."""
    return schemas.UserOut(**user.to_dict())


def _require_user(ctx: Context, username: str) -> User:
    user = ctx.users.get(username)
    if user is None:
        raise ApiError(404, f"no user {username!r}")
    return user


@router.get("/users", response_model=schemas.UserList, responses=responses(*COMMON))
def list_users(ctx: Context, caller: Steward) -> schemas.UserList:
    """Every registered user."""
    return schemas.UserList(users=[user_out(user) for user in ctx.users.everyone()])


@router.post(
    "/users", status_code=201, response_model=schemas.UserOut, responses=responses(*COMMON, 409)
)
def create_user(ctx: Context, caller: Steward, body: schemas.UserCreate) -> schemas.UserOut:
    """Register an analyst, steward or auditor, who chooses their own password at first login.

    The steward knows the initial password, as after a reset: until the new user changes it,
    every route but `POST /auth/password` and `POST /auth/logout` answers 403.
    """
    if ctx.users.get(body.username) is not None:
        raise ApiError(409, f"user {body.username!r} already exists")
    user = ctx.users.add(
        username=body.username,
        role=Role(body.role),
        password=body.password,
        actor=caller.name,
        must_change_password=True,
    )
    return user_out(user)


@router.get("/users/{username}", response_model=schemas.UserOut, responses=responses(*COMMON, 404))
def get_user(ctx: Context, caller: Steward, username: Username) -> schemas.UserOut:
    """One user."""
    return user_out(_require_user(ctx, username))


@router.patch(
    "/users/{username}", response_model=schemas.UserOut, responses=responses(*COMMON, 404, 409)
)
def update_user(
    ctx: Context, caller: Steward, username: Username, body: schemas.UserPatch
) -> schemas.UserOut:
    """Activate or deactivate a user (revoking its tokens), or set its quotas.

    Deactivating the last active steward is refused (409): nobody could govern any more.
    """
    _require_user(ctx, username)
    changes = body.model_dump(exclude_none=True)
    try:
        user = ctx.users.update(username, actor=caller.name, **changes)
    except LastStewardError as error:
        raise ApiError(409, str(error)) from None
    if changes.get("active") is False:
        revoke_all(ctx.service.state, username, actor=caller.name)
        ctx.revocations.clear()
    return user_out(user)


@router.put(
    "/users/{username}/password",
    status_code=204,
    responses=responses(*COMMON, 404, 409),
)
def reset_password(
    ctx: Context, caller: Steward, username: Username, body: schemas.PasswordReset
) -> Response:
    """Set a new password for a user who lost theirs, revoking all its tokens.

    A steward's own password is changed with ``POST /auth/password``, which asks for the
    current one (409 here): a stolen steward token must not take over the account.
    """
    _require_user(ctx, username)
    if username == caller.name:
        raise ApiError(
            409, "change your own password with POST /auth/password, giving the current one"
        )
    ctx.users.reset_password(username, body.password, actor=caller.name)
    ctx.revocations.clear()
    return Response(status_code=204)


@router.put(
    "/users/{username}/scopes",
    response_model=schemas.UserOut,
    responses=responses(*COMMON, 404),
)
def set_scopes(
    ctx: Context, caller: Steward, username: Username, body: schemas.ScopesUpdate
) -> schemas.UserOut:
    """Replace a user's scopes (``ALGORITHM:LEVEL:PERIOD``, ``*`` for any).

    A scope naming an unknown algorithm or area level is refused (422); one of the project's
    levels the store has not allocated yet is allowed (its jobs are refused until it is).
    """
    _require_user(ctx, username)
    check_scopes(body.scopes, algorithms=ctx.service.catalogue.entries(), store=ctx.service.store)
    return user_out(ctx.users.set_scopes(username, body.scopes, actor=caller.name))


@router.put(
    "/users/{username}/budget",
    response_model=schemas.BudgetOut,
    responses=responses(*COMMON, 404),
)
def set_budget(
    ctx: Context, caller: Steward, username: Username, body: schemas.BudgetUpdate
) -> schemas.BudgetOut:
    """Set an analyst's total privacy budget for a project."""
    user = _require_user(ctx, username)
    if user.role is not Role.ANALYST:
        raise ApiError(422, f"{username} is a {user.role.value}; budgets are for analysts")
    epsilon, delta = ctx.service.set_budget(
        analyst=username,
        project=body.project,
        epsilon=body.epsilon,
        delta=body.delta,
        steward=caller.name,
    )
    return schemas.BudgetOut(project=body.project, epsilon_left=epsilon, delta_left=delta)


@router.get(
    "/users/{username}/budget",
    response_model=schemas.BudgetList,
    responses=responses(*COMMON, 404),
)
def get_budgets(ctx: Context, caller: Steward, username: Username) -> schemas.BudgetList:
    """An analyst's budget in each project: the total a steward set and what is left."""
    user = _require_user(ctx, username)
    if user.role is not Role.ANALYST:
        raise ApiError(422, f"{username} is a {user.role.value}; budgets are for analysts")
    return schemas.BudgetList(budgets=_budgets_of(ctx, username))


@router.get("/budgets", response_model=schemas.AnalystBudgetList, responses=responses(*COMMON))
def every_budget(ctx: Context, caller: Steward) -> schemas.AnalystBudgetList:
    """Every analyst's budget in each project, in one answer (by analyst, then project)."""
    analysts = {user.username for user in ctx.users.everyone() if user.role is Role.ANALYST}
    return schemas.AnalystBudgetList(
        budgets=[
            schemas.AnalystBudget(analyst=standing.analyst, **_status(standing).model_dump())
            for standing in ctx.service.budget_standings()
            if standing.analyst in analysts
        ]
    )


@router.get("/budgets/total", response_model=schemas.TotalBudget, responses=responses(*COMMON, 404))
def get_total_budget(ctx: Context, caller: Steward) -> schemas.TotalBudget:
    """The store-wide budget: what all analysts in all projects spend together, and its rest."""
    total = ctx.service.total_budget()
    if total is None:
        raise ApiError(
            404, "no store-wide privacy budget is set (each analyst's alone holds): PUT one"
        )
    return _total(total)


@router.put("/budgets/total", response_model=schemas.TotalBudget, responses=responses(*COMMON))
def set_total_budget(
    ctx: Context, caller: Steward, body: schemas.TotalBudgetUpdate
) -> schemas.TotalBudget:
    """Set the store-wide budget; set for the first time, it counts every charge made before.

    Releases of several analysts are of the same people: their privacy losses add up too.
    """
    standing = ctx.service.set_total_budget(
        epsilon=body.epsilon, delta=body.delta, steward=caller.name
    )
    return _total(standing)


def _total(standing: Standing) -> schemas.TotalBudget:
    return schemas.TotalBudget(
        epsilon_total=standing.total.epsilon,
        delta_total=standing.total.delta,
        epsilon_left=standing.left.epsilon,
        delta_left=standing.left.delta,
    )


def _budgets_of(ctx: Context, analyst: str) -> list[schemas.BudgetStatus]:
    """`analyst`'s budget in each project a steward set one in: the total and what is left."""
    return [_status(standing) for standing in ctx.service.budget_standings(analyst=analyst)]


def _status(standing: Standing) -> schemas.BudgetStatus:
    return schemas.BudgetStatus(
        project=standing.project,
        epsilon_total=standing.total.epsilon,
        delta_total=standing.total.delta,
        epsilon_left=standing.left.epsilon,
        delta_left=standing.left.delta,
    )


@router.get("/policies", response_model=schemas.PolicyList, responses=responses(*COMMON))
def list_policies(ctx: Context, caller: Steward) -> schemas.PolicyList:
    """The steward's stored changes to the default policies (``*``: for all without their own).

    `GET /policies/{algorithm}` gives the policy in force.
    """
    stored = ctx.service.policies.all()
    return schemas.PolicyList(
        policies=[
            schemas.PolicyOut(algorithm=name, **body) for name, body in sorted(stored.items())
        ]
    )


@router.get("/policies/{algorithm}", response_model=schemas.PolicyOut, responses=responses(*COMMON))
def get_policy(ctx: Context, caller: Steward, algorithm: PolicyKey) -> schemas.PolicyOut:
    """The policy in force for an algorithm: its default with the steward's changes."""
    _known_policy_key(ctx, algorithm)
    policy = ctx.service.policies.for_algorithm(algorithm)
    return schemas.PolicyOut(algorithm=algorithm, **policy.to_dict())


@router.put("/policies/{algorithm}", response_model=schemas.PolicyOut, responses=responses(*COMMON))
def set_policy(
    ctx: Context, caller: Steward, algorithm: PolicyKey, body: schemas.PolicyIn
) -> schemas.PolicyOut:
    """Change the release policy of an algorithm (``*``: of every algorithm without its own).

    The fields given change the algorithm's default; the others keep it, noise included
    (``"dp": null`` removes it). The answer is the policy now in force.
    """
    _known_policy_key(ctx, algorithm)
    changes = body.model_dump(exclude_unset=True)
    policy = ctx.service.policies.set(algorithm, changes, steward=caller.name)
    return schemas.PolicyOut(algorithm=algorithm, **policy.to_dict())


def _known_policy_key(ctx: Context, algorithm: str) -> None:
    """Refuse a policy for an algorithm the catalogue does not hold (a typo binds nothing)."""
    if algorithm != "*":
        ctx.service.catalogue.get(algorithm)


@router.get("/approvals", response_model=schemas.ApprovalList, responses=responses(*COMMON))
def approvals(ctx: Context, caller: Steward) -> schemas.ApprovalList:
    """Releases held for approval, with the checked output to review."""
    held = ctx.service.book.recent(status=JobStatus.AWAITING_APPROVAL, limit=1000)
    items = []
    for job in held:
        body = ctx.service.book.release_body(job.id)
        items.append(schemas.Approval(job=job_view(ctx, job), release=json.loads(body or "{}")))
    return schemas.ApprovalList(approvals=items)


@router.post(
    "/approvals/{job_id}", response_model=schemas.JobOut, responses=responses(*COMMON, 404, 409)
)
def decide(ctx: Context, caller: Steward, job_id: JobId, body: schemas.Decision) -> schemas.JobOut:
    """Approve (release) or reject a held release, with a reason."""
    job = ctx.service.book.get(job_id)
    if job is None:
        raise ApiError(404, f"no job {job_id}")
    if job.status is not JobStatus.AWAITING_APPROVAL:
        raise ApiError(409, f"job {job_id} is {job.status.value}, not awaiting approval")
    decided = ctx.service.decide(
        job_id, steward=caller.name, approve=body.approve, reason=body.reason
    )
    return job_view(ctx, decided)


@router.get(
    "/jobs/{job_id}/diagnostics",
    response_model=schemas.DiagnosticsOut,
    responses=responses(*COMMON, 404),
)
def job_diagnostics(ctx: Context, caller: Steward, job_id: JobId) -> schemas.DiagnosticsOut:
    """A failed job's traceback or stderr tail (its audit entry holds only their hash).

    Stewards only: it may quote what the job read. 404 when the job has none, or a store
    purge deleted them.
    """
    found = ctx.service.diagnostics.get(job_id)
    if found is None:
        raise ApiError(404, f"no diagnostics of job {job_id} (none recorded, or purged)")
    return schemas.DiagnosticsOut(**asdict(found))
