"""Slot publication rules: pure functions, no I/O, `now` passed in.

A slot is one patient's place in a practitioner's agenda, `[start, end)`. Publication is
idempotent: the same item twice changes nothing. A slot a patient holds or has booked keeps its
time: re-publishing it elsewhere is refused, not applied.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from service.errors import ItemProblem


class SlotStatus(StrEnum):
    free = "free"
    held = "held"
    booked = "booked"
    withdrawn = "withdrawn"


class Modality(StrEnum):
    """SAS codes: AMB in practice, VR teleconsultation, HH home visit."""

    AMB = "AMB"
    VR = "VR"
    HH = "HH"


class Visibility(StrEnum):
    CPTS = "CPTS"
    SNP = "SNP"
    PUBLIC = "PUBLIC"
    PRO = "PRO"


class Outcome(StrEnum):
    created = "created"
    updated = "updated"
    unchanged = "unchanged"
    rejected = "rejected"


DEFAULT_VISIBILITY = (Visibility.CPTS, Visibility.SNP)
# Slots visible to the CPTS's own call handlers.
HANDLER_VISIBILITY = frozenset({Visibility.CPTS, Visibility.SNP})
# What the slot search shows when no end is given.
SEARCH_WINDOW = timedelta(days=7)
# A withdrawal this close to the start counts against the supply's reliability.
LATE_WITHDRAWAL = timedelta(hours=24)

# SQL applies these rules too (`slots.predicates`, from the same constants); a parity test runs the
# Python and SQL versions over one table of cases.


def hold_lapsed(status: str, hold_expires_at: datetime | None, now: datetime) -> bool:
    """Held, and the hold's time is up (a hold without an expiry has not lapsed)."""
    return status == SlotStatus.held and hold_expires_at is not None and hold_expires_at <= now


def effective_status(status: str, hold_expires_at: datetime | None, now: datetime) -> SlotStatus:
    """An expired hold is free again at query time (no sweeper needed for correctness)."""
    return SlotStatus.free if hold_lapsed(status, hold_expires_at, now) else SlotStatus(status)


@dataclass(frozen=True)
class PublicationRules:
    """Per-CPTS bounds on what may be published."""

    min_duration: timedelta = timedelta(minutes=5)
    max_duration: timedelta = timedelta(hours=12)
    horizon: timedelta = timedelta(days=60)


@dataclass(frozen=True)
class SlotSpec:
    """What a publisher says about one slot."""

    practitioner_id: uuid.UUID
    site_id: uuid.UUID
    start: datetime
    end: datetime
    modality: Modality
    visibility: frozenset[Visibility]
    specialty: str | None
    home_visit_communes: frozenset[str] = field(default_factory=frozenset)
    agenda_url: str | None = None

    def same_place_and_time(self, other: SlotSpec) -> bool:
        return (
            self.practitioner_id == other.practitioner_id
            and self.site_id == other.site_id
            and self.start == other.start
            and self.end == other.end
            and self.modality == other.modality
        )


@dataclass(frozen=True)
class ExistingSlot:
    id: uuid.UUID
    version: int
    status: SlotStatus  # effective status
    spec: SlotSpec


def time_problem(spec: SlotSpec, now: datetime, rules: PublicationRules) -> ItemProblem | None:
    """Why the times of a new or moved slot are not acceptable, or None."""
    # In UTC: two datetimes of one ZoneInfo zone subtract as wall-clock times, ignoring DST.
    duration = spec.end.astimezone(UTC) - spec.start.astimezone(UTC)
    if duration <= timedelta(0):
        return ItemProblem(422, "invalid_time_range", "end must be after start.")
    if duration < rules.min_duration or duration > rules.max_duration:
        return ItemProblem(
            422,
            "invalid_duration",
            f"A slot lasts between {_minutes(rules.min_duration)} and {_minutes(rules.max_duration)} minutes.",
        )
    if spec.start <= now:
        return ItemProblem(422, "slot_in_past", "The slot starts in the past.")
    if spec.start > now + rules.horizon:
        return ItemProblem(422, "beyond_horizon", f"Slots are published at most {rules.horizon.days} days ahead.")
    return None


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)


def placement_problem(spec: SlotSpec) -> ItemProblem | None:
    if spec.modality is Modality.HH and not spec.home_visit_communes:
        return ItemProblem(
            422,
            "home_visit_communes_required",
            "A home visit (HH) needs the communes it covers, on the slot or on its site.",
        )
    return None


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    problem: ItemProblem | None = None
    # True when the write moves the slot in time or to another practitioner, site or modality.
    moves: bool = False


def decide(existing: ExistingSlot | None, spec: SlotSpec, now: datetime, rules: PublicationRules) -> Decision:
    """Create, update, leave unchanged or reject one published item."""
    problem = placement_problem(spec)
    if problem:
        return Decision(Outcome.rejected, problem)
    if existing is None:
        problem = time_problem(spec, now, rules)
        return Decision(Outcome.rejected, problem) if problem else Decision(Outcome.created, moves=True)
    moves = not existing.spec.same_place_and_time(spec)
    if existing.spec == spec and existing.status is not SlotStatus.withdrawn:
        return Decision(Outcome.unchanged)
    if existing.spec.start <= now:
        # A slot that has started is history: indicators and compensation rest on it.
        return Decision(
            Outcome.rejected, ItemProblem(409, "slot_started", "The slot has started: it can no longer change.")
        )
    if existing.status in (SlotStatus.held, SlotStatus.booked):
        if moves:
            return Decision(
                Outcome.rejected,
                ItemProblem(409, "slot_booked", f"The slot is {existing.status.value}: its time cannot change."),
            )
        return Decision(Outcome.updated)
    # Re-publishing a withdrawn slot opens it again, so its times are checked like a new one's.
    if moves or existing.status is SlotStatus.withdrawn:
        problem = time_problem(spec, now, rules)
        if problem:
            return Decision(Outcome.rejected, problem)
    return Decision(Outcome.updated, moves=moves)
