"""The slot rules SQL applies, as SQLAlchemy expressions built from the constants of
`slots.domain`, whose Python functions state the same rules; `tests/integration/test_predicates.py`
runs both over one table of cases on the real database (docs/domain-rules.md).

Each rule takes the slot's columns, so that the same expression serves the ORM queries (`ORM`)
and the compiled statements of the hot paths, where it is rendered once as SQL over the alias `s`
with `:now` as its clock (`db.sql_fragment`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, column, func, literal_column, not_, or_, table
from sqlalchemy.dialects.postgresql import ARRAY, array
from sqlalchemy.types import DateTime, String, Text

from service.db import sql_fragment
from service.slots.domain import HANDLER_VISIBILITY, LATE_WITHDRAWAL, SlotStatus
from service.slots.models import Slot


@dataclass(frozen=True)
class SlotColumns:
    status: Any
    hold_expires_at: Any
    start_at: Any
    visibility: Any
    withdrawn_at: Any


ORM = SlotColumns(Slot.status, Slot.hold_expires_at, Slot.start_at, Slot.visibility, Slot.withdrawn_at)
_S = table(
    "s",
    column("status", String),
    column("hold_expires_at", DateTime(timezone=True)),
    column("start_at", DateTime(timezone=True)),
    column("visibility", ARRAY(Text)),
    column("withdrawn_at", DateTime(timezone=True)),
)
ALIAS_S = SlotColumns(_S.c.status, _S.c.hold_expires_at, _S.c.start_at, _S.c.visibility, _S.c.withdrawn_at)
NOW = literal_column(":now", DateTime(timezone=True))

Clock = datetime | ColumnElement[Any]


def lapsed_hold(slot: SlotColumns, now: Clock) -> ColumnElement[bool]:
    """Held, and the hold's time is up (a hold without an expiry has not lapsed). Never NULL, so
    that its negation is as reliable as it is."""
    return and_(slot.status == SlotStatus.held.value, slot.hold_expires_at.is_not(None), slot.hold_expires_at <= now)


def available(slot: SlotColumns, now: Clock) -> ColumnElement[bool]:
    """Free, or held by a hold that lapsed: expired holds cost nothing, no sweeper is needed. (The
    first term lets PostgreSQL use the partial index of offerable slots.)"""
    return and_(
        slot.status.in_([SlotStatus.free.value, SlotStatus.held.value]),
        or_(slot.status == SlotStatus.free.value, lapsed_hold(slot, now)),
    )


def taken(slot: SlotColumns, now: Clock) -> ColumnElement[bool]:
    """Booked, or held by a hold still running."""
    return and_(slot.status.in_([SlotStatus.held.value, SlotStatus.booked.value]), not_(available(slot, now)))


def effective_status(slot: SlotColumns, now: Clock) -> ColumnElement[str]:
    """The status callers see: a lapsed hold reads as free."""
    return case((lapsed_hold(slot, now), SlotStatus.free.value), else_=slot.status)


def visible_to_handlers(slot: SlotColumns) -> ColumnElement[bool]:
    overlaps: ColumnElement[bool] = slot.visibility.overlap(
        array(sorted(v.value for v in HANDLER_VISIBILITY), type_=Text)
    )
    return overlaps


def offerable(slot: SlotColumns, now: Clock) -> ColumnElement[bool]:
    """What a call handler may offer and take: available, not started, visible to the CPTS's handlers."""
    return and_(available(slot, now), slot.start_at > now, visible_to_handlers(slot))


def withdrawn_late(slot: SlotColumns) -> ColumnElement[bool]:
    """Withdrawn less than LATE_WITHDRAWAL before it started (an indicator of supply reliability)."""
    hours = int(LATE_WITHDRAWAL.total_seconds() // 3600)
    return and_(
        slot.status == SlotStatus.withdrawn.value,
        slot.withdrawn_at > slot.start_at - func.make_interval(0, 0, 0, 0, hours, type_=DateTime),
    )


# Fragments of the compiled statements (slots.repository, bookings.repository, load_tests.bench).
OFFERABLE_SQL = sql_fragment(offerable(ALIAS_S, NOW))
AVAILABLE_SQL = sql_fragment(available(ALIAS_S, NOW))
