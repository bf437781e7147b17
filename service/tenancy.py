"""Tenant-scoped reads. A repository selects a tenant's rows through `scoped`, so that a query
without `cpts_id` cannot be written by accident, and loads one object through `get_or_raise`,
which answers an object of another CPTS exactly like a missing one (404, docs/domain-rules.md)."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db import TenantOwned
from service.errors import NotFound

M = TypeVar("M", bound=TenantOwned)


def scoped(model: type[M], cpts_id: uuid.UUID) -> Select[M]:
    """`SELECT model WHERE cpts_id = :cpts_id`: the start of every tenant query."""
    return select(model).where(model.cpts_id == cpts_id)


def locked(query: Select[Any]) -> Select[Any]:
    """FOR UPDATE, re-reading the row once locked: the session may hold an older copy of it."""
    return query.with_for_update().execution_options(populate_existing=True)


async def find(
    session: AsyncSession, model: type[M], cpts_id: uuid.UUID, object_id: uuid.UUID, *, for_update: bool = False
) -> M | None:
    """The object of this CPTS with this id, or None (for callers to whom absence is not an error)."""
    query = scoped(model, cpts_id).where(model.__table__.c.id == object_id)  # type: ignore[attr-defined]
    found: M | None = await session.scalar(locked(query) if for_update else query)
    return found


async def get_or_raise(
    session: AsyncSession,
    model: type[M],
    cpts_id: uuid.UUID,
    object_id: uuid.UUID,
    what: str,
    *,
    for_update: bool = False,
) -> M:
    """The object of this CPTS with this id, or NotFound(`what`): the same answer everywhere."""
    found = await find(session, model, cpts_id, object_id, for_update=for_update)
    if found is None:
        raise NotFound(what)
    return found
