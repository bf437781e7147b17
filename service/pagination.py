"""Keyset (cursor) pagination: `?limit=&cursor=` in, `{items, next_cursor}` out.

A cursor is the sort key of the last row of the previous page, encoded by one `Keyset` codec that
knows the type of each key part. A cursor that is not one this list returned (forged, truncated,
of another list, with values of the wrong type or range) is a 422 `invalid_cursor`, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from service.errors import Invalid

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_CURSOR_LENGTH = 500
# PostgreSQL bigint: an identity column never holds more, and a larger bound parameter is an error.
MAX_BIGINT = 2**63 - 1

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")]
Cursor = Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH, description="`next_cursor` of the previous page")]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def invalid_cursor() -> Invalid:
    return Invalid("invalid_cursor", "The cursor is not one this list returned.")


def _to_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _from_json(kind: type, value: Any) -> Any:
    """The key part of type `kind`, or ValueError."""
    if kind is str:
        if isinstance(value, str) and len(value) <= MAX_CURSOR_LENGTH:
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_BIGINT:
            return value
    elif kind is uuid.UUID:
        if isinstance(value, str):
            return uuid.UUID(value)
    elif kind is datetime and isinstance(value, str):
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is not None:
            return moment
    raise ValueError(f"not a {kind.__name__}")


class Keyset:
    """The codec of one list's cursor: the types of its sort key, in order. A `tag` names the list
    inside the cursor (`feed:123`), so that one list's cursor is refused by another."""

    def __init__(self, *kinds: type, tag: str | None = None) -> None:
        self.kinds = kinds
        self.tag = tag

    def encode(self, values: Sequence[Any]) -> str:
        text = json.dumps([_to_json(v) for v in values], separators=(",", ":"))
        if self.tag is not None:
            text = f"{self.tag}:{text[1:-1]}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    def _parse(self, cursor: str) -> Any:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if self.tag is not None:
            tag, separator, rest = text.partition(":")
            if tag != self.tag or not separator:
                raise ValueError("another list's cursor")
            text = f"[{rest}]"
        return json.loads(text)

    def decode(self, cursor: str | None) -> tuple[Any, ...] | None:
        """The sort key after which the page starts, or None for the first page."""
        if cursor is None:
            return None
        try:
            values = self._parse(cursor)
            if not isinstance(values, list) or len(values) != len(self.kinds):
                raise ValueError("wrong shape")
            return tuple(_from_json(kind, value) for kind, value in zip(self.kinds, values, strict=True))
        except (ValueError, TypeError, UnicodeDecodeError, binascii.Error, RecursionError) as exc:
            raise invalid_cursor() from exc

    def page(self, rows: list[T], limit: int, key: Callable[[T], Sequence[Any]]) -> tuple[list[T], str | None]:
        """Cut one extra fetched row into the next cursor (callers fetch `limit + 1`)."""
        if len(rows) <= limit:
            return rows, None
        rows = rows[:limit]
        return rows, self.encode(key(rows[-1]))


# The sort keys of the service's lists.
BY_START = Keyset(datetime, uuid.UUID)  # slots
BY_QUEUE = Keyset(int, datetime, uuid.UUID)  # the request queue: red flags first, then by deadline
BY_NAME = Keyset(str, uuid.UUID)  # users (e-mail), clients
BY_FULL_NAME = Keyset(str, str, uuid.UUID)  # practitioners
BY_FEED_SEQUENCE = Keyset(int, tag="feed")  # the booking feed
