"""Personal-data retention: identity fields are erased after the retention period, while the
pseudonymised facts the indicators need (pseudonym, age band, sex, commune, motif, log) remain."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from service import idempotency

_PURGE_REQUESTS = text(
    """
    UPDATE care_request AS r
    SET patient_family_name = NULL, patient_given_name = NULL, patient_birth_date = NULL,
        patient_phone = NULL, patient_ins = NULL, caller_phone = NULL, note = NULL,
        patient_address = NULL, patient_email = NULL,
        patient_phone_key = NULL, caller_phone_key = NULL, family_name_key = NULL,
        identity_status = 'PROV', identity_purged_at = :now
    FROM cpts AS c
    WHERE c.id = r.cpts_id
      AND r.identity_purged_at IS NULL
      -- "before DATE" is midnight of that date in each CPTS's own timezone.
      AND r.received_at < (CAST(:before AS timestamp) AT TIME ZONE c.timezone)
      AND (CAST(:cpts_id AS uuid) IS NULL OR r.cpts_id = CAST(:cpts_id AS uuid))
    RETURNING r.id
    """
)
# Every free text that a person typed about the request can name the patient or carry a phone number.
_PURGE_NOTES = text(
    "UPDATE orientation_event SET note = NULL WHERE request_id = ANY(:ids) AND note IS NOT NULL"
).bindparams(bindparam("ids", type_=ARRAY(UUID(as_uuid=True))))
_PURGE_REQUEST_NOTES = text(
    "UPDATE request_note SET text = NULL WHERE request_id = ANY(:ids) AND text IS NOT NULL"
).bindparams(bindparam("ids", type_=ARRAY(UUID(as_uuid=True))))
_PURGE_CALLBACK_REASONS = text(
    "UPDATE request_callback SET reason = NULL WHERE request_id = ANY(:ids) AND reason IS NOT NULL"
).bindparams(bindparam("ids", type_=ARRAY(UUID(as_uuid=True))))
_PURGE_CANCEL_REASONS = text(
    "UPDATE booking SET cancel_reason = NULL WHERE request_id = ANY(:ids) AND cancel_reason IS NOT NULL"
).bindparams(bindparam("ids", type_=ARRAY(UUID(as_uuid=True))))


@dataclass(frozen=True)
class PurgeResult:
    requests: int
    idempotency_records: int


async def purge(session: AsyncSession, before: date, now: datetime, cpts_id: uuid.UUID | None = None) -> PurgeResult:
    ids = [row[0] for row in await session.execute(_PURGE_REQUESTS, {"before": before, "now": now, "cpts_id": cpts_id})]
    if ids:
        await session.execute(_PURGE_NOTES, {"ids": ids})
        await session.execute(_PURGE_CANCEL_REASONS, {"ids": ids})
        await session.execute(_PURGE_REQUEST_NOTES, {"ids": ids})
        await session.execute(_PURGE_CALLBACK_REASONS, {"ids": ids})
    # Stored answers replay retries for a day; older ones only hold (encrypted) data nobody needs.
    stale = await idempotency.purge_before(session, now - timedelta(days=1))
    return PurgeResult(requests=len(ids), idempotency_records=stale)
