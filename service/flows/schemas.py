from __future__ import annotations

from service.bookings.schemas import BookingOut
from service.fields import LocalDatetime
from service.orientation.schemas import CallerOut, EventOut, PatientOut, RequestSummary


class RequestOut(RequestSummary):
    regulating_physician: str | None
    caller: CallerOut
    patient: PatientOut
    note: str | None
    identity_purged: bool
    created_at: LocalDatetime
    bookings: list[BookingOut]
    events: list[EventOut]
