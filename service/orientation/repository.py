from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select, text, tuple_
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


@dataclass(frozen=True)
class SuggestionNeeds:
    """What the suggestions of a request need to know of it."""

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
    SELECT r.deadline_at, r.needs_profession, r.needs_specialty, r.needs_modalities, r.patient_commune_insee,
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
        deadline_at=row.deadline_at,
        profession=row.needs_profession,
        specialty=row.needs_specialty,
        modalities=list(row.needs_modalities),
        commune_insee=row.patient_commune_insee,
        patient_point=None if row.latitude is None else (float(row.latitude), float(row.longitude)),
    )
