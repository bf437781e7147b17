"""Requests and their orientation log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit import service as audit
from service.auth import Principal
from service.cpts import repository as cpts_repository
from service.errors import Conflict, Invalid, field_error
from service.orientation import repository
from service.orientation.domain import (
    EventKind,
    RequestStatus,
    age_band,
    classify,
    deadline,
    default_needs,
    final_outcome,
    identity_key,
    initial_status,
    override_decision,
    pseudonym,
    queue_rank,
    received_at_problem,
    requires_transfer,
    screen,
)
from service.orientation.log import LoggedEvent, append_event
from service.orientation.models import CareRequest
from service.orientation.schemas import (
    MotifOut,
    NeedsOut,
    OrientationIn,
    OverrideIn,
    PatientOut,
    QueueItem,
    RequestCreate,
    RequestSummary,
)
from service.pagination import BY_QUEUE, Page
from service.reference.codes import motifs
from service.slots.domain import Modality


async def create(
    session: AsyncSession, principal: Principal, data: RequestCreate, now: datetime, http: Request | None = None
) -> CareRequest:
    cpts = await cpts_repository.get(session, principal.cpts_id)
    received_at = data.received_at or now
    problem = received_at_problem(received_at, now)
    if problem:
        raise Invalid("validation_error", problem, errors=[field_error(["body", "received_at"], problem)])
    local_day = received_at.astimezone(ZoneInfo(cpts.timezone)).date()
    screening = screen(data.motif, cpts.motif_overrides, data.patient.birth_date, local_day)
    classification = screening.classification
    profession, specialty = default_needs(data.needs.profession, data.needs.specialty)
    care_request = CareRequest(
        id=uuid.uuid4(),
        cpts_id=principal.cpts_id,
        received_at=received_at,
        deadline_at=deadline(received_at, cpts.response_window_hours),
        channel=data.channel,
        via_sas=data.via_sas,
        regulating_physician=data.regulating_physician,
        caller_relation=data.caller.relation,
        caller_phone=data.caller.phone,
        patient_family_name=data.patient.family_name,
        patient_given_name=data.patient.given_name,
        patient_birth_date=data.patient.birth_date,
        patient_phone=data.patient.phone,
        patient_ins=data.patient.ins,
        note=data.note,
        patient_pseudonym=pseudonym(
            cpts.pseudonym_key,
            identity_key(
                data.patient.family_name,
                data.patient.given_name,
                data.patient.birth_date,
                data.patient.ins,
                data.patient.phone,
            ),
        ),
        patient_sex=data.patient.sex,
        patient_age_band=age_band(data.patient.birth_date, local_day),
        patient_commune_insee=data.patient.commune_insee,
        identity_status=data.patient.identity_status,
        motif=data.motif,
        motif_classification=classification.value,
        age_rules=list(screening.age_rules),
        red_flags=data.red_flags,
        needs_profession=profession,
        needs_specialty=specialty,
        needs_modalities=[m.value for m in data.needs.modalities],
        status=initial_status(requires_transfer(classification, data.red_flags)).value,
        created_by_kind=principal.kind,
        created_by_id=principal.id,
        created_at=now,
        updated_at=now,
    )
    session.add(care_request)
    await session.flush()
    await audit.record(session, principal, "request.create", "request", [care_request.id], now, http)
    return care_request


async def record_orientation(
    session: AsyncSession,
    principal: Principal,
    care_request: CareRequest,
    data: OrientationIn,
    now: datetime,
    http: Request | None = None,
) -> LoggedEvent:
    """Record where the patient was oriented on a request the caller has locked: closes it (or
    corrects a closed one). Ending its hold first is the caller's (`flows.orientation`)."""
    kind = EventKind(data.outcome)
    detail = {"correction": True} if care_request.status == RequestStatus.closed else None
    event = await append_event(
        session,
        principal,
        care_request,
        kind,
        now,
        note=data.note,
        regulating_physician=data.regulating_physician,
        detail=detail,
    )
    await audit.record(
        session, principal, "request.orient", "request", [care_request.id], now, http, {"outcome": kind.value}
    )
    return event


async def override_red_flag(
    session: AsyncSession,
    principal: Principal,
    request_id: uuid.UUID,
    data: OverrideIn,
    now: datetime,
    http: Request | None = None,
) -> tuple[CareRequest, LoggedEvent]:
    """A regulating physician lifts the red flag (before a transfer, or after the 15 sent the
    patient back to unscheduled care); the request can then be booked."""
    care_request = await repository.get(session, principal.cpts_id, request_id, for_update=True)
    status = RequestStatus(care_request.status)
    if status is RequestStatus.closed:
        last = final_outcome(await repository.event_kinds(session, principal.cpts_id, request_id))
        if last not in (EventKind.transfer_15, EventKind.emergency_department):
            raise Conflict("request_closed", "Only a request transferred to the 15 can be sent back to SNP.")
    elif status is not RequestStatus.transfer_required:
        raise Conflict("no_red_flag", "This request has no red flag to override.")
    decision = override_decision(
        principal.role.value,
        principal.rpps,
        data.regulating_physician,
        care_request.via_sas,
        care_request.regulating_physician,
    )
    event = await append_event(
        session,
        principal,
        care_request,
        EventKind.red_flag_override,
        now,
        note=data.note,
        regulating_physician=decision.regulating_physician,
        detail={"basis": decision.basis},
    )
    await audit.record(session, principal, "request.override", "request", [care_request.id], now, http)
    return care_request, event


def summary_fields(care_request: CareRequest) -> dict[str, Any]:
    motif = motifs().get(care_request.motif)
    return {
        "id": care_request.id,
        "received_at": care_request.received_at,
        "deadline_at": care_request.deadline_at,
        "status": RequestStatus(care_request.status),
        "channel": care_request.channel,
        "via_sas": care_request.via_sas,
        "motif": care_request.motif,
        "motif_label": motif.label if motif else "",
        "motif_classification": care_request.motif_classification,
        "red_flags": list(care_request.red_flags),
        "age_rules": list(care_request.age_rules),
        "needs": NeedsOut(
            profession=care_request.needs_profession,
            specialty=care_request.needs_specialty,
            modalities=[Modality(m) for m in care_request.needs_modalities],
        ),
        "imported": care_request.imported,
    }


def patient_out(care_request: CareRequest) -> PatientOut:
    return PatientOut(
        family_name=care_request.patient_family_name,
        given_name=care_request.patient_given_name,
        birth_date=care_request.patient_birth_date,
        sex=care_request.patient_sex,
        phone=care_request.patient_phone,
        commune_insee=care_request.patient_commune_insee,
        identity_status=care_request.identity_status,
        ins=care_request.patient_ins,
        age_band=care_request.patient_age_band,
    )


def summary(care_request: CareRequest) -> RequestSummary:
    return RequestSummary(**summary_fields(care_request))


def queue_item(care_request: CareRequest) -> QueueItem:
    return QueueItem(**summary_fields(care_request), patient=patient_out(care_request))


async def queue(
    session: AsyncSession,
    principal: Principal,
    statuses: list[str] | None,
    due_before: datetime | None,
    limit: int,
    cursor: str | None,
    now: datetime,
    http: Request | None = None,
) -> Page[QueueItem]:
    """The queue: red-flagged requests first, then the most urgent deadline (default: open and
    transfer-required requests). It shows patients' identities, so the read is audited."""
    wanted = statuses or [RequestStatus.open.value, RequestStatus.transfer_required.value]
    rows = await repository.queue_page(session, principal.cpts_id, wanted, due_before, BY_QUEUE.decode(cursor), limit)
    page, next_cursor = BY_QUEUE.page(rows, limit, lambda r: (queue_rank(r.status), r.deadline_at, r.id))
    await audit.record(session, principal, "request.list", "request", [r.id for r in page], now, http)
    return Page(items=[queue_item(r) for r in page], next_cursor=next_cursor)


async def motifs_of(session: AsyncSession, principal: Principal) -> list[MotifOut]:
    """The Hub Santé motifs with this CPTS's red-flag classification."""
    overrides = (await cpts_repository.get(session, principal.cpts_id)).motif_overrides or {}
    return [
        MotifOut(
            code=m.code,
            label=m.label,
            level=m.level,
            classification=classify(m.code, overrides).value,
            overridden=m.code in overrides,
        )
        for m in motifs().values()
    ]
