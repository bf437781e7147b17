"""Booking rules: pure functions, no I/O, `now` passed in."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from service.errors import Conflict
from service.slots.domain import Modality, SlotStatus


class BookingStatus(StrEnum):
    held = "held"  # a handler is talking with the patient; expires after the CPTS's hold TTL
    booked = "booked"
    released = "released"  # a hold dropped on purpose
    expired = "expired"  # a hold that lapsed, or whose slot went to someone else
    cancelled = "cancelled"


ACTIVE = frozenset({BookingStatus.held, BookingStatus.booked})

TRANSITIONS: dict[BookingStatus, frozenset[BookingStatus]] = {
    BookingStatus.held: frozenset(
        {BookingStatus.booked, BookingStatus.released, BookingStatus.expired, BookingStatus.cancelled}
    ),
    BookingStatus.booked: frozenset({BookingStatus.cancelled}),
    BookingStatus.released: frozenset(),
    BookingStatus.expired: frozenset(),
    BookingStatus.cancelled: frozenset(),
}

_REFUSALS = {
    BookingStatus.released: ("hold_released", "This hold was released."),
    BookingStatus.expired: ("hold_expired", "This hold expired and the slot went to someone else."),
    BookingStatus.cancelled: ("booking_cancelled", "This booking was cancelled."),
    BookingStatus.booked: ("booking_not_held", "This booking is already confirmed."),
    BookingStatus.held: ("booking_not_booked", "This booking is only held: confirm or release it."),
}


def ended_hold_status(hold_expires_at: datetime | None, now: datetime) -> BookingStatus:
    """A hold that ends is `expired` if its time was up, else `released` (SQL: bookings.predicates)."""
    return BookingStatus.expired if hold_expires_at is not None and hold_expires_at <= now else BookingStatus.released


def check_transition(current: BookingStatus, target: BookingStatus) -> None:
    if target not in TRANSITIONS[current]:
        code, detail = _REFUSALS[current]
        raise Conflict(code, detail)


class CancelSide(StrEnum):
    patient = "patient"
    practitioner = "practitioner"
    handler = "handler"


def slot_status_after_cancel(side: CancelSide) -> SlotStatus:
    """A practitioner who cancels is no longer available: the slot is withdrawn. Otherwise the
    slot is free for another patient."""
    return SlotStatus.withdrawn if side is CancelSide.practitioner else SlotStatus.free


EARTH_RADIUS_KM = 6371.0


def distance_km(a: tuple[float, float] | None, b: tuple[float, float] | None) -> float | None:
    """Great-circle distance between two (latitude, longitude) points."""
    if a is None or b is None:
        return None
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


@dataclass(frozen=True)
class Candidate:
    slot_id: uuid.UUID
    start: datetime
    modality: Modality
    site_point: tuple[float, float] | None


@dataclass(frozen=True)
class Ranked:
    candidate: Candidate
    within_deadline: bool
    distance_km: float | None


def rank(
    candidates: Sequence[Candidate], deadline: datetime, patient_point: tuple[float, float] | None
) -> list[Ranked]:
    """Slots before the deadline first; earliest first, and among slots starting in the same hour
    the nearest first (a teleconsultation needs no travel). Later slots come last."""

    def key(item: Ranked) -> tuple[int, int, float, datetime]:
        hour = int(item.candidate.start.astimezone(UTC).timestamp() // 3600)
        travel = 0.0 if item.candidate.modality is Modality.VR else item.distance_km
        return (0 if item.within_deadline else 1, hour, math.inf if travel is None else travel, item.candidate.start)

    ranked = [
        Ranked(
            candidate=c,
            within_deadline=c.start <= deadline,
            distance_km=None if c.modality is Modality.VR else distance_km(patient_point, c.site_point),
        )
        for c in candidates
    ]
    return sorted(ranked, key=key)


# --- what is offered ---------------------------------------------------------------------------------

# A teleconsultation needs no travel: offered until a few minutes before it starts.
VIDEO_LEAD = timedelta(minutes=5)


def earliest_start(modality: Modality, now: datetime, lead: timedelta) -> datetime:
    """The earliest start a slot may have to be offered: the patient (or, for a home visit, the
    practitioner) must have time to get there; the CPTS sets that lead time."""
    return now + (min(lead, VIDEO_LEAD) if modality is Modality.VR else lead)


class Exclusion(StrEnum):
    """Why a free slot that fits the needs is not offered."""

    too_soon = "too_soon"  # inside the lead time
    not_before = "not_before"  # before the handler's "not before"
    too_far = "too_far"  # farther than the handler's maximum distance


@dataclass(frozen=True)
class Offer:
    """What the handler asked for on top of the request's needs."""

    now: datetime
    lead: timedelta
    not_before: datetime | None = None
    max_distance_km: float | None = None


def exclusion(ranked: Ranked, offer: Offer) -> Exclusion | None:
    start = ranked.candidate.start
    if start < earliest_start(ranked.candidate.modality, offer.now, offer.lead):
        return Exclusion.too_soon
    if offer.not_before is not None and start < offer.not_before:
        return Exclusion.not_before
    limit, distance = offer.max_distance_km, ranked.distance_km
    if limit is not None and distance is not None and distance > limit:
        return Exclusion.too_far
    return None


@dataclass(frozen=True)
class Reason:
    code: str
    detail: str


# Why the list is empty or has nothing before the deadline; the console says them in French.
REASONS = {
    "home_visit_needs_commune": "A home visit needs the patient's commune.",
    "no_modality": "None of the modalities asked for is possible.",
    "no_free_slot": "No free slot fits the needs (profession, specialty, modality) in the coming days.",
    Exclusion.too_soon.value: "The free slots start too soon for the patient to get there (the CPTS's lead time).",
    Exclusion.not_before.value: "The free slots all start before the time asked for.",
    Exclusion.too_far.value: "The free slots are all farther than the distance asked for.",
    "distance_unknown": "The patient's commune is unknown: distances cannot be computed.",
    "none_before_deadline": "No slot offered starts before the request's deadline.",
}


def reasons(
    offered: Sequence[Ranked], excluded: Sequence[Exclusion], *, home_visit_dropped: bool, distance_unknown: bool
) -> list[Reason]:
    """Why nothing (or nothing in time) is offered: what the handler can change, most telling first."""
    codes: list[str] = []
    if distance_unknown:
        codes.append("distance_unknown")
    if not offered:
        if home_visit_dropped:
            codes.append("home_visit_needs_commune")
        if not excluded:
            codes.append("no_free_slot")
        counts = {e: excluded.count(e) for e in Exclusion}
        codes += [e.value for e, n in sorted(counts.items(), key=lambda kv: -kv[1]) if n]
    elif not any(r.within_deadline for r in offered):
        codes.append("none_before_deadline")
    return [Reason(code, REASONS[code]) for code in codes]
