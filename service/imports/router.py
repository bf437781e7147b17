from __future__ import annotations

from service.auth import Coordinator
from service.clock import Now
from service.db import SessionDep
from service.idempotency import Idempotent
from service.imports import service
from service.imports.schemas import ImportIn, ImportOut
from service.routing import api_router

router = api_router(prefix="/v1/imports", tags=["imports"])


@router.post("/activity", operation_id="imports-activity", dependencies=[Idempotent])
async def import_activity(body: ImportIn, principal: Coordinator, session: SessionDep, now: Now) -> ImportOut:
    """Bring over past requests (at most 5000 a call), their outcome and appointment. Idempotent by
    `external_ref`: a record imported again is `unchanged`; another record reusing a ref is refused."""
    return ImportOut(results=await service.import_activity(session, principal, body.records, now))
