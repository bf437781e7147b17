"""Orientation rules: pure functions, no I/O, `now` passed in.

A request (demande de soins non programmés) starts its 24-hour clock when it is received. Its
status is derived from its append-only orientation log, folded through a transitions table.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from service.accounts.domain import Role
from service.errors import Conflict, Forbidden, Invalid
from service.reference.codes import (
    PHYSICIAN,
    SEVERITY,
    AgeRule,
    Classification,
    age_rules,
    motif_classification,
)

MAX_BACKDATING = timedelta(hours=24)


class RequestStatus(StrEnum):
    open = "open"
    transfer_required = "transfer_required"
    booked = "booked"
    closed = "closed"


class EventKind(StrEnum):
    booked = "booked"
    transfer_15 = "transfer_15"
    emergency_department = "emergency_department"
    advice = "advice"
    pharmacy = "pharmacy"
    own_gp = "own_gp"
    no_solution = "no_solution"
    patient_declined = "patient_declined"
    unreachable = "unreachable"
    duplicate = "duplicate"
    reopened = "reopened"
    red_flag_override = "red_flag_override"


# What `POST /v1/requests/{id}/orientations` may record (booked and reopened come from bookings).
ORIENTATION_OUTCOMES = frozenset(
    {
        EventKind.transfer_15,
        EventKind.emergency_department,
        EventKind.advice,
        EventKind.pharmacy,
        EventKind.own_gp,
        EventKind.no_solution,
        EventKind.patient_declined,
        EventKind.unreachable,
        EventKind.duplicate,
    }
)
# Events that are an outcome of the request (docs/indicators.md, "Request outcome").
OUTCOME_KINDS = ORIENTATION_OUTCOMES | {EventKind.booked}
# Events that open a request again and so end the outcome before them (docs/indicators.md).
REOPENING_KINDS = frozenset({EventKind.reopened, EventKind.red_flag_override})
# The events that decide a request's final outcome: the last of them does.
DECIDING_KINDS = OUTCOME_KINDS | REOPENING_KINDS
# What a red-flagged request may be closed with before a physician overrides the flag.
RED_FLAG_OUTCOMES = frozenset(
    {
        EventKind.transfer_15,
        EventKind.emergency_department,
        EventKind.patient_declined,
        EventKind.unreachable,
        EventKind.duplicate,
    }
)

# The request state machine: which event may follow which status, and where it leads.
TRANSITIONS: dict[RequestStatus, dict[EventKind, RequestStatus]] = {
    RequestStatus.open: {
        EventKind.booked: RequestStatus.booked,
        **dict.fromkeys(ORIENTATION_OUTCOMES, RequestStatus.closed),
    },
    RequestStatus.transfer_required: {
        EventKind.red_flag_override: RequestStatus.open,
        **dict.fromkeys(RED_FLAG_OUTCOMES, RequestStatus.closed),
    },
    RequestStatus.booked: {EventKind.reopened: RequestStatus.open},
    # A closed request takes corrections (a new outcome event), and a request the 15 sent back
    # reopens when its regulating physician overrides the red flag.
    RequestStatus.closed: {
        EventKind.red_flag_override: RequestStatus.open,
        **dict.fromkeys(ORIENTATION_OUTCOMES, RequestStatus.closed),
    },
}


def queue_rank(status: str) -> int:
    """Red-flagged requests come first in the queue, whatever their deadline (then by deadline)."""
    return 0 if status == RequestStatus.transfer_required else 1


def initial_status(red_flagged: bool) -> RequestStatus:
    return RequestStatus.transfer_required if red_flagged else RequestStatus.open


@dataclass(frozen=True)
class OverrideDecision:
    regulating_physician: str  # the RPPS the orientation log records as the decision's author
    basis: str  # "regulator": a regulator's own account; "sas_regulation": the SAS's regulator, recorded


def override_decision(
    role: str, own_rpps: str | None, stated_rpps: str | None, via_sas: bool, sas_regulator: str | None
) -> OverrideDecision:
    """Who may lift a red flag. It is a medical decision: a regulating physician signed in with a
    regulator's account takes it under their own RPPS; for a request the SAS regulated, a handler
    may record the decision of the regulating physician named on the request, and no one else's."""
    if role == Role.regulator and own_rpps is not None:
        if stated_rpps is not None and stated_rpps != own_rpps:
            raise Invalid(
                "regulating_physician_mismatch", "A regulator lifts a red flag under their own RPPS, not another's."
            )
        return OverrideDecision(own_rpps, "regulator")
    if via_sas and sas_regulator is not None and stated_rpps == sas_regulator:
        return OverrideDecision(sas_regulator, "sas_regulation")
    raise Forbidden(
        "regulator_required",
        "Lifting a red flag is a medical decision: it takes a regulator's account, or, for a request the SAS "
        "regulated, the RPPS of the regulating physician named on the request.",
    )


def statuses_allowing(kind: EventKind) -> list[str]:
    """The statuses from which `kind` may be logged (for a statement that checks it in SQL)."""
    return sorted(status.value for status, moves in TRANSITIONS.items() if kind in moves)


def single_target(kind: EventKind) -> RequestStatus:
    """The status `kind` leads to from every status allowing it, for a statement that checks the
    current status in SQL (`statuses_allowing`) and writes the next one without reading it first."""
    targets = {moves[kind] for moves in TRANSITIONS.values() if kind in moves}
    if len(targets) != 1:
        raise ValueError(f"'{kind.value}' leads to {sorted(t.value for t in targets)}, not to one status")
    return targets.pop()


def refuse_if_red_flagged(status: RequestStatus) -> None:
    """A red-flagged request is neither offered slots nor booked until it is oriented to the 15 or
    a regulating physician lifts the flag."""
    if status is RequestStatus.transfer_required:
        raise Invalid(
            "red_flag_transfer_required",
            "This request has a red flag: orient it to the 15 (or emergency department), or have a regulating "
            "physician override the flag.",
        )


def next_status(status: RequestStatus, kind: EventKind) -> RequestStatus:
    """Where `kind` leads from `status`, or the refusal a caller should get."""
    target = TRANSITIONS[status].get(kind)
    if target is not None:
        return target
    refuse_if_red_flagged(status)
    if status is RequestStatus.booked:
        raise Conflict("request_booked", "The request is booked: cancel the booking first.")
    if status is RequestStatus.closed:
        raise Conflict("request_closed", "The request is closed.")
    raise Conflict("invalid_transition", f"'{kind.value}' cannot follow status '{status.value}'.")


def final_outcome(kinds: Iterable[EventKind | str]) -> EventKind | None:
    """The outcome of the request's last deciding event; None (open) when that event opened the
    request again: a booking cancelled and reopened, or a transfer the 15 sent back."""
    last: EventKind | None = None
    for kind in kinds:
        if kind in DECIDING_KINDS:
            last = EventKind(kind)
    return None if last is None or last in REOPENING_KINDS else last


# Unless told otherwise, unscheduled care is a general practitioner's consultation.
GENERAL_MEDICINE = "SM54"


def default_needs(profession: str | None, specialty: str | None) -> tuple[str, str | None]:
    """Unless told otherwise, unscheduled care is a general practitioner's consultation."""
    profession = profession or PHYSICIAN
    if profession == PHYSICIAN and specialty is None:
        specialty = GENERAL_MEDICINE
    return profession, specialty


def deadline(received_at: datetime, window_hours: int) -> datetime:
    """Elapsed time, not clock time: across a daylight-saving change the 24 h are 23 or 25 clock
    hours. Computed in UTC: adding to a datetime in a ZoneInfo zone would add wall-clock hours."""
    return received_at.astimezone(UTC) + timedelta(hours=window_hours)


def received_at_problem(received_at: datetime, now: datetime) -> str | None:
    if received_at > now:
        return "received_at is in the future"
    if now - received_at > MAX_BACKDATING:
        return "received_at may be back-dated by 24 hours at most"
    return None


def classify(motif: str, overrides: Mapping[str, str] | None = None) -> Classification:
    """The CPTS's own classification of a motif when it has one, else the project's."""
    if overrides and motif in overrides:
        return Classification(overrides[motif])
    return motif_classification()[motif]


def age_in(unit: str, birth_date: date, day: date) -> int:
    """Whole days, months or years from the birth date to `day`."""
    if unit == "d":
        return (day - birth_date).days
    months = (day.year - birth_date.year) * 12 + day.month - birth_date.month - (day.day < birth_date.day)
    return months if unit == "m" else months // 12


def age_rule_applies(rule: AgeRule, motif: str, birth_date: date | None, day: date) -> bool:
    if birth_date is None or not rule.matches_motif(motif):
        return False
    if rule.min_age is not None and age_in(rule.min_age.unit, birth_date, day) < rule.min_age.amount:
        return False
    return rule.max_age is None or age_in(rule.max_age.unit, birth_date, day) < rule.max_age.amount


@dataclass(frozen=True)
class Screening:
    classification: Classification
    age_rules: tuple[str, ...]  # the codes of the age rules that raised it


def screen(motif: str, overrides: Mapping[str, str] | None, birth_date: date | None, day: date) -> Screening:
    """The motif's classification (the CPTS's own, else the project's), raised by the age rules that
    apply to the patient on the day of the call (age_rules.csv); never lowered."""
    classification = classify(motif, overrides)
    applied = []
    for rule in age_rules():
        if age_rule_applies(rule, motif, birth_date, day):
            applied.append(rule.code)
            if SEVERITY[rule.classification] > SEVERITY[classification]:
                classification = rule.classification
    return Screening(classification, tuple(applied))


def requires_transfer(classification: Classification, flags: Iterable[str]) -> bool:
    return classification is Classification.transfer_15 or any(True for _ in flags)


AGE_BANDS = ((0, 2, "0-2"), (3, 15, "3-15"), (16, 64, "16-64"), (65, 74, "65-74"), (75, 200, "75+"))


def age_on(birth_date: date, day: date) -> int:
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def age_band(birth_date: date | None, day: date) -> str | None:
    """Age band at `day` (docs/indicators.md: 0-2, 3-15, 16-64, 65-74, 75+)."""
    if birth_date is None:
        return None
    age = age_on(birth_date, day)
    for low, high, label in AGE_BANDS:
        if low <= age <= high:
            return label
    return None


def ins_problem(identity_status: str, ins: str | None) -> str | None:
    """Identity-vigilance rule (RNIV): the INS is recorded only for a qualified identity."""
    if ins is not None and identity_status != "QUAL":
        return "an INS is only recorded for a qualified identity (QUAL)"
    return None


def name_key(text: str) -> str:
    """Upper-case letters only, accents removed: "Lefèvre-Dupont" and "LEFEVRE DUPONT" match."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isalpha() and not unicodedata.combining(c)).upper()


def phone_key(phone: str | None) -> str | None:
    """A phone number's last nine digits: "06 12 34 56 78", "+33 6 12 34 56 78" and "0033612345678"
    are the same number (nine digits after the trunk 0 or the country code in France)."""
    if not phone:
        return None
    digits = "".join(c for c in phone if c.isdigit())
    return digits[-9:] if len(digits) >= 9 else None


def notify_problem(channels: Sequence[str], phone: str | None, email: str | None) -> str | None:
    """A patient is told of the booking only where they can be reached."""
    if "sms" in channels and not phone:
        return "an SMS needs the patient's phone number"
    if "email" in channels and not email:
        return "an e-mail needs the patient's e-mail address"
    return None


def identity_key(
    family_name: str | None, given_name: str | None, birth_date: date | None, ins: str | None, phone: str | None
) -> str | None:
    """What identifies a patient across calls: the INS when qualified, else the names and birth
    date, else the phone number; None when the caller stayed anonymous."""
    if ins:
        return f"ins:{ins}"
    if family_name and given_name and birth_date:
        return f"id:{name_key(family_name)}|{name_key(given_name)}|{birth_date.isoformat()}"
    key = phone_key(phone)
    if key:
        return f"tel:{key}"
    return None


def pseudonym(key: bytes, identity: str | None) -> str | None:
    """Keyed HMAC: stable for a CPTS across months, not reversible without its key."""
    if identity is None:
        return None
    return hmac.new(key, identity.encode(), hashlib.sha256).hexdigest()[:32]
