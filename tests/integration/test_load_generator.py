"""The benchmark's generator writes straight into the tables (COPY): run it small against the real
schema, so that a new NOT NULL column breaks this test rather than `make bench`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from load_tests.generator import generate
from service.bookings.models import Booking
from service.orientation.models import CareRequest
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
