from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import column, select, table, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.accounts.models import SoftwareClient
from service.notifications.models import DeliveryAttempt, OutboxMessage
from service.orientation.models import CareRequest

# What an event reads of its booking when it is rendered (the cancellation may name the patient,
# so it is read then, not copied into the outbox). The bookings package writes the events; this
# one only reads these columns, by name, so that it needs nothing of that package.
BOOKING = table("booking", column("id"), column("cancelled_side"), column("cancel_reason"))


@dataclass(frozen=True)
class BookingFacts:
    cancelled_side: str | None
    cancel_reason: str | None


async def feed_page(
    session: AsyncSession, cpts_id: uuid.UUID, client_id: uuid.UUID, after: int, limit: int
) -> list[tuple[OutboxMessage, CareRequest, BookingFacts]]:
    rows = await session.execute(
        select(OutboxMessage, CareRequest, BOOKING.c.cancelled_side, BOOKING.c.cancel_reason)
        .join(CareRequest, CareRequest.id == OutboxMessage.request_id)
        .join(BOOKING, BOOKING.c.id == OutboxMessage.booking_id)
        .where(OutboxMessage.cpts_id == cpts_id, OutboxMessage.client_id == client_id, OutboxMessage.id > after)
        .order_by(OutboxMessage.id)
        .limit(limit + 1)
    )
    return [(m, r, BookingFacts(side, reason)) for m, r, side, reason in rows]


_CLAIM = text(
    """
    UPDATE outbox_message SET lease_until = :lease_until
    WHERE id IN (
        SELECT id FROM outbox_message
        WHERE status = 'pending' AND next_attempt_at <= :now AND (lease_until IS NULL OR lease_until < :now)
        ORDER BY next_attempt_at, id
        LIMIT :batch
        -- Several relays may run at once: each takes rows the others have not locked.
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id
    """
)


async def claim(session: AsyncSession, now: datetime, lease_until: datetime, batch: int) -> list[int]:
    rows = await session.execute(_CLAIM, {"now": now, "lease_until": lease_until, "batch": batch})
    return sorted(row[0] for row in rows)


async def to_deliver(
    session: AsyncSession, ids: Sequence[int]
) -> list[tuple[OutboxMessage, CareRequest, BookingFacts, SoftwareClient]]:
    rows = await session.execute(
        select(OutboxMessage, CareRequest, BOOKING.c.cancelled_side, BOOKING.c.cancel_reason, SoftwareClient)
        .join(CareRequest, CareRequest.id == OutboxMessage.request_id)
        .join(BOOKING, BOOKING.c.id == OutboxMessage.booking_id)
        .join(SoftwareClient, SoftwareClient.id == OutboxMessage.client_id)
        .where(OutboxMessage.id.in_(list(ids)))
        .order_by(OutboxMessage.id)
    )
    return [(m, r, BookingFacts(side, reason), c) for m, r, side, reason, c in rows]


async def record_attempt(
    session: AsyncSession,
    message_id: int,
    attempt: int,
    at: datetime,
    status_code: int | None,
    error: str | None,
    duration_ms: int,
    values: dict[str, Any],
) -> None:
    session.add(
        DeliveryAttempt(
            message_id=message_id, attempt=attempt, at=at, status_code=status_code, error=error, duration_ms=duration_ms
        )
    )
    await session.execute(update(OutboxMessage).where(OutboxMessage.id == message_id).values(**values))


async def deliveries(
    session: AsyncSession, cpts_id: uuid.UUID, client_id: uuid.UUID, status: str | None, before: int | None, limit: int
) -> list[OutboxMessage]:
    query = select(OutboxMessage).where(OutboxMessage.cpts_id == cpts_id, OutboxMessage.client_id == client_id)
    if status is not None:
        query = query.where(OutboxMessage.status == status)
    if before is not None:
        query = query.where(OutboxMessage.id < before)
    return list(await session.scalars(query.order_by(OutboxMessage.id.desc()).limit(limit + 1)))


async def attempts_of(session: AsyncSession, message_ids: Sequence[int]) -> dict[int, list[DeliveryAttempt]]:
    result: dict[int, list[DeliveryAttempt]] = {m: [] for m in message_ids}
    if message_ids:
        rows = await session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.message_id.in_(list(message_ids)))
            .order_by(DeliveryAttempt.id)
        )
        for attempt in rows:
            result[attempt.message_id].append(attempt)
    return result


async def get_message(
    session: AsyncSession, cpts_id: uuid.UUID, client_id: uuid.UUID, message_id: int
) -> OutboxMessage | None:
    return await session.scalar(
        select(OutboxMessage).where(
            OutboxMessage.cpts_id == cpts_id, OutboxMessage.client_id == client_id, OutboxMessage.id == message_id
        )
    )
