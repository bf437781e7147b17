from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.compensation.domain import Rates
from service.compensation.models import CompensationRate


async def rate_history(session: AsyncSession, cpts_id: uuid.UUID) -> list[Rates]:
    """The CPTS's compensation settings, oldest first."""
    rows = await session.scalars(
        select(CompensationRate).where(CompensationRate.cpts_id == cpts_id).order_by(CompensationRate.effective_from)
    )
    return [
        Rates(
            effective_from=r.effective_from,
            unfilled_cents_per_hour=r.hourly_rate_unfilled_cents,
            filled_cents_per_hour=r.hourly_rate_filled_cents,
            min_notice_hours=r.min_notice_hours,
            annual_envelope_cents=r.annual_envelope_cents,
            annual_cap_cents=r.annual_cap_per_professional_cents,
        )
        for r in rows
    ]


async def put(session: AsyncSession, cpts_id: uuid.UUID, effective_from: date, values: dict[str, Any]) -> None:
    await session.execute(
        insert(CompensationRate)
        .values(cpts_id=cpts_id, effective_from=effective_from, **values)
        .on_conflict_do_update(index_elements=["cpts_id", "effective_from"], set_=values)
    )
