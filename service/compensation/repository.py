from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, func, literal, literal_column, select
from sqlalchemy.dialects.postgresql import aggregate_order_by, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from service.compensation.domain import Rates
from service.compensation.models import CompensationRate


async def rate_history(session: AsyncSession, cpts_id: uuid.UUID) -> list[Rates]:
    """The CPTS's compensation settings, oldest first."""
    return rates_of(await session.scalar(select(rate_history_json(literal(cpts_id)))))


# Rates' fields and the columns they come from, for the JSON form below.
_RATE_COLUMNS = {
    "effective_from": CompensationRate.effective_from,
    "unfilled_cents_per_hour": CompensationRate.hourly_rate_unfilled_cents,
    "filled_cents_per_hour": CompensationRate.hourly_rate_filled_cents,
    "min_notice_hours": CompensationRate.min_notice_hours,
    "annual_envelope_cents": CompensationRate.annual_envelope_cents,
    "annual_cap_cents": CompensationRate.annual_cap_per_professional_cents,
}


def rate_history_json(cpts_id: ColumnElement[Any] | InstrumentedAttribute[Any]) -> ScalarSelect[Any]:
    """The CPTS's compensation settings as one JSON array, oldest first: a column for a query that
    reads them with the CPTS itself (one round trip; `rates_of` reads it back)."""
    pairs = [part for name, column in _RATE_COLUMNS.items() for part in (name, column)]
    return (
        select(
            func.coalesce(
                func.jsonb_agg(aggregate_order_by(func.jsonb_build_object(*pairs), CompensationRate.effective_from)),
                literal_column("'[]'::jsonb"),
            )
        )
        .where(CompensationRate.cpts_id == cpts_id)
        .scalar_subquery()
    )


def rates_of(items: list[dict[str, Any]] | None) -> list[Rates]:
    return [Rates(**{**item, "effective_from": date.fromisoformat(item["effective_from"])}) for item in items or []]


async def put(session: AsyncSession, cpts_id: uuid.UUID, effective_from: date, values: dict[str, Any]) -> None:
    await session.execute(
        insert(CompensationRate)
        .values(cpts_id=cpts_id, effective_from=effective_from, **values)
        .on_conflict_do_update(index_elements=["cpts_id", "effective_from"], set_=values)
    )
