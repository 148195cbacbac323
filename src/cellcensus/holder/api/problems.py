"""Every error as a JSON problem document (RFC 9457), with a message that says what to do.

Unexpected errors answer 500 with a reference only; their details go to the server log, never
to the client.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from cellcensus.errors import CellcensusError, DisclosureError
from cellcensus.holder.store.layout import without_store_path

PROBLEM_TYPE = "application/problem+json"
TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}
log = logging.getLogger("cellcensus.api")

TOKEN_PATH = "/auth/token"
OAUTH_ERRORS = {
    401: "invalid_grant",
    429: "temporarily_unavailable",
    500: "server_error",
    503: "temporarily_unavailable",
}
"""RFC 6749 error codes of the token endpoint's refusals that section 5.2 does not shape
(``invalid_request`` for the rest). Section 5.2 registers none for a rate or a size limit;
these are its registry's nearest, so that an OAuth 2.0 client shows the reason."""


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(default="about:blank", description="URI of the problem type.")
    title: str = Field(description="Short summary of the problem type.")
    status: int = Field(description="HTTP status code.")
    detail: str = Field(default="", description="What went wrong and what to do about it.")
    instance: str = Field(default="", description="The request path.")
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="Each invalid field, for validation problems."
    )


class ApiError(Exception):
    """An error the API answers with `status` and `detail`."""

    def __init__(self, status: int, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


def problem(
    status: int,
    detail: str,
    *,
    instance: str = "",
    headers: dict[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    """A problem response."""
    body = Problem(
        title=TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        instance=instance,
        errors=errors,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True) | oauth_members(instance, status, detail),
        status_code=status,
        headers=headers,
        media_type=PROBLEM_TYPE,
    )


def oauth_members(path: str, status: int, detail: str) -> dict[str, str]:
    """``error`` and ``error_description`` beside a problem of the token endpoint.

    OAuth 2.0 clients (R's httr2, authlib) read a refusal of the token endpoint by these
    members alone; as extension members of the problem document (RFC 9457 section 3.2) they
    let such a client say why, also where RFC 6749 section 5.2 does not apply (429, 413).
    """
    if path != TOKEN_PATH:
        return {}
    return {"error": OAUTH_ERRORS.get(status, "invalid_request"), "error_description": detail}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries documenting problem answers of a route."""
    return {
        status: {
            "model": Problem,
            "description": TITLES.get(status, "Error"),
            "content": {PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a problem document."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError) -> JSONResponse:
        detail = _outside(request, error.detail)
        return problem(error.status, detail, instance=request.url.path, headers=error.headers)

    @app.exception_handler(DisclosureError)
    async def _disclosure(request: Request, error: DisclosureError) -> JSONResponse:
        return problem(403, _outside(request, str(error)), instance=request.url.path)

    @app.exception_handler(CellcensusError)
    async def _user_error(request: Request, error: CellcensusError) -> JSONResponse:
        return problem(422, _outside(request, str(error)), instance=request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [_field_error(item) for item in error.errors()]
        first = errors[0] if errors else {"field": "body", "message": "invalid"}
        detail = _unreadable_body(request, error.errors())
        if detail is None:
            detail = f"field '{first['field']}': {first['message']}"
        return problem(422, detail, instance=request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        detail = (
            error.detail if isinstance(error.detail, str) else TITLES.get(error.status_code, "")
        )
        headers = dict(error.headers or {})
        if detail == HTTPStatus(error.status_code).phrase:  # the router's, which says no more
            detail = _routing_detail(request, error.status_code, headers) or detail
        return problem(error.status_code, detail, instance=request.url.path, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        reference = uuid.uuid4().hex[:12]
        log.exception("unexpected error %s on %s", reference, request.url.path)
        detail = (
            f"an unexpected error occurred (reference {reference}); the operator has the details"
        )
        return problem(500, detail, instance=request.url.path)


def _routing_detail(request: Request, status: int, headers: dict[str, str]) -> str | None:
    """What to do about a path the service has no route for, or a method a route does not take."""
    if status == 404:
        return (
            f"the service has no {request.url.path}: GET / lists its entry points, "
            "GET /openapi.json every route"
        )
    if status == 405:
        allowed = headers.get("Allow") or headers.get("allow") or ""
        takes = f"it takes {allowed}" if allowed else "see GET /openapi.json for what it takes"
        return f"{request.url.path} does not take {request.method}: {takes}"
    return None


def _outside(request: Request, text: str) -> str:
    return without_store_path(text, request.app.state.context.settings.store)


def _field_error(item: Any) -> dict[str, Any]:
    if item.get("type") == "json_invalid":  # its location is a character position, no field
        return {"field": "body", "message": f"not valid JSON: {_json_error(item)}"}
    location = [str(part) for part in item.get("loc", ()) if part not in ("body",)]
    return {"field": ".".join(location) or "body", "message": str(item.get("msg", "invalid"))}


def _unreadable_body(request: Request, items: Sequence[Any]) -> str | None:
    """Say so when the body as a whole is not a JSON object (else None: a field is wrong)."""
    for item in items:
        location = tuple(item.get("loc", ()))
        if not location or location[0] != "body":
            continue
        if item.get("type") == "json_invalid":
            return f"the body is not valid JSON ({_json_error(item)}): send {_expected(request)}"
        if len(location) > 1:
            continue
        if item.get("type") == "missing":
            return f"the body is empty: send {_expected(request)}"
        kind = request.headers.get("content-type", "").split(";")[0].strip()
        if kind and not kind.endswith("json"):
            return f"the body is {kind}, not JSON: send {_expected(request)}"
        return f"the body is not a JSON object: send {_expected(request)}"
    return None


def _json_error(item: Any) -> str:
    position = tuple(item.get("loc", ()))[1:]
    reason = str(item.get("ctx", {}).get("error", "")).lower()
    where = f"at character {position[0]}" if position else "unreadable"
    return f"{where}: {reason}" if reason else where


def _expected(request: Request) -> str:
    """The JSON object the matched route reads, with its fields when its body is a model."""
    route = request.scope.get("route")
    body_field = getattr(route, "body_field", None)
    model = getattr(getattr(body_field, "field_info", None), "annotation", None)
    fields: dict[str, Any] = getattr(model, "model_fields", None) or {}
    required = [name for name, info in fields.items() if info.is_required()]
    optional = [name for name, info in fields.items() if not info.is_required()]
    wanted = "a JSON object"
    if required:
        wanted += f" with {', '.join(required)}"
    if optional:
        wanted += f"{' and' if required else ' with'} optionally {', '.join(optional)}"
    return f"{wanted} (Content-Type: application/json)"
