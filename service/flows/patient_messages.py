"""Telling the patient of a booking on demand: the handler offers it on the confirmation screen
(the patient agrees on the phone), after the booking was made without it."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit import service as audit
from service.auth import Principal
from service.bookings import repository as bookings_repository
from service.bookings.domain import BookingStatus
from service.errors import Conflict, Invalid, field_error
from service.notifications import patients
from service.notifications.domain import EventType
from service.notifications.models import PatientMessage
from service.notifications.schemas import PatientMessageOut
from service.orientation import repository as requests_repository
from service.orientation.domain import notify_problem

# A message in these states needs no second one (one is on its way, or arrived).
_UNDER_WAY = ("pending", "sent")


async def send_confirmation(
    session: AsyncSession,
    principal: Principal,
    booking_id: uuid.UUID,
    channel: str,
    now: datetime,
    http: Request | None,
) -> list[PatientMessageOut]:
    """Record the patient's consent to `channel` and send the booking's confirmation by it, unless
    one is already on its way or arrived (asking twice sends once)."""
    unlocked = await bookings_repository.get(session, principal.cpts_id, booking_id)
    care_request = await requests_repository.get(session, principal.cpts_id, unlocked.request_id, for_update=True)
    booking = await bookings_repository.get(session, principal.cpts_id, booking_id, for_update=True)
    if booking.status != BookingStatus.booked:
        raise Conflict("booking_not_booked", "Only a confirmed booking is sent to the patient.")
    problem = notify_problem([channel], care_request.patient_phone, care_request.patient_email)
    if problem or care_request.identity_purged_at is not None:
        detail = problem or "the patient's identity was erased"
        raise Invalid("validation_error", detail, errors=[field_error(["body", "channel"], detail)])
    if channel not in care_request.notify_by:
        care_request.notify_by = sorted({*care_request.notify_by, channel})
        care_request.updated_at = now
    under_way = await session.scalar(
        select(PatientMessage.id).where(
            PatientMessage.cpts_id == principal.cpts_id,
            PatientMessage.booking_id == booking.id,
            PatientMessage.channel == channel,
            PatientMessage.event_type == EventType.booking_confirmed.value,
            PatientMessage.status.in_(_UNDER_WAY),
        )
    )
    if under_way is None:
        session.add(
            PatientMessage(
                cpts_id=principal.cpts_id, request_id=care_request.id, booking_id=booking.id, channel=channel,
                event_type=EventType.booking_confirmed.value, status="pending", created_at=now, next_attempt_at=now,
            )
        )  # fmt: skip
        await session.flush()
        await audit.record(
            session, principal, "request.notify", "request", [care_request.id], now, http, {"channel": channel}
        )
    return await patients.of_request(session, principal.cpts_id, care_request.id)
