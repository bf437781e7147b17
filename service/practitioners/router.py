from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query, status

from service.auth import Coordinator, CurrentPrincipal
from service.clock import Now
from service.db import SessionDep
from service.idempotency import Idempotent
from service.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from service.practitioners import service
from service.practitioners.schemas import (
    PractitionerCreate,
    PractitionerOut,
    PractitionerPatch,
    SiteIn,
    SiteOut,
    SitePatch,
)
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
    return await service.list_members(
        session,
        principal.cpts_id,
        principal.visible_practitioners,
        profession=profession,
        specialty=specialty,
        active=active,
        limit=limit,
        cursor=cursor,
    )


@router.get("/{practitioner_id}", operation_id="practitioners-get")
async def get_practitioner(
    practitioner_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep
) -> PractitionerOut:
    return await service.member(session, principal.cpts_id, principal.visible_practitioners, practitioner_id)


@router.patch("/{practitioner_id}", operation_id="practitioners-update")
async def update_practitioner(
    practitioner_id: uuid.UUID, patch: PractitionerPatch, principal: Coordinator, session: SessionDep, now: Now
) -> PractitionerOut:
    return await service.update(session, principal.cpts_id, practitioner_id, patch, now)


@router.post(
    "/{practitioner_id}/sites",
    status_code=status.HTTP_201_CREATED,
    operation_id="practitioners-add_site",
    dependencies=[Idempotent],
)
async def add_site(practitioner_id: uuid.UUID, data: SiteIn, principal: Coordinator, session: SessionDep) -> SiteOut:
    site = await service.add_site(session, principal.cpts_id, practitioner_id, data)
    return SiteOut.model_validate(site, from_attributes=True)


@router.patch("/{practitioner_id}/sites/{site_id}", operation_id="practitioners-update_site")
async def update_site(
    practitioner_id: uuid.UUID, site_id: uuid.UUID, patch: SitePatch, principal: Coordinator, session: SessionDep
) -> SiteOut:
    """Correct a place's name or phone; `{"needs_review": false}` once a coordinator has checked a
    place that a pull from agenda software created."""
    site = await service.update_site(session, principal.cpts_id, practitioner_id, site_id, patch)
    return SiteOut.model_validate(site, from_attributes=True)
