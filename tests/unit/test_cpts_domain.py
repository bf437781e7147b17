from __future__ import annotations

import pytest

from service.cpts.domain import size_class


@pytest.mark.parametrize(
    ("population", "size"),
    [(0, 1), (20_000, 1), (39_999, 1), (40_000, 2), (79_999, 2), (80_000, 3), (175_000, 3), (175_001, 4)],
)
def test_size_class_from_population(population: int, size: int) -> None:
    assert size_class(population) == size


def test_contract_override_wins() -> None:
    assert size_class(30_000, override=3) == 3
