"""Exact money: integer cents, explicit rounding, allocations that sum to the cent. Pure."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from decimal import Decimal
from fractions import Fraction
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def round_cents(amount: Fraction) -> int:
    """Half-up to the cent (amounts are never negative)."""
    return math.floor(amount + Fraction(1, 2))


def largest_remainder(total: int, weights: Mapping[K, Fraction | int]) -> dict[K, int]:
    """Split `total` cents in proportion to `weights` so that the parts sum exactly to `total`:
    each part gets the floor of its exact share, and the cents left go one by one to the largest
    remainders (ties broken by the order of `weights`, which callers make deterministic)."""
    keys = list(weights)
    weight_sum = sum((Fraction(w) for w in weights.values()), Fraction(0))
    if total == 0 or weight_sum == 0:
        return dict.fromkeys(keys, 0)
    shares = {k: Fraction(total) * Fraction(weights[k]) / weight_sum for k in keys}
    parts = {k: math.floor(shares[k]) for k in keys}
    left = total - sum(parts.values())
    rank = {k: i for i, k in enumerate(keys)}
    by_remainder = sorted(keys, key=lambda k: (-(shares[k] - parts[k]), rank[k]))
    for k in by_remainder[:left]:
        parts[k] += 1
    return parts


def euros(cents: int) -> str:
    """Cents as a decimal string in euros with two decimals: 4500 -> "45.00"."""
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def cents_of(amount: str | Decimal) -> int:
    """A decimal amount in euros (at most two decimals) in cents."""
    value = Decimal(amount)
    cents = value * 100
    if cents != cents.to_integral_value():
        raise ValueError("an amount has at most two decimals")
    return int(cents)
