"""Hand-checked compensation statements."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from service.compensation.domain import Rates, SlotFact, statement, year_statements

DEFAULT = Rates(date.min, unfilled_cents_per_hour=4500)
A = uuid.UUID(int=1)
B = uuid.UUID(int=2)
C = uuid.UUID(int=3)
DAY = datetime(2026, 10, 12, 9, 0, tzinfo=UTC)


def slot(
    who: uuid.UUID,
    minutes: int,
    *,
    at: datetime = DAY,
    booked: bool = False,
    withdrawn: bool = False,
    notice: timedelta = timedelta(days=2),
) -> SlotFact:
    return SlotFact(uuid.uuid4(), who, at, at + timedelta(minutes=minutes), at.date(), booked, withdrawn, at - notice)


def test_counted_hours_at_the_unfilled_rate() -> None:
    slots = [
        slot(A, 20),
        slot(A, 20, at=DAY + timedelta(hours=1)),
        slot(A, 20, at=DAY + timedelta(hours=2)),
        slot(A, 20, at=DAY + timedelta(hours=3), booked=True),  # filled: 0 by default
        slot(A, 20, at=DAY + timedelta(hours=4), notice=timedelta(hours=23)),  # published too late
        slot(A, 20, at=DAY + timedelta(hours=5), withdrawn=True),
        slot(B, 30),
        slot(B, 30, at=DAY + timedelta(hours=1)),
    ]
    result = statement(slots, [], DEFAULT, 100_000, 0, {}, None)
    lines = {line.practitioner_id: line for line in result.lines}
    assert (lines[A].gross_cents, lines[A].paid_cents) == (4500, 4500)  # 1 h x 45 EUR
    assert (lines[A].seconds_unfilled, lines[A].seconds_filled) == (3600, 1200)
    assert len(lines[A].slots) == 4
    assert (lines[B].gross_cents, lines[B].paid_cents) == (4500, 4500)
    assert result.scale == 1
    assert (result.total_gross_cents, result.total_paid_cents) == (9000, 9000)


def test_the_filled_rate_applies_to_booked_slots() -> None:
    rates = Rates(date.min, unfilled_cents_per_hour=4500, filled_cents_per_hour=1500)
    result = statement(
        [slot(A, 60, booked=True), slot(A, 60, at=DAY + timedelta(hours=2))], [], rates, 10**9, 0, {}, None
    )
    assert result.lines[0].gross_cents == 1500 + 4500


def test_exact_amounts_are_rounded_once_per_practitioner() -> None:
    # 1 minute at 44.99 EUR/h = 74.9833... cents; three of them = 224.95 cents -> 225, not 3 x 75 rounded apart.
    rates = Rates(date.min, unfilled_cents_per_hour=4499)
    slots = [slot(A, 1, at=DAY + timedelta(minutes=10 * i)) for i in range(3)]
    [line] = statement(slots, [], rates, 10**9, 0, {}, None).lines
    assert line.gross_cents == 225
    assert sorted(s.gross_cents for s in line.slots) == [75, 75, 75]


def test_pro_rata_scaling_exhausts_the_envelope_exactly() -> None:
    # 100.00 left; three professionals owed 45.00 each (135.00): each gets 33.33, and the cent left
    # (100.00 - 99.99) goes to the largest remainder (equal: the first in order).
    slots = [slot(who, 60) for who in (A, B, C)]
    result = statement(
        slots,
        [],
        DEFAULT,
        envelope_cents=15_000,
        paid_before_cents=5_000,
        paid_before_by_practitioner={},
        annual_cap_cents=None,
    )
    assert result.remaining_before_cents == 10_000
    assert [line.paid_cents for line in result.lines] == [3334, 3333, 3333]
    assert result.total_paid_cents == 10_000
    assert result.scale * 13_500 == 10_000
    for line in result.lines:
        assert sum(s.paid_cents for s in line.slots) == line.paid_cents


def test_unequal_scaling_with_slots_reconciles_at_every_level() -> None:
    slots = [slot(A, 20, at=DAY + timedelta(hours=i)) for i in range(7)] + [
        slot(B, 45),
        slot(B, 45, at=DAY + timedelta(hours=1)),
    ]
    result = statement(
        slots,
        [],
        DEFAULT,
        envelope_cents=10_000,
        paid_before_cents=3_333,
        paid_before_by_practitioner={},
        annual_cap_cents=None,
    )
    gross = {line.practitioner_id: line.gross_cents for line in result.lines}
    assert gross == {A: 10_500, B: 6_750}  # 7 x 20 min = 2 h 20 at 45 EUR; 1 h 30
    assert result.total_paid_cents == 6_667
    paid = {line.practitioner_id: line.paid_cents for line in result.lines}
    assert paid == {A: 4_058, B: 2_609}  # 6667 x 105/172.5 = 4058.2; 6667 x 67.5/172.5 = 2608.8
    for line in result.lines:
        assert sum(s.paid_cents for s in line.slots) == line.paid_cents
        assert sum(s.gross_cents for s in line.slots) == line.gross_cents


def test_the_yearly_cap_per_professional_applies_before_the_envelope() -> None:
    result = statement([slot(A, 60), slot(B, 60)], [], DEFAULT, 10**9, 0, {A: 4_000}, annual_cap_cents=5_000)
    paid = {line.practitioner_id: (line.gross_cents, line.capped_cents, line.paid_cents) for line in result.lines}
    assert paid == {A: (4500, 1000, 1000), B: (4500, 4500, 4500)}


def test_rates_are_effective_dated() -> None:
    history = [Rates(date(2026, 10, 13), unfilled_cents_per_hour=6000)]
    result = statement([slot(A, 60), slot(A, 60, at=DAY + timedelta(days=1))], history, DEFAULT, 10**9, 0, {}, None)
    assert sorted(s.rate_cents for s in result.lines[0].slots) == [4500, 6000]
    assert result.lines[0].gross_cents == 10_500


def test_a_contract_year_pays_until_the_envelope_is_spent() -> None:
    months = ["2026-01", "2026-02", "2026-03"]
    by_month = {
        "2026-01": [slot(A, 80)],  # 60.00
        "2026-02": [slot(A, 80)],  # 60.00, 40.00 left
        "2026-03": [slot(A, 40)],  # 30.00, nothing left
    }
    statements = year_statements(months, by_month, [], DEFAULT, lambda m: 10_000, lambda m: None)
    assert [statements[m].total_paid_cents for m in months] == [6_000, 4_000, 0]
    assert [statements[m].remaining_before_cents for m in months] == [10_000, 4_000, 0]
    assert statements["2026-03"].scale == 0
