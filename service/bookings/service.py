"""Hold, confirm, book, release, cancel and report outcomes.

Lock order, everywhere: the request row, then the booking, then the slot (through its
conditional UPDATE). A request's state changes only through `orientation.log.append_event`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from service import idempotency, tenancy
from service.audit import service as audit
from service.auth import Principal
from service.bookings import repository
from service.bookings.domain import (
    REASONS,
    BookingStatus,
    CancelSide,
    Candidate,
    Exclusion,
    Offer,
    Ranked,
    Reason,
    check_transition,
    earliest_start,
    ended_hold_status,
    exclusion,
    rank,
    reasons,
    slot_status_after_cancel,
)
from service.bookings.models import Booking
from service.bookings.repository import ClaimedSlot
from service.bookings.schemas import (
    Alternative,
    BookingOut,
    BookingSlot,
    CancelIn,
    OutcomeIn,
    ReasonOut,
    Suggestion,
    Suggestions,
)
from service.db import autocommit, merged
from service.errors import Conflict, DomainError, Invalid, NotFound
from service.fields import new_reference
from service.notifications import patients
from service.notifications import service as notifications
from service.notifications.domain import EventType
from service.orientation import log
from service.orientation import repository as requests_repository
from service.orientation import service as requests
from service.orientation.domain import (
    EventKind,
    RequestStatus,
    next_status,
    refuse_if_red_flagged,
    single_target,
    statuses_allowing,
)
from service.orientation.log import LockedRequest, append_event
from service.orientation.models import CareRequest
from service.orientation.repository import SuggestionNeeds
from service.practitioners.models import Practitioner, Site
from service.reference.codes import PHYSICIAN
from service.reference.communes import commune
from service.routing import answer_bytes
from service.slots import repository as slots_repository
from service.slots import service as slots_service
from service.slots.domain import Modality, SlotStatus
from service.slots.models import Slot
from service.slots.schemas import PractitionerSummary, SiteSummary

ONE_ACTIVE_PER_SLOT = "uq_booking_one_active_per_slot"
ONE_ACTIVE_PER_REQUEST = "uq_booking_one_active_per_request"

# The callback a practitioner's cancellation leaves in the queue (shown to handlers, in French).
CANCELLATION_CALLBACK = "Rendez-vous annulé par le praticien : rappeler le patient et le réorienter."
SLOT_UNAVAILABLE = ("slot_unavailable", "This slot is no longer free: choose another one.")
# The request statuses from which a booking may be made (the orientation log's transitions).
BOOKABLE = statuses_allowing(EventKind.booked)
BOOKED = single_target(EventKind.booked)  # what a booking makes of any of them


async def _audit(
    session: AsyncSession,
    principal: Principal,
    action: str,
    request_id: uuid.UUID,
    booking: Booking,
    now: datetime,
    http: Request | None,
) -> None:
    await audit.record(session, principal, action, "request", [request_id], now, http, _detail(booking))


def _detail(booking: Booking) -> dict[str, Any]:
    """What the audit of an action on a booking says of it."""
    return {"booking_id": str(booking.id)}


async def end_active_hold(session: AsyncSession, cpts_id: uuid.UUID, request_id: uuid.UUID, now: datetime) -> None:
    """Drop the request's current hold, if any (closing the request). The caller holds its lock."""
    booking = await repository.active_hold_of_request(session, cpts_id, request_id)
    if booking is None:
        return
    await repository.free_held_slot(session, cpts_id, booking.slot_id, booking.hold_token)
    booking.status = ended_hold_status(booking.hold_expires_at, now).value
    booking.ended_at = now
    await session.flush()


def _claim_values(
    principal: Principal, request_id: uuid.UUID, slot_id: uuid.UUID, now: datetime, confirm: bool
) -> dict[str, Any]:
    """The parameters of the claim statements (`repository`): a new booking of the slot."""
    return {
        "slot_id": slot_id,
        "booking_id": uuid.uuid4(),
        "reference": new_reference(),
        "cpts_id": principal.cpts_id,
        "request_id": request_id,
        "status": (BookingStatus.booked if confirm else BookingStatus.held).value,
        "hold_token": None if confirm else uuid.uuid4(),
        "actor_id": principal.id,
        "booked_at": now if confirm else None,
        "booked_by_id": principal.id if confirm else None,
        "now": now,
    }


async def take_slot_at_once(
    session: AsyncSession,
    principal: Principal,
    request_id: uuid.UUID,
    slot_id: uuid.UUID,
    now: datetime,
    *,
    confirm: bool,
    http: Request,
    pending: idempotency.Pending | None,
) -> BookingOut:
    """The hold and booking routes. The common case is one statement and one round trip
    (`repository.take_in_one_statement`, which claims the Idempotency-Key too); when it declines,
    `take_slot` runs in the request's transaction and answers why, or the first answer to a key
    already used is replayed."""
    if session.in_transaction():
        # The request's session already holds a connection (its principal was not cached): taking
        # a second one could starve the pool under load; the general path uses the session's.
        return await _take_slot_in_session(session, principal, request_id, slot_id, now, confirm, http, pending)
    values = _claim_values(principal, request_id, slot_id, now, confirm)
    booking_id = values["booking_id"]
    status = BookingStatus(values["status"])
    action = "booking.book" if confirm else "booking.hold"
    parts = [
        values,
        {"bookable": BOOKABLE},
        idempotency.claim_values(principal, pending, 201, answer_of=booking_id),
        audit.one_row(principal, action, "request", request_id, now, http, {"booking_id": str(booking_id)}),
    ]
    if confirm:
        parts += [
            log.unchecked_event_values(
                principal, request_id, principal.cpts_id, EventKind.booked, BOOKED, now, booking_id=booking_id
            ),
            notifications.booking_event_values(
                principal.cpts_id, booking_id, request_id, status.value, slot_id, EventType.booking_confirmed, now
            ),
            patients.message_values(EventType.booking_confirmed),
        ]
    async with autocommit(session) as conn:
        taken = await repository.take_in_one_statement(conn, merged(*parts), confirm=confirm)
    if isinstance(taken, repository.Declined):
        refusal = _final_refusal(taken)
        if refusal is not None:  # the answer the general path would give, without running it
            raise refusal
        return await _take_slot_in_session(session, principal, request_id, slot_id, now, confirm, http, pending)
    slot, hold_expires_at = taken
    booked_at = now if confirm else None
    reference = values["reference"]
    return _answer(
        booking_id, reference, request_id, status, slot, hold_expires_at=hold_expires_at, booked_at=booked_at
    )


def _request_refusal(request_status: str | None) -> DomainError | None:
    """Why a request cannot be booked: none in the CPTS, or red-flagged (422), booked or closed (409)."""
    if request_status is None:
        return NotFound("request")
    try:
        next_status(RequestStatus(request_status), EventKind.booked)
    except DomainError as refused:
        return refused
    return None


def _slot_refusal(slot_exists: bool) -> DomainError:
    return Conflict(*SLOT_UNAVAILABLE) if slot_exists else NotFound("slot")


def _final_refusal(declined: repository.Declined) -> DomainError | None:
    """The answer to a single statement that declined, when what it saw settles it (the request, its
    status, the slot); None when the general path must decide (a key already used, another hold
    to end first, a concurrent booking)."""
    match declined.reason:
        case repository.Decline.no_request | repository.Decline.request_status:
            return _request_refusal(declined.request_status)
        case repository.Decline.slot_unavailable | repository.Decline.no_slot:
            return _slot_refusal(declined.reason is repository.Decline.slot_unavailable)
    return None


async def _take_slot_in_session(
    session: AsyncSession,
    principal: Principal,
    request_id: uuid.UUID,
    slot_id: uuid.UUID,
    now: datetime,
    confirm: bool,
    http: Request,
    pending: idempotency.Pending | None,
) -> BookingOut:
    """The general path: the key claimed (or its first answer replayed), then `take_slot`."""
    await _claim_or_replay(session, principal, http, pending, confirm=confirm)
    return await take_slot(session, principal, request_id, slot_id, now, confirm=confirm, http=http)


async def _claim_or_replay(
    session: AsyncSession, principal: Principal, http: Request, pending: idempotency.Pending | None, *, confirm: bool
) -> None:
    """Claim the key in the session's transaction, or replay the first answer to it (a record made
    by a single statement names its booking, rendered again)."""
    if pending is None:
        return

    async def rerender(answered: uuid.UUID) -> bytes | None:
        return await _replayed(session, principal, answered, confirm)

    await idempotency.guard(http, principal, session, pending.key, digest=pending.digest, rerender=rerender)


async def _replayed(session: AsyncSession, principal: Principal, booking_id: uuid.UUID, confirm: bool) -> bytes | None:
    """The answer of a hold or booking made in one statement, rendered again for a replay: the same
    booking and status, the practice's details as they are now."""
    booking = await tenancy.find(session, Booking, principal.cpts_id, booking_id)
    if booking is None:
        return None
    slot = await repository.slot_details(session, principal.cpts_id, booking.slot_id)
    status = BookingStatus.booked if confirm else BookingStatus.held
    answer = _answer(
        booking.id,
        booking.reference,
        booking.request_id,
        status,
        slot,
        hold_expires_at=booking.hold_expires_at,
        booked_at=booking.booked_at if confirm else None,
    )
    return answer_bytes(answer)  # as the route answered it


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
    """Hold a slot for a request (`confirm=False`), or hold and confirm it in one step, in the
    caller's transaction (the console's, the demo's, and the general path of `take_slot_at_once`)."""
    values = _claim_values(principal, request_id, slot_id, now, confirm)
    booking_id, reference = values["booking_id"], values["reference"]
    status = BookingStatus(values["status"])
    attempt = await repository.lock_and_claim(session, values, BOOKABLE)
    refused = _request_refusal(attempt.request_status)  # nothing was written
    if refused is not None:
        raise refused
    assert attempt.request_status is not None  # no request is refused above
    request = LockedRequest(request_id, principal.cpts_id, attempt.request_status)
    claim = attempt.claim
    if attempt.holding:  # switching slots: the current hold ends first, then the claim
        locked = await repository.lock_request_ending_hold(session, principal.cpts_id, request_id, now)
        claim = await repository.claim(session, values, hold_seconds=locked.hold_ttl_seconds)
    if claim.slot is None:
        raise _slot_refusal(claim.slot_exists)
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
                principal.cpts_id, booking_id, request.id, status.value, slot.id, EventType.booking_confirmed, now
            ),
            patients.message_values(EventType.booking_confirmed),
            audit.one_row(principal, action, "request", request.id, now, http, audit_detail),
        )
    else:
        await audit.record(session, principal, action, "request", [request.id], now, http, audit_detail)
    return _answer(
        booking_id,
        reference,
        request.id,
        status,
        slot,
        hold_expires_at=claim.hold_expires_at,
        booked_at=now if confirm else None,
    )


def _answer(
    booking_id: uuid.UUID,
    reference: str,
    request_id: uuid.UUID,
    status: BookingStatus,
    slot: ClaimedSlot,
    *,
    hold_expires_at: datetime | None = None,
    booked_at: datetime | None = None,
) -> BookingOut:
    return BookingOut(
        booking_id=booking_id,
        reference=reference,
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
                phone=slot.practitioner_phone,
            ),
            site=SiteSummary.of(
                id=slot.site_id,
                name=slot.site_name,
                address=slot.address,
                postal_code=slot.postal_code,
                commune_insee=slot.commune_insee,
                phone=slot.site_phone,
                latitude=slot.latitude,
                longitude=slot.longitude,
            ),
            agenda_url=slot.agenda_url,
        ),
    )


async def _locked(session: AsyncSession, principal: Principal, booking_id: uuid.UUID) -> tuple[CareRequest, Booking]:
    unlocked = await repository.get(session, principal.cpts_id, booking_id)
    care_request = await requests_repository.get(session, principal.cpts_id, unlocked.request_id, for_update=True)
    booking = await repository.get(session, principal.cpts_id, booking_id, for_update=True)
    return care_request, booking


async def confirm_at_once(
    session: AsyncSession,
    principal: Principal,
    booking_id: uuid.UUID,
    now: datetime,
    *,
    http: Request,
    pending: idempotency.Pending | None,
) -> BookingOut:
    """The confirmation route. The common case is two round trips outside any transaction: the
    booking read (`repository.booking_to_confirm`), then one statement that claims the
    Idempotency-Key, checks and confirms under the locks and records what `confirm` records. Any
    other case (no such booking, not held, the hold taken over, a key already used) takes `confirm`
    in the request's transaction, which answers why or replays."""
    if not session.in_transaction():  # else its principal was not cached: see `take_slot_at_once`
        async with autocommit(session) as conn:
            held = await repository.booking_to_confirm(conn, principal.cpts_id, booking_id)
            if held is not None and held.status == BookingStatus.held:
                confirmed = await repository.confirm_in_one_statement(
                    conn, _confirmation_values(principal, booking_id, held, now, http, pending)
                )
                if confirmed:
                    return _answer(
                        booking_id, held.reference, held.request_id, BookingStatus.booked, held.slot, booked_at=now
                    )
    await _claim_or_replay(session, principal, http, pending, confirm=True)
    return await confirm(session, principal, booking_id, now, http)


def _confirmation_values(
    principal: Principal,
    booking_id: uuid.UUID,
    held: repository.BookingToConfirm,
    now: datetime,
    http: Request,
    pending: idempotency.Pending | None,
) -> dict[str, Any]:
    """The parameters of the confirmation's statement: what `confirm` writes, in the same words."""
    request_id, slot_id = held.request_id, held.slot.id
    return merged(
        {"booking_id": booking_id, "slot_id": slot_id, "bookable": BOOKABLE},
        idempotency.claim_values(principal, pending, 200, answer_of=booking_id),
        log.unchecked_event_values(
            principal, request_id, principal.cpts_id, EventKind.booked, BOOKED, now, booking_id=booking_id
        ),
        notifications.booking_event_values(
            principal.cpts_id,
            booking_id,
            request_id,
            BookingStatus.booked.value,
            slot_id,
            EventType.booking_confirmed,
            now,
        ),
        patients.message_values(EventType.booking_confirmed),
        audit.one_row(principal, "booking.confirm", "request", request_id, now, http, {"booking_id": str(booking_id)}),
    )


async def confirm(
    session: AsyncSession, principal: Principal, booking_id: uuid.UUID, now: datetime, http: Request | None = None
) -> BookingOut:
    """Confirm a hold in the session's transaction (the general path; the console's too)."""
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
        # As a booking in one step records it: the event and the request's status, the software's
        # and the SAS's notifications, the patient's messages and the audit row, in one round trip.
        event = log.event_values(principal, care_request, EventKind.booked, now, booking_id=booking.id)
        await repository.record_booked(
            session,
            event,
            notifications.booking_event_values(
                principal.cpts_id,
                booking.id,
                care_request.id,
                booking.status,
                booking.slot_id,
                EventType.booking_confirmed,
                now,
            ),
            patients.message_values(EventType.booking_confirmed),
            audit.one_row(principal, "booking.confirm", "request", care_request.id, now, http, _detail(booking)),
        )
        log.mark_moved(care_request, event)
        slot = await repository.slot_details(session, principal.cpts_id, booking.slot_id)
    else:
        slot = await repository.slot_details(session, principal.cpts_id, booking.slot_id)
    return _answer(
        booking.id, booking.reference, care_request.id, BookingStatus.booked, slot, booked_at=booking.booked_at
    )


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
        session,
        booking.cpts_id,
        booking.id,
        booking.request_id,
        booking.status,
        slot.id,
        EventType.booking_cancelled,
        now,
    )
    await patients.enqueue(session, booking.cpts_id, booking.id, booking.request_id, EventType.booking_cancelled, now)
    if side is CancelSide.practitioner:
        # The patient does not know yet: someone must call them back and book again.
        await requests.add_callback(
            session, booking.cpts_id, booking.request_id, now, CANCELLATION_CALLBACK, "cancellation", None, now
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
    await notifications.appointment_outcome(
        session, booking.cpts_id, booking.id, booking.request_id, slot.id, data.outcome, now
    )
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
# When nothing fits: alternatives look this far ahead, a few slots each.
ALTERNATIVES_HORIZON, ALTERNATIVES_PER_KIND = timedelta(days=14), 3
# Candidates read to rank: enough to cover the first hours in full for the ranking by distance.
SUGGESTION_CANDIDATES_PER_RESULT, SUGGESTION_CANDIDATES_MIN = 6, 60


@dataclass(frozen=True)
class SuggestionFilters:
    """What the handler narrows the suggestions to, on top of the request's needs."""

    not_before: datetime | None = None
    max_distance_km: float | None = None
    modalities: frozenset[Modality] | None = None


@dataclass(frozen=True)
class _Search:
    profession: str | None
    specialty: str | None
    modalities: list[str]
    start_to: datetime


async def _offered(
    session: AsyncSession,
    principal: Principal,
    needs: SuggestionNeeds,
    search: _Search,
    offer: Offer,
    limit: int,
) -> tuple[list[Suggestion], list[Exclusion]]:
    """Free slots of `search`, ranked, without those `offer` excludes (and why they were)."""
    earliest = min(earliest_start(Modality(m), offer.now, offer.lead) for m in search.modalities)
    if offer.not_before is not None:
        earliest = max(earliest, offer.not_before)
    wanted = max(SUGGESTION_CANDIDATES_MIN, limit * SUGGESTION_CANDIDATES_PER_RESULT)
    found = await _free(session, principal, needs, search, offer.now, earliest, search.start_to, wanted)
    if not found and earliest < search.start_to:  # why nothing: were there slots too soon?
        found = await _free(
            session, principal, needs, search, offer.now, offer.now, earliest, SUGGESTION_CANDIDATES_MIN
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
    excluded: list[Exclusion] = []
    items: list[Suggestion] = []
    for ranked in rank(candidates, needs.deadline_at, needs.patient_point):
        why = exclusion(ranked, offer)
        if why is not None:
            excluded.append(why)
            continue
        if len(items) < limit:
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
                    agenda_url=slot.agenda_url,
                )
            )
    return items, excluded


async def _free(
    session: AsyncSession,
    principal: Principal,
    needs: SuggestionNeeds,
    search: _Search,
    now: datetime,
    start_from: datetime,
    start_to: datetime,
    limit: int,
) -> list[Any]:
    return await slots_repository.free_slots(
        session,
        principal.cpts_id,
        now,  # judges lapsed holds: the real now, whatever the window
        start_from=start_from,
        start_to=start_to,
        limit=limit,
        profession=search.profession,
        specialty=search.specialty,
        modalities=search.modalities,
        home_visits_for=needs.commune_insee,
    )


async def suggestions(
    session: AsyncSession,
    principal: Principal,
    request_id: uuid.UUID,
    limit: int,
    now: datetime,
    filters: SuggestionFilters | None = None,
) -> Suggestions:
    """The request's deadline and the free slots that fit its needs and the handler's filters,
    ranked: before the deadline first (earliest, then nearest), then the best ones after it. Slots
    starting within the CPTS's lead time are not offered. When nothing is offered in time, why; when
    nothing at all, the nearest alternatives: without the filters, later, by video, at another
    modality, without the specialty, another profession."""
    filters = filters or SuggestionFilters()
    needs = await requests_repository.suggestion_needs(session, principal.cpts_id, request_id)
    refuse_if_red_flagged(RequestStatus(needs.status))
    if needs.commune_insee is not None:
        centre = commune(needs.commune_insee)
        if centre is not None and centre.point is not None:  # the commune's centre beats its sites'
            needs = replace(needs, patient_point=centre.point)
    offer = Offer(
        now=now,
        lead=timedelta(minutes=needs.min_lead_minutes),
        not_before=filters.not_before,
        max_distance_km=filters.max_distance_km,
    )
    asked = [m for m in needs.modalities if filters.modalities is None or Modality(m) in filters.modalities]
    home_visit_dropped = needs.commune_insee is None and Modality.HH.value in asked
    if home_visit_dropped:
        asked.remove(Modality.HH.value)  # a home visit needs to know where the patient is
    horizon = needs.deadline_at + SUGGESTION_HORIZON_AFTER_DEADLINE
    items: list[Suggestion] = []
    excluded: list[Exclusion] = []
    if asked:
        search = _Search(needs.profession, needs.specialty, asked, horizon)
        items, excluded = await _offered(session, principal, needs, search, offer, limit)
    distance_unknown = filters.max_distance_km is not None and needs.patient_point is None
    why = reasons(
        items_ranked(items), excluded, home_visit_dropped=home_visit_dropped, distance_unknown=distance_unknown
    )
    if not asked and not home_visit_dropped:
        why.insert(0, Reason("no_modality", REASONS["no_modality"]))
    # Only an empty list looks further (slots after the deadline are already the "later" ones): the
    # usual answer stays one query.
    alternatives = [] if items else await _alternatives(session, principal, needs, offer, filters, asked, horizon)
    return Suggestions(
        deadline_at=needs.deadline_at,
        min_lead_minutes=needs.min_lead_minutes,
        items=items,
        reasons=[ReasonOut(code=r.code, detail=r.detail) for r in why],
        alternatives=alternatives,
    )


def items_ranked(items: list[Suggestion]) -> list[Ranked]:
    """The offered items as the reasons read them (only `within_deadline` matters there)."""
    return [Ranked(Candidate(i.slot_id, i.start, i.modality, None), i.within_deadline, i.distance_km) for i in items]


async def _alternatives(
    session: AsyncSession,
    principal: Principal,
    needs: SuggestionNeeds,
    offer: Offer,
    filters: SuggestionFilters,
    asked: list[str],
    horizon: datetime,
) -> list[Alternative]:
    """Nearest alternatives, a few slots each, when nothing is offered at all (a rare path: a few
    more queries are fine here)."""
    unfiltered = Offer(now=offer.now, lead=offer.lead)
    every = [m.value for m in Modality if m is not Modality.HH or needs.commune_insee is not None]
    tries: list[tuple[str, _Search, Offer]] = []
    if filters != SuggestionFilters():
        tries.append(("without_filters", _Search(needs.profession, needs.specialty, every, horizon), unfiltered))
    if asked:
        later = _Search(needs.profession, needs.specialty, asked, offer.now + ALTERNATIVES_HORIZON)
        tries.append(("later", later, offer))
    if Modality.VR.value not in asked:
        video = _Search(needs.profession, needs.specialty, [Modality.VR.value], horizon)
        tries.append(("teleconsultation", video, unfiltered))
    elsewhere = [m for m in every if m not in asked and m != Modality.VR.value]
    if elsewhere:  # at the practice rather than at home, or the other way round
        tries.append(("other_modality", _Search(needs.profession, needs.specialty, elsewhere, horizon), unfiltered))
    if needs.specialty is not None:
        tries.append(("other_specialty", _Search(needs.profession, None, every, horizon), unfiltered))
    found: list[Alternative] = []
    seen: set[uuid.UUID] = set()
    for kind, search, applied in tries:
        items, _ = await _offered(session, principal, needs, search, applied, ALTERNATIVES_PER_KIND * 3)
        fresh = [i for i in items if i.slot_id not in seen][:ALTERNATIVES_PER_KIND]
        if fresh:
            seen |= {i.slot_id for i in fresh}
            found.append(Alternative(kind=kind, items=fresh))
    others = await _other_professions(session, principal, needs, unfiltered, every, horizon, seen)
    if others:
        found.append(Alternative(kind="other_profession", items=others))
    return found


async def _other_professions(
    session: AsyncSession,
    principal: Principal,
    needs: SuggestionNeeds,
    offer: Offer,
    modalities: list[str],
    horizon: datetime,
    seen: set[uuid.UUID],
) -> list[Suggestion]:
    """The first slots of other professions (a nurse, a physiotherapist...): the handler judges."""
    items, _ = await _offered(
        session, principal, needs, _Search(None, None, modalities, horizon), offer, ALTERNATIVES_PER_KIND * 4
    )
    return [i for i in items if i.practitioner.profession != (needs.profession or PHYSICIAN) and i.slot_id not in seen][
        :ALTERNATIVES_PER_KIND
    ]


def booking_out(booking: Booking, slot: Slot, practitioner: Practitioner, site: Site) -> BookingOut:
    return BookingOut(
        booking_id=booking.id,
        reference=booking.reference,
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
            site=SiteSummary.of(
                id=site.id,
                name=site.name,
                address=site.address,
                postal_code=site.postal_code,
                commune_insee=site.commune_insee,
                phone=site.phone,
                latitude=site.latitude,
                longitude=site.longitude,
            ),
            agenda_url=slot.agenda_url,
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
