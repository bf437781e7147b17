"""History import: past requests, their outcome and appointment, from the tool the CPTS used
before. Validated like live data, idempotent by `external_ref`, flagged `imported`."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit import service as audit
from service.auth import Principal
from service.batches import invalid_item, problem_out
from service.cpts import repository as cpts_repository
from service.db import TEXTS
from service.errors import ItemProblem
from service.fields import is_storable
from service.imports.schemas import ImportItemResult, ImportRecord
from service.orientation.domain import age_band, classify, deadline, default_needs
from service.orientation.models import CareRequest, OrientationEvent
from service.practitioners import repository as practitioners_repository

_RECORD = TypeAdapter(ImportRecord)


def digest(record: ImportRecord) -> str:
    """What the record says, to tell a replay (unchanged) from a different record reusing a ref."""
    return hashlib.sha256(json.dumps(record.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def _rejected(
    external_ref: str | None, problem: ItemProblem, errors: list[dict[str, Any]] | None = None
) -> ImportItemResult:
    return ImportItemResult(external_ref=external_ref, outcome="rejected", problem=problem_out(problem, errors))


def _status(record: ImportRecord) -> str:
    # History is what it was: the status follows the final outcome, without the live workflow.
    if record.outcome is None:
        return "open"
    return "booked" if record.outcome == "booked" else "closed"


async def import_activity(
    session: AsyncSession, principal: Principal, raw_records: Sequence[Any], now: datetime
) -> list[ImportItemResult]:
    cpts = await cpts_repository.get(session, principal.cpts_id)
    tz = ZoneInfo(cpts.timezone)
    results: list[ImportItemResult | None] = [None] * len(raw_records)
    records: list[tuple[int, ImportRecord, str]] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_records):
        ref = raw.get("external_ref") if isinstance(raw, dict) else None
        ref = ref if isinstance(ref, str) and len(ref) <= 100 and is_storable(ref) else None  # echoed back
        try:
            record = _RECORD.validate_python(raw)
        except ValidationError as exc:
            results[index] = _rejected(ref, *invalid_item(exc, "record"))
            continue
        if record.received_at > now or (record.oriented_at is not None and record.oriented_at > now):
            future = ItemProblem(422, "received_in_future", "received_at or oriented_at is in the future.")
            results[index] = _rejected(record.external_ref, future)
            continue
        if record.external_ref in seen:
            results[index] = _rejected(
                record.external_ref,
                ItemProblem(422, "duplicate_external_ref", "The same external_ref earlier in this import."),
            )
            continue
        seen.add(record.external_ref)
        records.append((index, record, digest(record)))

    wanted = [r.appointment.practitioner_id for _, r, _ in records if r.appointment and r.appointment.practitioner_id]
    members = await practitioners_repository.existing_ids(session, cpts.id, list(set(wanted)))
    refs = [r.external_ref for _, r, _ in records]
    existing = await _existing(session, cpts.id, refs)
    new: list[tuple[int, ImportRecord, str]] = []
    for index, record, record_digest in records:
        appointment = record.appointment
        if appointment and appointment.practitioner_id and appointment.practitioner_id not in members:
            results[index] = _rejected(
                record.external_ref, ItemProblem(404, "practitioner_not_found", "No such practitioner in this CPTS.")
            )
        elif record.external_ref in existing:
            request_id, known_digest = existing[record.external_ref]
            if known_digest == record_digest:
                results[index] = ImportItemResult(
                    external_ref=record.external_ref, outcome="unchanged", request_id=request_id
                )
            else:
                results[index] = _rejected(
                    record.external_ref,
                    ItemProblem(409, "external_ref_exists", "Another record was imported under this external_ref."),
                )
        else:
            new.append((index, record, record_digest))

    inserted = await _insert(
        session, principal, cpts.id, cpts.motif_overrides, tz, cpts.response_window_hours, new, now
    )
    raced = await _existing(session, cpts.id, [r.external_ref for _, r, _ in new if r.external_ref not in inserted])
    for index, record, record_digest in new:
        if record.external_ref in inserted:
            results[index] = ImportItemResult(
                external_ref=record.external_ref, outcome="created", request_id=inserted[record.external_ref]
            )
        elif raced.get(record.external_ref, (None, None))[1] == record_digest:
            results[index] = ImportItemResult(
                external_ref=record.external_ref, outcome="unchanged", request_id=raced[record.external_ref][0]
            )
        else:
            results[index] = _rejected(
                record.external_ref,
                ItemProblem(409, "external_ref_exists", "Imported concurrently with other content."),
            )
    if inserted:
        await audit.record(
            session, principal, "import.activity", "report", [None], now, None, {"created": len(inserted)}
        )
    return [r for r in results if r is not None]


async def _existing(
    session: AsyncSession, cpts_id: uuid.UUID, refs: Sequence[str]
) -> dict[str, tuple[uuid.UUID, str | None]]:
    if not refs:
        return {}
    wanted = func.unnest(bindparam("refs", list(refs), type_=TEXTS)).table_valued("ref").render_derived(name="wanted")
    rows = await session.execute(
        select(CareRequest.external_ref, CareRequest.id, CareRequest.import_digest)
        .join(wanted, CareRequest.external_ref == wanted.c.ref)
        .where(CareRequest.cpts_id == cpts_id)
    )
    return {str(row[0]): (row[1], row[2]) for row in rows}


async def _insert(
    session: AsyncSession,
    principal: Principal,
    cpts_id: uuid.UUID,
    motif_overrides: dict[str, str],
    tz: ZoneInfo,
    window_hours: int,
    records: list[tuple[int, ImportRecord, str]],
    now: datetime,
) -> dict[str, uuid.UUID]:
    if not records:
        return {}
    rows = []
    for _, record, record_digest in records:
        profession, specialty = default_needs(record.needs.profession, record.needs.specialty)
        birth = date.fromisoformat(record.patient.birth_date) if record.patient.birth_date else None
        appointment = record.appointment
        rows.append(
            {
                "id": uuid.uuid4(),
                "cpts_id": cpts_id,
                "received_at": record.received_at,
                "deadline_at": deadline(record.received_at, window_hours),
                "channel": record.channel,
                "via_sas": record.via_sas,
                "patient_sex": record.patient.sex,
                "patient_age_band": age_band(birth, record.received_at.astimezone(tz).date()),
                "patient_commune_insee": record.patient.commune_insee,
                "identity_status": "PROV",
                "motif": record.motif,
                "motif_classification": classify(record.motif, motif_overrides).value,
                "red_flags": [],
                "needs_profession": profession,
                "needs_specialty": specialty,
                "needs_modalities": [m.value for m in record.needs.modalities],
                "status": _status(record),
                "created_by_kind": principal.kind,
                "created_by_id": principal.id,
                "imported": True,
                "external_ref": record.external_ref,
                "import_digest": record_digest,
                "imported_practitioner_id": appointment.practitioner_id if appointment else None,
                "imported_appointment_start": appointment.start if appointment else None,
                "imported_appointment_end": appointment.end if appointment else None,
                "imported_appointment_modality": appointment.modality.value if appointment else None,
                "imported_appointment_status": appointment.outcome if appointment else None,
                "created_at": now,
                "updated_at": now,
            }
        )
    result = await session.execute(
        insert(CareRequest)
        .on_conflict_do_nothing(
            index_elements=["cpts_id", "external_ref"], index_where=CareRequest.external_ref.is_not(None)
        )
        .returning(CareRequest.external_ref, CareRequest.id),
        rows,
    )
    inserted = {str(row[0]): row[1] for row in result}
    events = [
        {
            "cpts_id": cpts_id,
            "request_id": inserted[record.external_ref],
            "kind": record.outcome,
            "at": record.oriented_at,
            "actor_kind": principal.kind,
            "actor_id": principal.id,
            "detail": {"imported": True},
        }
        for _, record, _ in records
        if record.external_ref in inserted and record.outcome is not None
    ]
    if events:
        await session.execute(insert(OrientationEvent), events)
    return inserted
