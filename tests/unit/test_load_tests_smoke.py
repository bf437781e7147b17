"""The benchmarks are not run by `make test`; this only checks that they import and generate
valid work."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from load_tests.bench_publish import batch_items, practitioners_body
from load_tests.harness import BenchTenant, percentile
from service.practitioners.schemas import PractitionerCreate
from service.slots.schemas import SlotItem


def test_publication_benchmark_generates_valid_non_overlapping_batches() -> None:
    bodies = practitioners_body(7)
    for body in bodies:
        PractitionerCreate.model_validate(body)
    tenant = BenchTenant("c", "t", "h")
    tenant.practitioners = [{"id": str(uuid.uuid4()), "sites": [{"id": str(uuid.uuid4())}]} for _ in bodies]
    first = datetime(2030, 1, 7, 6, tzinfo=UTC)
    items = [item for b in range(3) for item in batch_items(tenant, b, 100, first)]
    slots = [SlotItem.model_validate(item) for item in items]
    assert len({s.external_id for s in slots}) == 300
    by_practitioner: dict[uuid.UUID, list[tuple[datetime, datetime]]] = {}
    for slot in slots:
        by_practitioner.setdefault(slot.practitioner_id, []).append((slot.start, slot.end))
    for ranges in by_practitioner.values():
        ranges.sort()
        assert all(a[1] <= b[0] for a, b in pairwise(ranges))
    assert max(s.end for s in slots) - first < timedelta(days=2)


def test_percentile() -> None:
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 100) == 4.0
