"""Hold, confirm, book, release, cancel and report outcomes.

Lock order, everywhere: the request row, then the booking, then the slot (through its
conditional UPDATE). A request's state changes only through `orientation.log.append_event`.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit import service as audit
from service.auth import Principal
from service.bookings import repository
from service.bookings.domain import (
    BookingStatus,
    CancelSide,
    Candidate,
    check_transition,
    ended_hold_status,
    rank,
    slot_status_after_cancel,
)
from service.bookings.models import Booking
from service.bookings.repository import ClaimedSlot
from service.bookings.schemas import BookingOut, BookingSlot, CancelIn, OutcomeIn, Suggestion, Suggestions
from service.errors import Conflict, Invalid, NotFound
from service.notifications import service as notifications
from service.notifications.domain import EventType
from service.orientation import log
from service.orientation import repository as requests_repository
from service.orientation.domain import (
    EventKind,
    RequestStatus,
    next_status,
    refuse_if_red_flagged,
    statuses_allowing,
)
from service.orientation.log import LockedRequest, append_event
from service.orientation.models import CareRequest
from service.practitioners.models import Practitioner, Site
from service.slots import repository as slots_repository
from service.slots import service as slots_service
from service.slots.domain import Modality, SlotStatus
from service.slots.models import Slot
from service.slots.schemas import PractitionerSummary, SiteSummary

ONE_ACTIVE_PER_SLOT = "uq_booking_one_active_per_slot"
ONE_ACTIVE_PER_REQUEST = "uq_booking_one_active_per_request"

SLOT_UNAVAILABLE = ("slot_unavailable", "This slot is no longer free: choose another one.")
# The request statuses from which a booking may be made (the orientation log's transitions).
BOOKABLE = statuses_allowing(EventKind.booked)


async def _audit(
    session: AsyncSession,
    principal: Principal,
    action: str,
    request_id: uuid.UUID,
    booking: Booking,
    now: datetime,
    http: Request | None,
) -> None:
    await audit.record(session, principal, action, "request", [request_id], now, http, {"booking_id": str(booking.id)})


async def end_active_hold(session: AsyncSession, cpts_id: uuid.UUID, request_id: uuid.UUID, now: datetime) -> None:
    """Drop the request's current hold, if any (closing the request). The caller holds its lock."""
    booking = await repository.active_hold_of_request(session, cpts_id, request_id)
    if booking is None:
        return
    await repository.free_held_slot(session, cpts_id, booking.slot_id, booking.hold_token)
    booking.status = ended_hold_status(booking.hold_expires_at, now).value
    booking.ended_at = now
    await session.flush()


async def take_slot(
    session: AsyncSession,
    principal: Principal,
    request_id: uuid.UUID,
    slot_id: uuid.UUID,
    now: datetime,
    *,
    confirm: bool,
    http: Request | None = None,
) -> BookingOut:
    """Hold a slot for a request (`confirm=False`), or hold and confirm it in one step. The hot
    path of the service: compiled statements and as few round trips as the rules allow."""
    booking_id = uuid.uuid4()
    status = BookingStatus.booked if confirm else BookingStatus.held
    values = {
        "slot_id": slot_id,
        "booking_id": booking_id,
        "cpts_id": principal.cpts_id,
        "request_id": request_id,
        "status": status.value,
        "hold_token": None if confirm else uuid.uuid4(),
        "actor_id": principal.id,
        "booked_at": now if confirm else None,
        "booked_by_id": principal.id if confirm else None,
        "now": now,
    }
    attempt = await repository.lock_and_claim(session, values, BOOKABLE)
    if attempt.request_status is None:
        raise NotFound("request")
    # Refuses red-flagged (422), booked or closed (409) requests; nothing was written.
    next_status(RequestStatus(attempt.request_status), EventKind.booked)
    request = LockedRequest(request_id, principal.cpts_id, attempt.request_status)
    claim = attempt.claim
    if attempt.holding:  # switching slots: the current hold ends first, then the claim
        locked = await repository.lock_request_ending_hold(session, principal.cpts_id, request_id, now)
        claim = await repository.claim(session, values, hold_seconds=locked.hold_ttl_seconds)
    if claim.slot is None:
        raise Conflict(*SLOT_UNAVAILABLE) if claim.slot_exists else NotFound("slot")
    if not claim.inserted:  # a concurrent hold or booking for the same request or slot committed first
        if await repository.request_has_active_booking(session, principal.cpts_id, request.id):
            raise Conflict("request_booked", "This request already has a booking.")
        raise Conflict(*SLOT_UNAVAILABLE)
    slot = claim.slot
    action = "booking.book" if confirm else "booking.hold"
    audit_detail = {"booking_id": str(booking_id)}
    if confirm:
        # The hot path: the event, the notifications and the audit row in one round trip.
        await repository.record_booked(
            session,
            log.event_values(principal, request, EventKind.booked, now, booking_id=booking_id),
            notifications.booking_event_values(
                principal.cpts_id, booking_id, request.id, status.value, slot, EventType.booking_confirmed, now
            ),
            audit.one_row(principal, action, "request", request.id, now, http, audit_detail),
        )
    else:
        await audit.record(session, principal, action, "request", [request.id], now, http, audit_detail)
    return _answer(
        booking_id, request.id, status, slot, hold_expires_at=claim.hold_expires_at, booked_at=now if confirm else None
    )


def _answer(
    booking_id: uuid.UUID,
    request_id: uuid.UUID,
    status: BookingStatus,
    slot: ClaimedSlot,
    *,
    hold_expires_at: datetime | None = None,
    booked_at: datetime | None = None,
) -> BookingOut:
    return BookingOut(
        booking_id=booking_id,
        request_id=request_id,
        slot_id=slot.id,
        status=status.value,
        hold_expires_at=hold_expires_at,
        booked_at=booked_at,
        cancelled_side=None,
        cancel_reason=None,
        outcome=None,
        slot=BookingSlot(
            id=slot.id,
            start=slot.start_at,
            end=slot.end_at,
            modality=Modality(slot.modality),
            practitioner=PractitionerSummary(
                id=slot.practitioner_id,
                family_name=slot.family_name,
                given_name=slot.given_name,
                profession=slot.profession,
                specialty=slot.specialty,
            ),
            site=SiteSummary(
                id=slot.site_id,
                name=slot.site_name,
                address=slot.address,
                commune_insee=slot.commune_insee,
                latitude=slot.latitude,
                longitude=slot.longitude,
            ),
        ),
    )


async def _locked(session: AsyncSession, principal: Principal, booking_id: uuid.UUID) -> tuple[CareRequest, Booking]:
    unlocked = await repository.get(session, principal.cpts_id, booking_id)
    care_request = await requests_repository.get(session, principal.cpts_id, unlocked.request_id, for_update=True)
    booking = await repository.get(session, principal.cpts_id, booking_id, for_update=True)
    return care_request, booking


async def confirm(
    session: AsyncSession, principal: Principal, booking_id: uuid.UUID, now: datetime, http: Request | None = None
) -> BookingOut:
    care_request, booking = await _locked(session, principal, booking_id)
    if booking.status != BookingStatus.booked:  # confirming twice changes nothing
        check_transition(BookingStatus(booking.status), BookingStatus.booked)
        next_status(RequestStatus(care_request.status), EventKind.booked)
        assert booking.hold_token is not None
        if not await repository.confirm_slot(session, principal.cpts_id, booking.slot_id, booking.hold_token):
            raise Conflict("hold_expired", "The hold expired and the slot went to someone else: choose another slot.")
        booking.status = BookingStatus.booked.value
        booking.booked_at, booking.booked_by_id = now, principal.id
        booking.hold_token, booking.hold_expires_at = None, None
        await session.flush()
        await append_event(session, principal, care_request, EventKind.booked, now, booking_id=booking.id)
        slot = await repository.slot_details(session, principal.cpts_id, booking.slot_id)
        await notifications.booking_event(
            session,
            principal.cpts_id,
            booking.id,
            care_request.id,
            booking.status,
            slot,
            EventType.booking_confirmed,
            now,
        )
        await _audit(session, principal, "booking.confirm", care_request.id, booking, now, http)
    else:
        slot = await repository.slot_details(session, principal.cpts_id, booking.slot_id)
    return _answer(booking.id, care_request.id, BookingStatus.booked, slot, booked_at=booking.booked_at)


async def release(
    session: AsyncSession, principal: Principal, booking_id: uuid.UUID, now: datetime, http: Request | None = None
) -> BookingOut:
    care_request, booking = await _locked(session, principal, booking_id)
    if booking.status in (BookingStatus.released, BookingStatus.expired):
        return await answer(session, principal, booking)  # already gone
    check_transition(BookingStatus(booking.status), BookingStatus.released)
    await repository.free_held_slot(session, principal.cpts_id, booking.slot_id, booking.hold_token)
    booking.status, booking.ended_at = BookingStatus.released.value, now
    await session.flush()
    await _audit(session, principal, "booking.release", care_request.id, booking, now, http)
    return await answer(session, principal, booking)


async def _cancel_booked(
    session: AsyncSession,
    principal: Principal,
    care_request: CareRequest,
    booking: Booking,
    side: CancelSide,
    reason: str,
    now: datetime,
) -> None:
    slot = await slots_repository.get(session, principal.cpts_id, booking.slot_id)
    if slot.start_at <= now:
        raise Conflict("appointment_started", "The appointment has started: report a no-show instead.")
    if slot_status_after_cancel(side) is SlotStatus.withdrawn:
        await slots_repository.withdraw_booked(session, booking.cpts_id, booking.slot_id, now)
    else:
        await repository.free_booked_slot(session, booking.cpts_id, booking.slot_id)
    booking.status, booking.ended_at = BookingStatus.cancelled.value, now
    booking.cancelled_side, booking.cancel_reason = side.value, reason
    booking.cancelled_by_kind, booking.cancelled_by_id = principal.kind, principal.id
    # The request reopens with its original deadline.
    await append_event(
        session, principal, care_request, EventKind.reopened, now, booking_id=booking.id, detail={"side": side.value}
    )
    await notifications.booking_event(
        session, booking.cpts_id, booking.id, booking.request_id, booking.status, slot, EventType.booking_cancelled, now
    )


async def cancel(
    session: AsyncSession,
    principal: Principal,
    booking_id: uuid.UUID,
    data: CancelIn,
    now: datetime,
    http: Request | None = None,
) -> BookingOut:
    care_request, booking = await _locked(session, principal, booking_id)
    if booking.status == BookingStatus.cancelled:
        return await answer(session, principal, booking)
    check_transition(BookingStatus(booking.status), BookingStatus.cancelled)
    if booking.status == BookingStatus.held:
        raise Conflict("booking_not_booked", "This booking is only held: release it instead.")
    await _cancel_booked(session, principal, care_request, booking, CancelSide(data.cancelled_by), data.reason, now)
    await _audit(session, principal, "booking.cancel", care_request.id, booking, now, http)
    return await answer(session, principal, booking)


async def cancel_for_withdrawn_slot(session: AsyncSession, principal: Principal, slot: Slot, now: datetime) -> None:
    """The practitioner's software withdraws a booked slot: the booking is cancelled on the
    practitioner's side and the request reopens."""
    found = await repository.active_of_slot(session, slot.cpts_id, slot.id)
    if found is None:
        return
    care_request, active = await _locked(session, principal, found.id)
    if active.status != BookingStatus.booked:
        raise Conflict("slot_booked", "The booking changed a moment ago; retry.")
    await _cancel_booked(
        session, principal, care_request, active, CancelSide.practitioner, "slot withdrawn by the practitioner", now
    )
    await _audit(session, principal, "booking.cancel", care_request.id, active, now, None)


async def void_hold_of_withdrawn_slot(session: AsyncSession, slot: Slot, now: datetime) -> None:
    """A held slot is withdrawn: the hold ends, and the handler's confirm will say so."""
    active = await repository.active_of_slot(session, slot.cpts_id, slot.id, for_update=True)
    if active is not None and active.status == BookingStatus.held:
        active.status, active.ended_at = BookingStatus.expired.value, now
        await session.flush()


async def report_outcome(
    session: AsyncSession,
    principal: Principal,
    booking_id: uuid.UUID,
    data: OutcomeIn,
    now: datetime,
    http: Request | None = None,
) -> BookingOut:
    """Fulfilled or no-show, by the practitioner's software once; a coordinator may correct it."""
    booking = await repository.get(session, principal.cpts_id, booking_id, for_update=True)
    slot = await slots_repository.get(session, principal.cpts_id, booking.slot_id)
    if not principal.may_act_for(slot.practitioner_id):
        raise NotFound("booking")
    if booking.status != BookingStatus.booked:
        raise Conflict(
            "booking_not_booked", f"Only a booked appointment has an outcome (this one is {booking.status})."
        )
    if slot.start_at > now:
        raise Invalid("appointment_not_started", "The appointment has not started yet.")
    if booking.outcome is not None and principal.is_software:
        if booking.outcome == data.outcome:
            return await answer(session, principal, booking)  # the same report twice changes nothing
        raise Conflict(
            "outcome_already_reported", "The outcome was already reported; ask the CPTS coordinator to correct it."
        )
    correction = booking.outcome is not None
    booking.outcome, booking.outcome_at = data.outcome, now
    booking.outcome_by_kind, booking.outcome_by_id = principal.kind, principal.id
    await session.flush()
    await audit.record(
        session,
        principal,
        "booking.outcome",
        "request",
        [booking.request_id],
        now,
        http,
        {"booking_id": str(booking.id), "outcome": data.outcome, "correction": correction},
    )
    return await answer(session, principal, booking)


SUGGESTION_HORIZON_AFTER_DEADLINE = timedelta(days=3)
# Candidates read to rank: enough to cover the first hours in full for the ranking by distance.
SUGGESTION_CANDIDATES_PER_RESULT, SUGGESTION_CANDIDATES_MIN = 6, 60


async def suggestions(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, limit: int, now: datetime
) -> Suggestions:
    """The request's deadline and the free slots that fit its needs, ranked: before the deadline
    first (earliest, then nearest), then the best ones after it."""
    needs = await requests_repository.suggestion_needs(session, principal.cpts_id, request_id)
    refuse_if_red_flagged(RequestStatus(needs.status))
    modalities = list(needs.modalities)
    if needs.commune_insee is None and Modality.HH.value in modalities:
        modalities.remove(Modality.HH.value)  # a home visit needs to know where the patient is
    if not modalities:
        return Suggestions(deadline_at=needs.deadline_at, items=[])
    found = await slots_repository.free_slots(
        session,
        principal.cpts_id,
        now,
        start_from=now,
        start_to=needs.deadline_at + SUGGESTION_HORIZON_AFTER_DEADLINE,
        limit=max(SUGGESTION_CANDIDATES_MIN, limit * SUGGESTION_CANDIDATES_PER_RESULT),
        profession=needs.profession,
        specialty=needs.specialty,
        modalities=modalities,
        home_visits_for=needs.commune_insee,
    )
    rows = {row.id: row for row in found}
    candidates = [
        Candidate(
            slot_id=row.id,
            start=row.start_at,
            modality=Modality(row.modality),
            site_point=None if row.latitude is None or row.longitude is None else (row.latitude, row.longitude),
        )
        for row in rows.values()
    ]
    items = []
    for ranked in rank(candidates, needs.deadline_at, needs.patient_point)[:limit]:
        slot = slots_service.found_of(rows[ranked.candidate.slot_id])
        items.append(
            Suggestion(
                slot_id=slot.id,
                start=slot.start,
                end=slot.end,
                modality=slot.modality,
                practitioner=slot.practitioner,
                site=slot.site,
                within_deadline=ranked.within_deadline,
                distance_km=round(ranked.distance_km, 1) if ranked.distance_km is not None else None,
            )
        )
    return Suggestions(deadline_at=needs.deadline_at, items=items)


def booking_out(booking: Booking, slot: Slot, practitioner: Practitioner, site: Site) -> BookingOut:
    return BookingOut(
        booking_id=booking.id,
        request_id=booking.request_id,
        slot_id=booking.slot_id,
        status=booking.status,
        hold_expires_at=booking.hold_expires_at,
        booked_at=booking.booked_at,
        cancelled_side=booking.cancelled_side,
        cancel_reason=booking.cancel_reason,
        outcome=booking.outcome,
        slot=BookingSlot(
            id=slot.id,
            start=slot.start_at,
            end=slot.end_at,
            modality=Modality(slot.modality),
            practitioner=PractitionerSummary.model_validate(practitioner, from_attributes=True),
            site=SiteSummary.model_validate(site, from_attributes=True),
        ),
    )


async def answer(session: AsyncSession, principal: Principal, booking: Booking) -> BookingOut:
    await session.flush()
    return booking_out(*(await repository.with_slot(session, principal.cpts_id, booking.id)))


async def of_request(session: AsyncSession, cpts_id: uuid.UUID, request_id: uuid.UUID) -> list[BookingOut]:
    """A request's bookings (holds included), oldest first."""
    return [booking_out(*row) for row in await repository.of_request(session, cpts_id, request_id)]


async def get(session: AsyncSession, principal: Principal, booking_id: uuid.UUID) -> BookingOut:
    return booking_out(*(await repository.with_slot(session, principal.cpts_id, booking_id)))
