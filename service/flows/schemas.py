from __future__ import annotations

from pydantic import Field

from service.bookings.schemas import BookingOut
from service.fields import LocalDatetime
from service.notifications.schemas import PatientMessageOut
from service.orientation.schemas import CallbackOut, CallerOut, EventOut, NoteOut, PatientOut, RequestSummary


class RequestOut(RequestSummary):
    regulating_physician: str | None
    caller: CallerOut
    patient: PatientOut
    note: str | None
    identity_purged: bool
    created_at: LocalDatetime
    bookings: list[BookingOut]
    events: list[EventOut]
    notes: list[NoteOut]
    callbacks: list[CallbackOut]
    messages: list[PatientMessageOut] = Field(description="Messages to the patient and their delivery state")
