"""The benchmark's generator writes straight into the tables (COPY): run it small against the real
schema, so that a new NOT NULL column breaks this test rather than `make bench`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from load_tests.generator import generate
from service.bookings.models import Booking
from service.orientation.models import CareRequest
from service.reporting import repository
from service.reporting import service as reporting
from service.reporting.periods import Month


async def test_the_generator_fills_a_month_the_reports_read(
    database_url: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    now = datetime.now(UTC)
    month = Month.of(now.date()).plus(-1)
    generated = await generate(
        database_url, seed=3, name=f"CPTS générée {uuid.uuid4().hex[:6]}", practitioners=8, history=month,
        history_requests=120, history_slots=300, future_days=1, future_slots_per_day=10,
    )  # fmt: skip
    async with sessionmaker() as session:
        requests = await session.scalar(select(func.count()).where(CareRequest.cpts_id == generated.cpts_id))
        references = await session.scalar(
            select(func.count()).where(Booking.cpts_id == generated.cpts_id, Booking.reference.is_not(None))
        )
        report = await reporting.monthly(session, await reporting.period(session, generated.cpts_id, month, now))
    assert requests == 120
    assert report.requests_total == 120
    assert references == report.booked > 0


async def test_the_facts_read_in_small_batches_are_the_month_read_at_once(
    database_url: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The keyset batches of `stream_request_facts` neither skip nor repeat a request at their
    edges, even among requests received at the same instant."""
    month = Month.of(datetime.now(UTC).date()).plus(-1)
    generated = await generate(
        database_url, seed=5, name=f"CPTS lots {uuid.uuid4().hex[:6]}", practitioners=4, history=month,
        history_requests=40, history_slots=60, future_days=0,
    )  # fmt: skip
    async with sessionmaker() as session:
        period = await reporting.period(session, generated.cpts_id, month, datetime.now(UTC))
        # A third of the month's requests arrive at one instant (a batch edge falls among them).
        await session.execute(
            text(
                "UPDATE care_request SET received_at = CAST(:at AS timestamptz), "
                "deadline_at = CAST(:at AS timestamptz) + interval '24 hours' WHERE cpts_id = :cpts "
                "AND id IN (SELECT id FROM care_request WHERE cpts_id = :cpts ORDER BY id LIMIT 13)"
            ),
            {"at": period.start + (period.end - period.start) / 2, "cpts": generated.cpts_id},
        )
        await session.commit()
        window = (generated.cpts_id, period.start, period.end)
        at_once = [f async for f in repository.stream_request_facts(session, *window, batch=1000)]
        in_threes = [f async for f in repository.stream_request_facts(session, *window, batch=3)]
    assert len(at_once) == 40
    assert [f.request_id for f in in_threes] == [f.request_id for f in at_once]
    assert at_once == sorted(at_once, key=lambda f: (f.received_at, f.request_id))
