"""Domain errors: pure Python, each with a stable machine code. Rendered by `problems.py`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class DomainError(Exception):
    status = 400
    title = "Bad request"

    def __init__(self, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.extra = extra


class Invalid(DomainError):
    """Input that cannot be valid (422)."""

    status = 422
    title = "Unprocessable content"


class Unauthenticated(DomainError):
    status = 401
    title = "Unauthorized"


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"


class NotFound(DomainError):
    status = 404
    title = "Not found"

    def __init__(self, what: str, detail: str | None = None) -> None:
        super().__init__(f"{what}_not_found", detail or f"No such {what.replace('_', ' ')}.")


class Conflict(DomainError):
    status = 409
    title = "Conflict"


class Gone(DomainError):
    status = 410
    title = "Gone"


class PayloadTooLarge(DomainError):
    status = 413
    title = "Content too large"


class TooManyRequests(DomainError):
    status = 429
    title = "Too many requests"

    def __init__(self, code: str, detail: str, retry_after: int, **extra: Any) -> None:
        super().__init__(code, detail, **extra)
        self.retry_after = retry_after


class ServiceUnavailable(DomainError):
    status = 503
    title = "Service unavailable"


@dataclass(frozen=True)
class ItemProblem:
    """Why one item of a batch was rejected (rendered by `service.batches`)."""

    status: int
    code: str
    detail: str


def field_error(loc: list[str | int], msg: str, error_type: str = "value_error") -> dict[str, Any]:
    """One entry of a validation problem's `errors` list."""
    return {"loc": loc, "msg": msg, "type": error_type}


_BY_STATUS: dict[int, type[DomainError]] = {
    401: Unauthenticated,
    403: Forbidden,
    409: Conflict,
    410: Gone,
    413: PayloadTooLarge,
    422: Invalid,
    503: ServiceUnavailable,
}


def error_for_status(status: int, code: str, detail: str, **extra: Any) -> DomainError:
    """The domain error for a problem decided elsewhere (e.g. one item of a batch)."""
    if status == 404:
        error: DomainError = NotFound("object", detail)
        error.code = code
        return error
    return _BY_STATUS.get(status, DomainError)(code, detail, **extra)
