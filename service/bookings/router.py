"""The booking journey: suggestions, hold, confirm or book in one step, release, cancel, outcome."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Query, Request, Response, status

from service.accounts.domain import Role
from service.auth import Handler, Principal, Staff, require_roles
from service.bookings import service
from service.bookings.schemas import BookingOut, CancelIn, OutcomeIn, SlotChoice, Suggestions
from service.clock import Now
from service.db import SessionDep
from service.direct import direct
from service.fields import aware_query
from service.flows import patient_messages
from service.idempotency import Idempotent, PendingKey
from service.notifications.schemas import PatientMessageIn, PatientMessageOut
from service.routing import api_router, serialized, statements_alone
from service.slots.domain import Modality

router = api_router(prefix="/v1")

OutcomeReporter = Annotated[Principal, Depends(require_roles(Role.software, Role.coordinator, Role.admin))]


@router.get(
    "/requests/{request_id}/suggestions",
    operation_id="requests-suggestions",
    tags=["orientation"],
    response_model=Suggestions,
)
@direct
@statements_alone
async def suggestions(
    request_id: uuid.UUID,
    principal: Staff,
    session: SessionDep,
    now: Now,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
    not_before: Annotated[datetime | None, Query(description="Only slots starting at or after this")] = None,
    max_distance_km: Annotated[float | None, Query(gt=0, le=500, description="Only practices this close")] = None,
    modality: Annotated[
        list[Modality] | None, Query(description="Only these modalities (among the request's needs)")
    ] = None,
) -> Response:
    """Free slots that fit the request's needs and these filters, ranked; those after the deadline
    come last, flagged `within_deadline: false`. Slots starting within the CPTS's lead time are not
    offered. When nothing (in time) is offered: `reasons`, and `alternatives` (without the filters,
    later, by video, another specialty or profession). 422 for a red-flagged request."""
    filters = service.SuggestionFilters(
        not_before=aware_query(not_before, "not_before"),
        max_distance_km=max_distance_km,
        modalities=frozenset(modality) if modality else None,
    )
    return serialized(await service.suggestions(session, principal, request_id, limit, now, filters))


@router.post(
    "/requests/{request_id}/hold",
    status_code=status.HTTP_201_CREATED,
    operation_id="requests-hold",
    tags=["orientation"],
    response_model=BookingOut,
)
@direct
async def hold(
    request_id: uuid.UUID,
    choice: SlotChoice,
    principal: Handler,
    session: SessionDep,
    now: Now,
    http: Request,
    pending: PendingKey,
) -> Response:
    """Hold a slot while talking with the patient (the CPTS's hold TTL, default 180 s); 409
    `slot_unavailable` when someone else has it. Holding another slot drops the previous hold."""
    taken = await service.take_slot_at_once(
        session, principal, request_id, choice.slot_id, now, confirm=False, http=http, pending=pending
    )
    return serialized(taken, status.HTTP_201_CREATED)


@router.post(
    "/requests/{request_id}/book",
    status_code=status.HTTP_201_CREATED,
    operation_id="requests-book",
    tags=["orientation"],
    response_model=BookingOut,
)
@direct
async def book(
    request_id: uuid.UUID,
    choice: SlotChoice,
    principal: Handler,
    session: SessionDep,
    now: Now,
    http: Request,
    pending: PendingKey,
) -> Response:
    """Hold and confirm in one step."""
    taken = await service.take_slot_at_once(
        session, principal, request_id, choice.slot_id, now, confirm=True, http=http, pending=pending
    )
    return serialized(taken, status.HTTP_201_CREATED)


@router.get("/bookings/{booking_id}", operation_id="bookings-get", tags=["bookings"])
async def get_booking(booking_id: uuid.UUID, principal: Staff, session: SessionDep) -> BookingOut:
    return await service.get(session, principal, booking_id)


@router.post(
    "/bookings/{booking_id}/confirm", operation_id="bookings-confirm", tags=["bookings"], response_model=BookingOut
)
@direct
async def confirm(
    booking_id: uuid.UUID, principal: Handler, session: SessionDep, now: Now, http: Request, pending: PendingKey
) -> Response:
    """Confirm a hold; 409 `hold_expired` when the slot went to someone else meanwhile."""
    return serialized(await service.confirm_at_once(session, principal, booking_id, now, http=http, pending=pending))


@router.post(
    "/bookings/{booking_id}/release", operation_id="bookings-release", dependencies=[Idempotent], tags=["bookings"]
)
async def release(
    booking_id: uuid.UUID, principal: Handler, session: SessionDep, now: Now, http: Request
) -> BookingOut:
    """Drop a hold: the slot is free again."""
    return await service.release(session, principal, booking_id, now, http)


@router.post(
    "/bookings/{booking_id}/cancel", operation_id="bookings-cancel", dependencies=[Idempotent], tags=["bookings"]
)
async def cancel(
    booking_id: uuid.UUID, data: CancelIn, principal: Handler, session: SessionDep, now: Now, http: Request
) -> BookingOut:
    """Cancel a booked appointment: the slot is free again (withdrawn when the practitioner
    cancels) and the request reopens with its original deadline."""
    return await service.cancel(session, principal, booking_id, data, now, http)


@router.post(
    "/bookings/{booking_id}/patient-messages",
    status_code=status.HTTP_201_CREATED,
    operation_id="bookings-send_to_patient",
    dependencies=[Idempotent],
    tags=["bookings"],
)
async def send_to_patient(
    booking_id: uuid.UUID, data: PatientMessageIn, principal: Handler, session: SessionDep, now: Now, http: Request
) -> list[PatientMessageOut]:
    """Send the booking's confirmation to the patient by SMS or e-mail (their consent is recorded;
    the cancellation, if any, follows the same way). Asking twice sends once. Answers the request's
    messages and their delivery state."""
    return await patient_messages.send_confirmation(session, principal, booking_id, data.channel, now, http)


@router.post(
    "/bookings/{booking_id}/outcome", operation_id="bookings-outcome", dependencies=[Idempotent], tags=["bookings"]
)
async def outcome(
    booking_id: uuid.UUID, data: OutcomeIn, principal: OutcomeReporter, session: SessionDep, now: Now, http: Request
) -> BookingOut:
    """Fulfilled or no-show, by the practitioner's software (once) or a coordinator (who may
    correct it), after the appointment has started."""
    return await service.report_outcome(session, principal, booking_id, data, now, http)
