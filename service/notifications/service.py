"""Booking events for practice software: the outbox (written with the change), the feed, and
what the coordinator sees of deliveries."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from service.accounts import repository as accounts_repository
from service.audit import service as audit
from service.auth import Principal
from service.db import StatementConnection
from service.errors import Conflict, NotFound
from service.notifications import repository, sas
from service.notifications.domain import EventType, MessageStatus
from service.notifications.models import DeliveryAttempt, OutboxMessage
from service.notifications.repository import SNAPSHOT_SQL, BookingFacts, FeedRow
from service.notifications.schemas import (
    AttemptOut,
    DeliveryOut,
    Feed,
    FeedBooking,
    FeedEvent,
    FeedPatient,
    FeedSlot,
)
from service.orientation.models import CareRequest
from service.pagination import BY_FEED_SEQUENCE as FEED
from service.pagination import Page
from service.reference.codes import motifs

# One message per active software client of the practitioner; `feed_only` without a webhook URL.
# Also embedded in the booking's compound statement (`bookings.repository.record_booked`); the
# parameters are those `booking_event_values` answers.
ENQUEUE_SQL = f"""
    INSERT INTO outbox_message
        (event_id, cpts_id, client_id, event_type, booking_id, request_id, practitioner_id, occurred_at, snapshot,
         status, next_attempt_at)
    SELECT gen_random_uuid(), :cpts_id, c.id, :outbox_event_type, :booking_id, :request_id, s.practitioner_id, :now,
           {SNAPSHOT_SQL},
           CASE WHEN c.webhook_url IS NULL THEN 'feed_only' ELSE 'pending' END,
           CASE WHEN c.webhook_url IS NULL THEN NULL ELSE CAST(:now AS timestamptz) END
    FROM slot AS s
    JOIN client_practitioner AS cp ON cp.cpts_id = s.cpts_id AND cp.practitioner_id = s.practitioner_id
    JOIN software_client AS c ON c.id = cp.client_id
    WHERE s.id = :slot_id AND s.cpts_id = :cpts_id AND c.active
"""  # noqa: S608 - module constants, no input
_ENQUEUE = text(ENQUEUE_SQL)


def booking_event_values(
    cpts_id: uuid.UUID,
    booking_id: uuid.UUID,
    request_id: uuid.UUID,
    status: str,
    slot_id: uuid.UUID,
    event_type: EventType,
    now: datetime,
    *,
    outcome: str | None = None,
) -> dict[str, Any]:
    """The parameters of `ENQUEUE_SQL` (and of `sas.ENQUEUE_SQL`): the event, and the booking's
    status and slot (`SNAPSHOT_SQL` reads the rest from the slot)."""
    return {
        "cpts_id": cpts_id,
        "outbox_event_type": event_type.value,
        "booking_id": booking_id,
        "request_id": request_id,
        "now": now,
        "outbox_status": status,
        "outbox_outcome": outcome,
        "slot_id": slot_id,
    }


async def booking_event(
    session: AsyncSession,
    cpts_id: uuid.UUID,
    booking_id: uuid.UUID,
    request_id: uuid.UUID,
    status: str,
    slot_id: uuid.UUID,
    event_type: EventType,
    now: datetime,
) -> None:
    """Write the event for the practitioner's software, and for the SAS when it regulated the
    request, in the caller's transaction (the outbox)."""
    values = booking_event_values(cpts_id, booking_id, request_id, status, slot_id, event_type, now)
    await session.execute(_ENQUEUE, values)
    await sas.enqueue(session, values)


async def appointment_outcome(
    session: AsyncSession,
    cpts_id: uuid.UUID,
    booking_id: uuid.UUID,
    request_id: uuid.UUID,
    slot_id: uuid.UUID,
    outcome: str,
    now: datetime,
) -> None:
    """The SAS learns that the appointment took place or not (the practice software reported it)."""
    values = booking_event_values(
        cpts_id, booking_id, request_id, "booked", slot_id, EventType.booking_outcome, now, outcome=outcome
    )
    await sas.enqueue(session, values)


def render(
    message: OutboxMessage | FeedRow, care_request: CareRequest | FeedRow, booking: BookingFacts | FeedRow
) -> FeedEvent:
    """The event as the practitioner's software receives it (feed and webhook alike)."""
    snapshot: dict[str, Any] = message.snapshot
    slot = snapshot["slot"]
    motif = motifs().get(care_request.motif)
    return FeedEvent(
        id=message.event_id,
        sequence=message.id,
        type=message.event_type,
        occurred_at=message.occurred_at,
        booking=FeedBooking(
            booking_id=message.booking_id,
            reference=booking.reference,
            status=snapshot["status"],
            practitioner_id=uuid.UUID(snapshot["practitioner_id"]),
            slot=FeedSlot(
                id=uuid.UUID(slot["id"]),
                external_id=slot["external_id"],
                start=datetime.fromisoformat(slot["start"]),
                end=datetime.fromisoformat(slot["end"]),
                modality=slot["modality"],
                site_id=uuid.UUID(slot["site_id"]),
                agenda_url=slot.get("agenda_url"),  # events written before it was carried have none
            ),
            motif=care_request.motif,
            motif_label=motif.label if motif else "",
            note=care_request.note,
            patient=FeedPatient(
                family_name=care_request.patient_family_name,
                given_name=care_request.patient_given_name,
                birth_date=care_request.patient_birth_date,
                sex=care_request.patient_sex,
                phone=care_request.patient_phone,
                address=care_request.patient_address,
            ),
            cancelled_side=booking.cancelled_side if message.event_type == EventType.booking_cancelled else None,
            cancel_reason=booking.cancel_reason if message.event_type == EventType.booking_cancelled else None,
        ),
    )


async def feed(
    conn: StatementConnection, principal: Principal, cursor: str | None, limit: int, now: datetime, http: Request | None
) -> Feed:
    """The calling client's booking events, in order, resuming exactly after `cursor`. Reading it
    discloses patient data, so it is audited like any other access (by the page's own statement)."""
    after = FEED.decode(cursor)
    audited = audit.each_row(principal, "feed.read", "request", now, http)
    rows = await repository.feed_page(conn, principal.id, after[0] if after else 0, limit, audited)
    page = rows[:limit]
    # An empty page keeps the cursor: the client polls again from the same place.
    next_cursor = FEED.encode([page[-1].id]) if page else cursor
    return Feed(items=[render(row, row, row) for row in page], next_cursor=next_cursor)


def delivery_out(message: OutboxMessage, attempts: list[DeliveryAttempt]) -> DeliveryOut:
    return DeliveryOut(
        message_id=message.id,
        event_id=message.event_id,
        type=message.event_type,
        booking_id=message.booking_id,
        occurred_at=message.occurred_at,
        status=message.status,
        attempts=message.attempts,
        next_attempt_at=message.next_attempt_at,
        delivered_at=message.delivered_at,
        last_status_code=message.last_status_code,
        last_error=message.last_error,
        history=[AttemptOut.model_validate(a, from_attributes=True) for a in attempts],
    )


async def deliveries(
    session: AsyncSession, cpts_id: uuid.UUID, client_id: uuid.UUID, status: str | None, before: int | None, limit: int
) -> Page[DeliveryOut]:
    """Webhook deliveries to a client, newest first, with each attempt."""
    await accounts_repository.get_client(session, cpts_id, client_id)
    rows = await repository.deliveries(session, cpts_id, client_id, status, before, limit)
    page = rows[:limit]
    attempts = await repository.attempts_of(session, [m.id for m in page])
    return Page(
        items=[delivery_out(m, attempts[m.id]) for m in page],
        next_cursor=str(page[-1].id) if len(rows) > limit else None,
    )


async def sas_deliveries(
    session: AsyncSession, cpts_id: uuid.UUID, status: str | None, before: int | None, limit: int
) -> Page[DeliveryOut]:
    """The appointments sent (or to send) to the SAS for this CPTS, newest first, with each attempt."""
    rows = await repository.deliveries(session, cpts_id, None, status, before, limit)
    page = rows[:limit]
    attempts = await repository.attempts_of(session, [m.id for m in page])
    return Page(
        items=[delivery_out(m, attempts[m.id]) for m in page],
        next_cursor=str(page[-1].id) if len(rows) > limit else None,
    )


async def redeliver(
    session: AsyncSession, cpts_id: uuid.UUID, client_id: uuid.UUID | None, message_id: int, now: datetime
) -> DeliveryOut:
    """Send a message again (after a dead end, or to resend a delivered one): a new series of
    attempts; the history of the earlier ones stays. `client_id` None: a message to the SAS."""
    if client_id is not None:
        await accounts_repository.get_client(session, cpts_id, client_id)
    message = await repository.get_message(session, cpts_id, client_id, message_id)
    if message is None:
        raise NotFound("delivery")
    if message.status == MessageStatus.feed_only:
        raise Conflict("no_webhook", "This client has no webhook URL: the event is in its feed.")
    message.status = MessageStatus.pending.value
    message.attempts = 0
    message.next_attempt_at = now
    message.lease_until = None
    await session.flush()
    attempts = await repository.attempts_of(session, [message.id])
    return delivery_out(message, attempts[message.id])
