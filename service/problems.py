"""Every error leaves as an RFC 9457 `application/problem+json` document with a stable `code`."""

from __future__ import annotations

import json
import traceback
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.db import DatabaseUnavailable
from service.errors import DomainError, TooManyRequests

PROBLEM_MEDIA_TYPE = "application/problem+json"
_log = structlog.get_logger("service.problems")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
}


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


# Under /fhir every refusal is a FHIR OperationOutcome, never problem+json: the same answers, in the
# SAS's language (issue type codes of the FHIR `issue-type` value set).
FHIR_PREFIX = "/fhir"
FHIR_MEDIA_TYPE = "application/fhir+json"
_FHIR_ISSUE = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    413: "too-long",
    415: "not-supported",
    422: "processing",
    429: "throttled",
    503: "transient",
}


class FhirResponse(JSONResponse):
    media_type = FHIR_MEDIA_TYPE


def operation_outcome(code: str, diagnostics: str, severity: str = "error") -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }


def is_fhir_path(path: str) -> bool:
    return path == FHIR_PREFIX or path.startswith(FHIR_PREFIX + "/")


def as_operation_outcome(response: JSONResponse) -> FhirResponse:
    """A problem answer, said as FHIR says it (same status and headers)."""
    detail = json.loads(bytes(response.body)).get("detail", "")
    code = _FHIR_ISSUE.get(response.status_code, "exception")
    headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-type")}
    return FhirResponse(operation_outcome(code, detail), status_code=response.status_code, headers=headers)


def refusal(path: str, status: int, code: str, detail: str) -> JSONResponse:
    """A refusal before any route runs (middleware): problem+json, or an OperationOutcome under /fhir."""
    answer = problem(status, code, detail)
    return as_operation_outcome(answer) if is_fhir_path(path) else answer


def problem_type(code: str) -> str:
    return f"/problems/{code}"


def problem_body(status: int, code: str, detail: str, title: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": problem_type(code),
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    body.update(extra)
    return body


def problem(status: int, code: str, detail: str, title: str | None = None, **extra: Any) -> ProblemResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return ProblemResponse(problem_body(status, code, detail, title, **extra), status_code=status, headers=headers)


def _location(loc: tuple[Any, ...] | list[Any]) -> list[str | int]:
    return [part if isinstance(part, int) else str(part) for part in loc]


def validation_errors(errors: Any) -> list[dict[str, Any]]:
    """Pydantic's error list without the echoed input (it may hold patient data)."""
    return [
        {"loc": _location(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")} for err in errors
    ]


async def _domain_error(_: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, DomainError)
    response = problem(exc.status, exc.code, exc.detail, exc.title, **exc.extra)
    if isinstance(exc, TooManyRequests):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def _request_validation_error(_: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(exc.errors())
    fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors[:5])
    detail = f"The request is invalid: {fields}." if fields else "The request is invalid."
    return problem(422, "validation_error", detail, "Unprocessable content", errors=errors)


async def _http_exception(_: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return problem(exc.status_code, code, detail)


async def _database_error(request: Request, exc: Exception) -> ProblemResponse:
    # The driver's own error reaches here unwrapped when a server-side cursor's fetch fails (a
    # streamed report past the statement limit); it carries the same SQLSTATE.
    assert isinstance(exc, DBAPIError | asyncpg.PostgresError)
    origin = exc.orig if isinstance(exc, DBAPIError) else exc
    invalidated = isinstance(exc, DBAPIError) and exc.connection_invalidated
    sqlstate = str(getattr(origin, "sqlstate", "") or "")
    # SQLSTATE class 22 ("data exception"): a value the database cannot take, e.g. a NUL character
    # or a number out of range. The transaction is rolled back, so nothing changed.
    if sqlstate.startswith("22"):
        return problem(422, "invalid_value", "A value in the request cannot be stored (invalid characters or range).")
    # The connection broke (the server restarted, or a pooled connection went stale): nothing was
    # committed, so the client may simply retry (with the same Idempotency-Key for a POST).
    # A deadlock or serialization failure between concurrent requests: PostgreSQL rolled this one
    # back whole, so a retry is safe and will most likely go through.
    if sqlstate in ("40001", "40P01"):
        _log.warning("http.concurrency_conflict", path=request.url.path, sqlstate=sqlstate)
        return _retry(
            "concurrency_conflict",
            "The request collided with a concurrent one and nothing was saved; retry it (same Idempotency-Key).",
        )
    # A statement or a lock wait past its limit (SNP_DB_STATEMENT_TIMEOUT_SECONDS, ..._LOCK_...).
    if sqlstate in ("57014", "55P03"):
        _log.warning("http.database_timeout", path=request.url.path, sqlstate=sqlstate)
        return _retry("database_timeout", "The database did not answer in time and nothing was saved; retry.")
    if invalidated or sqlstate.startswith("08") or sqlstate in ("57P01", "57P02", "57P03"):
        _log.warning("http.database_unavailable", path=request.url.path, sqlstate=sqlstate or None)
        return _retry("database_unavailable", "The database connection was lost; retry in a moment.")
    return await _unexpected_error(request, exc)


def _retry(code: str, detail: str) -> ProblemResponse:
    """503 + Retry-After: nothing was saved, and the same request may simply be sent again."""
    response = problem(503, code, detail)
    response.headers["Retry-After"] = "1"
    return response


async def _database_wait(request: Request, exc: Exception) -> ProblemResponse:
    """No connection from the pool in time, or a database that stopped answering (the driver's
    own timeout): the database is unavailable for now."""
    _log.warning("http.database_unavailable", path=request.url.path, error_type=type(exc).__name__)
    return _retry("database_unavailable", "The database does not answer in time; retry in a moment.")


def _safe_error_context(exc: BaseException) -> dict[str, Any]:
    """What can be logged about an error without its text, which for a driver error can quote row
    values (patient data): its type, where it happened, and for SQL the statement and SQLSTATE."""
    context: dict[str, Any] = {
        "error_type": type(exc).__name__,
        "stack": [
            f"{f.filename.rsplit('/site-packages/', 1)[-1]}:{f.lineno} {f.name}"
            for f in traceback.extract_tb(exc.__traceback__)
        ][-12:],
    }
    if isinstance(exc, asyncpg.PostgresError):
        context["sqlstate"] = exc.sqlstate
    if isinstance(exc, DBAPIError):
        context["sqlstate"] = getattr(exc.orig, "sqlstate", None)
        context["statement"] = (exc.statement or "")[:2000]
    return context


async def _unexpected_error(request: Request, exc: Exception) -> ProblemResponse:
    _log.error("http.unhandled_error", path=request.url.path, **_safe_error_context(exc))
    return problem(500, "internal_error", "An unexpected error occurred; it has been logged.")


def _said_for_fhir(
    handler: Callable[[Request, Exception], Awaitable[JSONResponse]],
) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        response = await handler(request, exc)
        return as_operation_outcome(response) if is_fhir_path(request.url.path) else response

    return handle


def install_problem_handlers(app: FastAPI) -> None:
    handlers: list[tuple[type[Exception], Callable[[Request, Exception], Awaitable[JSONResponse]]]] = [
        (DomainError, _domain_error),
        (RequestValidationError, _request_validation_error),
        (StarletteHTTPException, _http_exception),
        (DBAPIError, _database_error),
        (asyncpg.PostgresError, _database_error),
        (PoolTimeout, _database_wait),
        (TimeoutError, _database_wait),
        (DatabaseUnavailable, _database_wait),  # e.g. refused while the server restarts
        (Exception, _unexpected_error),
    ]
    for kind, handler in handlers:
        app.add_exception_handler(kind, _said_for_fhir(handler))
