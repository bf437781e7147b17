"""Hand-checked indicators on a small month."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from service.reporting.export import ACTIVITY_COLUMNS, BOM, activity_line, csv_lines, monthly_rows
from service.reporting.indicators import RequestFact, Supply, monthly
from service.reporting.schemas import MonthlyReport, ReportHeader

PARIS = ZoneInfo("Europe/Paris")
# Monday 2 November 2026, 00:30 in Paris (23:30 UTC on Sunday 1 November).
T0 = datetime(2026, 11, 1, 23, 30, tzinfo=UTC)
CUTOFF = T0 + timedelta(hours=30)
HANDLER = uuid.uuid4()


NO_SLOTS = Supply(0, 0, 0, 0, 0, {})


def report_of(
    facts: list[RequestFact], supply: Supply = NO_SLOTS, names: dict[uuid.UUID, str] | None = None
) -> MonthlyReport:
    header = ReportHeader(
        month="2026-11",
        cpts_id=str(uuid.uuid4()),
        cpts_name="CPTS test",
        timezone="Europe/Paris",
        period_start=datetime(2026, 11, 1, tzinfo=PARIS),
        period_end=datetime(2026, 12, 1, tzinfo=PARIS),
        cutoff=CUTOFF.astimezone(PARIS),
        provisional=False,
    )
    return monthly(header, facts, supply, names or {}, PARIS)


def fact(**changes: Any) -> RequestFact:
    base = RequestFact(
        request_id=uuid.uuid4(),
        received_at=T0,
        deadline_at=T0 + timedelta(hours=24),
        channel="phone",
        via_sas=False,
        imported=False,
        motif="M19.05.00",
        motif_classification="assess",
        red_flagged=False,
        needs_profession="10",
        needs_specialty="SM54",
        needs_modalities=("AMB", "VR"),
        patient_pseudonym="p",
        patient_age_band="16-64",
        patient_sex="F",
        patient_commune="44109",
        final_outcome=None,
        oriented_at=None,
        oriented_by=None,
        appointment_start=None,
        appointment_modality=None,
        practitioner_profession=None,
        booking_status=None,
        cancelled_side=None,
        appointment_outcome=None,
    )
    return replace(base, **changes)


def booked(hours: float, **changes: Any) -> RequestFact:
    values: dict[str, Any] = {
        "final_outcome": "booked",
        "oriented_at": T0 + timedelta(minutes=6),
        "oriented_by": HANDLER,
        "appointment_start": T0 + timedelta(hours=hours),
        "appointment_modality": "AMB",
        "practitioner_profession": "10",
        "booking_status": "booked",
    }
    return fact(**{**values, **changes})


MONTH = [
    booked(10, appointment_outcome="fulfilled"),
    booked(30, booking_status="cancelled", cancelled_side="patient", channel="sas", via_sas=True),
    booked(24),  # exactly 24 h: within
    fact(final_outcome="no_solution", oriented_at=T0 + timedelta(minutes=20), oriented_by=HANDLER),
    fact(received_at=T0 - timedelta(hours=2), deadline_at=T0 + timedelta(hours=22)),  # past deadline at cut-off
    fact(deadline_at=CUTOFF + timedelta(minutes=1)),  # still open
    fact(final_outcome="transfer_15", oriented_at=T0 + timedelta(minutes=2), oriented_by=HANDLER, motif="M17.03.00"),
]


def test_demand_and_response() -> None:
    report = report_of(MONTH).model_dump()
    assert report["requests_total"] == 7
    assert report["by_channel"] == {"phone": 6, "sas": 1, "pharmacy": 0, "professional": 0, "other": 0}
    assert report["via_sas"] == 1
    assert (report["booked"], report["no_solution"], report["transfer_15"]) == (3, 1, 1)
    assert (report["open"], report["unresolved_past_deadline"]) == (1, 1)
    assert report["needing_consultation"] == 5  # 3 booked + 1 no solution + 1 unresolved
    assert (report["booked_within_24h"], report["rate_within_24h"]) == (2, 0.4)
    assert (report["booked_within_48h"], report["rate_within_48h"]) == (3, 0.6)
    assert report["delay_to_appointment_hours"] == {"median": 24.0, "p90": 28.8}
    # 6, 6, 6, 20 and 2 minutes to the final orientation: median 6, p90 = 6 + (20 - 6) x 0.6 = 14.4
    assert report["time_to_orientation_minutes"] == {"median": 6.0, "p90": 14.4}
    assert report["by_motif"] == {"M19.00.00": 6, "M17.00.00": 1}
    assert report["by_hour"]["00"] == 6  # local hour, not UTC
    assert report["by_hour"]["22"] == 1
    assert report["by_day_of_week"]["monday"] == 6
    assert report["by_day_of_week"]["sunday"] == 1
    assert report["unmet_demand"]["total"] == 2
    assert report["by_modality"] == {"AMB": 7, "VR": 7}
    assert (report["fulfilled"], report["cancelled_by_patient"], report["outcome_unknown"]) == (1, 1, 1)
    assert report["booked_by_modality"] == {"AMB": 3, "VR": 0, "HH": 0}


def test_no_denominator_gives_no_rate() -> None:
    report = report_of([fact(final_outcome="advice", oriented_at=T0)]).model_dump()
    assert report["needing_consultation"] == 0
    assert report["rate_within_24h"] is None
    assert report["delay_to_appointment_hours"] == {"median": None, "p90": None}


def test_handlers_and_supply() -> None:
    report = report_of(MONTH, Supply(10, 10 * 1200, 4, 2, 1, {"10": 3, "60": 1}), {HANDLER: "Camille"})
    [line] = report.handlers
    assert (line.name, line.requests_handled, line.median_handling_minutes) == ("Camille", 5, 6.0)
    assert report.fill_rate == 0.5  # 4 booked of 8 offered
    assert (report.slots_published.count, report.slots_published.hours) == (10, 3.33)
    assert report.participating_professionals.model_dump() == {"total": 4, "by_profession": {"10": 3, "60": 1}}


def test_activity_lines_carry_no_identity_and_round_trip_through_csv() -> None:
    lines = [activity_line(f, CUTOFF, PARIS, b"k" * 32) for f in MONTH]
    assert list(asdict(lines[0])) == list(ACTIVITY_COLUMNS)
    for forbidden in ("family_name", "given_name", "phone", "birth_date", "ins"):
        assert not any(forbidden in column for column in ACTIVITY_COLUMNS)
    assert lines[0].received_at.isoformat() == "2026-11-02T00:30:00+01:00"
    assert lines[0].received_weekday == "monday"
    assert [line.outcome for line in lines[3:6]] == ["no_solution", "unresolved_past_deadline", "open"]
    text = "".join(csv_lines(ACTIVITY_COLUMNS, (line.values() for line in lines)))
    assert text.startswith(BOM)
    rows = list(csv.DictReader(io.StringIO(text.removeprefix(BOM)), delimiter=";"))
    assert len(rows) == 7
    assert rows[1]["within_24h"] == "false"
    assert rows[1]["within_48h"] == "true"
    assert rows[2]["delay_to_appointment_hours"] == "24.0"
    assert rows[0]["request_ref"] != rows[1]["request_ref"]


def test_monthly_rows_flatten_breakdowns() -> None:
    rows = list(monthly_rows(report_of(MONTH)))
    assert ("demand", "requests_total", "", 7) in rows
    assert ("demand", "by_channel", "sas", 1) in rows
    assert ("response", "unmet_demand", "by_hour.00", 1) in rows
    assert ("supply", "fill_rate", "", None) in rows
