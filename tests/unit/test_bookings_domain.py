from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from service.bookings.domain import (
    BookingStatus,
    CancelSide,
    Candidate,
    check_transition,
    distance_km,
    rank,
    slot_status_after_cancel,
)
from service.errors import Conflict
from service.fields import REFERENCE_ALPHABET, new_reference, reference_key
from service.slots.domain import Modality

NANTES = (47.2184, -1.5536)
REZE = (47.1833, -1.5500)
ORVAULT = (47.2711, -1.6228)
DEADLINE = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def candidate(start: datetime, point: tuple[float, float] | None, modality: Modality = Modality.AMB) -> Candidate:
    return Candidate(uuid.uuid4(), start, modality, point)


def test_distance() -> None:
    nantes_reze = distance_km(NANTES, REZE)
    assert nantes_reze is not None
    assert 3.5 < nantes_reze < 4.5
    assert distance_km(NANTES, None) is None
    assert distance_km(NANTES, NANTES) == 0


def test_booking_transitions() -> None:
    check_transition(BookingStatus.held, BookingStatus.booked)
    check_transition(BookingStatus.booked, BookingStatus.cancelled)
    for current, target, code in (
        (BookingStatus.expired, BookingStatus.booked, "hold_expired"),
        (BookingStatus.released, BookingStatus.booked, "hold_released"),
        (BookingStatus.cancelled, BookingStatus.booked, "booking_cancelled"),
        (BookingStatus.booked, BookingStatus.released, "booking_not_held"),
    ):
        with pytest.raises(Conflict) as raised:
            check_transition(current, target)
        assert raised.value.code == code


def test_a_practitioner_cancelling_withdraws_the_slot() -> None:
    assert slot_status_after_cancel(CancelSide.practitioner) == "withdrawn"
    assert slot_status_after_cancel(CancelSide.patient) == "free"
    assert slot_status_after_cancel(CancelSide.handler) == "free"


def test_ranking_deadline_first_then_earliest_then_nearest_within_the_hour() -> None:
    nine = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    far_early = candidate(nine, ORVAULT)
    near_same_hour = candidate(nine + timedelta(minutes=40), NANTES)
    video_same_hour = candidate(nine + timedelta(minutes=50), None, Modality.VR)
    earlier_hour = candidate(nine - timedelta(hours=1), ORVAULT)
    after_deadline_near = candidate(DEADLINE + timedelta(minutes=1), REZE)
    at_deadline = candidate(DEADLINE, ORVAULT)
    ranked = rank(
        [after_deadline_near, far_early, at_deadline, near_same_hour, video_same_hour, earlier_hour], DEADLINE, REZE
    )
    assert [r.candidate for r in ranked] == [
        earlier_hour,
        video_same_hour,  # no travel
        near_same_hour,
        far_early,
        at_deadline,  # starting exactly at the deadline is within it
        after_deadline_near,
    ]
    assert [r.within_deadline for r in ranked] == [True] * 5 + [False]
    assert ranked[1].distance_km is None
    assert ranked[2].distance_km is not None
    assert 3.5 < ranked[2].distance_km < 4.5


def test_without_patient_location_ranking_is_by_time() -> None:
    nine = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    a, b = candidate(nine + timedelta(minutes=30), REZE), candidate(nine, ORVAULT)
    assert [r.candidate for r in rank([a, b], DEADLINE, None)] == [b, a]


def test_a_new_reference_reads_as_six_characters_of_the_alphabet_each_drawn_at_random() -> None:
    drawn = [new_reference() for _ in range(2000)]
    assert all(re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{3}-[0-9A-HJKMNP-TV-Z]{3}", r) for r in drawn)
    assert all(reference_key(r) == r for r in drawn)
    for position in (0, 1, 2, 4, 5, 6):  # every character of the alphabet turns up at every place
        assert {r[position] for r in drawn} == set(REFERENCE_ALPHABET)
    assert len(set(drawn)) > 1990  # 2^30 references: repeats among 2 000 are rare
