"""Each rule that SQL applies is written once (the `predicates` modules, from the domain's
constants); where Python applies it too, both versions must agree. One table of cases, run through
PostgreSQL itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.bookings import predicates as booking_rules
from service.bookings.domain import ended_hold_status
from service.db import sql_fragment
from service.orientation import predicates as request_rules
from service.orientation.domain import classify, requires_transfer
from service.slots import predicates as slot_rules
from service.slots.domain import effective_status, hold_lapsed
from service.slots.predicates import ALIAS_S, NOW

T = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # the spring clock change in Paris, for good measure
HOUR = timedelta(hours=1)
START = T + 3 * HOUR


@dataclass(frozen=True)
class SlotCase:
    name: str
    status: str
    hold_expires_at: datetime | None
    start_at: datetime
    visibility: tuple[str, ...]
    withdrawn_at: datetime | None
    # what the rules must say
    available: bool
    offerable: bool
    taken: bool
    withdrawn_late: bool


SLOT_CASES = [
    SlotCase("free", "free", None, START, ("CPTS", "SNP"), None, True, True, False, False),
    SlotCase("held", "held", T + timedelta(seconds=60), START, ("CPTS", "SNP"), None, False, False, True, False),
    SlotCase("lapsed hold", "held", T - timedelta(seconds=1), START, ("SNP",), None, True, True, False, False),
    SlotCase("hold lapsing now", "held", T, START, ("CPTS",), None, True, True, False, False),
    SlotCase("hold with no expiry", "held", None, START, ("CPTS", "SNP"), None, False, False, True, False),
    SlotCase("released", "free", None, START, ("CPTS", "SNP"), None, True, True, False, False),
    SlotCase("booked", "booked", None, START, ("CPTS", "SNP"), None, False, False, True, False),
    SlotCase("withdrawn early", "withdrawn", None, START, ("CPTS",), START - 48 * HOUR, False, False, False, False),
    SlotCase("withdrawn late", "withdrawn", None, START, ("CPTS",), START - 2 * HOUR, False, False, False, True),
    SlotCase("withdrawn at 24 h", "withdrawn", None, START, ("CPTS",), START - 24 * HOUR, False, False, False, False),
    SlotCase("started", "free", None, T - timedelta(minutes=10), ("CPTS", "SNP"), None, True, False, False, False),
    SlotCase("starting now", "free", None, T, ("CPTS", "SNP"), None, True, False, False, False),
    SlotCase("public only", "free", None, START, ("PUBLIC", "PRO"), None, True, False, False, False),
]  # fmt: skip

_SLOT_QUERY = text(
    f"""
    SELECT {slot_rules.AVAILABLE_SQL}, {slot_rules.OFFERABLE_SQL},
           {sql_fragment(slot_rules.taken(ALIAS_S, NOW))},
           {sql_fragment(slot_rules.withdrawn_late(ALIAS_S))},
           {sql_fragment(slot_rules.effective_status(ALIAS_S, NOW))},
           {sql_fragment(slot_rules.lapsed_hold(ALIAS_S, NOW))},
           {booking_rules.ENDED_HOLD_STATUS_SQL.replace("booking.", "s.")}
    FROM (SELECT CAST(:status AS text) AS status, CAST(:hold_expires_at AS timestamptz) AS hold_expires_at,
                 CAST(:start_at AS timestamptz) AS start_at, CAST(:visibility AS text[]) AS visibility,
                 CAST(:withdrawn_at AS timestamptz) AS withdrawn_at) AS s
    """  # noqa: S608 - the rules under test, no input
)


async def evaluate(session: AsyncSession, case: SlotCase) -> tuple[Any, ...]:
    params = {
        "status": case.status,
        "hold_expires_at": case.hold_expires_at,
        "start_at": case.start_at,
        "visibility": list(case.visibility),
        "withdrawn_at": case.withdrawn_at,
        "now": T,
    }
    return tuple((await session.execute(_SLOT_QUERY, params)).one())


@pytest.mark.parametrize("case", SLOT_CASES, ids=lambda c: c.name)
async def test_slot_rules_agree_in_sql_and_python(
    sessionmaker: async_sessionmaker[AsyncSession], case: SlotCase
) -> None:
    async with sessionmaker() as session:
        available, offerable, taken, late, status, lapsed, ended = await evaluate(session, case)
    assert (available, offerable, taken, bool(late)) == (
        case.available,
        case.offerable,
        case.taken,
        case.withdrawn_late,
    )
    # The Python forms production uses for the same rules.
    assert status == effective_status(case.status, case.hold_expires_at, T).value
    assert (status == "free") is case.available
    assert bool(lapsed) is hold_lapsed(case.status, case.hold_expires_at, T)
    assert ended == ended_hold_status(case.hold_expires_at, T).value


@pytest.mark.parametrize(
    ("red_flags", "motif"),
    [
        ([], "M19.05.00"),  # fever: assess
        (["stroke_signs"], "M19.05.00"),
        ([], "M08.02.00"),  # cardiac arrest: transfer_15
        (["chest_pain", "seizure"], "M08.02.00"),
        ([], "M09.02.04"),  # bleeding stopped: snp
    ],
)
async def test_red_flag_rule_agrees_in_sql_and_python(
    sessionmaker: async_sessionmaker[AsyncSession], red_flags: list[str], motif: str
) -> None:
    classification = classify(motif)
    query = text(
        f"SELECT {request_rules.RED_FLAGGED_SQL} FROM (SELECT CAST(:flags AS text[]) AS red_flags, "  # noqa: S608
        "CAST(:classification AS text) AS motif_classification) AS r"
    )
    async with sessionmaker() as session:
        in_sql = await session.scalar(query, {"flags": red_flags, "classification": classification.value})
    assert in_sql is requires_transfer(classification, red_flags)
