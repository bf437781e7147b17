from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

from sqlalchemy import column, select, table, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.accounts.models import SoftwareClient
from service.audit import service as audit
from service.db import DriverStatement, StatementConnection, fetch
from service.notifications.models import DeliveryAttempt, OutboxMessage
from service.orientation.models import CareRequest

# What an event reads of its booking when it is rendered (the cancellation may name the patient,
# so it is read then, not copied into the outbox). The bookings package writes the events; this
# one only reads these columns, by name, so that it needs nothing of that package.
BOOKING = table("booking", column("id"), column("reference"), column("cancelled_side"), column("cancel_reason"))


# What an event says of the booking and its slot, read from the slot row `s` when the event is
# written (the slot's times, practitioner and site do not change under a booking). Written here
# only: the webhook, the feed and the SAS message render it (`render`, `sas`). The booking's single
# statement reads the same row before its own UPDATE of the slot's state, which this leaves out.
SNAPSHOT_SQL = """
    jsonb_build_object(
        'status', CAST(:outbox_status AS text),
        'practitioner_id', s.practitioner_id,
        'slot', jsonb_build_object('id', s.id, 'external_id', s.external_id, 'start', s.start_at, 'end', s.end_at,
                                   'modality', s.modality, 'site_id', s.site_id, 'agenda_url', s.agenda_url)
    ) || jsonb_strip_nulls(jsonb_build_object('outcome', CAST(:outbox_outcome AS text)))
"""


@dataclass(frozen=True)
class BookingFacts:
    reference: str
    cancelled_side: str | None
    cancel_reason: str | None


@dataclass(frozen=True, slots=True)
class FeedRow:
    """An event of the feed as its statement reads it (`render` takes it for the message, the
    request and the booking): the message, what the event shows of the request and the booking."""

    id: int  # the message's, the feed's sequence
    event_id: uuid.UUID
    event_type: str
    occurred_at: datetime
    booking_id: uuid.UUID
    snapshot: dict[str, Any]
    request_id: uuid.UUID
    motif: str
    note: str | None
    patient_family_name: str | None
    patient_given_name: str | None
    patient_birth_date: date | None
    patient_sex: str | None
    patient_phone: str | None
    patient_address: str | None
    reference: str
    cancelled_side: str | None
    cancel_reason: str | None


_SHOWN = "SELECT request_id AS id FROM page ORDER BY page.id LIMIT :shown"  # page.id: the message's

# A page of the client's events and the audit rows of the requests it shows, in one statement run
# by the driver: the ORM's entities (the whole request, fifty columns) were most of a page's CPU.
_FEED_PAGE = DriverStatement(
    text(
        f"""
        WITH page AS (
            SELECT m.id, m.event_id, m.event_type, m.occurred_at, m.booking_id, m.snapshot, r.id AS request_id,
                   r.motif, r.note, r.patient_family_name, r.patient_given_name, r.patient_birth_date, r.patient_sex,
                   r.patient_phone, r.patient_address, b.reference, b.cancelled_side, b.cancel_reason
            FROM outbox_message AS m
            JOIN care_request AS r ON r.id = m.request_id
            JOIN booking AS b ON b.id = m.booking_id
            -- The client's practitioners now: removed from one, it no longer reads their patients.
            JOIN client_practitioner AS cp ON cp.client_id = m.client_id AND cp.practitioner_id = m.practitioner_id
            WHERE m.cpts_id = :cpts_id AND m.client_id = :client_id AND m.id > :after
            ORDER BY m.id
            LIMIT :shown + 1
        ), audited AS ({audit.INSERT_EACH_SQL.format(ids=_SHOWN)})
        SELECT {", ".join(f.name for f in fields(FeedRow))} FROM page ORDER BY id
        """  # noqa: S608 - module constants, no input
    )
)


async def feed_page(
    conn: StatementConnection, client_id: uuid.UUID, after: int, shown: int, audited: dict[str, Any]
) -> list[FeedRow]:
    """The client's events after `after`, `shown + 1` at most (the last tells a next page), the
    first `shown` audited (`audit.each_row` values, whose `cpts_id` scopes the read)."""
    rows = await fetch(conn, _FEED_PAGE, client_id=client_id, after=after, shown=shown, **audited)
    return [FeedRow(*row) for row in rows]


# Fair to every client: the batch takes each due client's oldest message first, then each one's
# second, and so on; so one client's backlog (a receiver down for hours) never pushes another's
# next delivery past the next round.
_CLAIM = text(
    """
    UPDATE outbox_message SET lease_until = :lease_until
    WHERE id IN (
        SELECT id FROM outbox_message
        WHERE id IN (
            SELECT id FROM (
                SELECT id, next_attempt_at,
                       row_number() OVER (PARTITION BY client_id ORDER BY next_attempt_at, id) AS turn
                FROM outbox_message
                -- The SAS's messages have their own sender (service.notifications.sas).
                WHERE destination = 'client' AND status = 'pending' AND next_attempt_at <= :now
                  AND (lease_until IS NULL OR lease_until < :now)
            ) AS due
            ORDER BY turn, next_attempt_at, id
            LIMIT :batch
        )
        -- Checked again here, on the row as it is when locked: a relay whose choice above was made
        -- before another relay's claim committed must not take the same rows after it.
        AND status = 'pending' AND next_attempt_at <= :now AND (lease_until IS NULL OR lease_until < :now)
        -- Several relays may run at once: each takes rows the others have not locked.
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id
    """
)


async def claim(session: AsyncSession, now: datetime, lease_until: datetime, batch: int) -> list[int]:
    rows = await session.execute(_CLAIM, {"now": now, "lease_until": lease_until, "batch": batch})
    return sorted(row[0] for row in rows)


# Messages nobody should receive any more: the client was deactivated, lost its webhook URL, or no
# longer serves the practitioner. Settled as `skipped` (visible, redeliverable) instead of being
# claimed and dropped again every round.
_SETTLE_UNDELIVERABLE = text(
    """
    UPDATE outbox_message AS m
    SET status = 'skipped', next_attempt_at = NULL, lease_until = NULL, last_error = :reason
    WHERE m.id IN (
        SELECT o.id FROM outbox_message AS o JOIN software_client AS c ON c.id = o.client_id
        WHERE o.status = 'pending'
          AND (NOT c.active OR c.webhook_url IS NULL
               OR NOT EXISTS (SELECT 1 FROM client_practitioner AS cp
                              WHERE cp.client_id = o.client_id AND cp.practitioner_id = o.practitioner_id))
        LIMIT :batch
        FOR UPDATE OF o SKIP LOCKED
    )
    """
)
SKIPPED_REASON = "not sent: the client is inactive, has no webhook URL, or no longer serves the practitioner"


async def settle_undeliverable(session: AsyncSession, batch: int = 1000) -> int:
    result = await session.execute(_SETTLE_UNDELIVERABLE, {"batch": batch, "reason": SKIPPED_REASON})
    return int(getattr(result, "rowcount", 0) or 0)


async def to_deliver(
    session: AsyncSession, ids: Sequence[int]
) -> list[tuple[OutboxMessage, CareRequest, BookingFacts, SoftwareClient]]:
    rows = await session.execute(
        select(
            OutboxMessage,
            CareRequest,
            BOOKING.c.reference,
            BOOKING.c.cancelled_side,
            BOOKING.c.cancel_reason,
            SoftwareClient,
        )
        .join(CareRequest, CareRequest.id == OutboxMessage.request_id)
        .join(BOOKING, BOOKING.c.id == OutboxMessage.booking_id)
        .join(SoftwareClient, SoftwareClient.id == OutboxMessage.client_id)
        .where(OutboxMessage.id.in_(list(ids)))
        .order_by(OutboxMessage.id)
    )
    return [(m, r, BookingFacts(ref, side, reason), c) for m, r, ref, side, reason, c in rows]


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


def _addressed_to(client_id: uuid.UUID | None) -> Any:
    """A client's messages, or (None) the SAS's."""
    if client_id is None:
        return OutboxMessage.destination == "sas"
    return OutboxMessage.client_id == client_id


async def deliveries(
    session: AsyncSession,
    cpts_id: uuid.UUID,
    client_id: uuid.UUID | None,
    status: str | None,
    before: int | None,
    limit: int,
) -> list[OutboxMessage]:
    query = select(OutboxMessage).where(OutboxMessage.cpts_id == cpts_id, _addressed_to(client_id))
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
    session: AsyncSession, cpts_id: uuid.UUID, client_id: uuid.UUID | None, message_id: int
) -> OutboxMessage | None:
    return await session.scalar(
        select(OutboxMessage).where(
            OutboxMessage.cpts_id == cpts_id, _addressed_to(client_id), OutboxMessage.id == message_id
        )
    )
