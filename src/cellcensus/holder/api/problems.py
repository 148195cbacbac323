"""Every error as a JSON problem document (RFC 9457), with a message that says what to do.

Unexpected errors answer 500 with a reference only; their details go to the server log, never
to the client.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from cellcensus.errors import CellcensusError, DisclosureError

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
        body.model_dump(exclude_none=True),
        status_code=status,
        headers=headers,
        media_type=PROBLEM_TYPE,
    )


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
        return problem(error.status, error.detail, instance=request.url.path, headers=error.headers)

    @app.exception_handler(DisclosureError)
    async def _disclosure(request: Request, error: DisclosureError) -> JSONResponse:
        return problem(403, str(error), instance=request.url.path)

    @app.exception_handler(CellcensusError)
    async def _user_error(request: Request, error: CellcensusError) -> JSONResponse:
        return problem(422, str(error), instance=request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [_field_error(item) for item in error.errors()]
        first = errors[0] if errors else {"field": "body", "message": "invalid"}
        detail = f"field '{first['field']}': {first['message']}"
        return problem(422, detail, instance=request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        detail = (
            error.detail if isinstance(error.detail, str) else TITLES.get(error.status_code, "")
        )
        headers = dict(error.headers or {})
        return problem(error.status_code, detail, instance=request.url.path, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        reference = uuid.uuid4().hex[:12]
        log.exception("unexpected error %s on %s", reference, request.url.path)
        detail = (
            f"an unexpected error occurred (reference {reference}); the operator has the details"
        )
        return problem(500, detail, instance=request.url.path)


def _field_error(item: Any) -> dict[str, Any]:
    location = [str(part) for part in item.get("loc", ()) if part not in ("body",)]
    return {"field": ".".join(location) or "body", "message": str(item.get("msg", "invalid"))}
