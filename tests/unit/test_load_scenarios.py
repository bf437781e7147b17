"""Load tests are not run by `make test`: these check that the generator and the locust scenarios
import and produce valid, realistic data."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import uuid
from collections import Counter
from datetime import date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

from load_tests import scenarios
from load_tests.generator import (
    GeneratedCpts,
    Member,
    arrivals,
    credentials_document,
    plan_month,
    plan_slots,
)
from load_tests.scenarios import Credentials, Practitioner, Schedule
from service.bookings.schemas import CancelIn
from service.orientation.schemas import OrientationIn, RequestCreate
from service.reference.codes import Classification, motif_classification
from service.reporting.periods import Month
from service.slots.schemas import BatchIn, SlotItem, SyncIn

PARIS = ZoneInfo("Europe/Paris")
ROOT = Path(__file__).resolve().parents[2]


def members(count: int, rng: random.Random) -> list[Member]:
    return [
        Member(uuid.uuid4(), uuid.uuid4(), "10", "SM54", rng.choice((20, 30)), "AMB", ["44109"]) for _ in range(count)
    ]


def test_arrivals_follow_the_weekly_and_daily_shape_of_unscheduled_care() -> None:
    month = Month(2026, 3)
    start, end = month.bounds(PARIS)
    calls = arrivals(random.Random(1), start, end, 20_000, PARIS)
    assert calls == arrivals(random.Random(1), start, end, 20_000, PARIS)  # reproducible from the seed
    assert all(start <= c < end for c in calls)
    assert calls == sorted(calls)
    local = [c.astimezone(PARIS) for c in calls]
    per_hour = Counter((c.weekday(), c.hour) for c in local)
    mondays = sum(1 for d in range(31) if date(2026, 3, 1 + d).weekday() == 0)
    tuesdays = sum(1 for d in range(31) if date(2026, 3, 1 + d).weekday() == 1)
    monday_morning = per_hour[(0, 9)] / mondays
    tuesday_morning = per_hour[(1, 9)] / tuesdays
    assert monday_morning > 1.3 * tuesday_morning  # the weekend's backlog
    assert per_hour[(5, 10)] > 2 * per_hour[(5, 16)]  # Saturday: mornings
    assert per_hour[(1, 18)] > per_hour[(1, 14)]  # the evening shoulder
    assert per_hour[(1, 3)] * 10 < per_hour[(1, 9)]  # quiet nights


def test_generated_slots_never_overlap_and_keep_to_working_hours() -> None:
    rng = random.Random(2)
    team = members(20, rng)
    slots = plan_slots(rng, team, date(2026, 3, 23), 14, 300, PARIS)  # across the change to summer time
    assert 14 * 300 * 0.6 < len(slots) < 14 * 300
    by_member: dict[uuid.UUID, list[tuple[datetime, datetime]]] = {}
    for slot in slots:
        local_start, local_end = slot.start.astimezone(PARIS), slot.end.astimezone(PARIS)
        assert local_start.weekday() != 6
        assert (local_start.hour, local_start.minute) >= (8, 0)
        assert (local_end.hour, local_end.minute) <= (20, 10)
        by_member.setdefault(slot.member.id, []).append((slot.start, slot.end))
    for ranges in by_member.values():
        ranges.sort()
        assert all(a[1] <= b[0] for a, b in pairwise(ranges))


def test_a_generated_month_books_each_slot_once_and_after_the_call() -> None:
    rng = random.Random(3)
    generated = GeneratedCpts(uuid.uuid4(), members=members(30, rng), handler_ids=[uuid.uuid4(), uuid.uuid4()])
    month = Month(2026, 10)  # ends with the change to winter time
    start, end = month.bounds(PARIS)
    slots = plan_slots(rng, generated.members, month.first_day, 31, 200, PARIS)
    plan = plan_month(rng, generated, month, 3000, slots, b"k" * 32)
    assert len(plan.requests) == 3000
    received = {row[0]: row[2] for row in plan.requests}
    assert all(start <= at < end for at in received.values())
    starts = {s.id: s.start for s in slots}
    slot_ids = [row[3] for row in plan.bookings]
    assert len(slot_ids) == len(set(slot_ids)) == len(plan.booked_slots)
    for booking in plan.bookings:
        assert starts[booking[3]] >= received[booking[2]] + timedelta(minutes=30)
    booked_share = len(plan.bookings) / len(plan.requests)
    assert 0.4 < booked_share < 0.65


def test_the_handlers_calls_are_valid_requests_and_orientations() -> None:
    rng = random.Random(4)
    communes = ["44109", "44143"]
    for _ in range(50):
        plain = RequestCreate.model_validate(scenarios.request_body(rng, communes))
        assert motif_classification()[plain.motif] in (Classification.snp, Classification.assess)
        red = RequestCreate.model_validate(scenarios.request_body(rng, communes, red_flag=True))
        assert motif_classification()[red.motif] is Classification.transfer_15
    endings = {name for name, _ in scenarios.CALL_ENDINGS} - {"book", "red_flag"}
    for outcome in endings | {"transfer_15", "no_solution"}:
        OrientationIn.model_validate(scenarios.orientation_body(outcome))
    CancelIn.model_validate(scenarios.cancel_body())
    assert abs(sum(weight for _, weight in scenarios.CALL_ENDINGS) - 1) < 1e-9


def practitioners(count: int) -> list[Practitioner]:
    return [
        Practitioner(str(uuid.uuid4()), str(uuid.uuid4()), "10", "SM54", 20 + 10 * (i % 2), ("AMB", "HH")[i % 2])
        for i in range(count)
    ]


def test_practice_software_publish_and_sync_the_same_plan_without_overlaps() -> None:
    rng = random.Random(5)
    team = practitioners(12)
    today = date(2026, 11, 22)
    first = BatchIn.model_validate(scenarios.publish_batch(rng, team, today, size=50))
    items = [SlotItem.model_validate(item) for item in first.slots]
    assert len(items) == 50
    assert len({i.external_id for i in items}) == 50
    # The plan is fixed: a slot published twice has one external id, so it is "unchanged".
    again = scenarios.publish_batch(random.Random(5), team, today, size=50)
    assert [i["external_id"] for i in again["slots"]] == [i.external_id for i in items]
    sync = SyncIn.model_validate(scenarios.sync_body(rng, team, today))
    synced = [SlotItem.model_validate(item) for item in sync.slots]
    assert len(synced) == 2 * len(team)
    assert all(sync.window_start <= s.start < sync.window_end for s in synced)
    # Beyond the generated fortnight, in the evening: never over a generated slot.
    for slot in items + synced:
        local = slot.start.astimezone(PARIS)
        assert local.date() >= today + timedelta(days=scenarios.PUBLISH_FIRST_DAY)
        assert local.hour >= 20
    by_practitioner: dict[uuid.UUID, list[tuple[datetime, datetime]]] = {}
    for slot in {s.external_id: s for s in items + synced}.values():
        by_practitioner.setdefault(slot.practitioner_id, []).append((slot.start, slot.end))
    for ranges in by_practitioner.values():
        ranges.sort()
        assert all(a[1] <= b[0] for a, b in pairwise(ranges))


def test_a_schedule_paces_by_arrival_rate_whatever_the_answers_take() -> None:
    schedule = Schedule({"call": 2.0, "feed": 0.5}, random.Random(6), start=1000.0)
    first_due = min(schedule.due.values())
    assert 1000.0 <= first_due < 1000.5  # each activity's first occurrence falls within its interval
    assert schedule.wait(now=900.0) == first_due - 900.0
    taken: Counter[str] = Counter()
    intended = []
    for _ in range(5000):  # never waiting: as if every answer were late
        taken[schedule.take()] += 1
        intended.append(schedule.intended)
    assert schedule.wait(now=10**9) == 0.0  # overdue: run at once
    assert intended == sorted(intended)  # latency is measured from these, not from when each ran
    elapsed = intended[-1] - 1000.0
    assert 0.45 < elapsed / taken["feed"] < 0.55  # the feed's mean interval
    assert 3.5 < taken["feed"] / taken["call"] < 4.5


def test_the_locust_scenarios_load_with_generated_credentials(tmp_path: Path) -> None:
    rng = random.Random(7)
    generated = GeneratedCpts(uuid.uuid4(), members=members(3, rng), handler_ids=[uuid.uuid4()])
    generated.credentials = {"handler": ["h@load.test"], "coordinator": ["c@load.test"], "api_key": "snpk_x"}
    document = credentials_document(generated, Month(2026, 10))
    path = tmp_path / "credentials.json"
    path.write_text(json.dumps(document))
    loaded = Credentials.load(path)
    assert (loaded.history_month, len(loaded.practitioners), loaded.api_key) == ("2026-10", 3, "snpk_x")
    assert "pseudonym_key" not in document  # the CPTS's pseudonymisation secret stays in the database
    listed = subprocess.run(  # noqa: S603 - locust itself, in its own process (it patches the stdlib)
        [str(Path(sys.executable).parent / "locust"), "-f", "load_tests/locustfile.py", "--list"],
        cwd=ROOT,
        env={**os.environ, "SNP_LOAD_CREDENTIALS": str(path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert {"CallHandler", "PracticeSoftware", "Coordinator"} <= set(listed.stdout.split())
