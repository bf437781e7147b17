from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import Query, Request, status
from pydantic import BaseModel

from service.audit import service as audit
from service.auth import Handler, Staff
from service.bookings import service as bookings_service
from service.bookings.schemas import SlotChoice
from service.clock import Now
from service.cpts import repository as cpts_repository
from service.db import SessionDep
from service.errors import Invalid, field_error
from service.idempotency import Idempotent
from service.orientation import repository, service
from service.orientation.domain import RequestStatus, motif_classification, red_flags
from service.orientation.log import LoggedEvent
from service.orientation.models import CareRequest
from service.orientation.schemas import (
    BookingOut,
    EventOut,
    MotifOut,
    OrientationIn,
    OverrideIn,
    QueueItem,
    RedFlag,
    RequestCreate,
    RequestOut,
    RequestSummary,
    Suggestion,
    Suggestions,
)
from service.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_cursor, page_of
from service.reference.codes import motifs
from service.routing import api_router

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
    "/requests", status_code=status.HTTP_201_CREATED, operation_id="requests-create", dependencies=[Idempotent]
)
async def create_request(
    data: RequestCreate, principal: Handler, session: SessionDep, now: Now, http: Request
) -> RequestSummary:
    """Open a request: its 24-hour clock starts at `received_at`. A red flag or a life-threatening
    motif gives `status: transfer_required`."""
    return service.summary(await service.create(session, principal, data, now, http))


@router.get("/requests", operation_id="requests-queue")
async def queue(
    principal: Staff,
    session: SessionDep,
    now: Now,
    http: Request,
    status_filter: Annotated[
        list[QueueStatus] | None, Query(alias="status", description="Default: open and transfer_required")
    ] = None,
    due_before: Annotated[datetime | None, Query(description="Only requests whose deadline is before this")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[QueueItem]:
    """The queue, most urgent deadline first."""
    if due_before is not None and due_before.tzinfo is None:
        raise Invalid(
            "validation_error",
            "due_before needs a UTC offset.",
            errors=[field_error(["query", "due_before"], "datetime without an offset", "timezone_aware")],
        )
    statuses = status_filter or [RequestStatus.open.value, RequestStatus.transfer_required.value]
    query = repository.queue_query(principal.cpts_id, statuses, due_before, decode_cursor(cursor, 2))
    rows = list(await session.scalars(query.limit(limit + 1)))
    page, next_cursor = page_of(rows, limit, lambda r: [r.deadline_at.isoformat(), str(r.id)])
    await audit.record(session, principal, "request.list", "request", [r.id for r in page], now, http)
    return Page(items=[service.queue_item(r) for r in page], next_cursor=next_cursor)


@router.get("/requests/{request_id}", operation_id="requests-get")
async def get_request(
    request_id: uuid.UUID, principal: Staff, session: SessionDep, now: Now, http: Request
) -> RequestOut:
    """The request with its bookings and its orientation events (the read is audited)."""
    return await service.detail(session, principal, request_id, now, http)


@router.get("/requests/{request_id}/suggestions", operation_id="requests-suggestions")
async def suggestions(
    request_id: uuid.UUID,
    principal: Staff,
    session: SessionDep,
    now: Now,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> Suggestions:
    """Free slots that fit the request's needs, ranked; those after the deadline come last,
    flagged `within_deadline: false`."""
    deadline_at, ranked = await bookings_service.suggest(session, principal, request_id, limit, now)
    return Suggestions(
        deadline_at=deadline_at,
        items=[
            Suggestion(
                slot_id=found.id,
                start=found.start,
                end=found.end,
                modality=found.modality,
                practitioner=found.practitioner,
                site=found.site,
                within_deadline=r.within_deadline,
                distance_km=round(r.distance_km, 1) if r.distance_km is not None else None,
            )
            for r, found in ranked
        ],
    )


@router.post(
    "/requests/{request_id}/hold",
    status_code=status.HTTP_201_CREATED,
    operation_id="requests-hold",
    dependencies=[Idempotent],
)
async def hold(
    request_id: uuid.UUID, choice: SlotChoice, principal: Handler, session: SessionDep, now: Now, http: Request
) -> BookingOut:
    """Hold a slot while talking with the patient (the CPTS's hold TTL, default 180 s); 409
    `slot_unavailable` when someone else has it. Holding another slot drops the previous hold."""
    return await bookings_service.take_slot(
        session, principal, request_id, choice.slot_id, now, confirm=False, http=http
    )


@router.post(
    "/requests/{request_id}/book",
    status_code=status.HTTP_201_CREATED,
    operation_id="requests-book",
    dependencies=[Idempotent],
)
async def book(
    request_id: uuid.UUID, choice: SlotChoice, principal: Handler, session: SessionDep, now: Now, http: Request
) -> BookingOut:
    """Hold and confirm in one step."""
    return await bookings_service.take_slot(
        session, principal, request_id, choice.slot_id, now, confirm=True, http=http
    )


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
    care_request, event = await service.orient(session, principal, request_id, data, now, http)
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
    overrides = (await cpts_repository.get(session, principal.cpts_id)).motif_overrides or {}
    defaults = motif_classification()
    return [
        MotifOut(
            code=m.code,
            label=m.label,
            level=m.level,
            classification=overrides.get(m.code, defaults[m.code].value),
            overridden=m.code in overrides,
        )
        for m in motifs().values()
    ]


@router.get("/red-flags", operation_id="red_flags-list")
async def list_red_flags(principal: Staff) -> list[RedFlag]:
    """The red-flag questions a handler asks; any ticked one requires a transfer to the 15."""
    return [RedFlag(code=code, label=label) for code, label in red_flags().items()]
