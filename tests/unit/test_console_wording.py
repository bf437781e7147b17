"""How the console words durations and moments for a handler: a deadline missed long ago in days,
a request of another day with its day (the hour alone was read as today's), a value out of bounds
with its bound."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel, Field, ValidationError

from service import french
from service.console.views import field_errors, moment, time_left
from service.fields import response_timezone

PARIS = ZoneInfo("Europe/Paris")


def test_a_duration_reads_in_minutes_then_hours_then_days_and_hours() -> None:
    assert french.minutes(45) == "45 min"
    assert french.minutes(125) == "2 h 05"
    assert french.minutes(47 * 60 + 59) == "47 h 59"
    assert french.minutes(48 * 60) == "2 j 0 h"
    assert french.minutes(1130 * 60 + 5) == "47 j 2 h"


def test_a_deadline_missed_weeks_ago_reads_in_days() -> None:
    now = datetime(2026, 12, 7, 16, 0, tzinfo=UTC)
    left = time_left(now - timedelta(hours=1130, minutes=5), now)
    assert (left.text, left.level) == ("dépassée de 47 j 2 h", "overdue")
    assert time_left(now + timedelta(minutes=90), now).text == "1 h 30"


def test_a_moment_names_its_day_unless_it_is_today_in_the_cptss_zone() -> None:
    token = response_timezone.set(PARIS)
    try:
        now = datetime(2026, 12, 7, 23, 30, tzinfo=UTC)  # 8 December, 0 h 30 in Paris
        assert moment(datetime(2026, 12, 7, 23, 10, tzinfo=UTC), now) == "0 h 10"
        assert moment(datetime(2026, 12, 7, 22, 50, tzinfo=UTC), now) == "hier 23 h 50"  # UTC's today
        assert moment(datetime(2026, 12, 9, 8, 0, tzinfo=UTC), now) == "demain 9 h 00"
        assert moment(datetime(2026, 11, 30, 13, 5, tzinfo=UTC), now) == "30/11 14 h 05"
        # Across the spring change: the local day, not 24-hour steps, decides "hier".
        spring = datetime(2026, 3, 29, 10, 0, tzinfo=UTC)  # 12 h 00 in Paris (CEST)
        assert moment(datetime(2026, 3, 28, 22, 30, tzinfo=UTC), spring) == "hier 23 h 30"
        assert moment(datetime(2026, 3, 28, 23, 30, tzinfo=UTC), spring) == "0 h 30"
    finally:
        response_timezone.reset(token)


def test_a_value_out_of_bounds_is_refused_with_its_bound() -> None:
    class Settings(BaseModel):
        hours: int = Field(ge=1, le=168)
        share: float = Field(gt=0, lt=0.5)
        population: int = Field(le=2_000_000)

    with pytest.raises(ValidationError) as too_large:
        Settings(hours=200, share=0.75, population=3_000_000)
    assert field_errors(too_large.value) == {
        "hours": "Valeur trop grande : 168 au plus.",
        "share": "Valeur trop grande : elle doit rester sous 0,50.",
        "population": "Valeur trop grande : 2\u202f000\u202f000 au plus.",
    }
    with pytest.raises(ValidationError) as too_small:
        Settings(hours=0, share=0, population=1)
    assert field_errors(too_small.value) == {
        "hours": "Valeur trop petite : 1 au moins.",
        "share": "Valeur trop petite : elle doit dépasser 0.",
    }
