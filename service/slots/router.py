from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import Path, Query, Response, status

from service.auth import CurrentPrincipal, Publisher, Staff
from service.clock import Now
from service.db import SessionDep
from service.direct import direct
from service.fields import aware_query
from service.flows import withdrawal
from service.idempotency import Idempotent
from service.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from service.routing import api_router, serialized, statements_alone
from service.slots import service
from service.slots.domain import Modality, Outcome
from service.slots.schemas import (
    BatchIn,
    BatchOut,
    ExternalId,
    SlotFound,
    SlotOut,
    SlotPublished,
    SlotPut,
    StatusFilter,
    SyncIn,
    SyncOut,
)

router = api_router(prefix="/v1/slots", tags=["slots"])

ExternalIdPath = Annotated[ExternalId, Path(description="The publisher's own id for the slot")]
AwareQuery = Annotated[datetime | None, Query(description="RFC 3339 with an offset")]


@router.post("/batch", operation_id="slots-batch_publish", dependencies=[Idempotent])
async def batch_publish(body: BatchIn, principal: Publisher, session: SessionDep, now: Now) -> BatchOut:
    """Create, update or leave unchanged up to 1000 slots; each item gets its own outcome."""
    return BatchOut(results=await service.publish(session, principal, body.slots, now))


@router.post("/sync", operation_id="slots-sync", dependencies=[Idempotent])
async def sync(body: SyncIn, principal: Publisher, session: SessionDep, now: Now) -> SyncOut:
    """Publish the given slots and withdraw this publisher's free slots of the window that are
    absent; held or booked absent slots are reported as conflicts, not cancelled."""
    return await service.sync(session, principal, (body.window_start, body.window_end), body.slots, now)


@router.get("/search", operation_id="slots-search", response_model=Page[SlotFound])
@direct
@statements_alone
async def search(
    principal: Staff,
    session: SessionDep,
    now: Now,
    profession: Annotated[str | None, Query(pattern=r"^\d{2}$", description="TRE_G15")] = None,
    specialty: Annotated[str | None, Query(pattern=r"^SM\d{2}$", description="TRE_R38")] = None,
    modality: Modality | None = None,
    commune_insee: Annotated[str | None, Query(pattern=r"^(?:\d{5}|2[AB]\d{3})$")] = None,
    start_from: AwareQuery = None,
    start_to: AwareQuery = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Response:
    """Free slots the CPTS's handlers may offer, earliest first (default: the next 7 days)."""
    found = await service.search(
        session,
        principal,
        now,
        start_from=aware_query(start_from, "start_from"),
        start_to=aware_query(start_to, "start_to"),
        limit=limit,
        cursor=cursor,
        profession=profession,
        specialty=specialty,
        modality=modality,
        commune_insee=commune_insee,
    )
    return serialized(found)


@router.get("", operation_id="slots-list")
async def list_slots(
    principal: CurrentPrincipal,
    session: SessionDep,
    now: Now,
    start_from: AwareQuery = None,
    start_to: AwareQuery = None,
    practitioner_id: uuid.UUID | None = None,
    status: StatusFilter | None = None,
    modality: Modality | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[SlotOut]:
    """A software client's own slots; staff see all the CPTS's."""
    return await service.list_slots(
        session,
        principal,
        now,
        start_from=aware_query(start_from, "start_from"),
        start_to=aware_query(start_to, "start_to"),
        practitioner_id=practitioner_id,
        status=status,
        modality=modality,
        limit=limit,
        cursor=cursor,
    )


@router.put(
    "/{external_id}",
    operation_id="slots-put",
    responses={201: {"model": SlotPublished, "description": "Created"}},
)
async def put_slot(
    external_id: ExternalIdPath, body: SlotPut, principal: Publisher, session: SessionDep, now: Now, response: Response
) -> SlotPublished:
    """Create or replace one slot: 201 when created, 200 when updated or unchanged."""
    slot, outcome = await service.put_one(session, principal, external_id, body, now)
    if outcome is Outcome.created:
        response.status_code = status.HTTP_201_CREATED
    return SlotPublished(**service.to_out(slot, slot.status).model_dump(), outcome=outcome)


@router.get("/{external_id}", operation_id="slots-get")
async def get_slot(external_id: ExternalIdPath, principal: Publisher, session: SessionDep, now: Now) -> SlotOut:
    """One of the caller's published slots, by its external id."""
    return await service.get_published(session, principal, external_id, now)


@router.delete("/{external_id}", operation_id="slots-withdraw")
async def withdraw_slot(
    external_id: ExternalIdPath,
    principal: Publisher,
    session: SessionDep,
    now: Now,
    cancel_booking: Annotated[
        bool, Query(description="Also cancel the booking of a booked slot (the request reopens)")
    ] = False,
) -> SlotOut:
    """Withdraw a slot. A booked slot answers 409 `slot_booked` unless `cancel_booking=true`."""
    slot = await withdrawal.withdraw(session, principal, external_id, cancel_booking, now)
    return service.to_out(slot, slot.status)
