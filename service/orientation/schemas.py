from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from service.fields import Email, InputModel, InseeCode, LocalDatetime, Name, Phone, PlausibleDatetime
from service.orientation.domain import EventKind, RequestStatus, ins_problem, notify_problem
from service.practitioners.schemas import ProfessionCode, Rpps, SpecialtyCode
from service.reference.codes import PHYSICIAN, motif_classification, red_flags
from service.slots.domain import Modality

Channel = Literal["phone", "sas", "pharmacy", "professional", "other"]
NotifyChannel = Literal["sms", "email"]
Address = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
CallerRelation = Literal["self", "parent", "relative", "carer", "professional", "other"]
IdentityStatus = Literal["PROV", "VALI", "RECUP", "QUAL"]
Sex = Literal["F", "M", "U"]
OrientationOutcome = Literal[
    "transfer_15",
    "emergency_department",
    "advice",
    "pharmacy",
    "own_gp",
    "no_solution",
    "patient_declined",
    "unreachable",
    "duplicate",
]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]


def _nir_key_valid(value: str) -> str:
    """INS (the NIR): 13 characters and a 2-digit key = 97 - (number mod 97); 2A/2B count as 19/18."""
    number = value[:13].replace("2A", "19").replace("2B", "18")
    if 97 - int(number) % 97 != int(value[13:]):
        raise ValueError("the INS key does not match the number")
    return value


Ins = Annotated[str, StringConstraints(pattern=r"^[1-478]\d{4}(?:\d{2}|2[AB])\d{8}$"), AfterValidator(_nir_key_valid)]


def _known_motif(code: str) -> str:
    if code not in motif_classification():
        raise ValueError(f"unknown Hub Santé motif '{code}'")
    return code


MotifCode = Annotated[str, StringConstraints(pattern=r"^M\d{2}\.\d{2}\.\d{2}$"), AfterValidator(_known_motif)]


def plausible_birth_date(value: date | None) -> date | None:
    if value is not None and not date(1900, 1, 1) <= value <= date(2100, 1, 1):
        raise ValueError("implausible birth date")
    return value


class CallerIn(InputModel):
    relation: CallerRelation = "self"
    phone: Phone | None = None


class PatientIn(InputModel):
    family_name: Name | None = None
    given_name: Name | None = None
    birth_date: date | None = None
    sex: Sex | None = None
    phone: Phone | None = None
    commune_insee: InseeCode | None = None
    address: Address | None = Field(default=None, description="Where a home visit goes (sent to the practitioner)")
    email: Email | None = Field(default=None, description="For the booking's confirmation, if the patient wants it")
    identity_status: IdentityStatus = "PROV"
    ins: Ins | None = Field(default=None, description="Only with identity_status QUAL")

    @field_validator("birth_date")
    @classmethod
    def _plausible(cls, value: date | None) -> date | None:
        return plausible_birth_date(value)

    @model_validator(mode="after")
    def _ins_only_when_qualified(self) -> Self:
        problem = ins_problem(self.identity_status, self.ins)
        if problem:
            raise ValueError(problem)
        return self


class NeedsIn(InputModel):
    profession: ProfessionCode | None = Field(default=None, description="TRE_G15; default 10 (physician)")
    specialty: SpecialtyCode | None = Field(default=None, description="TRE_R38, physicians only")
    modalities: list[Modality] = Field(
        default_factory=lambda: [Modality.AMB, Modality.VR, Modality.HH], min_length=1, max_length=3
    )

    @model_validator(mode="after")
    def _specialty_for_physicians(self) -> Self:
        if self.specialty is not None and self.profession not in (None, PHYSICIAN):
            raise ValueError("a specialty is only asked of physicians (profession 10)")
        self.modalities = sorted(set(self.modalities))
        return self


def _known_red_flags(values: list[str]) -> list[str]:
    unknown = sorted(set(values) - set(red_flags()))
    if unknown:
        raise ValueError(f"unknown red flag(s): {', '.join(unknown)}")
    return sorted(set(values))


class RequestCreate(InputModel):
    received_at: PlausibleDatetime | None = Field(
        default=None, description="When the call came in (default now); back-dated 24 h at most"
    )
    channel: Channel = "phone"
    via_sas: bool = False
    regulating_physician: Rpps | None = Field(default=None, description="RPPS of the SAS regulating physician")
    caller: CallerIn = Field(default_factory=CallerIn)
    patient: PatientIn = Field(default_factory=PatientIn)
    motif: MotifCode = Field(description="Hub Santé motif code, e.g. M19.05.00")
    red_flags: Annotated[list[str], AfterValidator(_known_red_flags)] = Field(default_factory=list, max_length=20)
    needs: NeedsIn = Field(default_factory=NeedsIn)
    note: Note | None = None
    notify_by: list[NotifyChannel] = Field(
        default_factory=list,
        max_length=2,
        description="Tell the patient of the booking (and of its cancellation) by SMS, e-mail: with their consent",
    )

    @model_validator(mode="after")
    def _reachable(self) -> Self:
        problem = notify_problem(self.notify_by, self.patient.phone, self.patient.email)
        if problem:
            raise ValueError(problem)
        return self


class DuplicateCheck(InputModel):
    """Who is calling, before the request is saved: are they already in the queue?"""

    caller: CallerIn = Field(default_factory=CallerIn)
    patient: PatientIn = Field(default_factory=PatientIn)


class PatientPatch(InputModel):
    """Corrections of the patient's traits; absent fields stay as they are, null erases."""

    family_name: Name | None = None
    given_name: Name | None = None
    birth_date: date | None = None
    sex: Sex | None = None
    phone: Phone | None = None
    commune_insee: InseeCode | None = None
    address: Address | None = None
    email: Email | None = None
    identity_status: IdentityStatus | None = None
    ins: Ins | None = None

    @field_validator("birth_date")
    @classmethod
    def _plausible(cls, value: date | None) -> date | None:
        return plausible_birth_date(value)


class RequestPatch(InputModel):
    """Corrections of a request: the caller, the patient, the needs, the consent to be notified.
    When it was received, and so its deadline, never move."""

    caller: CallerIn | None = None
    patient: PatientPatch | None = None
    needs: NeedsIn | None = None
    notify_by: list[NotifyChannel] | None = Field(default=None, max_length=2)


class NoteIn(InputModel):
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class NoteOut(BaseModel):
    id: int
    at: LocalDatetime
    author_kind: str
    author_id: uuid.UUID
    text: str | None


class CallbackIn(InputModel):
    due_at: PlausibleDatetime = Field(description="When to call back")
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None


class CallbackOut(BaseModel):
    id: uuid.UUID
    request_id: uuid.UUID
    due_at: LocalDatetime
    reason: str | None
    source: str = Field(description="handler, or cancellation (a practitioner cancelled the booking)")
    created_at: LocalDatetime
    done_at: LocalDatetime | None


class NeedsOut(BaseModel):
    profession: str | None
    specialty: str | None
    modalities: list[Modality]


class RequestSummary(BaseModel):
    id: uuid.UUID
    received_at: LocalDatetime
    deadline_at: LocalDatetime
    status: RequestStatus
    channel: Channel
    via_sas: bool
    motif: str
    motif_label: str
    motif_classification: str
    red_flags: list[str]
    age_rules: list[str] = Field(description="Age conditions that raised the motif's classification")
    needs: NeedsOut
    imported: bool
    reopened: bool = Field(description="A cancelled booking reopened it: it is to be booked again")
    notify_by: list[str]


class PatientOut(BaseModel):
    family_name: str | None
    given_name: str | None
    birth_date: date | None
    sex: str | None
    phone: str | None
    commune_insee: str | None
    address: str | None
    email: str | None
    identity_status: str
    ins: str | None
    age_band: str | None


class QueueItem(RequestSummary):
    patient: PatientOut
    callback_due_at: LocalDatetime | None = Field(description="The next callback to make, if any")


class DuplicateOut(BaseModel):
    """Another request that seems to be of the same patient (same pseudonym or same phone)."""

    id: uuid.UUID
    received_at: LocalDatetime
    status: RequestStatus
    motif_label: str
    same: list[str] = Field(description="What matched: patient, phone")


class CallerOut(BaseModel):
    relation: str | None
    phone: str | None


class EventOut(BaseModel):
    id: int
    kind: EventKind
    at: LocalDatetime
    actor_kind: str
    actor_id: uuid.UUID
    booking_id: uuid.UUID | None
    regulating_physician: str | None
    note: str | None


class OrientationIn(InputModel):
    outcome: OrientationOutcome
    note: Note | None = None
    regulating_physician: Rpps | None = None


class OverrideIn(InputModel):
    regulating_physician: Rpps | None = Field(
        default=None,
        description="A regulator's own RPPS is recorded; a handler gives the RPPS of the SAS regulating physician "
        "named on a request that came through the SAS",
    )
    note: Note | None = None


class RedFlag(BaseModel):
    code: str
    label: str


class MotifOut(BaseModel):
    code: str
    label: str
    level: int
    classification: str
    overridden: bool
