"""CPTS size classes (ACI 2019): 1 under 40 000 inhabitants, 2 up to 80 000, 3 up to 175 000,
4 above."""

from __future__ import annotations

from datetime import date, timedelta

SIZE_UPPER_BOUNDS = ((40_000, 1), (80_000, 2), (175_000, 3))
# A contract is signed before it starts: a start date further ahead is a typing mistake that would
# silently shift every contract year (and the compensation envelopes with them).
CONTRACT_START_LEAD = timedelta(days=366)


def contract_start_problem(start: date, today: date) -> str | None:
    if start > today + CONTRACT_START_LEAD:
        return "the contract starts at most a year from today"
    return None


def size_class(population: int, override: int | None = None) -> int:
    """The size class of the contract when it sets one, else the one the population gives.

    A population exactly on a bound belongs to the upper class (40 000 is size 2), except
    175 000, the upper end of size 3, since size 4 is "more than 175 000"."""
    if override is not None:
        return override
    if population > 175_000:
        return 4
    for bound, size in SIZE_UPPER_BOUNDS:
        if population < bound:
            return size
    return 3
