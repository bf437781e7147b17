"""Reusable input field types: code formats shared by several domains."""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar
from datetime import UTC, date, datetime
from typing import Annotated, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    PlainSerializer,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from service.errors import Invalid, field_error

# Text PostgreSQL cannot store (a NUL character) or that is not Unicode at all (a lone surrogate,
# which JSON's \ud800 escapes can produce): refused where it comes in, never met by the database or
# by the JSON encoder of an answer that would echo it.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def is_storable(text: str) -> bool:
    return _UNSTORABLE.search(text) is None


def has_unstorable_text(value: object) -> bool:
    """Whether any string in the value (dict keys included) cannot be stored. Iterative: a body
    nested a thousand levels deep is walked without recursion."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if not is_storable(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            pending.extend(item)
    return False


class InputModel(BaseModel):
    """Base of every request body: unknown fields are refused rather than silently dropped, and
    text the database could not store (NUL characters, lone surrogates) is refused with the field
    named."""

    model_config = ConfigDict(extra="forbid")
    # Lists whose items are validated one by one later (a batch's slots): each bad item is then
    # rejected alone, with its own problem.
    items_validated_alone: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: object, info: ValidationInfo) -> object:
        if info.field_name not in cls.items_validated_alone and has_unstorable_text(value):
            raise ValueError("text may not contain NUL characters or invalid Unicode")
        return value


# No CPTS existed before 2000, and nothing it plans goes past 2100: outside this range a datetime is
# a typing mistake, and near year 1 or 9999 date arithmetic overflows. The domains narrow it
# further (a slot within the publication horizon, a request received in the last 24 hours, ...).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
RANGE_PROBLEM = "a date between 2000 and 2100"


def _plausible_datetime(value: datetime) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise ValueError(RANGE_PROBLEM)
    return value


def _plausible_date(value: date) -> date:
    if not EARLIEST.date() <= value < LATEST.date():
        raise ValueError(RANGE_PROBLEM)
    return value


PlausibleDatetime = Annotated[AwareDatetime, AfterValidator(_plausible_datetime)]
"""A datetime with its offset, between 2000 and 2100."""
PlausibleDate = Annotated[date, AfterValidator(_plausible_date)]


def aware_query(value: datetime | None, name: str) -> datetime | None:
    """A datetime query parameter: with its offset, between 2000 and 2100 (else 422)."""
    if value is None:
        return None
    problem = "datetime without an offset" if value.tzinfo is None else None
    if problem is None and not EARLIEST <= value < LATEST:
        problem = RANGE_PROBLEM
    if problem is not None:
        raise Invalid(
            "validation_error",
            f"{name}: {problem}.",
            errors=[field_error(["query", name], problem, "timezone_aware" if value.tzinfo is None else "value_error")],
        )
    return value


# A booking's reference, read to the patient and quoted when they call back: six characters of
# Crockford's base32 (no I, L, O, U to misread), as "K7M-3Q9".
REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_reference() -> str:
    # Six characters of 5 random bits each, from one draw (one system call, not one per character).
    bits = secrets.randbits(30)
    chars = "".join(REFERENCE_ALPHABET[(bits >> shift) & 31] for shift in range(0, 30, 5))
    return f"{chars[:3]}-{chars[3:]}"


def reference_key(text: str) -> str | None:
    """What a handler types of a reference ("k7m3q9", "K7M 3Q9", with O for 0...), as stored."""
    chars = "".join(c for c in text.upper() if c.isalnum()).replace("O", "0").replace("I", "1").replace("L", "1")
    if len(chars) != 6 or any(c not in REFERENCE_ALPHABET for c in chars):
        return None
    return f"{chars[:3]}-{chars[3:]}"


# INSEE commune code: 5 digits, or 2A/2B + 3 digits in Corsica.
INSEE_PATTERN = r"^(?:\d{5}|2[AB]\d{3})$"
InseeCode = Annotated[str, StringConstraints(pattern=INSEE_PATTERN)]
PostalCode = Annotated[str, StringConstraints(pattern=r"^\d{5}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9 .()-]{6,25}$")]
Email = Annotated[
    str, StringConstraints(strip_whitespace=True, to_lower=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
]


def _known_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA timezone '{value}'") from exc
    return value


Timezone = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_known_timezone)]


# Answers give datetimes in the caller's CPTS timezone (API convention). The principal dependency
# sets it for the request; serialisation happens later in the same task, so it sees it.
response_timezone: ContextVar[ZoneInfo | None] = ContextVar("response_timezone", default=None)


def _to_response_timezone(value: datetime) -> datetime:
    tz = response_timezone.get()
    return value.astimezone(tz) if tz is not None and value.tzinfo is not None else value


LocalDatetime = Annotated[datetime, PlainSerializer(_to_response_timezone, return_type=datetime, when_used="json")]
