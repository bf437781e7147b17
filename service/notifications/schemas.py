from __future__ import annotations

import uuid
from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

from service.fields import InputModel, LocalDatetime
from service.slots.domain import Modality


class FeedPatient(BaseModel):
    """Null fields once the identity was purged after the retention period."""

    family_name: str | None
    given_name: str | None
    birth_date: date | None
    sex: str | None
    phone: str | None
    address: str | None = Field(description="Where a home visit goes")


class FeedSlot(BaseModel):
    id: uuid.UUID
    external_id: str
    start: LocalDatetime
    end: LocalDatetime
    modality: Modality
    site_id: uuid.UUID
    agenda_url: str | None = Field(
        default=None, description="The slot on the publisher's own agenda, as published (its external id says which)"
    )


class FeedBooking(BaseModel):
    booking_id: uuid.UUID
    reference: str = Field(description="The short reference the patient was given, e.g. K7M-3Q9")
    status: str = Field(description="booked, or cancelled")
    practitioner_id: uuid.UUID
    slot: FeedSlot
    motif: str
    motif_label: str
    note: str | None
    patient: FeedPatient
    cancelled_side: str | None
    cancel_reason: str | None


class FeedEvent(BaseModel):
    id: uuid.UUID = Field(description="The event id: the same in the feed and in webhooks; drop duplicates by it")
    sequence: int = Field(description="Increases with every event of this client")
    type: str = Field(description="booking.confirmed or booking.cancelled")
    occurred_at: LocalDatetime
    booking: FeedBooking


class Feed(BaseModel):
    items: list[FeedEvent]
    next_cursor: str | None = Field(description="Pass it back to resume exactly after the last item")


class AttemptOut(BaseModel):
    attempt: int
    at: LocalDatetime
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryOut(BaseModel):
    message_id: int
    event_id: uuid.UUID
    type: str
    booking_id: uuid.UUID
    occurred_at: LocalDatetime
    status: str = Field(
        description="pending, delivered, dead, feed_only (no webhook URL), or skipped (client inactive, without a "
        "webhook URL, or no longer serving the practitioner)"
    )
    attempts: int
    next_attempt_at: LocalDatetime | None
    delivered_at: LocalDatetime | None
    last_status_code: int | None
    last_error: str | None
    history: list[AttemptOut]


class PatientMessageOut(BaseModel):
    """A message to the patient and where it stands (never its text or destination)."""

    id: int
    booking_id: uuid.UUID
    channel: str = Field(description="sms or email")
    event_type: str = Field(description="booking.confirmed or booking.cancelled")
    status: str = Field(description="pending, sent, dead (gave up), or skipped (not to be sent: see last_error)")
    attempts: int
    created_at: LocalDatetime
    next_attempt_at: LocalDatetime | None
    sent_at: LocalDatetime | None
    last_error: str | None


class PatientMessageIn(InputModel):
    channel: Literal["sms", "email"]
