from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from service.bookings.models import Booking
from service.errors import Invalid, NotFound
from service.orientation.domain import EventKind
from service.orientation.models import CareRequest, OrientationEvent
from service.practitioners.models import Practitioner, Site
from service.slots.models import Slot


async def get(
    session: AsyncSession, cpts_id: uuid.UUID, request_id: uuid.UUID, *, for_update: bool = False
) -> CareRequest:
    query = select(CareRequest).where(CareRequest.cpts_id == cpts_id, CareRequest.id == request_id)
    if for_update:
        # Re-read the row once locked: the session may hold an older copy.
        query = query.with_for_update().execution_options(populate_existing=True)
    care_request = await session.scalar(query)
    if care_request is None:
        raise NotFound("request")
    return care_request


async def events_of(session: AsyncSession, cpts_id: uuid.UUID, request_id: uuid.UUID) -> list[OrientationEvent]:
    return list(
        await session.scalars(
            select(OrientationEvent)
            .where(OrientationEvent.cpts_id == cpts_id, OrientationEvent.request_id == request_id)
            .order_by(OrientationEvent.id)
        )
    )


async def event_kinds(session: AsyncSession, cpts_id: uuid.UUID, request_id: uuid.UUID) -> list[EventKind]:
    rows = await session.scalars(
        select(OrientationEvent.kind)
        .where(OrientationEvent.cpts_id == cpts_id, OrientationEvent.request_id == request_id)
        .order_by(OrientationEvent.id)
    )
    return [EventKind(kind) for kind in rows]


def queue_query(
    cpts_id: uuid.UUID, statuses: Sequence[str], due_before: datetime | None, after: list[Any] | None
) -> Select[CareRequest]:
    query = select(CareRequest).where(CareRequest.cpts_id == cpts_id, CareRequest.status.in_(list(statuses)))
    if due_before is not None:
        query = query.where(CareRequest.deadline_at < due_before)
    if after is not None:
        try:
            deadline, request_id = datetime.fromisoformat(after[0]), uuid.UUID(after[1])
        except (TypeError, ValueError) as exc:
            raise Invalid("invalid_cursor", "The cursor is not one this list returned.") from exc
        query = query.where(tuple_(CareRequest.deadline_at, CareRequest.id) > (deadline, request_id))
    return query.order_by(CareRequest.deadline_at, CareRequest.id)


async def bookings_with_slots(
    session: AsyncSession, cpts_id: uuid.UUID, request_id: uuid.UUID
) -> list[tuple[Booking, Slot, Practitioner, Site]]:
    rows = await session.execute(
        select(Booking, Slot, Practitioner, Site)
        .join(Slot, Slot.id == Booking.slot_id)
        .join(Practitioner, Practitioner.id == Slot.practitioner_id)
        .join(Site, Site.id == Slot.site_id)
        .where(Booking.cpts_id == cpts_id, Booking.request_id == request_id)
        .order_by(Booking.created_at, Booking.id)
    )
    return [(b, s, p, site) for b, s, p, site in rows]


async def commune_point(
    session: AsyncSession, cpts_id: uuid.UUID, commune_insee: str | None
) -> tuple[float, float] | None:
    """Where a commune is, as the centre of the CPTS's sites in it (no commune table is kept)."""
    if commune_insee is None:
        return None
    row = (
        await session.execute(
            select(func.avg(Site.latitude), func.avg(Site.longitude)).where(
                Site.cpts_id == cpts_id, Site.commune_insee == commune_insee, Site.latitude.is_not(None)
            )
        )
    ).one()
    return (float(row[0]), float(row[1])) if row[0] is not None else None
