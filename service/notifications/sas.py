"""The appointments the SAS is told of (INT_R03): a booking of a request the SAS regulated, in a
CPTS that joined the SAS, and each later change of it (cancelled, fulfilled, no-show), go into the
outbox for the SAS, in the booking's own transaction, like the practice software's events.

`service.fhir.appointments` delivers them (the Appointment is the FHIR facade's to write): a
message of a booking is sent only after the earlier ones of the same booking were, so that the
SAS never reads a cancellation before the creation it cancels. They share the webhooks' retry
schedule and dead letters; a coordinator sees them (`GET /v1/sas/deliveries`) and may send one
again."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from service.notifications.repository import SNAPSHOT_SQL

# Shares its parameters with `service.ENQUEUE_SQL` (`booking_event_values`): the booking's compound
# statement (`bookings.repository.record_booked`) embeds both. Written only for a request the SAS
# regulated in a CPTS that joined it; anything else writes nothing.
ENQUEUE_SQL = f"""
    INSERT INTO outbox_message
        (event_id, destination, cpts_id, client_id, event_type, booking_id, request_id, practitioner_id,
         occurred_at, snapshot, status, next_attempt_at)
    SELECT gen_random_uuid(), 'sas', r.cpts_id, NULL, :outbox_event_type, :booking_id, r.id, s.practitioner_id,
           :now, {SNAPSHOT_SQL}, 'pending', CAST(:now AS timestamptz)
    FROM care_request AS r
    JOIN cpts AS c ON c.id = r.cpts_id
    JOIN slot AS s ON s.id = :slot_id AND s.cpts_id = r.cpts_id
    WHERE r.id = :request_id AND r.cpts_id = :cpts_id AND r.via_sas AND c.sas_enabled
"""  # noqa: S608 - module constants, no input
_ENQUEUE = text(ENQUEUE_SQL)


async def enqueue(session: AsyncSession, values: dict[str, Any]) -> None:
    """The SAS's message for this change, if the SAS regulated the request (the caller's transaction)."""
    await session.execute(_ENQUEUE, values)


# Due messages for the SAS, oldest first, leaving out any whose booking has an earlier message
# still to send (in order per booking); several senders take disjoint rows.
_CLAIM = text(
    """
    UPDATE outbox_message SET lease_until = :lease_until
    WHERE id IN (
        SELECT m.id FROM outbox_message AS m
        WHERE m.destination = 'sas' AND m.status = 'pending' AND m.next_attempt_at <= :now
          AND (m.lease_until IS NULL OR m.lease_until < :now)
          AND NOT EXISTS (
              SELECT 1 FROM outbox_message AS earlier
              WHERE earlier.booking_id = m.booking_id AND earlier.destination = 'sas'
                AND earlier.id < m.id AND earlier.status = 'pending'
          )
        ORDER BY m.next_attempt_at, m.id
        LIMIT :batch
        FOR UPDATE OF m SKIP LOCKED
    )
    AND status = 'pending' AND (lease_until IS NULL OR lease_until < :now)
    RETURNING id
    """
)


async def claim(session: AsyncSession, now: datetime, lease_until: datetime, batch: int) -> list[int]:
    rows = await session.execute(_CLAIM, {"now": now, "lease_until": lease_until, "batch": batch})
    return sorted(row[0] for row in rows)


NOT_CONFIGURED = "not sent: SNP_SAS_BASE_URL is not set"
_SETTLE_UNCONFIGURED = text(
    """
    UPDATE outbox_message SET status = 'skipped', next_attempt_at = NULL, lease_until = NULL, last_error = :reason
    WHERE id IN (SELECT id FROM outbox_message WHERE destination = 'sas' AND status = 'pending'
                   AND (lease_until IS NULL OR lease_until < now())  -- not one being sent elsewhere
                 LIMIT 1000 FOR UPDATE SKIP LOCKED)
    """
)


async def settle_unconfigured(session: AsyncSession) -> int:
    """No SAS address configured: the messages are settled as skipped (visible, redeliverable once
    it is), instead of waiting for ever."""
    result = await session.execute(_SETTLE_UNCONFIGURED, {"reason": NOT_CONFIGURED})
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class AppointmentFacts:
    """What the Appointment of one message says, read when it is sent."""

    message_id: int
    event_id: uuid.UUID
    event_type: str
    attempts: int
    first: bool  # the booking's first message: created with POST, later ones update with PUT
    # The booking as it is when sent, not as it was when the message was written: each message
    # carries the whole appointment, so a retry or a redelivery never brings back a stale state.
    booking_status: str
    outcome: str | None
    start_at: datetime
    end_at: datetime
    cpts_id: uuid.UUID
    timezone: str
    finess: str | None
    booking_id: uuid.UUID
    booked_at: datetime | None
    effector_idnps: str
    regulating_physician: str | None  # the RPPS the request names
    regulator_system: str | None  # the SAS's identifier of that regulator, when it told us of them
    regulator_value: str | None
    request_id: uuid.UUID


_TO_DELIVER = text(
    """
    SELECT m.id, m.event_id, m.event_type, m.attempts,
           -- Created with POST unless the SAS may already hold it: this message delivered before (a
           -- redelivery), an earlier message, or a later one delivered before this one was sent again.
           m.delivered_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM outbox_message AS other
                           WHERE other.booking_id = m.booking_id AND other.destination = 'sas' AND other.id <> m.id
                             AND (other.id < m.id OR other.status = 'delivered')) AS first,
           b.status AS booking_status, b.outcome, s.start_at, s.end_at,
           m.cpts_id, c.timezone, c.finess, b.id AS booking_id, b.booked_at, p.idnps,
           r.regulating_physician, reg.identifier_system, reg.identifier_value, r.id AS request_id
    FROM outbox_message AS m
    JOIN cpts AS c ON c.id = m.cpts_id
    JOIN booking AS b ON b.id = m.booking_id
    JOIN slot AS s ON s.id = b.slot_id
    JOIN care_request AS r ON r.id = m.request_id
    JOIN practitioner AS p ON p.id = m.practitioner_id
    LEFT JOIN LATERAL (
        SELECT identifier_system, identifier_value FROM sas_regulator
        WHERE sas_regulator.rpps = r.regulating_physician ORDER BY created_at LIMIT 1
    ) AS reg ON true
    WHERE m.id = ANY(:ids) AND m.destination = 'sas'
    ORDER BY m.id
    """
)


async def to_deliver(session: AsyncSession, ids: Sequence[int]) -> list[AppointmentFacts]:
    rows = await session.execute(_TO_DELIVER, {"ids": list(ids)})
    return [
        AppointmentFacts(
            message_id=row.id,
            event_id=row.event_id,
            event_type=row.event_type,
            attempts=row.attempts,
            first=row.first,
            booking_status=row.booking_status,
            outcome=row.outcome,
            start_at=row.start_at,
            end_at=row.end_at,
            cpts_id=row.cpts_id,
            timezone=row.timezone,
            finess=row.finess,
            booking_id=row.booking_id,
            booked_at=row.booked_at,
            effector_idnps=row.idnps,
            regulating_physician=row.regulating_physician,
            regulator_system=row.identifier_system,
            regulator_value=row.identifier_value,
            request_id=row.request_id,
        )
        for row in rows
    ]
