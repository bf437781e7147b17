from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from service.errors import NotFound
from service.practitioners.models import Practitioner, Site


async def get(session: AsyncSession, cpts_id: uuid.UUID, practitioner_id: uuid.UUID) -> Practitioner:
    practitioner = await session.scalar(
        select(Practitioner).where(Practitioner.cpts_id == cpts_id, Practitioner.id == practitioner_id)
    )
    if practitioner is None:
        raise NotFound("practitioner")
    return practitioner


async def sites_of(session: AsyncSession, practitioner_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Site]]:
    result: dict[uuid.UUID, list[Site]] = {p: [] for p in practitioner_ids}
    if not practitioner_ids:
        return result
    sites = await session.scalars(
        select(Site).where(Site.practitioner_id.in_(practitioner_ids)).order_by(Site.created_at, Site.id)
    )
    for site in sites:
        result[site.practitioner_id].append(site)
    return result


async def existing_ids(session: AsyncSession, cpts_id: uuid.UUID, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    if not ids:
        return set()
    rows = await session.scalars(
        select(Practitioner.id).where(Practitioner.cpts_id == cpts_id, Practitioner.id.in_(ids))
    )
    return set(rows)


async def by_idnps(session: AsyncSession, cpts_id: uuid.UUID, idnps: str) -> Practitioner | None:
    return await session.scalar(
        select(Practitioner).where(Practitioner.cpts_id == cpts_id, Practitioner.idnps == idnps)
    )


def list_query(
    cpts_id: uuid.UUID,
    *,
    only: frozenset[uuid.UUID] | None,
    profession: str | None,
    specialty: str | None,
    active: bool | None,
    after: list[Any] | None,
) -> Select[Practitioner]:
    query = select(Practitioner).where(Practitioner.cpts_id == cpts_id)
    if only is not None:
        query = query.where(Practitioner.id.in_(only))
    if profession is not None:
        query = query.where(Practitioner.profession == profession)
    if specialty is not None:
        query = query.where(Practitioner.specialty == specialty)
    if active is not None:
        query = query.where(Practitioner.active.is_(active))
    if after is not None:
        query = query.where(
            tuple_(Practitioner.family_name, Practitioner.given_name, Practitioner.id)
            > (after[0], after[1], uuid.UUID(after[2]))
        )
    return query.order_by(Practitioner.family_name, Practitioner.given_name, Practitioner.id)


async def list_page(session: AsyncSession, query: Select[Practitioner], limit: int) -> list[Practitioner]:
    return list(await session.scalars(query.limit(limit + 1)))
