from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request

from service.accounts.domain import Role
from service.auth import Handler, Principal, Staff, require_roles
from service.bookings import repository, service
from service.bookings.schemas import CancelIn, OutcomeIn
from service.clock import Now
from service.db import SessionDep
from service.idempotency import Idempotent
from service.orientation.schemas import BookingOut
from service.routing import api_router

router = api_router(prefix="/v1/bookings", tags=["bookings"])

OutcomeReporter = Annotated[Principal, Depends(require_roles(Role.software, Role.coordinator, Role.admin))]


@router.get("/{booking_id}", operation_id="bookings-get")
async def get_booking(booking_id: uuid.UUID, principal: Staff, session: SessionDep) -> BookingOut:
    return service.booking_out(*(await repository.with_slot(session, principal.cpts_id, booking_id)))


@router.post("/{booking_id}/confirm", operation_id="bookings-confirm", dependencies=[Idempotent])
async def confirm(
    booking_id: uuid.UUID, principal: Handler, session: SessionDep, now: Now, http: Request
) -> BookingOut:
    """Confirm a hold; 409 `hold_expired` when the slot went to someone else meanwhile."""
    return await service.confirm(session, principal, booking_id, now, http)


@router.post("/{booking_id}/release", operation_id="bookings-release", dependencies=[Idempotent])
async def release(
    booking_id: uuid.UUID, principal: Handler, session: SessionDep, now: Now, http: Request
) -> BookingOut:
    """Drop a hold: the slot is free again."""
    booking = await service.release(session, principal, booking_id, now, http)
    return await service.answer(session, principal, booking)


@router.post("/{booking_id}/cancel", operation_id="bookings-cancel", dependencies=[Idempotent])
async def cancel(
    booking_id: uuid.UUID, data: CancelIn, principal: Handler, session: SessionDep, now: Now, http: Request
) -> BookingOut:
    """Cancel a booked appointment: the slot is free again (withdrawn when the practitioner
    cancels) and the request reopens with its original deadline."""
    booking = await service.cancel(session, principal, booking_id, data, now, http)
    return await service.answer(session, principal, booking)


@router.post("/{booking_id}/outcome", operation_id="bookings-outcome", dependencies=[Idempotent])
async def outcome(
    booking_id: uuid.UUID, data: OutcomeIn, principal: OutcomeReporter, session: SessionDep, now: Now, http: Request
) -> BookingOut:
    """Fulfilled or no-show, by the practitioner's software (once) or a coordinator (who may
    correct it), after the appointment has started."""
    booking = await service.report_outcome(session, principal, booking_id, data, now, http)
    return await service.answer(session, principal, booking)
