from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, column, func, or_, select, table, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from service.errors import NotFound
from service.orientation import predicates
from service.orientation.domain import EventKind
from service.orientation.models import Callback, CareRequest, OrientationEvent, RequestNote
from service.tenancy import get_or_raise, scoped

# A booking's reference, read by name: the bookings package writes the table (it sits above).
BOOKING = table("booking", column("request_id"), column("cpts_id"), column("reference"))


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


# A callback still to make: the queue shows the earliest of each request.
CALLBACK_TO_MAKE = Callback.done_at.is_(None)


async def queue_page(
    session: AsyncSession,
    cpts_id: uuid.UUID,
    statuses: Sequence[str],
    due_before: datetime | None,
    after: tuple[Any, ...] | None,
    limit: int,
) -> list[tuple[CareRequest, datetime | None]]:
    """Requests of the given statuses, red-flagged first, then the most urgent deadline (`limit + 1`),
    each with its earliest callback still to make (in the same statement: one round trip less)."""
    params: dict[str, Any] = {"cpts_id": cpts_id, "statuses": list(statuses), "limit": limit + 1}
    if due_before is not None:
        params["due_before"] = due_before
    if after is not None:
        params.update(after_rank=after[0], after_deadline=after[1], after_id=after[2])
    query = _queue_query(due_before is not None, after is not None)
    return [(request, due) for request, due in await session.execute(query, params)]


@functools.cache
def _queue_query(due_before: bool, after: bool) -> Select[CareRequest, datetime]:
    """The queue's statement, built once for each of its shapes: SQLAlchemy then reuses its cache
    key and compiled form instead of building both on every request."""
    rank = predicates.queue_rank(CareRequest.status)
    next_callback = (
        select(func.min(Callback.due_at))
        .where(Callback.cpts_id == CareRequest.cpts_id, Callback.request_id == CareRequest.id, CALLBACK_TO_MAKE)
        .scalar_subquery()
    )
    query = (
        select(CareRequest, next_callback)
        .where(CareRequest.cpts_id == bindparam("cpts_id"))
        .where(CareRequest.status.in_(bindparam("statuses", expanding=True)))
    )
    if due_before:
        query = query.where(CareRequest.deadline_at < bindparam("due_before"))
    if after:
        position = tuple_(bindparam("after_rank"), bindparam("after_deadline"), bindparam("after_id"))
        query = query.where(tuple_(rank, CareRequest.deadline_at, CareRequest.id) > position)
    return query.order_by(rank, CareRequest.deadline_at, CareRequest.id).limit(bindparam("limit"))


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
    min_lead_minutes: int


# One statement on a hot path, compiled once. Where the patient is, when the communes reference
# does not say: the centre of the CPTS's sites in the patient's commune.
_SUGGESTION_NEEDS = text(
    """
    SELECT r.status, r.deadline_at, r.needs_profession, r.needs_specialty, r.needs_modalities, r.patient_commune_insee,
           point.latitude, point.longitude, c.min_lead_minutes
    FROM care_request r
    JOIN cpts c ON c.id = r.cpts_id
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
        min_lead_minutes=row.min_lead_minutes,
    )


async def notes_of(session: AsyncSession, cpts_id: uuid.UUID, request_id: uuid.UUID) -> list[RequestNote]:
    query = scoped(RequestNote, cpts_id).where(RequestNote.request_id == request_id).order_by(RequestNote.id)
    return list(await session.scalars(query))


async def callbacks_of(session: AsyncSession, cpts_id: uuid.UUID, request_id: uuid.UUID) -> list[Callback]:
    query = scoped(Callback, cpts_id).where(Callback.request_id == request_id)
    return list(await session.scalars(query.order_by(Callback.due_at, Callback.id)))


async def callback(
    session: AsyncSession, cpts_id: uuid.UUID, request_id: uuid.UUID, callback_id: uuid.UUID
) -> Callback:
    found = await get_or_raise(session, Callback, cpts_id, callback_id, "callback", for_update=True)
    if found.request_id != request_id:
        raise NotFound("callback")
    return found


async def next_callbacks(session: AsyncSession, request_ids: list[uuid.UUID]) -> dict[uuid.UUID, datetime]:
    """The earliest callback still to make, of each request."""
    if not request_ids:
        return {}
    rows = await session.execute(
        select(Callback.request_id, func.min(Callback.due_at))
        .where(Callback.request_id.in_(request_ids), CALLBACK_TO_MAKE)
        .group_by(Callback.request_id)
    )
    return {row[0]: row[1] for row in rows}


async def search(
    session: AsyncSession,
    cpts_id: uuid.UUID,
    *,
    phone: str | None,
    reference: str | None,
    family: str | None,
    limit: int,
) -> list[CareRequest]:
    """Requests by patient or caller phone key, booking reference, or family-name key prefix."""
    matches = []
    if phone:
        matches += [CareRequest.patient_phone_key == phone, CareRequest.caller_phone_key == phone]
    if reference:
        booked = select(BOOKING.c.request_id).where(BOOKING.c.cpts_id == cpts_id, BOOKING.c.reference == reference)
        matches.append(CareRequest.id.in_(booked))
    if family and not phone:
        matches.append(CareRequest.family_name_key.startswith(family, autoescape=True))
    if not matches:
        return []
    query = scoped(CareRequest, cpts_id).where(or_(*matches))
    return list(await session.scalars(query.order_by(CareRequest.received_at.desc(), CareRequest.id).limit(limit)))


async def same_patient(
    session: AsyncSession,
    cpts_id: uuid.UUID,
    patient_pseudonym: str | None,
    phones: list[str],
    start: datetime,
    end: datetime,
) -> list[CareRequest]:
    """Requests of this pseudonym, or with one of these phone keys (the patient's or the caller's),
    received between `start` and `end`."""
    matches = []
    if patient_pseudonym:
        matches.append(CareRequest.patient_pseudonym == patient_pseudonym)
    if phones:
        matches += [CareRequest.patient_phone_key.in_(phones), CareRequest.caller_phone_key.in_(phones)]
    if not matches:
        return []
    query = scoped(CareRequest, cpts_id).where(
        or_(*matches), CareRequest.received_at >= start, CareRequest.received_at <= end
    )
    return list(await session.scalars(query.order_by(CareRequest.received_at.desc()).limit(20)))
