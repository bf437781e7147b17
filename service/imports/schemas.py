from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Literal, Self

from pydantic import BaseModel, Field, SkipValidation, StringConstraints, model_validator

from service.batches import ItemProblemOut
from service.fields import InputModel, InseeCode, PlausibleDatetime
from service.orientation.schemas import Channel, MotifCode, NeedsIn, Sex
from service.slots.domain import Modality

MAX_RECORDS = 5000
# An unscheduled-care appointment is a matter of days, and lasts at most a few hours: beyond these,
# an imported record is a typing mistake that would distort the delays of its month.
MAX_APPOINTMENT_DELAY = timedelta(days=60)
MAX_APPOINTMENT_LENGTH = timedelta(hours=12)
ExternalRef = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
ImportedOutcome = Literal[
    "booked",
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
AppointmentStatus = Literal["fulfilled", "noshow", "cancelled_by_patient", "cancelled_by_practitioner", "unknown"]


class ImportedPatient(InputModel):
    """Only what the indicators need: no identity is imported."""

    birth_date: Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$")] | None = None
    sex: Sex | None = None
    commune_insee: InseeCode | None = None


class ImportedAppointment(InputModel):
    practitioner_id: uuid.UUID | None = Field(default=None, description="A member of the CPTS, if known")
    start: PlausibleDatetime
    end: PlausibleDatetime
    modality: Modality = Modality.AMB
    outcome: AppointmentStatus = "unknown"

    @model_validator(mode="after")
    def _end_after_start(self) -> Self:
        if self.end <= self.start:
            raise ValueError("the appointment ends before it starts")
        if self.end - self.start > MAX_APPOINTMENT_LENGTH:
            raise ValueError("an appointment lasts at most 12 hours")
        return self


class ImportRecord(InputModel):
    external_ref: ExternalRef = Field(description="The previous tool's reference: imports are idempotent by it")
    received_at: PlausibleDatetime
    channel: Channel = "phone"
    via_sas: bool = False
    patient: ImportedPatient = Field(default_factory=ImportedPatient)
    motif: MotifCode
    needs: NeedsIn = Field(default_factory=NeedsIn)
    outcome: ImportedOutcome | None = Field(default=None, description="None: the request stayed open")
    oriented_at: PlausibleDatetime | None = None
    appointment: ImportedAppointment | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.outcome is None) != (self.oriented_at is None):
            raise ValueError("an outcome goes with the time it was decided (oriented_at), and the other way round")
        if self.oriented_at is not None and self.oriented_at < self.received_at:
            raise ValueError("oriented_at is before received_at")
        if (self.outcome == "booked") != (self.appointment is not None):
            raise ValueError("an appointment is given exactly when the outcome is booked")
        if self.appointment is not None and self.appointment.start < self.received_at:
            raise ValueError("the appointment starts before the request was received")
        if self.appointment is not None and self.appointment.start - self.received_at > MAX_APPOINTMENT_DELAY:
            raise ValueError("the appointment starts more than 60 days after the request was received")
        return self


class ImportIn(InputModel):
    items_validated_alone = frozenset({"records"})
    records: list[SkipValidation[ImportRecord]] = Field(max_length=MAX_RECORDS, description=f"At most {MAX_RECORDS}")


class ImportItemResult(BaseModel):
    external_ref: str | None
    outcome: Literal["created", "unchanged", "rejected"]
    request_id: uuid.UUID | None = None
    problem: ItemProblemOut | None = None


class ImportOut(BaseModel):
    results: list[ImportItemResult] = Field(description="One per record, in the order sent")
