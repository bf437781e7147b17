"""Compensation for lost activity (pertes d'activité), docs/indicators.md. Pure.

Amounts stay exact (fractions of cents) until one half-up rounding per practitioner; the yearly
cap per professional applies next, then the annual envelope: when the month's amounts exceed what
is left of it, they are scaled pro rata and rounded by the largest-remainder method so that the
month pays exactly what is left. Each practitioner's gross and paid amounts are then allocated to
their slots the same way, so every level of the statement reconciles to the cent.
"""

from __future__ import annotations

import uuid
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import TypeVar

from service.money import largest_remainder, round_cents
from service.reference.codes import snp_compensation_envelope_cents

SECONDS_PER_HOUR = 3600
T = TypeVar("T")


@dataclass(frozen=True)
class Rates:
    """Compensation settings in force from a date (a CPTS's history is a list of these)."""

    effective_from: date
    unfilled_cents_per_hour: int
    filled_cents_per_hour: int = 0
    min_notice_hours: int = 24
    annual_envelope_cents: int | None = None  # None: the ACI amount of the CPTS's size
    annual_cap_cents: int | None = None  # per professional and contract year; None: no cap


# Until a CPTS sets its own: 45 EUR per unfilled hour, nothing for filled ones, 24 h notice, the
# ACI envelope of its size, no cap per professional.
DEFAULT_RATES = Rates(effective_from=date.min, unfilled_cents_per_hour=4500)


def rates_on(history: Sequence[Rates], day: date, default: Rates = DEFAULT_RATES) -> Rates:
    """The settings in force on `day`: the latest effective on or before it (history sorted by date)."""
    index = bisect_right([r.effective_from for r in history], day)
    return history[index - 1] if index else default


def envelope_cents(size: int, rates: Rates) -> int:
    """The contract year's compensation envelope: the CPTS's own amount, else the ACI line of its size."""
    if rates.annual_envelope_cents is not None:
        return rates.annual_envelope_cents
    return snp_compensation_envelope_cents(size)


@dataclass(frozen=True)
class SlotFact:
    slot_id: uuid.UUID
    practitioner_id: uuid.UUID
    start: datetime
    end: datetime
    local_date: date
    booked: bool
    withdrawn: bool
    published_at: datetime


def counts(slot: SlotFact, rates: Rates) -> bool:
    """Counted: not withdrawn, and published at least `min_notice_hours` before it started."""
    return not slot.withdrawn and slot.published_at <= slot.start - timedelta(hours=rates.min_notice_hours)


@dataclass
class SlotLine:
    slot_id: uuid.UUID
    start: datetime
    end: datetime
    seconds: int
    booked: bool
    rate_cents: int
    weight: int  # seconds x cents per hour: the exact gross is weight / 3600 cents
    gross_cents: int = 0
    paid_cents: int = 0


@dataclass
class PractitionerLine:
    practitioner_id: uuid.UUID
    seconds_unfilled: int = 0
    seconds_filled: int = 0
    weight: int = 0
    gross_cents: int = 0
    capped_cents: int = 0
    paid_cents: int = 0
    slots: list[SlotLine] = field(default_factory=list)


@dataclass
class Statement:
    envelope_cents: int
    remaining_before_cents: int
    scale: Fraction
    lines: list[PractitionerLine]

    @property
    def total_gross_cents(self) -> int:
        return sum(line.gross_cents for line in self.lines)

    @property
    def total_paid_cents(self) -> int:
        return sum(line.paid_cents for line in self.lines)


def statement(
    slots: Sequence[SlotFact],
    history: Sequence[Rates],
    default: Rates,
    envelope_cents: int,
    paid_before_cents: int,
    paid_before_by_practitioner: Mapping[uuid.UUID, int],
    annual_cap_cents: int | None,
) -> Statement:
    """One month's statement, given what the contract year already paid before it."""
    history = sorted(history, key=lambda r: r.effective_from)
    lines: dict[uuid.UUID, PractitionerLine] = {}
    rates_by_day: dict[date, Rates] = {}
    for slot in sorted(slots, key=lambda s: (s.practitioner_id, s.start, s.slot_id)):
        rates = rates_by_day.get(slot.local_date)
        if rates is None:
            rates = rates_by_day[slot.local_date] = rates_on(history, slot.local_date, default)
        if not counts(slot, rates):
            continue
        seconds = int((slot.end - slot.start).total_seconds())
        rate = rates.filled_cents_per_hour if slot.booked else rates.unfilled_cents_per_hour
        line = lines.setdefault(slot.practitioner_id, PractitionerLine(slot.practitioner_id))
        if slot.booked:
            line.seconds_filled += seconds
        else:
            line.seconds_unfilled += seconds
        weight = seconds * rate
        line.weight += weight
        line.slots.append(SlotLine(slot.slot_id, slot.start, slot.end, seconds, slot.booked, rate, weight))

    for line in lines.values():
        line.gross_cents = round_cents(Fraction(line.weight, SECONDS_PER_HOUR))
        if annual_cap_cents is None:
            line.capped_cents = line.gross_cents
        else:
            left_under_cap = max(0, annual_cap_cents - paid_before_by_practitioner.get(line.practitioner_id, 0))
            line.capped_cents = min(line.gross_cents, left_under_cap)

    remaining = max(0, envelope_cents - paid_before_cents)
    total_capped = sum(line.capped_cents for line in lines.values())
    if total_capped <= remaining:
        scale = Fraction(1)
        for line in lines.values():
            line.paid_cents = line.capped_cents
    else:
        scale = Fraction(remaining, total_capped)
        paid = largest_remainder(remaining, {p: line.capped_cents for p, line in lines.items()})
        for p, line in lines.items():
            line.paid_cents = paid[p]

    for line in lines.values():
        weights = {s.slot_id: s.weight for s in line.slots}
        gross = largest_remainder(line.gross_cents, weights)
        paid = largest_remainder(line.paid_cents, weights)
        for slot_line in line.slots:
            slot_line.gross_cents, slot_line.paid_cents = gross[slot_line.slot_id], paid[slot_line.slot_id]
    return Statement(
        envelope_cents=envelope_cents,
        remaining_before_cents=remaining,
        scale=scale,
        lines=sorted(lines.values(), key=lambda line: line.practitioner_id),
    )


def year_statements(
    months: Sequence[T],
    slots_by_month: Mapping[T, Sequence[SlotFact]],
    history: Sequence[Rates],
    default: Rates,
    envelope_for: Callable[[T], int],
    cap_for: Callable[[T], int | None],
) -> dict[T, Statement]:
    """The statements of consecutive months of one contract year: each month pays from what the
    earlier months left of the envelope, and of each professional's yearly cap."""
    statements: dict[T, Statement] = {}
    paid_total = 0
    paid_by_practitioner: dict[uuid.UUID, int] = {}
    for month in months:
        current = statement(
            slots_by_month.get(month, ()),
            history,
            default,
            envelope_for(month),
            paid_total,
            paid_by_practitioner,
            cap_for(month),
        )
        statements[month] = current
        paid_total += current.total_paid_cents
        for line in current.lines:
            paid_by_practitioner[line.practitioner_id] = (
                paid_by_practitioner.get(line.practitioner_id, 0) + line.paid_cents
            )
    return statements
