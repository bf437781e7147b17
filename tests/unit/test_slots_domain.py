from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from service.slots.domain import (
    ExistingSlot,
    Modality,
    Outcome,
    PublicationRules,
    SlotSpec,
    SlotStatus,
    Visibility,
    decide,
    effective_status,
    time_problem,
)

NOW = datetime(2026, 10, 24, 12, 0, tzinfo=UTC)
RULES = PublicationRules()
PRACTITIONER, SITE = uuid.uuid4(), uuid.uuid4()


def spec(start: datetime | None = None, minutes: int = 20, **changes: object) -> SlotSpec:
    begin = start or NOW + timedelta(days=1)
    values: dict[str, object] = {
        "practitioner_id": PRACTITIONER,
        "site_id": SITE,
        "start": begin,
        "end": begin + timedelta(minutes=minutes),
        "modality": Modality.AMB,
        "visibility": frozenset({Visibility.CPTS, Visibility.SNP}),
        "specialty": "SM54",
        "home_visit_communes": frozenset(),
    }
    values.update(changes)
    return SlotSpec(**values)  # type: ignore[arg-type]


def existing(status: SlotStatus = SlotStatus.free, **changes: Any) -> ExistingSlot:
    return ExistingSlot(id=uuid.uuid4(), version=3, status=status, spec=spec(**changes))


def test_expired_hold_reads_as_free() -> None:
    assert effective_status("held", NOW + timedelta(seconds=1), NOW) is SlotStatus.held
    assert effective_status("held", NOW, NOW) is SlotStatus.free
    assert effective_status("held", None, NOW) is SlotStatus.held  # a hold without an expiry has not lapsed
    assert effective_status("booked", None, NOW) is SlotStatus.booked


def test_time_rules() -> None:
    assert time_problem(spec(), NOW, RULES) is None
    cases = {
        "invalid_time_range": spec(minutes=0),
        "invalid_duration": spec(minutes=4),
        "slot_in_past": spec(start=NOW - timedelta(minutes=1)),
        "beyond_horizon": spec(start=NOW + timedelta(days=60, minutes=1)),
    }
    for code, candidate in cases.items():
        problem = time_problem(candidate, NOW, RULES)
        assert problem is not None
        assert problem.code == code
    assert time_problem(spec(minutes=12 * 60), NOW, RULES) is None
    assert time_problem(spec(minutes=12 * 60 + 1), NOW, RULES) is not None


def test_the_same_instant_in_another_offset_is_the_same_slot() -> None:
    paris = spec().start.astimezone(ZoneInfo("Europe/Paris"))
    same = spec(start=paris)
    assert decide(existing(), same, NOW, RULES).outcome is Outcome.unchanged


def test_decisions() -> None:
    assert decide(None, spec(), NOW, RULES).outcome is Outcome.created
    assert decide(existing(), spec(), NOW, RULES).outcome is Outcome.unchanged
    moved = decide(existing(), spec(start=NOW + timedelta(days=2)), NOW, RULES)
    assert (moved.outcome, moved.moves) == (Outcome.updated, True)
    relabelled = decide(existing(), spec(visibility=frozenset({Visibility.PUBLIC})), NOW, RULES)
    assert (relabelled.outcome, relabelled.moves) == (Outcome.updated, False)


def test_a_held_or_booked_slot_keeps_its_time() -> None:
    for status in (SlotStatus.held, SlotStatus.booked):
        refused = decide(existing(status), spec(start=NOW + timedelta(days=2)), NOW, RULES)
        assert refused.outcome is Outcome.rejected
        assert refused.problem is not None
        assert refused.problem.code == "slot_booked"
        assert decide(existing(status), spec(), NOW, RULES).outcome is Outcome.unchanged
        other_practitioner = decide(existing(status), spec(practitioner_id=uuid.uuid4()), NOW, RULES)
        assert other_practitioner.outcome is Outcome.rejected


def test_republishing_a_withdrawn_slot_reopens_it_if_still_ahead() -> None:
    assert decide(existing(SlotStatus.withdrawn), spec(), NOW, RULES).outcome is Outcome.updated
    past = existing(SlotStatus.withdrawn, start=NOW - timedelta(hours=1))
    assert decide(past, spec(start=NOW - timedelta(hours=1)), NOW, RULES).outcome is Outcome.rejected


def test_an_unchanged_slot_that_has_started_stays_unchanged() -> None:
    started = existing(start=NOW - timedelta(minutes=5))
    assert decide(started, spec(start=NOW - timedelta(minutes=5)), NOW, RULES).outcome is Outcome.unchanged


def test_home_visit_needs_communes() -> None:
    refused = decide(None, spec(modality=Modality.HH), NOW, RULES)
    assert refused.problem is not None
    assert refused.problem.code == "home_visit_communes_required"
    ok = decide(None, spec(modality=Modality.HH, home_visit_communes=frozenset({"44109"})), NOW, RULES)
    assert ok.outcome is Outcome.created


def test_duration_is_elapsed_time_across_a_daylight_saving_change() -> None:
    paris = ZoneInfo("Europe/Paris")
    # On 29 March 2026 Paris clocks jump from 02:00 to 03:00: 01:30 -> 03:30 on the wall is 1 h.
    start = datetime(2026, 3, 29, 1, 30, tzinfo=paris)
    rules = PublicationRules(min_duration=timedelta(minutes=5), max_duration=timedelta(minutes=90))
    one_hour = spec(start=start, end=datetime(2026, 3, 29, 3, 30, tzinfo=paris))  # 2 h on the wall
    assert time_problem(one_hour, start - timedelta(days=1), rules) is None
    ninety_minutes = spec(start=start, end=datetime(2026, 3, 29, 4, 0, tzinfo=paris))  # 2 h 30 on the wall
    assert time_problem(ninety_minutes, start - timedelta(days=1), rules) is None
    longer = spec(start=start, end=datetime(2026, 3, 29, 4, 31, tzinfo=paris))  # 2 h 01 of real time
    problem = time_problem(longer, start - timedelta(days=1), rules)
    assert problem is not None
    assert problem.code == "invalid_duration"


def test_a_slot_that_has_started_no_longer_changes() -> None:
    started = existing(start=NOW - timedelta(minutes=5))
    moved = spec(start=NOW + timedelta(hours=1))
    relabelled = spec(start=NOW - timedelta(minutes=5), visibility=frozenset({Visibility.PRO}))
    for change in (moved, relabelled):
        refused = decide(started, change, NOW, RULES)
        assert refused.outcome is Outcome.rejected
        assert refused.problem is not None
        assert refused.problem.code == "slot_started"
    assert decide(started, spec(start=NOW - timedelta(minutes=5)), NOW, RULES).outcome is Outcome.unchanged
