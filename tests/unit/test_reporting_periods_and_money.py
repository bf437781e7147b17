from __future__ import annotations

from datetime import UTC, date, datetime
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest

from service.money import cents_of, euros, largest_remainder, round_cents
from service.reporting.periods import Month, contract_year_months, contract_year_start
from service.reporting.stats import percentile, ratio

PARIS = ZoneInfo("Europe/Paris")


def test_a_month_runs_from_local_midnight_to_local_midnight() -> None:
    start, end = Month(2026, 11).bounds(PARIS)
    assert start == datetime(2026, 10, 31, 23, 0, tzinfo=UTC)
    assert end == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    half_past_midnight = datetime(2026, 11, 1, 0, 30, tzinfo=PARIS)
    assert start <= half_past_midnight < end  # 23:30 UTC on 31 October is a November request


def test_a_month_with_a_clock_change_is_one_hour_shorter() -> None:
    start, end = Month(2026, 3).bounds(PARIS)
    assert (start, end) == (datetime(2026, 2, 28, 23, 0, tzinfo=UTC), datetime(2026, 3, 31, 22, 0, tzinfo=UTC))
    assert (end - start).total_seconds() == (31 * 24 - 1) * 3600


def test_month_arithmetic_and_parsing() -> None:
    assert Month(2026, 12).next() == Month(2027, 1)
    assert Month(2026, 11).plus(3) == Month(2027, 2)
    assert Month.parse("2026-04") == Month(2026, 4)
    assert str(Month(2026, 4)) == "2026-04"
    for bad in ("2026-13", "2026-4", "26-04", "2026-00"):
        with pytest.raises(ValueError, match="YYYY-MM"):
            Month.parse(bad)
    for out_of_range in ("0000-01", "1999-12", "9999-12"):
        with pytest.raises(ValueError, match="year"):
            Month.parse(out_of_range)


def test_contract_years() -> None:
    assert contract_year_start(date(2024, 7, 1), date(2026, 3, 15)) == date(2025, 7, 1)
    assert contract_year_start(date(2024, 7, 1), date(2026, 7, 1)) == date(2026, 7, 1)
    assert contract_year_months(date(2025, 7, 1)) == [Month(2025, 7).plus(i) for i in range(12)]
    # Starting mid-month: the months whose first day falls in the year.
    assert contract_year_months(date(2025, 7, 15))[0] == Month(2025, 8)
    assert contract_year_months(date(2025, 7, 15))[-1] == Month(2026, 7)
    assert contract_year_start(date(2024, 2, 29), date(2025, 3, 1)) == date(2025, 2, 28)


def test_largest_remainder_sums_exactly() -> None:
    assert largest_remainder(1000, {"a": 1, "b": 1, "c": 1}) == {"a": 334, "b": 333, "c": 333}
    assert largest_remainder(100, {"a": 2, "b": 3, "c": 5}) == {"a": 20, "b": 30, "c": 50}
    assert list(largest_remainder(10, dict.fromkeys("abcdef", 1)).values()) == [2, 2, 2, 2, 1, 1]
    # 7 cents in proportion 1:1:5 -> exact 1, 1, 5; and 8 -> 1.14, 1.14, 5.71: the cent left goes to 5.71.
    assert largest_remainder(8, {"a": 1, "b": 1, "c": 5}) == {"a": 1, "b": 1, "c": 6}
    assert largest_remainder(0, {"a": 1}) == {"a": 0}
    assert largest_remainder(5, {"a": 0}) == {"a": 0}


def test_money_formats_and_rounding() -> None:
    assert euros(4500) == "45.00"
    assert euros(5) == "0.05"
    assert cents_of("45.5") == 4550
    assert cents_of("0.01") == 1
    with pytest.raises(ValueError, match="two decimals"):
        cents_of("1.005")
    assert round_cents(Fraction(449, 2)) == 225  # 224.5 -> 225, half-up
    assert round_cents(Fraction(4499, 20)) == 225  # 224.95
    assert round_cents(Fraction(2249, 10)) == 225  # 224.9


def test_percentile_and_ratio() -> None:
    assert percentile([10.0, 30.0, 24.0], 0.5) == 24.0
    assert percentile([10.0, 30.0, 24.0], 0.9) == pytest.approx(28.8)
    assert percentile([], 0.5) is None
    assert ratio(2, 5) == 0.4
    assert ratio(2, 3) == 0.6667
    assert ratio(1, 0) is None
