"""Reporting periods in the CPTS's own timezone: months, contract years. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

MONTH_PATTERN = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
# Reports cover the years a CPTS can have existed in (and keep date arithmetic in range).
MIN_YEAR, MAX_YEAR = 2000, 2999


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        match = MONTH_PATTERN.match(text)
        if not match:
            raise ValueError("a month is written YYYY-MM")
        year = int(match.group(1))
        if not MIN_YEAR <= year <= MAX_YEAR:
            raise ValueError(f"the year is between {MIN_YEAR} and {MAX_YEAR}")
        return cls(year, int(match.group(2)))

    @classmethod
    def of(cls, day: date) -> Month:
        return cls(day.year, day.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def plus(self, months: int) -> Month:
        index = self.year * 12 + (self.month - 1) + months
        return Month(index // 12, index % 12 + 1)

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """[start, end) in UTC of the month in the local timezone: 00:30 on the 1st in Paris
        (23:30 UTC the day before) belongs to the new month."""
        return local_midnight(self.first_day, tz), local_midnight(self.next().first_day, tz)

    def is_over(self, now: datetime, tz: ZoneInfo) -> bool:
        return now >= self.bounds(tz)[1]


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tz).astimezone(UTC)


def anniversary(contract_start: date, year: int) -> date:
    """The contract start date in `year` (29 February becomes 28 February in common years)."""
    try:
        return contract_start.replace(year=year)
    except ValueError:
        return contract_start.replace(year=year, day=28)


def contract_year_start(contract_start: date, day: date) -> date:
    """The anniversary that opens the contract year containing `day`."""
    start = anniversary(contract_start, day.year)
    return start if start <= day else anniversary(contract_start, day.year - 1)


def contract_year_months(year_start: date) -> list[Month]:
    """The 12 calendar months whose first day falls in the contract year [year_start, +1 year)."""
    first = Month.of(year_start) if year_start.day == 1 else Month.of(year_start).next()
    return [first.plus(i) for i in range(12)]


def contract_year_of_month(contract_start: date, month: Month) -> date:
    """The start of the contract year a month belongs to (by its first day)."""
    return contract_year_start(contract_start, month.first_day)
