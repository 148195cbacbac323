"""POST /auth/token as an OAuth 2.0 token endpoint: the password grant (RFC 6749 section 4.3).

OAuth 2.0 clients (R's httr2, authlib, requests-oauthlib, Swagger UI's Authorize) send
``grant_type=password&username=...&password=...`` as ``application/x-www-form-urlencoded`` and
read a refusal as RFC 6749 section 5.2 writes it: ``application/json`` with ``error`` and
``error_description``. The service's own clients send a JSON object and get problem documents,
as on every other route. What section 5.2 does not cover (429 beyond the login limits, 413 over
the body limit, 500) is a problem document for both, with ``error`` and ``error_description``
beside its members so that an OAuth 2.0 client still says why (`problems.oauth_members`).

The form is read with the standard library: it is one small body of percent-encoded pairs, and
a form library (FastAPI's ``Form`` needs python-multipart) would add a multipart parser that
this route must not accept anyway.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from cellcensus.holder.api import schemas
from cellcensus.holder.api.problems import PROBLEM_TYPE, ApiError

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
ACCEPTED = f"{JSON}, {FORM}"
MAX_PARAMETERS = 32
"""More pairs than any client sends (it needs three): a body of thousands is refused unread."""
READ = ("grant_type", "username", "password", "scope")
NO_CACHE = {"Pragma": "no-cache"}
"""RFC 6749 section 5.1 asks for it beside ``Cache-Control: no-store``, which every answer has."""
GRANT = f"grant_type=password, username, password (Content-Type: {FORM})"
EXPECTED = f"send {GRANT}"


class GrantError(Exception):
    """A password grant refused with an RFC 6749 error code (400 unless said otherwise)."""

    def __init__(
        self,
        error: schemas.OAuthErrorCode,
        description: str,
        *,
        status: int = 400,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(description)
        self.body = schemas.OAuthError(error=error, error_description=description)
        self.status = status
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        """The refusal as RFC 6749 section 5.2 writes it."""
        return JSONResponse(
            self.body.model_dump(), status_code=self.status, headers=self.headers, media_type=JSON
        )


def read_grant(body: bytes) -> schemas.PasswordGrant:
    """The password grant in a form body, or `GrantError` saying what is wrong with it.

    As RFC 6749 section 3.2 says, a parameter without a value counts as not sent, one sent
    twice is refused, and parameters the grant does not name are ignored.
    """
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            errors="strict",
            max_num_fields=MAX_PARAMETERS,
        )
    except UnicodeDecodeError:
        raise GrantError(
            "invalid_request", "the form is not UTF-8: percent-encode UTF-8 text"
        ) from None
    except ValueError:
        raise GrantError(
            "invalid_request", f"the form has more than {MAX_PARAMETERS} parameters"
        ) from None
    sent: dict[str, str] = {}
    for name, value in pairs:
        if name not in READ or not value:
            continue
        if name in sent:
            raise GrantError("invalid_request", f"{name} is sent more than once: send it once")
        sent[name] = value
    grant_type = sent.get("grant_type")
    if grant_type is None:
        raise GrantError("invalid_request", f"grant_type is missing: {EXPECTED}")
    if grant_type != "password":
        raise GrantError(
            "unsupported_grant_type",
            f"grant type {grant_type[:64]!r} is not supported: send grant_type=password",
        )
    if "scope" in sent:
        raise GrantError(
            "invalid_scope",
            "a token carries every scope its user was granted and no narrower one: send no "
            "scope (GET /me lists them)",
        )
    for name in ("username", "password"):
        if name not in sent:
            raise GrantError("invalid_request", f"{name} is missing: {EXPECTED}")
    try:
        return schemas.PasswordGrant.model_validate(sent)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise GrantError("invalid_request", f"{field}: {first['msg']}") from None


def refuse_other_sites(request: Request) -> None:
    """Refuse a form a browser sends for a page of another site (its `Sec-Fetch-Site`).

    Any page may make a browser send a form, unasked and without CORS (a JSON body needs the
    service's consent first): a page inside the firewall could then try passwords, spend the
    users' login limits and make the service hash for it. OAuth 2.0 clients are no browsers,
    and Swagger UI runs on the service's own origin.
    """
    if request.headers.get("sec-fetch-site", "").lower() in ("cross-site", "same-site"):
        raise GrantError(
            "invalid_request", "a page of another site cannot send a login form to this service"
        )


def media_type(request: Request) -> str:
    """The request body's media type, without parameters and in lower case ("" if unsaid)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def is_json(kind: str) -> bool:
    """Whether FastAPI reads a body of media type `kind` as JSON."""
    main, _, sub = kind.partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


def unsupported(kind: str) -> ApiError:
    """The 415 of a login body that is neither JSON nor a form."""
    return ApiError(
        415,
        f"the body is {kind[:64]}: send a JSON object with username, password (Content-Type: "
        f"{JSON}), or an OAuth 2.0 password grant: {GRANT}",
        headers={"Accept-Post": ACCEPTED},
    )


REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "description": (
            "The user's name and password: a JSON object, or an OAuth 2.0 password grant "
            "(RFC 6749 section 4.3.2) as OAuth 2.0 clients send it."
        ),
        "content": {FORM: {"schema": schemas.PasswordGrant.model_json_schema()}},
    }
}
"""The form beside the JSON body FastAPI documents (``openapi_extra`` of the route)."""


def responses() -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` of the token endpoint's refusals, in both shapes."""
    problem = {"schema": {"$ref": "#/components/schemas/Problem"}}
    return {
        400: {
            "model": schemas.OAuthError,
            "description": "A password grant refused (RFC 6749 section 5.2)",
        },
        401: {
            "model": schemas.OAuthError,
            "description": (
                "Unknown user name or wrong password: a problem document for a JSON body, "
                "invalid_grant for a form"
            ),
            "content": {PROBLEM_TYPE: problem},
        },
    }
