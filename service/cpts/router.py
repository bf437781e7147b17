from __future__ import annotations

from fastapi import Response

from service.auth import Coordinator, CurrentPrincipal
from service.clock import Now
from service.cpts import service
from service.cpts.schemas import CptsOut, CptsPatch
from service.db import ReadConnection, SessionDep
from service.direct import direct
from service.routing import api_router, serialized, statements_alone

router = api_router(prefix="/v1/cpts", tags=["cpts"])


@router.get("/current", operation_id="cpts-get_current", response_model=CptsOut)
@direct
@statements_alone
async def get_current(principal: CurrentPrincipal, conn: ReadConnection, now: Now) -> Response:
    return serialized(await service.current(conn, principal.cpts_id, now))


@router.patch("/current", operation_id="cpts-update_current")
async def update_current(patch: CptsPatch, principal: Coordinator, session: SessionDep, now: Now) -> CptsOut:
    """Settings. `compensation` is effective-dated: earlier months keep the settings they had."""
    return await service.update(session, principal.cpts_id, patch, now)
