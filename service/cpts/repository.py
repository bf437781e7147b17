from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, Select, bindparam, delete, func, literal, literal_column, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

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
    return targets_of(await session.scalar(select(target_history_json(literal(cpts_id)))))


def target_history_json(cpts_id: ColumnElement[Any] | InstrumentedAttribute[Any]) -> ScalarSelect[Any]:
    """The targets as one JSON array of [effective_from, indicator, value], oldest first: a column
    for a query that reads them with the CPTS (`targets_of` reads it back)."""
    t = CptsTarget
    return (
        select(
            func.coalesce(
                func.jsonb_agg(
                    aggregate_order_by(func.jsonb_build_array(t.effective_from, t.indicator, t.value), t.effective_from)
                ),
                literal_column("'[]'::jsonb"),
            )
        )
        .where(t.cpts_id == cpts_id)
        .scalar_subquery()
    )


def targets_of(items: list[list[Any]] | None) -> list[Targets]:
    history: dict[date, dict[str, float]] = {}
    for day, indicator, value in items or []:
        history.setdefault(date.fromisoformat(day), {})[indicator] = float(value)
    return [Targets(day, values) for day, values in history.items()]


TARGETS = "target_history"  # the column of the targets in `with_columns`


def with_columns(*columns: Any) -> Select[Any]:
    """The CPTS, its targets (column `TARGETS`) and the given columns (other packages' histories of
    it, built on `Cpts.id`), in one query. Build it once and keep it (`db.DriverStatement`)."""
    return select(Cpts, target_history_json(Cpts.id).label(TARGETS), *columns).where(Cpts.id == bindparam("cpts_id"))


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
