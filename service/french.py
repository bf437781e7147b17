"""Dates, times and numbers as French readers expect them (the console, patient messages, exports
meant for people), through Babel's fr_FR locale data. Datetimes are shown in the zone they carry."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from babel.dates import format_date, format_datetime, format_time
from babel.numbers import format_currency, format_decimal, format_percent

LOCALE = "fr_FR"


def appointment(value: datetime) -> str:
    """What is read to a patient: "mardi 1 décembre à 14 h 30"."""
    day = format_date(value, "EEEE d MMMM", locale=LOCALE)
    return f"{day} à {clock(value)}"


def clock(value: datetime) -> str:
    """ "14 h 30", "9 h 05" (the French typographic form; "14:30" misreads on the phone)."""
    return f"{value.hour} h {value.minute:02d}"


def short_datetime(value: datetime) -> str:
    """ "01/12/2026 14:30"."""
    return format_datetime(value, "dd/MM/yyyy HH:mm", locale=LOCALE)


def short_time(value: datetime) -> str:
    return format_time(value, "HH:mm", locale=LOCALE)


def long_date(value: date) -> str:
    """ "1 décembre 2026"."""
    return format_date(value, "d MMMM yyyy", locale=LOCALE)


def short_date(value: date) -> str:
    """ "01/12/2026"."""
    return format_date(value, "dd/MM/yyyy", locale=LOCALE)


def number(value: float | int | Decimal, digits: int = 0) -> str:
    """ "12 345,6": a narrow no-break space between thousands, a decimal comma."""
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(value, format=pattern, locale=LOCALE)


def euros(value: Decimal | float) -> str:
    """ "1 234,50 €"."""
    return format_currency(value, "EUR", locale=LOCALE)


def percent(value: float, digits: int = 0) -> str:
    """0.156 -> "15,6 %" (a no-break space before the sign)."""
    pattern = "#,##0" + ("." + "0" * digits if digits else "") + "\u00a0%"
    return format_percent(value, format=pattern, locale=LOCALE)


def minutes(total: int) -> str:
    """A duration: "45 min", "2 h 05"; from two days on, in days and hours: "47 j 2 h" (a deadline
    missed weeks ago read "1130 h 05")."""
    if total < 60:
        return f"{total} min"
    if total < 48 * 60:
        return f"{total // 60} h {total % 60:02d}"
    days, hours = divmod(total // 60, 24)
    return f"{days} j {hours} h"
