from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import Query, Request, Response, status
from pydantic import BaseModel

from service.auth import Handler, Staff
from service.clock import Now
from service.db import ReadConnection, SessionDep, get_session
from service.fields import aware_query
from service.flows import orientation as flows
from service.flows.schemas import RequestOut
from service.idempotency import Idempotent, PendingKey
from service.orientation import service
from service.orientation.log import LoggedEvent
from service.orientation.models import CareRequest
from service.orientation.schemas import (
    CallbackIn,
    CallbackOut,
    DuplicateCheck,
    DuplicateOut,
    EventOut,
    MotifOut,
    NoteIn,
    NoteOut,
    OrientationIn,
    OverrideIn,
    QueueItem,
    RedFlag,
    RequestCreate,
    RequestPatch,
    RequestSummary,
)
from service.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from service.reference.codes import red_flags
from service.routing import api_router, serialized, statements_alone

router = api_router(prefix="/v1", tags=["orientation"])

QueueStatus = Literal["open", "transfer_required", "booked", "closed"]


class OrientationRecorded(BaseModel):
    request: RequestSummary
    event: EventOut


def recorded(care_request: CareRequest, event: LoggedEvent) -> OrientationRecorded:
    return OrientationRecorded(
        request=service.summary(care_request), event=EventOut.model_validate(event, from_attributes=True)
    )


@router.post(
    "/requests", status_code=status.HTTP_201_CREATED, operation_id="requests-create", response_model=RequestSummary
)
async def create_request(
    data: RequestCreate, principal: Handler, session: SessionDep, now: Now, http: Request, pending: PendingKey
) -> Response:
    """Open a request: its 24-hour clock starts at `received_at`. A red flag or a life-threatening
    motif gives `status: transfer_required`."""
    answer = await service.create_at_once(session, principal, data, now, http=http, pending=pending)
    return Response(answer, status_code=status.HTTP_201_CREATED, media_type="application/json")


@router.get("/requests", operation_id="requests-queue", response_model=Page[QueueItem])
@statements_alone
async def queue(
    principal: Staff,
    conn: ReadConnection,
    now: Now,
    http: Request,
    status_filter: Annotated[
        list[QueueStatus] | None, Query(alias="status", description="Default: open and transfer_required")
    ] = None,
    due_before: Annotated[datetime | None, Query(description="Only requests whose deadline is before this")] = None,
    q: Annotated[
        str | None,
        Query(
            min_length=2,
            max_length=100,
            description="Find requests by phone (any format), booking reference or family name; "
            "newest first, whatever their status",
        ),
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Response:
    """The queue: red-flagged requests (`transfer_required`) first, then the most urgent deadline.
    With `q`, the requests found instead (one page)."""
    if q is not None:
        found = await service.search(await get_session(http), principal, q, limit, now, http)
        return serialized(Page(items=found, next_cursor=None))
    statuses = [str(s) for s in status_filter] if status_filter else None
    return serialized(
        await service.queue(conn, principal, statuses, aware_query(due_before, "due_before"), limit, cursor, now, http)
    )


@router.get("/requests/{request_id}", operation_id="requests-get")
async def get_request(
    request_id: uuid.UUID, principal: Staff, session: SessionDep, now: Now, http: Request
) -> RequestOut:
    """The request with its bookings and its orientation events (the read is audited)."""
    return await flows.request_detail(session, principal, request_id, now, http)


@router.patch("/requests/{request_id}", operation_id="requests-correct", dependencies=[Idempotent])
async def correct_request(
    request_id: uuid.UUID, patch: RequestPatch, principal: Handler, session: SessionDep, now: Now, http: Request
) -> RequestOut:
    """Correct the caller, the patient's traits, the needs or the consent to be notified; absent
    fields stay as they are. `received_at` and the deadline never move. Audited."""
    await service.correct(session, principal, request_id, patch, now, http)
    return await flows.request_detail(session, principal, request_id, now, None)


@router.post(
    "/requests/{request_id}/notes",
    status_code=status.HTTP_201_CREATED,
    operation_id="requests-add_note",
    dependencies=[Idempotent],
)
async def add_note(
    request_id: uuid.UUID, data: NoteIn, principal: Handler, session: SessionDep, now: Now, http: Request
) -> NoteOut:
    """Add a note to the request, at any time, whatever its status."""
    note = await service.add_note(session, principal, request_id, data.text, now, http)
    return NoteOut.model_validate(note, from_attributes=True)


@router.post(
    "/requests/{request_id}/callbacks",
    status_code=status.HTTP_201_CREATED,
    operation_id="requests-schedule_callback",
    dependencies=[Idempotent],
)
async def schedule_callback(
    request_id: uuid.UUID, data: CallbackIn, principal: Handler, session: SessionDep, now: Now
) -> CallbackOut:
    """Plan a call back to the caller; the queue shows it (`callback_due_at`) and it is due from `due_at`."""
    callback = await service.schedule_callback(session, principal, request_id, data, now)
    return CallbackOut.model_validate(callback, from_attributes=True)


@router.post(
    "/requests/{request_id}/callbacks/{callback_id}/done",
    operation_id="requests-complete_callback",
    dependencies=[Idempotent],
)
async def complete_callback(
    request_id: uuid.UUID, callback_id: uuid.UUID, principal: Handler, session: SessionDep, now: Now
) -> CallbackOut:
    """The call back was made (doing it twice changes nothing)."""
    callback = await service.complete_callback(session, principal, request_id, callback_id, now)
    return CallbackOut.model_validate(callback, from_attributes=True)


@router.get("/requests/{request_id}/duplicates", operation_id="requests-duplicates")
async def duplicates(
    request_id: uuid.UUID, principal: Staff, session: SessionDep, now: Now, http: Request
) -> list[DuplicateOut]:
    """Other requests that seem to be of the same patient (same pseudonym, or a phone number in
    common) within the CPTS's `duplicate_window_hours` of this one's reception."""
    return await service.duplicates(session, principal, request_id, now, http)


@router.post("/requests/duplicate-check", operation_id="requests-check_duplicates")
async def check_duplicates(
    data: DuplicateCheck, principal: Handler, session: SessionDep, now: Now, http: Request
) -> list[DuplicateOut]:
    """Before saving a request: the recent requests of the same patient or phone number (nothing
    is written but the audit of what was shown)."""
    return await service.check_duplicates(session, principal, data, now, http)


@router.post(
    "/requests/{request_id}/orientations",
    status_code=status.HTTP_201_CREATED,
    operation_id="requests-orient",
    dependencies=[Idempotent],
)
async def orient(
    request_id: uuid.UUID, data: OrientationIn, principal: Handler, session: SessionDep, now: Now, http: Request
) -> OrientationRecorded:
    """Record where the patient was oriented; closes the request (on a closed one: a correction)."""
    care_request, event = await flows.orient(session, principal, request_id, data, now, http)
    return recorded(care_request, event)


@router.post(
    "/requests/{request_id}/override",
    status_code=status.HTTP_201_CREATED,
    operation_id="requests-override_red_flag",
    dependencies=[Idempotent],
)
async def override(
    request_id: uuid.UUID, data: OverrideIn, principal: Handler, session: SessionDep, now: Now, http: Request
) -> OrientationRecorded:
    """A regulating physician (RPPS) lifts the red flag: the request can be booked. Recorded."""
    care_request, event = await service.override_red_flag(session, principal, request_id, data, now, http)
    return recorded(care_request, event)


@router.get("/motifs", operation_id="motifs-list")
async def list_motifs(principal: Staff, session: SessionDep) -> list[MotifOut]:
    """The Hub Santé motifs with this CPTS's red-flag classification."""
    return await service.motifs_of(session, principal)


@router.get("/red-flags", operation_id="red_flags-list")
async def list_red_flags(principal: Staff) -> list[RedFlag]:
    """The red-flag questions a handler asks; any ticked one requires a transfer to the 15."""
    return [RedFlag(code=code, label=label) for code, label in red_flags().items()]
