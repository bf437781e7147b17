from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import Query, Request, status
from pydantic import BaseModel

from service.auth import Handler, Staff
from service.clock import Now
from service.db import SessionDep
from service.fields import aware_query
from service.flows import orientation as flows
from service.flows.schemas import RequestOut
from service.idempotency import Idempotent
from service.orientation import service
from service.orientation.log import LoggedEvent
from service.orientation.models import CareRequest
from service.orientation.schemas import (
    EventOut,
    MotifOut,
    OrientationIn,
    OverrideIn,
    QueueItem,
    RedFlag,
    RequestCreate,
    RequestSummary,
)
from service.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from service.reference.codes import red_flags
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
    """The queue: red-flagged requests (`transfer_required`) first, then the most urgent deadline."""
    statuses = [str(s) for s in status_filter] if status_filter else None
    return await service.queue(
        session, principal, statuses, aware_query(due_before, "due_before"), limit, cursor, now, http
    )


@router.get("/requests/{request_id}", operation_id="requests-get")
async def get_request(
    request_id: uuid.UUID, principal: Staff, session: SessionDep, now: Now, http: Request
) -> RequestOut:
    """The request with its bookings and its orientation events (the read is audited)."""
    return await flows.request_detail(session, principal, request_id, now, http)


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
