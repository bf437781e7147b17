from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query, status

from service.auth import Coordinator, CurrentPrincipal
from service.clock import Now
from service.db import SessionDep
from service.idempotency import Idempotent
from service.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_cursor, page_of
from service.practitioners import repository, service
from service.practitioners.schemas import PractitionerCreate, PractitionerOut, PractitionerPatch, SiteIn, SiteOut
from service.routing import api_router

router = api_router(prefix="/v1/practitioners", tags=["practitioners"])


@router.post("", status_code=status.HTTP_201_CREATED, operation_id="practitioners-create", dependencies=[Idempotent])
async def create_practitioner(
    data: PractitionerCreate, principal: Coordinator, session: SessionDep, now: Now
) -> PractitionerOut:
    practitioner, sites = await service.create(session, principal.cpts_id, data, now)
    return service.to_out(practitioner, sites)


@router.get("", operation_id="practitioners-list")
async def list_practitioners(
    principal: CurrentPrincipal,
    session: SessionDep,
    profession: Annotated[str | None, Query(max_length=4)] = None,
    specialty: Annotated[str | None, Query(max_length=8)] = None,
    active: bool | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[PractitionerOut]:
    """Members of the CPTS; a software client sees only the practitioners it publishes for."""
    query = repository.list_query(
        principal.cpts_id,
        only=principal.practitioner_ids if principal.is_software else None,
        profession=profession,
        specialty=specialty,
        active=active,
        after=decode_cursor(cursor, 3),
    )
    rows = await repository.list_page(session, query, limit)
    practitioners, next_cursor = page_of(rows, limit, lambda p: [p.family_name, p.given_name, str(p.id)])
    sites = await repository.sites_of(session, [p.id for p in practitioners])
    return Page(items=[service.to_out(p, sites[p.id]) for p in practitioners], next_cursor=next_cursor)


@router.get("/{practitioner_id}", operation_id="practitioners-get")
async def get_practitioner(
    practitioner_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep
) -> PractitionerOut:
    principal.ensure_may_act_for(practitioner_id)
    practitioner = await repository.get(session, principal.cpts_id, practitioner_id)
    sites = await repository.sites_of(session, [practitioner.id])
    return service.to_out(practitioner, sites[practitioner.id])


@router.patch("/{practitioner_id}", operation_id="practitioners-update")
async def update_practitioner(
    practitioner_id: uuid.UUID, patch: PractitionerPatch, principal: Coordinator, session: SessionDep, now: Now
) -> PractitionerOut:
    practitioner = await service.update(session, principal.cpts_id, practitioner_id, patch, now)
    sites = await repository.sites_of(session, [practitioner.id])
    return service.to_out(practitioner, sites[practitioner.id])


@router.post(
    "/{practitioner_id}/sites",
    status_code=status.HTTP_201_CREATED,
    operation_id="practitioners-add_site",
    dependencies=[Idempotent],
)
async def add_site(practitioner_id: uuid.UUID, data: SiteIn, principal: Coordinator, session: SessionDep) -> SiteOut:
    site = await service.add_site(session, principal.cpts_id, practitioner_id, data)
    return SiteOut.model_validate(site, from_attributes=True)
