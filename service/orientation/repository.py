from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

import asyncpg
from sqlalchemy import bindparam, column, func, or_, select, table, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from service import idempotency
from service.audit import service as audit
from service.cpts.models import Cpts
from service.db import DECLINED, DriverStatement, StatementConnection, fetch, fetchrow, sql_fragment
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


@dataclass(frozen=True, slots=True)
class Reception:
    """The CPTS's settings a new request depends on: its local day (age rules, age band), its
    deadline, the CPTS's own classification of motifs, the key of the patient's pseudonym."""

    timezone: str
    response_window_hours: int
    motif_overrides: dict[str, str]
    pseudonym_key: bytes

    @classmethod
    def of(cls, cpts: Cpts) -> Reception:
        return cls(cpts.timezone, cpts.response_window_hours, cpts.motif_overrides, cpts.pseudonym_key)


_RECEPTION = DriverStatement(
    select(Cpts.timezone, Cpts.response_window_hours, Cpts.motif_overrides, Cpts.pseudonym_key).where(
        Cpts.id == bindparam("cpts_id")
    )
)


async def reception(conn: StatementConnection, cpts_id: uuid.UUID) -> Reception:
    row = await fetchrow(conn, _RECEPTION, cpts_id=cpts_id)
    if row is None:
        raise NotFound("cpts")
    return Reception(*row)


@functools.cache
def _creating_in_one(columns: tuple[str, ...]) -> DriverStatement:
    """A new request as one statement outside any transaction (atomic by itself), compiled once for
    its columns: the Idempotency-Key claimed first with the answer to replay, the request, its audit
    row. A key already used declines (`snp_decline`, nothing written) and the general path replays."""
    dialect, typed = postgresql.dialect(), CareRequest.__table__.c  # type: ignore[no-untyped-call]
    values = ", ".join(f"CAST(:r_{name} AS {typed[name].type.compile(dialect=dialect)})" for name in columns)
    sql = f"""
        WITH key_claim AS ({idempotency.CLAIM_SQL}),
        inserted AS (
            INSERT INTO care_request ({", ".join(columns)})
            SELECT {values}
            WHERE CAST(:idem_key AS text) IS NULL OR EXISTS (SELECT 1 FROM key_claim)
            RETURNING id
        ),
        audited AS ({audit.INSERT_ONE_SQL})
        SELECT CASE WHEN EXISTS (SELECT 1 FROM inserted) THEN true ELSE snp_decline('key_used') END
    """  # noqa: S608 - the model's column names and module constants, no input
    return DriverStatement(text(sql))


async def create_in_one_statement(conn: StatementConnection, row: dict[str, Any], values: dict[str, Any]) -> bool:
    """Insert the request `row` (its columns' values) with the statement's other `values` (the key's
    claim, the audit row); False when the key was used already (nothing was written)."""
    columns = tuple(row)
    try:
        await fetchrow(conn, _creating_in_one(columns), **values, **{f"r_{name}": row[name] for name in columns})
    except asyncpg.PostgresError as exc:
        if exc.sqlstate == DECLINED:
            return False
        raise
    return True


# A callback still to make: the queue shows the earliest of each request.
CALLBACK_TO_MAKE = Callback.done_at.is_(None)


@dataclass(frozen=True, slots=True)
class QueueRow:
    """A request as the queue shows it: the columns of its summary and its patient (the queue's
    statement selects these, in this order), and its earliest callback still to make."""

    id: uuid.UUID
    received_at: datetime
    deadline_at: datetime
    status: str
    channel: str
    via_sas: bool
    motif: str
    motif_classification: str
    red_flags: list[str]
    age_rules: list[str]
    reopened_at: datetime | None
    notify_by: list[str]
    needs_profession: str | None
    needs_specialty: str | None
    needs_modalities: list[str]
    imported: bool
    patient_family_name: str | None
    patient_given_name: str | None
    patient_birth_date: date | None
    patient_sex: str | None
    patient_phone: str | None
    patient_commune_insee: str | None
    patient_address: str | None
    patient_email: str | None
    identity_status: str
    patient_ins: str | None
    patient_age_band: str | None
    callback_due_at: datetime | None


_RANK_SQL = sql_fragment(predicates.queue_rank(column("status")))
_WANTED_RANK_SQL = sql_fragment(predicates.queue_rank(column("wanted_status")))
_QUEUE_ORDER = "rank, deadline_at, id"


@functools.cache
def _queue_statement(due_before: bool, after: bool) -> DriverStatement:
    """The queue's page and the audit of the requests it shows, in one statement (compiled once for
    each of its shapes): `limit + 1` requests of the given statuses, red-flagged first, then the most
    urgent deadline; each with its earliest callback still to make, looked up for the page only.

    Each status is read apart, in its deadline order from the index (cpts_id, status, deadline_at, id),
    then the few rows merged: the cost is the page's, not that of every open request (a queue sorted
    whole took 5 ms of PostgreSQL with 1 500 open requests, 40 with 10 000)."""
    request_columns = ", ".join(f.name for f in fields(QueueRow)[:-1])
    conditions = ["cpts_id = :cpts_id", "status = wanted_status"]
    if due_before:
        conditions.append("deadline_at < :due_before")
    if after:
        conditions += [
            f"{_WANTED_RANK_SQL} >= :after_rank",  # a status ranked before the cursor is not read at all
            # the cursor's own status is read from the cursor's deadline on, in the index
            f"deadline_at >= CASE WHEN {_WANTED_RANK_SQL} = :after_rank THEN CAST(:after_deadline AS timestamptz)"
            " ELSE '-infinity' END",
            f"({_RANK_SQL}, deadline_at, id) > (:after_rank, :after_deadline, :after_id)",
        ]
    shown = f"SELECT id FROM page ORDER BY {_QUEUE_ORDER} LIMIT :shown"  # noqa: S608 - constants
    sql = f"""
        WITH page AS (
            SELECT request.*
            FROM unnest(CAST(:statuses AS text[])) AS wanted(wanted_status)
            CROSS JOIN LATERAL (
                SELECT {request_columns}, {_RANK_SQL} AS rank
                FROM care_request
                WHERE {" AND ".join(conditions)}
                ORDER BY deadline_at, id
                LIMIT :shown + 1
            ) AS request
            ORDER BY {_QUEUE_ORDER}
            LIMIT :shown + 1
        ), audited AS ({audit.INSERT_EACH_SQL.format(ids=shown)})
        SELECT {request_columns},
               (SELECT min(request_callback.due_at) FROM request_callback
                WHERE request_callback.cpts_id = :cpts_id AND request_callback.request_id = page.id
                  AND {sql_fragment(CALLBACK_TO_MAKE)}) AS callback_due_at
        FROM page
        ORDER BY {_QUEUE_ORDER}
    """  # noqa: S608 - module constants, no input
    return DriverStatement(text(sql))


async def queue_page(
    conn: StatementConnection,
    cpts_id: uuid.UUID,
    statuses: Sequence[str],
    due_before: datetime | None,
    after: tuple[Any, ...] | None,
    limit: int,
    audit_values: dict[str, Any],
) -> list[QueueRow]:
    """Requests of the given statuses, red-flagged first, then the most urgent deadline (`limit + 1`);
    the first `limit`, those the page shows, audited as read (`audit_values`: `audit.each_row`)."""
    # Each status once: the statement reads each one apart.
    wanted = list(dict.fromkeys(statuses))
    params: dict[str, Any] = {**audit_values, "cpts_id": cpts_id, "statuses": wanted, "shown": limit}
    if due_before is not None:
        params["due_before"] = due_before
    if after is not None:
        params.update(after_rank=after[0], after_deadline=after[1], after_id=after[2])
    rows = await fetch(conn, _queue_statement(due_before is not None, after is not None), **params)
    return [QueueRow(*row) for row in rows]


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
