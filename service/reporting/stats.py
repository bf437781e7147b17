"""Small exact statistics used by the indicators. Pure."""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between the closest ranks, as PostgreSQL's percentile_cont."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ratio(numerator: int, denominator: int, digits: int = 4) -> float | None:
    """numerator / denominator rounded half-up, or None when there is nothing to divide by."""
    if denominator == 0:
        return None
    return round_half_up(Fraction(numerator, denominator), digits)


def round_half_up(value: Fraction | float, digits: int) -> float:
    """Half-up on the value as written (a float's shortest decimal form, as `repr` gives it)."""
    exact = (
        Decimal(value.numerator) / Decimal(value.denominator) if isinstance(value, Fraction) else Decimal(repr(value))
    )
    return float(exact.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))
