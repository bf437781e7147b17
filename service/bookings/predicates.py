"""The booking rules SQL applies, built from the constants of `bookings.domain`, whose Python
functions state the same rules (parity test: tests/integration/test_predicates.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, case, column, table
from sqlalchemy.types import DateTime

from service.bookings.domain import BookingStatus
from service.db import sql_fragment
from service.slots.predicates import NOW, Clock

_B = table("booking", column("hold_expires_at", DateTime(timezone=True)))


def ended_hold_status(hold_expires_at: Any, now: Clock) -> ColumnElement[str]:
    """A hold that ends is `expired` if its time was up, else `released` (dropped on purpose)."""
    return case(
        (and_(hold_expires_at.is_not(None), hold_expires_at <= now), BookingStatus.expired.value),
        else_=BookingStatus.released.value,
    )


# For the compiled statement that ends a request's hold (bookings.repository).
ENDED_HOLD_STATUS_SQL = sql_fragment(ended_hold_status(_B.c.hold_expires_at, NOW))
