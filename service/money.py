"""Exact money: integer cents, explicit rounding, allocations that sum to the cent. Pure."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from decimal import Decimal
from fractions import Fraction
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def round_cents(amount: Fraction) -> int:
    """Half-up to the cent (amounts are never negative)."""
    return (2 * amount.numerator + amount.denominator) // (2 * amount.denominator)


def largest_remainder(total: int, weights: Mapping[K, int]) -> dict[K, int]:
    """Split `total` cents in proportion to integer `weights` so that the parts sum exactly to
    `total`: each part gets the floor of its exact share, and the cents left go one by one to the
    largest remainders (ties broken by the order of `weights`, which callers make deterministic).
    All in integers: the share of k is total * w_k / W, its remainder (total * w_k) mod W."""
    keys = list(weights)
    weight_sum = sum(weights.values())
    if total == 0 or weight_sum == 0:
        return dict.fromkeys(keys, 0)
    parts: dict[K, int] = {}
    remainders: list[tuple[int, int, K]] = []
    for rank, k in enumerate(keys):
        part, remainder = divmod(total * weights[k], weight_sum)
        parts[k] = part
        remainders.append((-remainder, rank, k))
    left = total - sum(parts.values())
    for _, _, k in sorted(remainders)[:left]:
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
