from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from service.errors import NotFound
from service.orientation import predicates
from service.orientation.domain import EventKind
from service.orientation.models import CareRequest, OrientationEvent
from service.tenancy import get_or_raise, scoped


async def get(
    session: AsyncSession, cpts_id: uuid.UUID, request_id: uuid.UUID, *, for_update: bool = False
) -> CareRequest:
    return await get_or_raise(session, CareRequest, cpts_id, request_id, "request", for_update=for_update)


async def events_of(session: AsyncSession, cpts_id: uuid.UUID, request_id: uuid.UUID) -> list[OrientationEvent]:
    query = scoped(OrientationEvent, cpts_id).where(OrientationEvent.request_id == request_id)
    return list(await session.scalars(query.order_by(OrientationEvent.id)))


async def event_kinds(session: AsyncSession, cpts_id: uuid.UUID, request_id: uuid.UUID) -> list[EventKind]:
    rows = await session.scalars(
        select(OrientationEvent.kind)
        .where(OrientationEvent.cpts_id == cpts_id, OrientationEvent.request_id == request_id)
        .order_by(OrientationEvent.id)
    )
    return [EventKind(kind) for kind in rows]


async def queue_page(
    session: AsyncSession,
    cpts_id: uuid.UUID,
    statuses: Sequence[str],
    due_before: datetime | None,
    after: tuple[Any, ...] | None,
    limit: int,
) -> list[CareRequest]:
    """Requests of the given statuses, red-flagged first, then the most urgent deadline (`limit + 1`)."""
    rank = predicates.queue_rank(CareRequest.status)
    query = scoped(CareRequest, cpts_id).where(CareRequest.status.in_(list(statuses)))
    if due_before is not None:
        query = query.where(CareRequest.deadline_at < due_before)
    if after is not None:
        query = query.where(tuple_(rank, CareRequest.deadline_at, CareRequest.id) > after)
    query = query.order_by(rank, CareRequest.deadline_at, CareRequest.id)
    return list(await session.scalars(query.limit(limit + 1)))


@dataclass(frozen=True)
class SuggestionNeeds:
    """What the suggestions of a request need to know of it."""

    status: str
    deadline_at: datetime
    profession: str | None
    specialty: str | None
    modalities: list[str]
    commune_insee: str | None
    patient_point: tuple[float, float] | None


# One statement on a hot path, compiled once. Where the patient is: the centre of the CPTS's
# sites in the patient's commune (no commune table is kept).
_SUGGESTION_NEEDS = text(
    """
    SELECT r.status, r.deadline_at, r.needs_profession, r.needs_specialty, r.needs_modalities, r.patient_commune_insee,
           point.latitude, point.longitude
    FROM care_request r
    LEFT JOIN LATERAL (
        SELECT avg(st.latitude) AS latitude, avg(st.longitude) AS longitude
        FROM site st
        WHERE st.cpts_id = r.cpts_id AND st.commune_insee = r.patient_commune_insee AND st.latitude IS NOT NULL
    ) point ON true
    WHERE r.cpts_id = :cpts_id AND r.id = :request_id
    """
)


async def suggestion_needs(session: AsyncSession, cpts_id: uuid.UUID, request_id: uuid.UUID) -> SuggestionNeeds:
    row = (await session.execute(_SUGGESTION_NEEDS, {"cpts_id": cpts_id, "request_id": request_id})).first()
    if row is None:
        raise NotFound("request")
    return SuggestionNeeds(
        status=row.status,
        deadline_at=row.deadline_at,
        profession=row.needs_profession,
        specialty=row.needs_specialty,
        modalities=list(row.needs_modalities),
        commune_insee=row.patient_commune_insee,
        patient_point=None if row.latitude is None else (float(row.latitude), float(row.longitude)),
    )
