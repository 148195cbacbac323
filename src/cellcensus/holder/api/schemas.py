"""Request and response bodies of the API (they generate its OpenAPI schema)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

IDENTIFIER = r"^[a-z][a-z0-9_]{0,63}$"
LEVEL = r"^[a-z][a-z0-9_]{0,31}$"
PROJECT = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
USERNAME = r"^[a-z][a-z0-9_.-]{1,63}$"
JOB_ID = r"^[0-9a-f]{32}$"


def _encodable(text: str) -> str:
    """Refuse text that cannot be stored as UTF-8 (lone surrogates) or holds NUL."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    if "\x00" in text:
        raise ValueError("text must not contain NUL characters")
    return text


Text = Annotated[str, AfterValidator(_encodable)]


class Strict(BaseModel):
    """Base of request bodies: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class Health(BaseModel):
    """Liveness and versions."""

    status: str
    version: str
    schema_version: int


class LoginRequest(Strict):
    """Credentials of a registered user."""

    username: Text = Field(max_length=64)
    password: Text = Field(max_length=256)


class PasswordGrant(LoginRequest):
    """OAuth 2.0's resource owner password credentials grant (RFC 6749 section 4.3.2).

    The same credentials, sent as ``application/x-www-form-urlencoded`` as OAuth 2.0 clients
    do. Other parameters (``client_id``, ``client_secret``) are ignored: the service has no
    registered clients. A ``scope`` is refused (``invalid_scope``): a token carries every scope
    its user was granted.
    """

    model_config = ConfigDict(extra="ignore")

    grant_type: Literal["password"]


OAuthErrorCode = Literal[
    "invalid_request", "unsupported_grant_type", "invalid_scope", "invalid_grant"
]


class OAuthError(BaseModel):
    """How POST /auth/token refuses a password grant (RFC 6749 section 5.2)."""

    error: OAuthErrorCode
    error_description: str = Field(description="What went wrong and what to do about it.")


class TokenResponse(BaseModel):
    """A short-lived bearer token."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds until the token expires.")
    expires_at: int = Field(
        description="When the token expires, in Unix seconds (UTC): the token's `exp`, as "
        "OAuth 2.0 clients read `expires_at`."
    )
    username: str = Field(description="The user the token is for.")
    role: str
    scopes: list[str]
    must_change_password: bool = Field(
        default=False,
        description="A steward set this password: every route but POST /auth/password and "
        "POST /auth/logout answers 403 until the user chooses their own.",
    )


class JobCreate(Strict):
    """A job request."""

    algorithm: str = Field(pattern=IDENTIFIER, description="Catalogue algorithm name.")
    parameters: dict[str, Any] = Field(default_factory=dict, description="Algorithm parameters.")
    level: str = Field(default="municipality", pattern=LEVEL, description="Area level.")
    project: str = Field(default="default", pattern=PROJECT, description="Budget account.")


class JobLinks(BaseModel):
    """Where to go next."""

    self: str
    result: str | None = None


class JobOut(BaseModel):
    """A job as its analyst (or a steward) sees it."""

    id: str
    analyst: str
    status: str
    stage: str
    algorithm: str
    version: str
    code_hash: str
    level: str
    project: str
    parameters: dict[str, Any]
    epsilon: float
    delta: float
    cached: bool
    cached_from: str | None
    error: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    formats: list[str] = Field(
        default_factory=list,
        description="The formats GET /jobs/{id}/result serves once the job is released "
        "(json, csv, parquet, and geojson where the table has an area column); empty before.",
    )
    links: JobLinks


class JobListLinks(BaseModel):
    """This page, and the next (older) one while there is one."""

    self: str = Field(description="This page.")
    next: str | None = Field(
        default=None,
        description="The page of the jobs submitted before the last one on this page; null "
        "on the last page.",
    )


class JobList(BaseModel):
    """A page of jobs, newest first."""

    jobs: list[JobOut]
    links: JobListLinks


class AlgorithmOut(BaseModel):
    """A runnable algorithm of the catalogue."""

    name: str
    version: str
    certification: str
    code_hash: str
    summary: str
    outputs: list[str]
    parameters_schema: dict[str, Any]
    origin: str


class Catalogue(BaseModel):
    """The catalogue and the area levels of the store."""

    algorithms: list[AlgorithmOut]
    levels: list[str]


def _without_float_dust(value: float) -> float:
    """12 significant digits: 1 - 0.4 - 0.4 is shown 0.2, not 0.19999999999999996."""
    return float(f"{value:.12g}")


class BudgetOut(BaseModel):
    """Privacy budget left in one project (the ledger's own sums are exact to its tolerance)."""

    project: str
    epsilon_left: Annotated[float, AfterValidator(_without_float_dust)]
    delta_left: Annotated[float, AfterValidator(_without_float_dust)]


class QuotaOut(BaseModel):
    """Quotas and what is used of them."""

    jobs_per_day: int
    jobs_today: int
    requests_per_minute: int


class Me(BaseModel):
    """The caller: name and role; an analyst's scopes, budget and quotas too."""

    username: str
    role: str
    scopes: list[str] | None = Field(
        default=None, description="An analyst's scopes (null for a steward or an auditor)."
    )
    budget: list[BudgetOut] | None = Field(
        default=None, description="An analyst's budget left per project (null for others)."
    )
    quota: QuotaOut | None = Field(
        default=None, description="An analyst's quotas and their use (null for others)."
    )


class UserCreate(Strict):
    """A new user."""

    username: str = Field(pattern=USERNAME)
    role: str = Field(pattern=r"^(analyst|steward|auditor)$")
    password: Text = Field(min_length=12, max_length=256)


class PasswordChange(Strict):
    """The caller's current password and the new one (the rules of a new user's)."""

    current_password: Text = Field(max_length=256)
    new_password: Text = Field(min_length=12, max_length=256)


class PasswordReset(Strict):
    """A user's new password, set by a steward (the rules of a new user's)."""

    password: Text = Field(min_length=12, max_length=256)


class UserPatch(Strict):
    """Changes to a user (omitted fields stay)."""

    active: bool | None = None
    jobs_per_day: int | None = Field(default=None, ge=0, le=100000)
    requests_per_minute: int | None = Field(default=None, ge=1, le=100000)


class UserOut(BaseModel):
    """A registered user."""

    username: str
    role: str
    active: bool
    created_at: str
    scopes: list[str]
    jobs_per_day: int | None
    requests_per_minute: int | None
    must_change_password: bool = False


class UserList(BaseModel):
    """Every user."""

    users: list[UserOut]


class ScopesUpdate(Strict):
    """The complete new list of scopes of a user."""

    scopes: list[Annotated[str, Field(max_length=200)]] = Field(max_length=200)


class BudgetUpdate(Strict):
    """A project's total privacy budget for one analyst."""

    project: str = Field(default="default", pattern=PROJECT)
    epsilon: float = Field(ge=0, le=1000)
    delta: float = Field(default=0.0, ge=0, le=1)


class BudgetStatus(BudgetOut):
    """A project's total privacy budget for one analyst and what is left of it."""

    epsilon_total: float
    delta_total: float


class TotalBudgetUpdate(Strict):
    """The store-wide privacy budget: what all analysts in all projects spend together."""

    epsilon: float = Field(ge=0, le=1000)
    delta: float = Field(default=0.0, ge=0, le=1)


class TotalBudget(BaseModel):
    """The store-wide privacy budget and what is left of it."""

    epsilon_total: float
    delta_total: float
    epsilon_left: Annotated[float, AfterValidator(_without_float_dust)]
    delta_left: Annotated[float, AfterValidator(_without_float_dust)]


class BudgetList(BaseModel):
    """An analyst's budgets, one per project a steward set one in, by project."""

    budgets: list[BudgetStatus]


class AnalystBudget(BudgetStatus):
    """One analyst's total privacy budget in one project and what is left of it."""

    analyst: str


class AnalystBudgetList(BaseModel):
    """Every analyst's budgets, by analyst, then project (analysts without one: absent)."""

    budgets: list[AnalystBudget]


class PolicyIn(Strict):
    """Changes to an algorithm's default release policy.

    Fields left out keep the default; ``disclosure.dp`` merges field by field, and ``null``
    removes the noise.
    """

    disclosure: dict[str, Any] = Field(default_factory=dict)
    require_approval: bool = False
    allowed_certifications: list[str] = Field(default_factory=lambda: ["certified"], max_length=3)


class PolicyOut(BaseModel):
    """A release policy in force (`/policies/{algorithm}`), or stored changes (`/policies`)."""

    algorithm: str
    disclosure: dict[str, Any]
    require_approval: bool
    allowed_certifications: list[str]


class PolicyList(BaseModel):
    """Every stored policy; ``*`` applies where no algorithm has its own."""

    policies: list[PolicyOut]


class Decision(Strict):
    """The steward's decision on a held release."""

    approve: bool
    reason: Text = Field(min_length=1, max_length=2000)


class Approval(BaseModel):
    """A held release and the output the steward checks."""

    job: JobOut
    release: dict[str, Any]


class ApprovalList(BaseModel):
    """Releases waiting for the steward."""

    approvals: list[Approval]


class DiagnosticsOut(BaseModel):
    """A failed job's traceback or stderr tail, for the steward only.

    ``sha256`` is SHA-256 of the ``salt``'s bytes followed by ``detail``: what the job's
    ``job.failed`` audit entry holds as ``detail_sha256``.
    """

    job_id: str
    recorded_at: str
    detail: str
    salt: str
    sha256: str


class SubmissionIn(Strict):
    """A Python module in the algorithm form."""

    source: Text = Field(min_length=1, max_length=200_000)


class SubmissionOut(BaseModel):
    """A submitted module's state in the certification workflow."""

    id: str
    name: str
    version: str
    sha256: str
    status: str
    report: dict[str, Any] | None
    submitted_by: str
    submitted_at: str
    certified_by: str | None
    certified_at: str | None


class SubmissionList(BaseModel):
    """Submissions, newest first."""

    submissions: list[SubmissionOut]


class AuditEntryOut(BaseModel):
    """One entry of the audit log."""

    seq: int
    at: str
    actor: str
    action: str
    target: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    """A page of the audit log; ask again with ``after=next_after``.

    ``head_seq`` is the chain's last entry when the page was read: the newest page of ``n``
    entries is ``after=head_seq - n``.
    """

    entries: list[AuditEntryOut]
    next_after: int
    head_seq: int


class AuditVerdictOut(BaseModel):
    """Whether the audit chain checks, and the first bad entry."""

    ok: bool
    entries: int
    first_bad: int | None
    reason: str
    head_seq: int
    head_hash: str


class TransparencyEntry(BaseModel):
    """One job on the public log: who ran what, when, at what privacy cost; never results."""

    job_id: str
    analyst: str
    project: str
    algorithm: str
    version: str
    code_hash: str
    level: str
    parameters: dict[str, Any]
    epsilon: float
    delta: float
    submitted_at: str
    finished_at: str | None
    outcome: str
    cached_from: str | None


class TransparencyLog(BaseModel):
    """Every job, newest first, with the head of the audit chain to keep."""

    jobs: list[TransparencyEntry]
    audit_head_seq: int
    audit_head_hash: str
