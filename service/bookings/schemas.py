from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from service.fields import InputModel, LocalDatetime
from service.slots.domain import Modality
from service.slots.schemas import PractitionerSummary, SiteSummary

CancelSide = Literal["patient", "practitioner", "handler"]


class SlotChoice(InputModel):
    slot_id: uuid.UUID


class CancelIn(InputModel):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    cancelled_by: CancelSide = Field(description="Who cancels: the patient, the practitioner, or the handler")


class OutcomeIn(InputModel):
    outcome: Literal["fulfilled", "noshow"]


class BookingSlot(BaseModel):
    id: uuid.UUID
    start: LocalDatetime
    end: LocalDatetime
    modality: Modality
    practitioner: PractitionerSummary
    site: SiteSummary
    agenda_url: str | None = Field(default=None, description="The slot on its publisher's own agenda")


class BookingOut(BaseModel):
    booking_id: uuid.UUID
    reference: str = Field(description="Short reference read to the patient, e.g. K7M-3Q9")
    request_id: uuid.UUID
    slot_id: uuid.UUID
    status: Literal["held", "booked", "released", "expired", "cancelled"]
    hold_expires_at: LocalDatetime | None
    booked_at: LocalDatetime | None
    cancelled_side: str | None
    cancel_reason: str | None
    outcome: str | None
    slot: BookingSlot


class Suggestion(BaseModel):
    slot_id: uuid.UUID
    start: LocalDatetime
    end: LocalDatetime
    modality: Modality
    practitioner: PractitionerSummary
    site: SiteSummary
    within_deadline: bool
    distance_km: float | None
    agenda_url: str | None = Field(description="The slot on its publisher's agenda (a link for people, never fetched)")


class ReasonOut(BaseModel):
    code: str = Field(
        description="home_visit_needs_commune, no_modality, no_free_slot, too_soon, not_before, too_far, "
        "distance_unknown, none_before_deadline"
    )
    detail: str


class Alternative(BaseModel):
    kind: Literal[
        "without_filters", "later", "teleconsultation", "other_modality", "other_specialty", "other_profession"
    ]
    items: list[Suggestion]


class Suggestions(BaseModel):
    deadline_at: LocalDatetime
    min_lead_minutes: int = Field(description="Slots starting sooner are not offered (a video call: 5 minutes)")
    items: list[Suggestion]
    reasons: list[ReasonOut] = Field(description="Why nothing, or nothing before the deadline, is offered")
    alternatives: list[Alternative] = Field(description="When nothing is offered: the nearest alternatives")
