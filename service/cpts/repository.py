from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.cpts.domain import Targets
from service.cpts.models import Cpts, CptsTarget
from service.errors import NotFound


async def get(session: AsyncSession, cpts_id: uuid.UUID, *, for_update: bool = False) -> Cpts:
    cpts = await session.get(Cpts, cpts_id, with_for_update=for_update, populate_existing=for_update)
    if cpts is None:
        raise NotFound("cpts")
    return cpts


async def target_history(session: AsyncSession, cpts_id: uuid.UUID) -> list[Targets]:
    """The CPTS's indicator targets, one set per effective date, oldest first."""
    rows = await session.scalars(
        select(CptsTarget).where(CptsTarget.cpts_id == cpts_id).order_by(CptsTarget.effective_from)
    )
    history: dict[date, dict[str, float]] = {}
    for row in rows:
        history.setdefault(row.effective_from, {})[row.indicator] = row.value
    return [Targets(day, values) for day, values in history.items()]


async def put_targets(
    session: AsyncSession, cpts_id: uuid.UUID, effective_from: date, values: dict[str, float], now: datetime
) -> None:
    """The set of targets from `effective_from` on, replacing one recorded for the same date."""
    await session.execute(
        delete(CptsTarget).where(CptsTarget.cpts_id == cpts_id, CptsTarget.effective_from == effective_from)
    )
    session.add_all(
        CptsTarget(cpts_id=cpts_id, effective_from=effective_from, indicator=k, value=v, created_at=now)
        for k, v in values.items()
    )
    await session.flush()
