"""Requests and their orientation log."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from service import idempotency
from service.accounts import service as accounts
from service.audit import service as audit
from service.auth import Principal
from service.cpts import repository as cpts_repository
from service.db import StatementConnection, autocommit, merged
from service.errors import Conflict, Forbidden, Invalid, field_error
from service.fields import reference_key
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
    ins_problem,
    name_key,
    notify_problem,
    override_decision,
    phone_key,
    pseudonym,
    queue_rank,
    received_at_problem,
    requires_transfer,
    screen,
)
from service.orientation.log import LoggedEvent, append_event
from service.orientation.models import Callback, CareRequest, RequestNote
from service.orientation.repository import QueueRow
from service.orientation.schemas import (
    CallbackIn,
    DuplicateCheck,
    DuplicateOut,
    MotifOut,
    NeedsOut,
    OrientationIn,
    OverrideIn,
    PatientOut,
    QueueItem,
    RequestCreate,
    RequestPatch,
    RequestSummary,
)
from service.pagination import BY_QUEUE, Page
from service.reference.codes import motifs
from service.routing import answer_bytes
from service.slots.domain import Modality

_log = structlog.get_logger("service.orientation")


async def create(
    session: AsyncSession, principal: Principal, data: RequestCreate, now: datetime, http: Request | None = None
) -> CareRequest:
    """Open a request in the session's transaction (the console, and the API's general path)."""
    cpts = await cpts_repository.get(session, principal.cpts_id)
    care_request = CareRequest(**new_request_row(principal, data, repository.Reception.of(cpts), now))
    session.add(care_request)
    await session.flush()
    await audit.record(session, principal, "request.create", "request", [care_request.id], now, http)
    return care_request


async def create_at_once(
    session: AsyncSession,
    principal: Principal,
    data: RequestCreate,
    now: datetime,
    *,
    http: Request,
    pending: idempotency.Pending | None,
) -> bytes:
    """The API's new request, answered (its JSON): in the common case two round trips outside any
    transaction, the CPTS's settings then one statement (`repository.create_in_one_statement`) that
    claims the Idempotency-Key with the answer, writes the request and its audit row. A key already
    used declines and the general path replays the first answer (or refuses another body)."""
    if not session.in_transaction():  # else the principal was read through the session: keep to it
        async with autocommit(session) as conn:
            row = new_request_row(principal, data, await repository.reception(conn, principal.cpts_id), now)
            answer = answer_bytes(summary(CareRequest(**row)))
            stored = http.app.state.response_cipher.encrypt(answer) if pending else None  # replayed as it is
            values = merged(
                idempotency.claim_values(principal, pending, 201, body=stored),
                audit.one_row(principal, "request.create", "request", row["id"], now, http),
            )
            if await repository.create_in_one_statement(conn, row, values):
                return answer
    if pending is not None:
        await idempotency.guard(http, principal, session, pending.key, digest=pending.digest)
    return answer_bytes(summary(await create(session, principal, data, now, http)))


def new_request_row(
    principal: Principal, data: RequestCreate, reception: repository.Reception, now: datetime
) -> dict[str, Any]:
    """The columns of a new request, whichever path writes it: when it was received and its
    deadline, the screening of its motif, its status, the patient and what derives from them."""
    received_at = data.received_at or now
    problem = received_at_problem(received_at, now)
    if problem:
        raise Invalid("validation_error", problem, errors=[field_error(["body", "received_at"], problem)])
    local_day = received_at.astimezone(ZoneInfo(reception.timezone)).date()
    screening = screen(data.motif, reception.motif_overrides, data.patient.birth_date, local_day)
    classification = screening.classification
    profession, specialty = default_needs(data.needs.profession, data.needs.specialty)
    return {
        "id": uuid.uuid4(),
        "cpts_id": principal.cpts_id,
        "received_at": received_at,
        "deadline_at": deadline(received_at, reception.response_window_hours),
        "channel": data.channel,
        "via_sas": data.via_sas,
        "regulating_physician": data.regulating_physician,
        "caller_relation": data.caller.relation,
        "caller_phone": data.caller.phone,
        "caller_phone_key": phone_key(data.caller.phone),
        "note": data.note,
        "notify_by": sorted(set(data.notify_by)),
        "motif": data.motif,
        "motif_classification": classification.value,
        "age_rules": list(screening.age_rules),
        "red_flags": data.red_flags,
        "needs_profession": profession,
        "needs_specialty": specialty,
        "needs_modalities": [m.value for m in data.needs.modalities],
        "status": initial_status(requires_transfer(classification, data.red_flags)).value,
        "imported": False,
        "reopened_at": None,
        "created_by_kind": principal.kind,
        "created_by_id": principal.id,
        "created_at": now,
        "updated_at": now,
        **patient_columns(data.patient.model_dump(), reception.pseudonym_key, local_day),
    }


_PATIENT_COLUMNS = {
    "family_name": "patient_family_name",
    "given_name": "patient_given_name",
    "birth_date": "patient_birth_date",
    "sex": "patient_sex",
    "phone": "patient_phone",
    "commune_insee": "patient_commune_insee",
    "address": "patient_address",
    "email": "patient_email",
    "identity_status": "identity_status",
    "ins": "patient_ins",
}


def patient_columns(traits: dict[str, Any], key: bytes, local_day: date) -> dict[str, Any]:
    """The patient's traits (all of them) as columns, with what is derived from them: the search
    keys, the pseudonym the reports follow the patient by, the age band."""
    family, given, birth, phone = traits["family_name"], traits["given_name"], traits["birth_date"], traits["phone"]
    return {
        **{_PATIENT_COLUMNS[trait]: value for trait, value in traits.items()},
        "patient_phone_key": phone_key(phone),
        "family_name_key": name_key(family) if family else None,
        "patient_pseudonym": pseudonym(key, identity_key(family, given, birth, traits["ins"], phone)),
        "patient_age_band": age_band(birth, local_day),
    }


def _patient_traits(care_request: CareRequest) -> dict[str, Any]:
    return {trait: getattr(care_request, name) for trait, name in _PATIENT_COLUMNS.items()}


async def correct(
    session: AsyncSession,
    principal: Principal,
    request_id: uuid.UUID,
    patch: RequestPatch,
    now: datetime,
    http: Request | None = None,
) -> CareRequest:
    """Correct the caller, the patient's traits, the needs or the consent to be notified. When the
    request was received, and so its deadline, never move. Which fields changed is audited and
    logged (never their values)."""
    care_request = await repository.get(session, principal.cpts_id, request_id, for_update=True)
    if care_request.identity_purged_at is not None:
        raise Conflict("identity_purged", "This request's identity was erased after the retention period.")
    cpts = await cpts_repository.get(session, principal.cpts_id)
    changed: list[str] = []
    if patch.caller is not None:
        care_request.caller_relation = patch.caller.relation
        care_request.caller_phone, care_request.caller_phone_key = patch.caller.phone, phone_key(patch.caller.phone)
        changed.append("caller")
    if patch.patient is not None:
        traits = patch.patient.model_dump(exclude_unset=True)
        status = traits.get("identity_status", care_request.identity_status)
        problem = ins_problem(status, traits.get("ins", care_request.patient_ins))
        if problem:
            raise Invalid("validation_error", problem, errors=[field_error(["body", "patient", "ins"], problem)])
        local_day = care_request.received_at.astimezone(ZoneInfo(cpts.timezone)).date()
        corrected = patient_columns(_patient_traits(care_request) | traits, cpts.pseudonym_key, local_day)
        for name, value in corrected.items():
            setattr(care_request, name, value)
        changed += [f"patient.{t}" for t in sorted(traits)]
    if patch.needs is not None:
        profession, specialty = default_needs(patch.needs.profession, patch.needs.specialty)
        care_request.needs_profession, care_request.needs_specialty = profession, specialty
        care_request.needs_modalities = [m.value for m in patch.needs.modalities]
        changed.append("needs")
    if patch.notify_by is not None:
        care_request.notify_by = sorted(set(patch.notify_by))
        changed.append("notify_by")
    problem = notify_problem(care_request.notify_by, care_request.patient_phone, care_request.patient_email)
    if problem:
        raise Invalid("validation_error", problem, errors=[field_error(["body", "notify_by"], problem)])
    care_request.updated_at = now
    await session.flush()
    await audit.record(
        session, principal, "request.correct", "request", [care_request.id], now, http, {"fields": changed}
    )
    _log.info("request.corrected", request_id=str(care_request.id), fields=changed)
    return care_request


async def add_note(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, text: str, now: datetime, http: Request | None
) -> RequestNote:
    care_request = await repository.get(session, principal.cpts_id, request_id)
    note = RequestNote(
        cpts_id=principal.cpts_id, request_id=care_request.id, at=now, author_kind=principal.kind,
        author_id=principal.id, text=text,
    )  # fmt: skip
    session.add(note)
    await session.flush()
    await audit.record(session, principal, "request.note", "request", [care_request.id], now, http)
    return note


async def add_callback(
    session: AsyncSession,
    cpts_id: uuid.UUID,
    request_id: uuid.UUID,
    due_at: datetime,
    reason: str | None,
    source: str,
    created_by: uuid.UUID | None,
    now: datetime,
) -> Callback:
    """A call to make back; the queue shows it once due. A practitioner's cancellation sets one
    at once (source `cancellation`): the patient must hear of it and be booked again."""
    callback = Callback(
        id=uuid.uuid4(), cpts_id=cpts_id, request_id=request_id, due_at=due_at, reason=reason, source=source,
        created_at=now, created_by_id=created_by,
    )  # fmt: skip
    session.add(callback)
    await session.flush()
    return callback


async def schedule_callback(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, data: CallbackIn, now: datetime
) -> Callback:
    care_request = await repository.get(session, principal.cpts_id, request_id)
    if data.due_at < now - timedelta(minutes=5):
        problem = "a callback is due now or later"
        raise Invalid("validation_error", problem, errors=[field_error(["body", "due_at"], problem)])
    return await add_callback(
        session, principal.cpts_id, care_request.id, data.due_at, data.reason, "handler", principal.id, now
    )


async def complete_callback(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, callback_id: uuid.UUID, now: datetime
) -> Callback:
    callback = await repository.callback(session, principal.cpts_id, request_id, callback_id)
    if callback.done_at is None:
        callback.done_at = now
        await session.flush()
    return callback


async def search(
    session: AsyncSession, principal: Principal, text: str, limit: int, now: datetime, http: Request | None
) -> list[QueueItem]:
    """Requests found by what a handler types: a phone number, a booking reference, or a family
    name (its beginning); newest first. It shows identities, so it is audited like any read."""
    rows = await repository.search(
        session,
        principal.cpts_id,
        phone=phone_key(text) if sum(c.isdigit() for c in text) >= 9 else None,
        reference=reference_key(text),
        # A name has no digit: "BE2R9N" is a booking reference, not the beginning of "Bernard".
        family=(name_key(text) or None) if not any(c.isdigit() for c in text) else None,
        limit=limit,
    )
    await audit.record(session, principal, "request.search", "request", [r.id for r in rows], now, http)
    return await queue_items(session, rows, now)


async def duplicates(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, now: datetime, http: Request | None
) -> list[DuplicateOut]:
    """Other requests that seem to be of the same patient (same pseudonym, or a phone number in
    common) received within the CPTS's window around this one."""
    care_request = await repository.get(session, principal.cpts_id, request_id)
    phones = [care_request.patient_phone_key, care_request.caller_phone_key]
    return await _likely_duplicates(
        session, principal, care_request.patient_pseudonym, phones, care_request.received_at, care_request.id, now, http
    )


async def check_duplicates(
    session: AsyncSession, principal: Principal, data: DuplicateCheck, now: datetime, http: Request | None
) -> list[DuplicateOut]:
    """The same question before a request is saved, from what the handler has typed so far."""
    cpts = await cpts_repository.get(session, principal.cpts_id)
    patient = data.patient
    identity = identity_key(patient.family_name, patient.given_name, patient.birth_date, patient.ins, patient.phone)
    phones = [phone_key(patient.phone), phone_key(data.caller.phone)]
    return await _likely_duplicates(
        session, principal, pseudonym(cpts.pseudonym_key, identity), phones, now, None, now, http
    )


async def _likely_duplicates(
    session: AsyncSession,
    principal: Principal,
    patient_pseudonym: str | None,
    phones: list[str | None],
    around: datetime,
    exclude: uuid.UUID | None,
    now: datetime,
    http: Request | None,
) -> list[DuplicateOut]:
    cpts = await cpts_repository.get(session, principal.cpts_id)
    window = timedelta(hours=cpts.duplicate_window_hours)
    known = sorted({p for p in phones if p})
    rows = await repository.same_patient(
        session, principal.cpts_id, patient_pseudonym, known, around - window, around + window
    )
    answers = []
    for row in rows:
        if row.id == exclude:
            continue
        same = []
        if patient_pseudonym is not None and row.patient_pseudonym == patient_pseudonym:
            same.append("patient")
        if {row.patient_phone_key, row.caller_phone_key} & set(known):
            same.append("phone")
        motif = motifs().get(row.motif)
        answers.append(
            DuplicateOut(
                id=row.id,
                received_at=row.received_at,
                status=RequestStatus(row.status),
                motif_label=motif.label if motif else row.motif,
                same=same,
            )
        )
    if answers:
        await audit.record(session, principal, "request.duplicates", "request", [d.id for d in answers], now, http)
    return answers


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
    if decision.basis == "sas_regulation":
        pushed = await accounts.sas_regulator_by_rpps(session, decision.regulating_physician)
        if pushed is not None and not pushed.facts.active:
            raise Forbidden(
                "regulator_withdrawn",
                "The SAS withdrew this regulating physician's rights: their decision cannot be recorded.",
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


def summary_fields(care_request: CareRequest | QueueRow) -> dict[str, Any]:
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
        "reopened": care_request.reopened_at is not None,
        "notify_by": list(care_request.notify_by),
        "needs": NeedsOut(
            profession=care_request.needs_profession,
            specialty=care_request.needs_specialty,
            modalities=[Modality(m) for m in care_request.needs_modalities],
        ),
        "imported": care_request.imported,
    }


def patient_out(care_request: CareRequest | QueueRow) -> PatientOut:
    return PatientOut(
        family_name=care_request.patient_family_name,
        given_name=care_request.patient_given_name,
        birth_date=care_request.patient_birth_date,
        sex=care_request.patient_sex,
        phone=care_request.patient_phone,
        commune_insee=care_request.patient_commune_insee,
        address=care_request.patient_address,
        email=care_request.patient_email,
        identity_status=care_request.identity_status,
        ins=care_request.patient_ins,
        age_band=care_request.patient_age_band,
    )


def summary(care_request: CareRequest) -> RequestSummary:
    return RequestSummary(**summary_fields(care_request))


async def queue_items(session: AsyncSession, rows: list[CareRequest], now: datetime) -> list[QueueItem]:
    """Requests as the queue shows them, with the next callback of each."""
    due = await repository.next_callbacks(session, [r.id for r in rows])
    return [QueueItem(**summary_fields(r), patient=patient_out(r), callback_due_at=due.get(r.id)) for r in rows]


async def queue(
    conn: StatementConnection,
    principal: Principal,
    statuses: list[str] | None,
    due_before: datetime | None,
    limit: int,
    cursor: str | None,
    now: datetime,
    http: Request | None = None,
) -> Page[QueueItem]:
    """The queue: red-flagged requests first, then the most urgent deadline (default: open and
    transfer-required requests). It shows patients' identities, so the read is audited (by the
    page's own statement)."""
    wanted = statuses or [RequestStatus.open.value, RequestStatus.transfer_required.value]
    audited = audit.each_row(principal, "request.list", "request", now, http)
    after = BY_QUEUE.decode(cursor)
    rows = await repository.queue_page(conn, principal.cpts_id, wanted, due_before, after, limit, audited)
    page, next_cursor = BY_QUEUE.page(rows, limit, lambda row: (queue_rank(row.status), row.deadline_at, row.id))
    items = [QueueItem(**summary_fields(r), patient=patient_out(r), callback_due_at=r.callback_due_at) for r in page]
    return Page(items=items, next_cursor=next_cursor)


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
