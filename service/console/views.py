"""How the console shows things: the templates, French dates and durations in the CPTS's zone, the
time left before a deadline and its colour, and pydantic's errors as French messages by field."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from starlette.responses import HTMLResponse

from service import french
from service.console import labels
from service.fields import response_timezone
from service.practitioners.domain import display_name
from service.reference.codes import motifs, professions, specialties

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")


def local(value: datetime) -> datetime:
    tz = response_timezone.get()
    return value.astimezone(tz) if tz is not None else value


def clock(value: datetime) -> str:
    return french.clock(local(value))


def moment(value: datetime, now: datetime) -> str:
    """When something came or is due, as a list shows it: "14 h 30" today, "hier 14 h 30", "demain
    9 h 00", else "03/12 14 h 30" (the hour alone was read as today's for a request of last week)."""
    shown = local(value)
    days = (shown.date() - local(now).date()).days
    prefix = {0: "", -1: "hier ", 1: "demain "}.get(days, f"{shown:%d/%m} ")
    return prefix + french.clock(shown)


def day_and_time(value: datetime) -> str:
    return french.appointment(local(value))


def short(value: datetime) -> str:
    return french.short_datetime(local(value))


def birth(value: date | None) -> str:
    return french.short_date(value) if value else ""


@dataclass(frozen=True)
class TimeLeft:
    text: str  # "3 h 05", "dépassée de 12 min"
    level: str  # ok, soon, urgent, overdue: the colour of the queue's badge
    minutes: int


def time_left(deadline: datetime, now: datetime) -> TimeLeft:
    """What is left before the 24-hour deadline, and how urgent that is (the queue's colours)."""
    minutes = int((deadline - now).total_seconds() // 60)
    if minutes < 0:
        return TimeLeft(f"dépassée de {french.minutes(-minutes)}", "overdue", minutes)
    level = "urgent" if minutes < 120 else "soon" if minutes < 360 else "ok"
    return TimeLeft(french.minutes(minutes), level, minutes)


def practitioner_name(practitioner: Any) -> str:
    return display_name(practitioner.family_name, practitioner.given_name, practitioner.profession)


def profession_label(profession: str | None, specialty: str | None = None) -> str:
    label = professions().get(profession or "10", "")
    if specialty:
        label += f" ({specialties().get(specialty, specialty)})"
    return label


def motif_label(code: str | None) -> str:
    motif = motifs().get(code or "")
    return motif.label if motif else (code or "")


def field_errors(error: ValidationError, prefix: tuple[str, ...] = ()) -> dict[str, str]:
    """`{"patient.birth_date": "Date non valable (jj/mm/aaaa)."}`: the first message of each field, in
    French; errors of a whole object land on the object's name ("" for the form)."""
    found: dict[str, str] = {}
    for item in error.errors():
        location = [str(part) for part in item.get("loc", ()) if not isinstance(part, int)]
        key = ".".join([*prefix, *location])
        found.setdefault(key, labels.validation_text(dict(item)))
    return found


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page or fragment, with what every template uses (labels, the CSRF token, formatting)."""
    context.setdefault("principal", getattr(request.state, "principal", None))
    return TEMPLATES.TemplateResponse(
        request,
        template,
        {"csrf": getattr(request.state, "csrf", ""), "labels": labels, "new_key": lambda: str(uuid.uuid4()), **context},
        status_code=status_code,
    )


def refusal(request: Request, code: str, status_code: int, **context: Any) -> HTMLResponse:
    """The service refused: the French text, in the place the page reserves for it (the 4xx rolls
    the request's transaction back)."""
    return render(request, "_problem.html", status_code=status_code, message=labels.problem_text(code), **context)


def decimal_field(value: Decimal | float | None) -> str:
    """A number as a form's field shows it: with a decimal comma ("45,00") but without the
    thousands' spaces, so that it is sent back as it reads."""
    return "" if value is None else str(value).replace(".", ",")


TEMPLATES.env.filters.update(
    clock=clock,
    decimal_field=decimal_field,
    day_and_time=day_and_time,
    short=short,
    birth=birth,
    euros=french.euros,
    number=french.number,
    practitioner=practitioner_name,
)
TEMPLATES.env.globals.update(profession_label=profession_label, motif_label=motif_label)
