from __future__ import annotations

import csv
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from service.errors import Conflict, Invalid
from service.orientation.domain import (
    EventKind,
    RequestStatus,
    age_band,
    classify,
    deadline,
    final_outcome,
    initial_status,
    next_status,
    received_at_problem,
    requires_transfer,
)
from service.orientation.schemas import PatientIn, RequestCreate
from service.reference.codes import Classification, motif_classification, red_flags

PARIS = ZoneInfo("Europe/Paris")
K = EventKind


def clock_hours(start: datetime, end: datetime, tz: ZoneInfo) -> float:
    """Hours between two wall-clock readings, as a person looking at the clock would count."""
    a, b = start.astimezone(tz).replace(tzinfo=None), end.astimezone(tz).replace(tzinfo=None)
    return (b - a).total_seconds() / 3600


def test_deadline_is_24_elapsed_hours_so_25_clock_hours_when_clocks_go_forward() -> None:
    # Paris moves from 02:00 to 03:00 on Sunday 29 March 2026.
    received = datetime(2026, 3, 28, 10, 0, tzinfo=PARIS)
    due = deadline(received, 24)
    assert due - received == timedelta(hours=24)
    assert due.astimezone(PARIS) == datetime(2026, 3, 29, 11, 0, tzinfo=PARIS)
    assert clock_hours(received, due, PARIS) == 25


def test_deadline_is_24_elapsed_hours_so_23_clock_hours_when_clocks_go_back() -> None:
    # Paris moves from 03:00 back to 02:00 on Sunday 25 October 2026.
    received = datetime(2026, 10, 24, 10, 0, tzinfo=PARIS)
    due = deadline(received, 24)
    assert due.astimezone(UTC) == datetime(2026, 10, 25, 8, 0, tzinfo=UTC)
    assert due.astimezone(PARIS).hour == 9
    assert clock_hours(received, due, PARIS) == 23


def test_deadline_in_an_overseas_timezone() -> None:
    reunion = ZoneInfo("Indian/Reunion")  # UTC+4, no daylight saving
    received = datetime(2026, 3, 28, 22, 30, tzinfo=reunion)
    due = deadline(received, 24)
    assert due.astimezone(reunion) == datetime(2026, 3, 29, 22, 30, tzinfo=reunion)
    assert due.astimezone(UTC) == datetime(2026, 3, 29, 18, 30, tzinfo=UTC)
    assert deadline(received, 48) - received == timedelta(hours=48)


def test_received_at_window() -> None:
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert received_at_problem(now, now) is None
    assert received_at_problem(now - timedelta(hours=24), now) is None
    assert received_at_problem(now - timedelta(hours=24, seconds=1), now) is not None
    assert received_at_problem(now + timedelta(seconds=1), now) is not None


def test_every_hub_sante_motif_has_exactly_one_known_classification() -> None:
    reference = Path(__file__).resolve().parents[2] / "service" / "reference" / "hubsante_motif.csv"
    with reference.open(encoding="utf-8") as handle:
        codes = [row["code"].strip() for row in csv.DictReader(handle)]
    assert len(codes) == 190
    assert set(motif_classification()) == set(codes)
    source = Path(__file__).resolve().parents[2] / "service" / "reference" / "motif_classification.csv"
    lines = [line for line in source.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    assert len(lines) - 1 == len(codes)  # no code listed twice


def test_life_threatening_motifs_are_transfers_and_benign_leaves_are_snp() -> None:
    classification = motif_classification()
    for code in ("M08.02.00", "M11.01.00", "M12.01.00", "M17.03.00", "M09.01.00", "M18.01.01", "M15.01.01"):
        assert classification[code] is Classification.transfer_15, code
    for code in ("M09.03.01", "M11.02.03", "M17.01.03", "M19.04.00", "M17.05.01"):
        assert classification[code] is Classification.snp, code
    assert classification["M19.05.00"] is Classification.assess


def test_a_cpts_may_override_the_classification() -> None:
    assert classify("M19.05.00") is Classification.assess
    assert classify("M19.05.00", {"M19.05.00": "snp"}) is Classification.snp
    assert classify("M17.03.00", {"M19.05.00": "snp"}) is Classification.transfer_15


def test_transfer_is_required_by_a_motif_or_any_red_flag() -> None:
    assert requires_transfer(Classification.transfer_15, [])
    assert requires_transfer(Classification.snp, ["chest_pain"])
    assert not requires_transfer(Classification.assess, [])
    assert "stroke_signs" in red_flags()


def derive_status(red_flagged: bool, kinds: list[EventKind]) -> RequestStatus:
    """The status the orientation log leads to, one event at a time as the service writes them."""
    status = initial_status(red_flagged)
    for kind in kinds:
        status = next_status(status, kind)
    return status


def test_status_is_derived_from_the_log() -> None:
    assert derive_status(False, []) is RequestStatus.open
    assert derive_status(True, []) is RequestStatus.transfer_required
    assert derive_status(False, [K.booked]) is RequestStatus.booked
    assert derive_status(False, [K.booked, K.reopened]) is RequestStatus.open
    assert derive_status(False, [K.booked, K.reopened, K.no_solution]) is RequestStatus.closed
    assert derive_status(True, [K.red_flag_override, K.booked]) is RequestStatus.booked
    assert derive_status(True, [K.transfer_15, K.red_flag_override]) is RequestStatus.open
    assert derive_status(False, [K.advice, K.pharmacy]) is RequestStatus.closed  # a correction


@pytest.mark.parametrize(
    ("status", "kind", "error", "code"),
    [
        (RequestStatus.transfer_required, K.booked, Invalid, "red_flag_transfer_required"),
        (RequestStatus.transfer_required, K.advice, Invalid, "red_flag_transfer_required"),
        (RequestStatus.booked, K.booked, Conflict, "request_booked"),
        (RequestStatus.booked, K.no_solution, Conflict, "request_booked"),
        (RequestStatus.closed, K.booked, Conflict, "request_closed"),
        (RequestStatus.open, K.reopened, Conflict, "invalid_transition"),
    ],
)
def test_refused_moves(status: RequestStatus, kind: EventKind, error: type[Exception], code: str) -> None:
    with pytest.raises(error) as raised:
        next_status(status, kind)
    assert getattr(raised.value, "code", None) == code


def test_a_reopening_ends_the_outcome_before_it() -> None:
    assert final_outcome([]) is None
    assert final_outcome([K.booked]) is K.booked
    assert final_outcome([K.booked, K.reopened]) is None  # cancelled and reopened: open again
    assert final_outcome([K.transfer_15, K.red_flag_override]) is None  # the 15 sent the patient back
    assert final_outcome([K.booked, K.reopened, K.no_solution]) is K.no_solution
    assert final_outcome([K.transfer_15, K.red_flag_override, K.booked]) is K.booked
    assert final_outcome([K.advice, K.pharmacy]) is K.pharmacy  # a correction


def test_age_bands_on_the_birthday_boundaries() -> None:
    day = date(2026, 11, 22)
    assert age_band(date(2023, 11, 22), day) == "3-15"  # third birthday today
    assert age_band(date(2023, 11, 23), day) == "0-2"
    assert age_band(date(2010, 11, 22), day) == "16-64"
    assert age_band(date(1961, 11, 23), day) == "16-64"
    assert age_band(date(1961, 11, 22), day) == "65-74"
    assert age_band(date(1951, 11, 22), day) == "75+"
    assert age_band(None, day) is None


def test_ins_only_for_a_qualified_identity_and_with_a_valid_key() -> None:
    assert PatientIn(identity_status="QUAL", ins="269054958815780").ins == "269054958815780"
    assert PatientIn(identity_status="QUAL", ins="195082A12345676").ins == "195082A12345676"  # Corsica
    with pytest.raises(ValidationError, match="qualified identity"):
        PatientIn(identity_status="PROV", ins="269054958815780")
    with pytest.raises(ValidationError, match="key"):
        PatientIn(identity_status="QUAL", ins="269054958815781")


def test_request_validation() -> None:
    assert RequestCreate(motif="M19.05.00").needs.modalities == ["AMB", "HH", "VR"]
    for bad in (
        {"motif": "M99.00.00"},
        {"motif": "M19.05.00", "red_flags": ["feeling_sad"]},
        {"motif": "M19.05.00", "needs": {"profession": "60", "specialty": "SM54"}},
        {"motif": "M19.05.00", "received_at": "2026-11-22T10:00:00"},
        {"motif": "M19.05.00", "unknown": 1},
    ):
        with pytest.raises(ValidationError):
            RequestCreate.model_validate(bad)
