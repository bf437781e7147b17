"""Use cases on a request that reach into its bookings: orienting a request that holds a slot
(the hold ends in the same transaction), and reading a request with its bookings."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit import service as audit
from service.auth import Principal
from service.bookings import service as bookings
from service.flows.schemas import RequestOut
from service.notifications import patients
from service.orientation import repository as requests_repository
from service.orientation import service as requests
from service.orientation.domain import RequestStatus
from service.orientation.log import LoggedEvent
from service.orientation.models import CareRequest
from service.orientation.schemas import CallbackOut, CallerOut, EventOut, NoteOut, OrientationIn


async def orient(
    session: AsyncSession,
    principal: Principal,
    request_id: uuid.UUID,
    data: OrientationIn,
    now: datetime,
    http: Request | None = None,
) -> tuple[CareRequest, LoggedEvent]:
    """Record where the patient was oriented; a slot the request still holds is given back first."""
    care_request = await requests_repository.get(session, principal.cpts_id, request_id, for_update=True)
    if care_request.status == RequestStatus.open:
        await bookings.end_active_hold(session, principal.cpts_id, care_request.id, now)
    event = await requests.record_orientation(session, principal, care_request, data, now, http)
    return care_request, event


async def request_detail(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, now: datetime, http: Request | None = None
) -> RequestOut:
    """The whole request with its bookings, orientation log, notes, callbacks and messages to the
    patient; the read is audited."""
    care_request = await requests_repository.get(session, principal.cpts_id, request_id)
    booked = await bookings.of_request(session, principal.cpts_id, request_id)
    events = await requests_repository.events_of(session, principal.cpts_id, request_id)
    notes = await requests_repository.notes_of(session, principal.cpts_id, request_id)
    callbacks = await requests_repository.callbacks_of(session, principal.cpts_id, request_id)
    messages = await patients.of_request(session, principal.cpts_id, request_id)
    await audit.record(session, principal, "request.read", "request", [care_request.id], now, http)
    return RequestOut(
        **requests.summary_fields(care_request),
        regulating_physician=care_request.regulating_physician,
        caller=CallerOut(relation=care_request.caller_relation, phone=care_request.caller_phone),
        patient=requests.patient_out(care_request),
        note=care_request.note,
        identity_purged=care_request.identity_purged_at is not None,
        created_at=care_request.created_at,
        bookings=booked,
        events=[EventOut.model_validate(e, from_attributes=True) for e in events],
        notes=[NoteOut.model_validate(n, from_attributes=True) for n in notes],
        callbacks=[CallbackOut.model_validate(c, from_attributes=True) for c in callbacks],
        messages=messages,
    )
