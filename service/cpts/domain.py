"""CPTS size classes (ACI 2019): 1 under 40 000 inhabitants, 2 up to 80 000, 3 up to 175 000,
4 above."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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


# --- targets -------------------------------------------------------------------------------------

# The indicators a CPTS's contract sets targets on, and which way a figure meets its target.
# "min": the figure must reach it (a rate within 24 h of at least 80 %); "max": stay under it.
TARGET_INDICATORS: dict[str, str] = {
    "rate_within_24h": "min",
    "rate_within_48h": "min",
    "fill_rate": "min",
    "participating_professionals": "min",
    "requests_total": "min",
    "unresolved_past_deadline": "max",
    "delay_to_appointment_median_hours": "max",
}
RATIO_TARGETS = frozenset({"rate_within_24h", "rate_within_48h", "fill_rate"})


@dataclass(frozen=True)
class Targets:
    """The targets in force from a date (a CPTS's history is a list of these, oldest first)."""

    effective_from: date
    values: Mapping[str, float]


def targets_on(history: Sequence[Targets], day: date) -> Mapping[str, float]:
    """The targets in force on `day`: the latest set effective on or before it."""
    index = bisect_right([t.effective_from for t in history], day)
    return history[index - 1].values if index else {}


def target_met(indicator: str, target: float, value: float | None) -> bool | None:
    """Whether a figure meets its target (None: no figure, e.g. a rate of an empty month)."""
    if value is None:
        return None
    return value >= target if TARGET_INDICATORS[indicator] == "min" else value <= target


def target_problem(indicator: str, value: float) -> str | None:
    if indicator not in TARGET_INDICATORS:
        return f"unknown indicator '{indicator}' (one of {', '.join(TARGET_INDICATORS)})"
    if indicator in RATIO_TARGETS and not 0 <= value <= 1:
        return f"{indicator} is a rate between 0 and 1 (0.8 for 80 %)"
    if value < 0:
        return f"{indicator} cannot be negative"
    return None


def sas_problem(sas_enabled: bool, finess: str | None) -> str | None:
    """The SAS knows a CPTS by its FINESS (its Organization's IDNST is "1" + the 9 digits)."""
    if sas_enabled and (finess is None or not finess.isdigit()):
        return "joining the SAS takes the CPTS's FINESS (9 digits)"
    return None
