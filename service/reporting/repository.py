"""Reporting queries: one fact row per request, supply aggregates, slot facts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from service.accounts.models import StaffUser
from service.compensation.domain import SlotFact
from service.db import DriverStatement, fetch, sql_fragment
from service.orientation.domain import DECIDING_KINDS, final_outcome
from service.orientation.predicates import RED_FLAGGED_SQL
from service.reporting.indicators import RequestFact, Supply
from service.slots.predicates import ALIAS_S, withdrawn_late

_FACTS = text(
    f"""
    SELECT r.id, r.received_at, r.deadline_at, r.channel, r.via_sas, r.imported, r.motif,
           r.motif_classification, {RED_FLAGGED_SQL} AS red_flagged,
           r.needs_profession, r.needs_specialty, r.needs_modalities, r.patient_pseudonym,
           r.patient_age_band, r.patient_sex, r.patient_commune_insee,
           fe.kind, fe.at, fe.actor_id,
           COALESCE(s.start_at, r.imported_appointment_start),
           COALESCE(s.modality, r.imported_appointment_modality),
           COALESCE(p.profession, ip.profession),
           CASE WHEN b.id IS NOT NULL THEN b.status
                WHEN r.imported_appointment_status LIKE 'cancelled%' THEN 'cancelled'
                WHEN r.imported_appointment_start IS NOT NULL THEN 'booked' END,
           COALESCE(b.cancelled_side,
                    CASE r.imported_appointment_status WHEN 'cancelled_by_patient' THEN 'patient'
                                                       WHEN 'cancelled_by_practitioner' THEN 'practitioner' END),
           COALESCE(b.outcome,
                    CASE WHEN r.imported_appointment_status IN ('fulfilled', 'noshow')
                         THEN r.imported_appointment_status END)
    FROM care_request r
    -- The last deciding event: an outcome, or a reopening that ends the outcome before it
    -- (orientation.domain.final_outcome decides which).
    LEFT JOIN LATERAL (
        SELECT e.kind, e.at, e.actor_id
        FROM orientation_event e
        WHERE e.cpts_id = r.cpts_id AND e.request_id = r.id AND e.kind = ANY(CAST(:deciding AS text[]))
        ORDER BY e.id DESC
        LIMIT 1
    ) fe ON true
    -- The request's last confirmed booking, whatever became of it: a cancelled one still counts in
    -- the appointment figures under its cancellation.
    LEFT JOIN LATERAL (
        SELECT lb.id, lb.slot_id, lb.status, lb.cancelled_side, lb.outcome
        FROM booking lb
        WHERE lb.cpts_id = r.cpts_id AND lb.request_id = r.id AND lb.booked_at IS NOT NULL
        ORDER BY lb.booked_at DESC, lb.id DESC
        LIMIT 1
    ) b ON true
    LEFT JOIN slot s ON s.id = b.slot_id
    LEFT JOIN practitioner p ON p.id = s.practitioner_id
    LEFT JOIN practitioner ip ON ip.id = r.imported_practitioner_id
    WHERE r.cpts_id = :cpts_id AND r.received_at >= :start AND r.received_at < :end
      AND (r.received_at, r.id) > (:after_at, :after_id)
    ORDER BY r.received_at, r.id
    LIMIT :batch
    """  # noqa: S608 - module constants, no input
)
# Run by the driver: a month is thousands of rows, and SQLAlchemy's rows (each value read through
# Python) and result objects were a third of a monthly report's CPU.
_FACTS_BY_DRIVER = DriverStatement(_FACTS)


def _params(cpts_id: uuid.UUID, start: datetime, end: datetime) -> dict[str, Any]:
    return {"cpts_id": cpts_id, "start": start, "end": end, "deciding": sorted(k.value for k in DECIDING_KINDS)}


def fact_of(row: Sequence[Any]) -> RequestFact:
    outcome = final_outcome([row[16]] if row[16] else [])
    return RequestFact(
        request_id=row[0],
        received_at=row[1],
        deadline_at=row[2],
        channel=row[3],
        via_sas=row[4],
        imported=row[5],
        motif=row[6],
        motif_classification=row[7],
        red_flagged=row[8],
        needs_profession=row[9],
        needs_specialty=row[10],
        needs_modalities=tuple(row[11] or ()),
        patient_pseudonym=row[12],
        patient_age_band=row[13],
        patient_sex=row[14],
        patient_commune=row[15],
        final_outcome=outcome.value if outcome else None,
        oriented_at=row[17] if outcome else None,
        oriented_by=row[18] if outcome else None,
        appointment_start=row[19],
        appointment_modality=row[20],
        practitioner_profession=row[21],
        booking_status=row[22],
        cancelled_side=row[23],
        appointment_outcome=row[24],
    )


# Rows per batch when streaming facts: small enough that turning a batch into lines (a pseudonym
# HMAC each) holds the worker's event loop for ~40 ms, not ~150 ms as 2000 rows did; a month's
# export takes as long either way.
STREAM_BATCH = 500
_BEFORE_ANY = uuid.UUID(int=0)


async def stream_request_facts(
    session: AsyncSession, cpts_id: uuid.UUID, start: datetime, end: datetime, batch: int = STREAM_BATCH
) -> AsyncIterator[RequestFact]:
    """The facts in batches, each the next `batch` requests after the last one read (keyset on
    (received_at, id), the index's order): memory does not grow with the month, the first batch
    comes as fast for a million requests as for a thousand (no sort of the month first), no
    statement runs longer than one batch, and other requests are answered between batches. The
    caller's transaction (REPEATABLE READ for an export) keeps the batches one snapshot."""
    params = {**_params(cpts_id, start, end), "after_at": start, "after_id": _BEFORE_ANY, "batch": batch}
    conn = await session.connection()
    while True:
        rows = await fetch(conn, _FACTS_BY_DRIVER, **params)
        for row in rows:
            yield fact_of(row)
        if len(rows) < batch:
            return
        params["after_at"], params["after_id"] = rows[-1][1], rows[-1][0]


_SUPPLY = text(
    f"""
    SELECT count(*),
           COALESCE(sum(extract(epoch FROM s.end_at - s.start_at)), 0)::bigint,
           count(*) FILTER (WHERE s.status = 'booked'),
           count(*) FILTER (WHERE s.status = 'withdrawn'),
           count(*) FILTER (WHERE {sql_fragment(withdrawn_late(ALIAS_S))})
    FROM slot s
    WHERE s.cpts_id = :cpts_id AND s.start_at >= :start AND s.start_at < :end
    """  # noqa: S608 - module constants, no input
)
_PROFESSIONALS = text(
    """
    SELECT p.profession, count(DISTINCT s.practitioner_id)
    FROM slot s JOIN practitioner p ON p.id = s.practitioner_id
    WHERE s.cpts_id = :cpts_id AND s.start_at >= :start AND s.start_at < :end
    GROUP BY p.profession
    """
)


async def supply(session: AsyncSession, cpts_id: uuid.UUID, start: datetime, end: datetime) -> Supply:
    params = {"cpts_id": cpts_id, "start": start, "end": end}
    published, seconds, booked, withdrawn, late = (await session.execute(_SUPPLY, params)).one()
    professionals = {row[0]: row[1] for row in await session.execute(_PROFESSIONALS, params)}
    return Supply(published, seconds, booked, withdrawn, late, professionals)


_SLOT_FACTS = text(
    """
    SELECT id, practitioner_id, start_at, end_at, (start_at AT TIME ZONE :tz)::date,
           status = 'booked', status = 'withdrawn', published_at
    FROM slot
    WHERE cpts_id = :cpts_id AND start_at >= :start AND start_at < :end
    """
)


async def slot_facts(
    session: AsyncSession, cpts_id: uuid.UUID, start: datetime, end: datetime, tz: str
) -> list[SlotFact]:
    rows = await session.execute(_SLOT_FACTS, {"cpts_id": cpts_id, "start": start, "end": end, "tz": tz})
    return [SlotFact(*row) for row in rows]


async def user_names(session: AsyncSession, cpts_id: uuid.UUID) -> dict[uuid.UUID, str]:
    rows = await session.execute(select(StaffUser.id, StaffUser.display_name).where(StaffUser.cpts_id == cpts_id))
    return {row[0]: row[1] for row in rows}


_SUPPLY_BY_DAY = text(
    """
    SELECT (s.start_at AT TIME ZONE :tz)::date AS day,
           count(*) FILTER (WHERE s.status <> 'withdrawn') AS offered,
           count(*) FILTER (WHERE s.status = 'booked') AS booked
    FROM slot s
    WHERE s.cpts_id = :cpts_id AND s.start_at >= :start AND s.start_at < :end
    GROUP BY 1
    """
)


async def supply_by_day(
    session: AsyncSession, cpts_id: uuid.UUID, start: datetime, end: datetime, tz: str
) -> dict[date, tuple[int, int]]:
    """Slots starting each local day of the period: (offered, booked)."""
    rows = await session.execute(_SUPPLY_BY_DAY, {"cpts_id": cpts_id, "start": start, "end": end, "tz": tz})
    return {row.day: (row.offered, row.booked) for row in rows}
