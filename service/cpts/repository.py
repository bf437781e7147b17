from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from service.cpts.models import Cpts
from service.errors import NotFound


async def get(session: AsyncSession, cpts_id: uuid.UUID, *, for_update: bool = False) -> Cpts:
    cpts = await session.get(Cpts, cpts_id, with_for_update=for_update, populate_existing=for_update)
    if cpts is None:
        raise NotFound("cpts")
    return cpts
