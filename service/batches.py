"""Batch endpoints (slot batches and syncs, history imports) answer one result per item: a bad
item is rejected with its own problem, in the same RFC 9457 shape as a whole-request error, and
never stops the others."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, ValidationError

from service.errors import ItemProblem
from service.problems import problem_type, validation_errors


class ItemProblemOut(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[dict[str, Any]] | None = None


def problem_out(problem: ItemProblem, errors: list[dict[str, Any]] | None = None) -> ItemProblemOut:
    return ItemProblemOut(
        type=problem_type(problem.code),
        title=HTTPStatus(problem.status).phrase,
        status=problem.status,
        detail=problem.detail,
        code=problem.code,
        errors=errors,
    )


def invalid_item(exc: ValidationError, what: str) -> tuple[ItemProblem, list[dict[str, Any]]]:
    """The problem of an item that failed validation, naming its fields but never their values."""
    errors = validation_errors(exc.errors())
    fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors[:5])
    return ItemProblem(422, "validation_error", f"The {what} is invalid: {fields}."), errors
