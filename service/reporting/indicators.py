"""The monthly indicators of docs/indicators.md, from one fact row per request. Pure.

The same facts make the pseudonymised activity export, so every figure of a report can be
recomputed from the export of the same period.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from service.cpts.domain import TARGET_INDICATORS, target_met
from service.reporting.schemas import (
    HandlerLine,
    MonthlyReport,
    Professionals,
    ReportHeader,
    SlotsPublished,
    Spread,
    TargetResult,
    UnmetDemand,
)
from service.reporting.stats import percentile, ratio, round_half_up

OUTCOMES = (
    "booked",
    "transfer_15",
    "emergency_department",
    "advice",
    "pharmacy",
    "own_gp",
    "no_solution",
    "patient_declined",
    "unreachable",
    "duplicate",
    "open",
    "unresolved_past_deadline",
)
APPOINTMENT_STATUSES = (
    "fulfilled",
    "noshow",
    "cancelled_by_patient",
    "cancelled_by_practitioner",
    "cancelled_by_handler",
    "outcome_unknown",
)
CHANNELS = ("phone", "sas", "pharmacy", "professional", "other")
AGE_BANDS = ("0-2", "3-15", "16-64", "65-74", "75+", "unknown")
MODALITIES = ("AMB", "VR", "HH")
HOURS = tuple(f"{h:02d}" for h in range(24))
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
UNKNOWN = "unknown"


@dataclass(frozen=True)
class RequestFact:
    """What the report needs to know of one request (no identity)."""

    request_id: uuid.UUID
    received_at: datetime
    deadline_at: datetime
    channel: str
    via_sas: bool
    imported: bool
    motif: str
    motif_classification: str
    red_flagged: bool
    needs_profession: str | None
    needs_specialty: str | None
    needs_modalities: tuple[str, ...]
    patient_pseudonym: str | None
    patient_age_band: str | None
    patient_sex: str | None
    patient_commune: str | None
    final_outcome: str | None  # the outcome of the last deciding event; None: open (orientation.domain)
    oriented_at: datetime | None
    oriented_by: uuid.UUID | None
    appointment_start: datetime | None
    appointment_modality: str | None
    practitioner_profession: str | None
    booking_status: str | None  # of the last confirmed booking: booked or cancelled
    cancelled_side: str | None
    appointment_outcome: str | None


def outcome(fact: RequestFact, cutoff: datetime) -> str:
    """The final outcome; a request without one is open, or unresolved once its deadline passed."""
    if fact.final_outcome is not None:
        return fact.final_outcome
    return "unresolved_past_deadline" if fact.deadline_at < cutoff else "open"


def appointment_status(fact: RequestFact) -> str | None:
    """What became of the request's last confirmed appointment, whatever the request's outcome is
    now: a cancelled appointment counts under its cancellation even once the request reopened."""
    if fact.booking_status is None:
        return None
    if fact.booking_status == "cancelled":
        return f"cancelled_by_{fact.cancelled_side or 'handler'}"
    return fact.appointment_outcome or "outcome_unknown"


def delay_hours(fact: RequestFact) -> float | None:
    """From reception to the appointment, in elapsed hours (booked requests)."""
    if fact.final_outcome != "booked" or fact.appointment_start is None:
        return None
    return (fact.appointment_start - fact.received_at).total_seconds() / 3600


def within(fact: RequestFact, hours: int) -> bool:
    return (
        fact.final_outcome == "booked"
        and fact.appointment_start is not None
        and fact.appointment_start - fact.received_at <= timedelta(hours=hours)
    )


def orientation_minutes(fact: RequestFact) -> float | None:
    if fact.final_outcome is None or fact.oriented_at is None:
        return None
    return (fact.oriented_at - fact.received_at).total_seconds() / 60


def motif_first_level(motif: str) -> str:
    return motif[:3] + ".00.00"


def _count(values: Iterable[str], keys: Sequence[str] = ()) -> dict[str, int]:
    counter = Counter(values)
    result = {key: counter.get(key, 0) for key in keys}
    for key in sorted(k for k in counter if k not in result):
        result[key] = counter[key]
    return result


def _spread_of(values: Sequence[float], digits: int = 2) -> Spread:
    median, p90 = percentile(values, 0.5), percentile(values, 0.9)
    return Spread(
        median=None if median is None else round_half_up(median, digits),
        p90=None if p90 is None else round_half_up(p90, digits),
    )


@dataclass(frozen=True)
class Supply:
    """Slots starting in the month, as aggregated by the database."""

    published: int
    published_seconds: int
    booked: int
    withdrawn: int
    withdrawn_late: int
    professionals_by_profession: Mapping[str, int]


def handlers(facts: Sequence[RequestFact], names: Mapping[uuid.UUID, str]) -> list[HandlerLine]:
    """Per staff member who recorded requests' final orientation: how many, and how fast."""
    minutes: dict[uuid.UUID, list[float]] = {}
    for fact in facts:
        m = orientation_minutes(fact)
        if fact.oriented_by is not None and m is not None:
            minutes.setdefault(fact.oriented_by, []).append(m)
    rows = [
        HandlerLine(
            user_id=str(user),
            name=names.get(user, ""),
            requests_handled=len(values),
            median_handling_minutes=_spread_of(values).median,
        )
        for user, values in minutes.items()
    ]
    return sorted(rows, key=lambda r: (-r.requests_handled, r.name, r.user_id))


def monthly(
    header: ReportHeader,
    facts: Sequence[RequestFact],
    supply: Supply,
    names: Mapping[uuid.UUID, str],
    tz: ZoneInfo,
) -> MonthlyReport:
    """Every indicator of the month, from its request facts (judged at the header's cutoff) and
    the supply of its slots."""
    cutoff = header.cutoff
    outcomes = [outcome(f, cutoff) for f in facts]
    by_outcome = _count(outcomes, OUTCOMES)
    local = [f.received_at.astimezone(tz) for f in facts]
    booked = [f for f in facts if f.final_outcome == "booked"]
    within_24 = sum(1 for f in facts if within(f, 24))
    within_48 = sum(1 for f in facts if within(f, 48))
    needing = by_outcome["booked"] + by_outcome["no_solution"] + by_outcome["unresolved_past_deadline"]
    unmet = [t for t, o in zip(local, outcomes, strict=True) if o in ("no_solution", "unresolved_past_deadline")]
    appointments = _count((s for f in facts if (s := appointment_status(f)) is not None), APPOINTMENT_STATUSES)
    offered = supply.published - supply.withdrawn
    return MonthlyReport(
        **dict(header),
        requests_total=len(facts),
        by_channel=_count((f.channel for f in facts), CHANNELS),
        via_sas=sum(1 for f in facts if f.via_sas),
        imported=sum(1 for f in facts if f.imported),
        booked=by_outcome["booked"],
        transfer_15=by_outcome["transfer_15"],
        emergency_department=by_outcome["emergency_department"],
        advice=by_outcome["advice"],
        pharmacy=by_outcome["pharmacy"],
        own_gp=by_outcome["own_gp"],
        no_solution=by_outcome["no_solution"],
        patient_declined=by_outcome["patient_declined"],
        unreachable=by_outcome["unreachable"],
        duplicate=by_outcome["duplicate"],
        open=by_outcome["open"],
        unresolved_past_deadline=by_outcome["unresolved_past_deadline"],
        by_outcome=by_outcome,
        by_profession=_count(f.needs_profession or UNKNOWN for f in facts),
        by_specialty=_count(f.needs_specialty for f in facts if f.needs_specialty),
        by_modality=_count(m for f in facts for m in f.needs_modalities),
        by_age_band=_count((f.patient_age_band or UNKNOWN for f in facts), AGE_BANDS),
        by_commune=_count(f.patient_commune or UNKNOWN for f in facts),
        by_motif=_count(motif_first_level(f.motif) for f in facts),
        by_hour=_count((f"{t.hour:02d}" for t in local), HOURS),
        by_day_of_week=_count((WEEKDAYS[t.weekday()] for t in local), WEEKDAYS),
        needing_consultation=needing,
        booked_within_24h=within_24,
        rate_within_24h=ratio(within_24, needing),
        booked_within_48h=within_48,
        rate_within_48h=ratio(within_48, needing),
        delay_to_appointment_hours=_spread_of([d for f in facts if (d := delay_hours(f)) is not None]),
        time_to_orientation_minutes=_spread_of([m for f in facts if (m := orientation_minutes(f)) is not None]),
        unmet_demand=UnmetDemand(
            total=len(unmet),
            by_hour=_count((f"{t.hour:02d}" for t in unmet), HOURS),
            by_day_of_week=_count((WEEKDAYS[t.weekday()] for t in unmet), WEEKDAYS),
        ),
        fulfilled=appointments["fulfilled"],
        noshow=appointments["noshow"],
        cancelled_by_patient=appointments["cancelled_by_patient"],
        cancelled_by_practitioner=appointments["cancelled_by_practitioner"],
        cancelled_by_handler=appointments["cancelled_by_handler"],
        outcome_unknown=appointments["outcome_unknown"],
        booked_by_modality=_count((f.appointment_modality or UNKNOWN for f in booked), MODALITIES),
        slots_published=SlotsPublished(count=supply.published, hours=round_half_up(supply.published_seconds / 3600, 2)),
        slots_booked=supply.booked,
        fill_rate=ratio(supply.booked, offered),
        slots_withdrawn=supply.withdrawn,
        slots_withdrawn_late=supply.withdrawn_late,
        participating_professionals=Professionals(
            total=sum(supply.professionals_by_profession.values()),
            by_profession=dict(sorted(supply.professionals_by_profession.items())),
        ),
        handlers=handlers(facts, names),
    )


def target_values(report: MonthlyReport) -> dict[str, float | None]:
    """The month's figure of each indicator a contract may set a target on (cpts.domain)."""
    return {
        "rate_within_24h": report.rate_within_24h,
        "rate_within_48h": report.rate_within_48h,
        "fill_rate": report.fill_rate,
        "participating_professionals": report.participating_professionals.total,
        "requests_total": report.requests_total,
        "unresolved_past_deadline": report.unresolved_past_deadline,
        "delay_to_appointment_median_hours": report.delay_to_appointment_hours.median,
    }


def against_targets(targets: Mapping[str, float], values: Mapping[str, float | None]) -> list[TargetResult]:
    """Each target in force, with the figure and whether it meets it."""
    return [
        TargetResult(
            indicator=indicator,
            comparator=TARGET_INDICATORS[indicator],
            target=target,
            value=values.get(indicator),
            met=target_met(indicator, target, values.get(indicator)),
        )
        for indicator, target in targets.items()
        if indicator in TARGET_INDICATORS
    ]


def weekday_hour_matrix(moments: Iterable[datetime], tz: ZoneInfo) -> list[list[int]]:
    """Counts by local weekday (rows, monday first) and hour (24 columns): the heatmaps."""
    matrix = [[0] * 24 for _ in WEEKDAYS]
    for moment in moments:
        local = moment.astimezone(tz)
        matrix[local.weekday()][local.hour] += 1
    return matrix


def unmet(facts: Sequence[RequestFact], cutoff: datetime) -> list[RequestFact]:
    """The requests left without an answer: no solution, or none by the deadline."""
    return [f for f in facts if outcome(f, cutoff) in ("no_solution", "unresolved_past_deadline")]
