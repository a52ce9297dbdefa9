"""Errors, translated once: every failure becomes RFC 9457 ``application/problem+json``.

Domain errors map by class; request validation lists the offending fields; an
unexpected error is logged and answered with a bare 500 (never a stack trace).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
import sqlite3

import psycopg
import psycopg_pool
from eventsourcing.persistence import OperationalError
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ticketflow.errors import (
    ConcurrencyConflict, InvalidTransition, NotFound, PermissionDenied, RuleViolation, StorageUnavailable,
    TicketflowError, ValidationFailed,
)

log = logging.getLogger("ticketflow.api")

PROBLEM_TYPE = "https://ticketflow.dev/problems/"
MEDIA_TYPE = "application/problem+json"


class FieldError(BaseModel):
    field: str = Field(examples=["body.subject"])
    message: str = Field(examples=["String should have at least 1 character"])


class Problem(BaseModel):
    """An RFC 9457 problem detail."""

    type: str = Field(examples=[PROBLEM_TYPE + "invalid_transition"])
    title: str = Field(examples=["Invalid transition"])
    status: int = Field(examples=[409])
    detail: str = Field(examples=["cannot close ticket 6457ba06-...: it is open; allowed from open: pend -> pending"])
    instance: str | None = Field(default=None, examples=["/api/v1/tickets/6457ba06-.../close"])
    errors: list[FieldError] | None = None


class ApiProblem(Exception):
    """A problem raised by the HTTP layer itself (auth, preconditions, limits)."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers or {}


def problem(
    status: int, code: str, detail: str, request: Request | None = None, *,
    headers: dict[str, str] | None = None, errors: list[dict[str, str]] | None = None,
) -> JSONResponse:
    if request is not None and (page := _html_page(request, status, code, detail, headers)) is not None:
        return page  # type: ignore[return-value]
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + code,
        "title": code.replace("_", " ").capitalize(),
        "status": status,
        "detail": detail,
    }
    if request is not None:
        body["instance"] = request.url.path
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _html_page(request: Request, status: int, code: str, detail: str, headers: dict[str, str] | None) -> Any:
    """The console's error page instead of problem+json, for a console request (or a browser asking
    for a page that does not exist outside the API)."""
    render = getattr(request.app.state, "html_problem", None)
    if render is None:
        return None
    console = getattr(request.state, "console", False)
    browsing = (status in (404, 405, 422) and "text/html" in request.headers.get("accept", "")
                and not request.url.path.startswith("/api/") and request.url.path not in ("/openapi.json", "/metrics"))
    if not (console or browsing):
        return None
    if status == 422 and request.method == "GET":
        status = 404  # a page address that does not parse (/tickets/not-a-uuid) names nothing
    return render(request, status, code, detail, headers)


def status_for(exc: TicketflowError) -> int:
    match exc:
        case NotFound():
            return 404
        case ConcurrencyConflict():
            return 412 if exc.expected is not None else 409
        case InvalidTransition() | RuleViolation():
            return 409
        case ValidationFailed():
            return 422
        case PermissionDenied():
            return 403
        case StorageUnavailable():
            return 503
    return 400


def _field_errors(errors: list[Any]) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(part) for part in error["loc"]), "message": error["msg"]}
        for error in errors
    ]


def install(app: FastAPI) -> None:
    @app.exception_handler(TicketflowError)
    async def domain_error(request: Request, exc: TicketflowError) -> JSONResponse:
        return problem(status_for(exc), exc.code, str(exc), request)

    @app.exception_handler(ApiProblem)
    async def api_problem(request: Request, exc: ApiProblem) -> JSONResponse:
        return problem(exc.status, exc.code, exc.detail, request, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        raw = list(exc.errors())
        errors = _field_errors(raw)
        if any(error.get("type") == "json_invalid" for error in raw):
            # A body that is not JSON at all is a malformed request (400), not JSON that breaks a rule (422).
            where = next((e for e in raw if e.get("type") == "json_invalid"), {})
            ctx = where.get("ctx") or {}
            detail = f"the request body is not valid JSON: {ctx.get('error', where.get('msg', 'malformed'))}"
            return problem(400, "malformed_json", detail, request, errors=errors)
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "the request is not valid"
        return problem(422, "validation_failed", detail, request, errors=errors)

    @app.exception_handler(ValidationError)
    async def invalid_command(request: Request, exc: ValidationError) -> JSONResponse:
        errors = _field_errors(list(exc.errors()))
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem(422, "validation_failed", detail, request, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no resource at {request.url.path}"
        return problem(exc.status_code, code, detail, request, headers=getattr(exc, "headers", None))

    async def store_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("store unavailable on %s %s: %s", request.method, request.url.path, exc)
        return storage_problem(exc, request)

    # Every storage failure (eventsourcing's, or the database driver's own: a restart, a dropped
    # connection, a pool timeout) is a 503 the client may retry, never a 500.
    for storage_error in (OperationalError, psycopg.OperationalError, psycopg.InterfaceError, psycopg_pool.PoolTimeout,
                          sqlite3.OperationalError):
        app.add_exception_handler(storage_error, store_unavailable)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "internal_error", "an unexpected error occurred; it has been logged", request)


def storage_problem(exc: BaseException, request: Request | None = None) -> JSONResponse:
    """A storage failure as problem+json: the disk is full (507), the store is read-only or did not
    answer (503); each with ``Retry-After``. The transaction was rolled back: nothing half-written."""
    text = str(exc).lower()
    if "disk is full" in text or "no space left" in text or "could not extend file" in text:
        return problem(507, "insufficient_storage", "the store's disk is full; nothing was written; retry when"
                       " space is freed", request, headers={"Retry-After": "30"})
    if "readonly" in text or "read-only" in text or "read only" in text:
        return problem(503, "storage_read_only", "the store is read-only now; nothing was written; retry later",
                       request, headers={"Retry-After": "30"})
    return problem(503, "storage_unavailable", "the event store did not answer in time; retry shortly", request,
                   headers={"Retry-After": "1"})


#: Error responses documented on every route (OpenAPI).
def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "Malformed header, parameter or JSON body",
        401: "Missing or invalid bearer token",
        403: "The token's role may not do this",
        404: "No such object, or not visible to this token",
        409: "Refused in the object's current state, or a request with this Idempotency-Key is still running",
        412: "If-Match does not match the current version",
        413: "Request body too large",
        422: "Invalid input (the offending fields are listed)",
        429: "Rate limit exceeded (see Retry-After)",
        503: "Store unreachable, or the view did not reach min_position in time",
    }
    return {
        status: {"model": Problem, "description": descriptions[status]}
        for status in sorted({400, 401, 413, 429, 503, *statuses})
    }


def problem_media_types(spec: dict[str, Any]) -> dict[str, Any]:
    """Document every error response as ``application/problem+json`` (what the handlers send)."""
    ref = {"schema": {"$ref": "#/components/schemas/Problem"}}
    for path in spec.get("paths", {}).values():
        for operation in path.values():
            for status, response in operation.get("responses", {}).items():
                if status.isdigit() and int(status) >= 400 and "content" in response:
                    response["content"] = {MEDIA_TYPE: ref}
    spec.get("components", {}).get("schemas", {}).pop("HTTPValidationError", None)
    spec.get("components", {}).get("schemas", {}).pop("ValidationError", None)
    return spec
