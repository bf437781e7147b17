from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from service.errors import NotFound
from service.practitioners.models import Practitioner, Site
from service.tenancy import get_or_raise, scoped


async def get(session: AsyncSession, cpts_id: uuid.UUID, practitioner_id: uuid.UUID) -> Practitioner:
    return await get_or_raise(session, Practitioner, cpts_id, practitioner_id, "practitioner")


async def sites_of(
    session: AsyncSession, cpts_id: uuid.UUID, practitioner_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[Site]]:
    result: dict[uuid.UUID, list[Site]] = {p: [] for p in practitioner_ids}
    if not practitioner_ids:
        return result
    sites = await session.scalars(
        scoped(Site, cpts_id).where(Site.practitioner_id.in_(practitioner_ids)).order_by(Site.created_at, Site.id)
    )
    for site in sites:
        result[site.practitioner_id].append(site)
    return result


async def site(session: AsyncSession, cpts_id: uuid.UUID, practitioner_id: uuid.UUID, site_id: uuid.UUID) -> Site:
    found: Site | None = await session.scalar(
        scoped(Site, cpts_id).where(Site.id == site_id, Site.practitioner_id == practitioner_id).with_for_update()
    )
    if found is None:
        raise NotFound("site")
    return found


async def sites_to_review(
    session: AsyncSession, cpts_id: uuid.UUID, practitioner_ids: list[uuid.UUID]
) -> list[tuple[Site, Practitioner]]:
    if not practitioner_ids:
        return []
    rows = await session.execute(
        select(Site, Practitioner)
        .join(Practitioner, Practitioner.id == Site.practitioner_id)
        .where(Site.cpts_id == cpts_id, Site.needs_review, Site.practitioner_id.in_(practitioner_ids))
        .order_by(Practitioner.family_name, Site.created_at, Site.id)
    )
    return [(s, p) for s, p in rows]


async def existing_ids(session: AsyncSession, cpts_id: uuid.UUID, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    if not ids:
        return set()
    rows = await session.scalars(
        select(Practitioner.id).where(Practitioner.cpts_id == cpts_id, Practitioner.id.in_(ids))
    )
    return set(rows)


async def by_idnps(session: AsyncSession, cpts_id: uuid.UUID, idnps: str) -> Practitioner | None:
    found: Practitioner | None = await session.scalar(scoped(Practitioner, cpts_id).where(Practitioner.idnps == idnps))
    return found


async def list_page(
    session: AsyncSession,
    cpts_id: uuid.UUID,
    *,
    only: frozenset[uuid.UUID] | None,
    profession: str | None,
    specialty: str | None,
    active: bool | None,
    after: tuple[Any, ...] | None,
    limit: int,
) -> list[Practitioner]:
    """Members by name (`limit + 1` rows)."""
    query = scoped(Practitioner, cpts_id)
    if only is not None:
        query = query.where(Practitioner.id.in_(only))
    if profession is not None:
        query = query.where(Practitioner.profession == profession)
    if specialty is not None:
        query = query.where(Practitioner.specialty == specialty)
    if active is not None:
        query = query.where(Practitioner.active.is_(active))
    if after is not None:
        query = query.where(tuple_(Practitioner.family_name, Practitioner.given_name, Practitioner.id) > after)
    query = query.order_by(Practitioner.family_name, Practitioner.given_name, Practitioner.id)
    return list(await session.scalars(query.limit(limit + 1)))
