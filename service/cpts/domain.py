"""CPTS size classes (ACI 2019): 1 under 40 000 inhabitants, 2 up to 80 000, 3 up to 175 000,
4 above."""

from __future__ import annotations

SIZE_UPPER_BOUNDS = ((40_000, 1), (80_000, 2), (175_000, 3))


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
