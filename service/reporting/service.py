"""Reports: monthly indicators, the activity export, compensation statements, the contract year."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.cpts import repository as cpts_repository
from service.cpts import service as cpts_service
from service.cpts.domain import size_class
from service.cpts.models import Cpts
from service.errors import Invalid, field_error
from service.practitioners.models import Practitioner
from service.reference.codes import aci_amounts
from service.reporting import indicators, repository
from service.reporting.compensation import SlotFact, Statement, year_statements
from service.reporting.export import activity_line
from service.reporting.money import euros
from service.reporting.periods import (
    MAX_YEAR,
    MIN_YEAR,
    Month,
    anniversary,
    contract_year_months,
    contract_year_of_month,
)
from service.reporting.stats import ratio


@dataclass(frozen=True)
class Period:
    cpts: Cpts
    month: Month
    start: datetime
    end: datetime
    now: datetime

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.cpts.timezone)

    @property
    def provisional(self) -> bool:
        return not self.month.is_over(self.now, self.tz)

    @property
    def cutoff(self) -> datetime:
        """Open requests are judged against their deadline at this instant: the report's time."""
        return self.now


def parse_month(text: str) -> Month:
    try:
        return Month.parse(text)
    except ValueError as exc:
        raise Invalid("validation_error", str(exc), errors=[field_error(["query", "month"], str(exc))]) from exc


async def period(session: AsyncSession, cpts_id: uuid.UUID, month: Month, now: datetime) -> Period:
    cpts = await cpts_repository.get(session, cpts_id)
    start, end = month.bounds(ZoneInfo(cpts.timezone))
    return Period(cpts, month, start, end, now)


def header(p: Period) -> dict[str, Any]:
    return {
        "month": str(p.month),
        "cpts_id": str(p.cpts.id),
        "timezone": p.cpts.timezone,
        "period_start": p.start.astimezone(p.tz).isoformat(),
        "period_end": p.end.astimezone(p.tz).isoformat(),
        "cutoff": p.cutoff.astimezone(p.tz).isoformat(),
        "provisional": p.provisional,
    }


async def monthly(session: AsyncSession, p: Period) -> dict[str, Any]:
    # Read in batches: the worker answers other requests between them instead of stalling for the
    # whole month. (The computation stays on the event loop: in a thread, contention for the GIL
    # slowed every other request more than it helped.)
    facts = [fact async for fact in repository.stream_request_facts(session, p.cpts.id, p.start, p.end)]
    report = header(p)
    report.update(indicators.demand_and_response(facts, p.cutoff, p.tz))
    report.update(indicators.supply(await repository.supply(session, p.cpts.id, p.start, p.end)))
    report["handlers"] = indicators.handlers(facts, await repository.user_names(session, p.cpts.id))
    return report


async def activity_lines(sessionmaker: async_sessionmaker[AsyncSession], p: Period) -> AsyncIterator[dict[str, Any]]:
    """The pseudonymised lines of the month, streamed from a read-only snapshot of their own."""
    async with sessionmaker() as session, session.begin():
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        async for fact in repository.stream_request_facts(session, p.cpts.id, p.start, p.end):
            yield activity_line(fact, p.cutoff, p.tz, p.cpts.pseudonym_key)


@dataclass(frozen=True)
class CompensationReport:
    period: Period
    statement: Statement
    envelope_cents: int
    year_start: date
    names: dict[uuid.UUID, tuple[str, str]]


async def _year_statements(
    session: AsyncSession, cpts: Cpts, months: list[Month]
) -> tuple[dict[Month, Statement], dict[Month, int]]:
    """Statements of the given months of one contract year, in order, from one query."""
    tz = ZoneInfo(cpts.timezone)
    history = await repository.rate_history(session, cpts.id)
    start, _ = months[0].bounds(tz)
    _, end = months[-1].bounds(tz)
    by_month: dict[Month, list[SlotFact]] = {}
    for fact in await repository.slot_facts(session, cpts.id, start, end, cpts.timezone):
        by_month.setdefault(Month.of(fact.local_date), []).append(fact)
    envelopes = {
        m: cpts_service.envelope_cents(cpts, cpts_service.rates_in_force(history, m.first_day)) for m in months
    }
    statements = year_statements(
        months,
        by_month,
        history,
        cpts_service.DEFAULT_RATES,
        envelopes.__getitem__,
        lambda m: cpts_service.rates_in_force(history, m.first_day).annual_cap_cents,
    )
    return statements, envelopes


async def compensation(session: AsyncSession, p: Period) -> CompensationReport:
    year_start = contract_year_of_month(p.cpts.contract_start_date, p.month)
    months = [m for m in contract_year_months(year_start) if m <= p.month]
    if not months:  # a month before the first whole month of a contract year (start mid-month)
        months = [p.month]
    statements, envelopes = await _year_statements(session, p.cpts, months)
    current = statements[p.month]
    ids = [line.practitioner_id for line in current.lines]
    names = (
        {
            row.id: (row.family_name, row.given_name)
            for row in (await session.execute(Practitioner.__table__.select().where(Practitioner.id.in_(ids)))).all()
        }
        if ids
        else {}
    )
    return CompensationReport(p, current, envelopes[p.month], year_start, names)


def compensation_json(report: CompensationReport) -> dict[str, Any]:
    statement, tz = report.statement, report.period.tz
    return {
        **header(report.period),
        "contract_year_start": report.year_start.isoformat(),
        "envelope": {
            "annual": euros(report.envelope_cents),
            "remaining_before": euros(statement.remaining_before_cents),
            "paid_this_month": euros(statement.total_paid_cents),
        },
        "scale": scale_text(statement),
        "lines": [
            {
                "practitioner_id": str(line.practitioner_id),
                "family_name": report.names.get(line.practitioner_id, ("", ""))[0],
                "given_name": report.names.get(line.practitioner_id, ("", ""))[1],
                "hours_unfilled": round(line.seconds_unfilled / 3600, 2),
                "hours_filled": round(line.seconds_filled / 3600, 2),
                "gross": euros(line.gross_cents),
                "capped": euros(line.capped_cents),
                "scale": scale_text(statement),
                "paid": euros(line.paid_cents),
                "slots": [
                    {
                        "slot_id": str(s.slot_id),
                        "start": s.start.astimezone(tz).isoformat(),
                        "end": s.end.astimezone(tz).isoformat(),
                        "hours": round(s.seconds / 3600, 2),
                        "booked": s.booked,
                        "rate": euros(s.rate_cents),
                        "gross": euros(s.gross_cents),
                        "paid": euros(s.paid_cents),
                    }
                    for s in line.slots
                ],
            }
            for line in statement.lines
        ],
        "total_gross": euros(statement.total_gross_cents),
        "total_paid": euros(statement.total_paid_cents),
    }


def scale_text(statement: Statement) -> str:
    """The envelope's scaling factor, to six decimals (1 when the envelope covered everything)."""
    return f"{float(statement.scale):.6f}"


async def contract_year(session: AsyncSession, cpts_id: uuid.UUID, start: date, now: datetime) -> dict[str, Any]:
    cpts = await cpts_repository.get(session, cpts_id)
    if not MIN_YEAR <= start.year < MAX_YEAR:
        problem = f"the year is between {MIN_YEAR} and {MAX_YEAR - 1}"
        raise Invalid("validation_error", problem, errors=[field_error(["query", "start"], problem)])
    if anniversary(cpts.contract_start_date, start.year) != start or start < cpts.contract_start_date:
        expected = anniversary(cpts.contract_start_date, start.year)
        problem = (
            f"a contract year starts on an anniversary of {cpts.contract_start_date.isoformat()} (e.g. {expected})"
        )
        raise Invalid("not_a_contract_year", problem, errors=[field_error(["query", "start"], problem)])
    tz = ZoneInfo(cpts.timezone)
    months = contract_year_months(start)
    statements, envelopes = await _year_statements(session, cpts, months)
    rows: list[dict[str, Any]] = []
    for month in months:
        p = Period(cpts, month, *month.bounds(tz), now)
        report = await monthly(session, p)
        rows.append(
            {
                "month": str(month),
                "provisional": p.provisional,
                "requests_total": report["requests_total"],
                "booked": report["booked"],
                "needing_consultation": report["needing_consultation"],
                "booked_within_24h": report["booked_within_24h"],
                "rate_within_24h": report["rate_within_24h"],
                "booked_within_48h": report["booked_within_48h"],
                "unresolved_past_deadline": report["unresolved_past_deadline"],
                "no_solution": report["no_solution"],
                "transfer_15": report["transfer_15"],
                "slots_published": report["slots_published"]["count"],
                "slots_booked": report["slots_booked"],
                "fill_rate": report["fill_rate"],
                "participating_professionals": report["participating_professionals"]["total"],
                "compensation_paid": euros(statements[month].total_paid_cents),
            }
        )
    summed = ("requests_total", "booked", "needing_consultation", "booked_within_24h", "booked_within_48h")
    total: dict[str, Any] = {key: sum(r[key] for r in rows) for key in summed}
    for key in ("unresolved_past_deadline", "no_solution", "transfer_15", "slots_published", "slots_booked"):
        total[key] = sum(r[key] for r in rows)
    total["rate_within_24h"] = ratio(total["booked_within_24h"], total["needing_consultation"])
    paid = sum(s.total_paid_cents for s in statements.values())
    total["compensation_paid"] = euros(paid)
    size = size_class(cpts.population, cpts.size_override)
    envelope = envelopes[months[-1]]
    return {
        "cpts_id": str(cpts.id),
        "timezone": cpts.timezone,
        "start": start.isoformat(),
        "end": anniversary(cpts.contract_start_date, start.year + 1).isoformat(),
        "size": size,
        "months": rows,
        "total": total,
        "envelopes": {f"{line}.{part}": euros(amounts[size]) for (line, part), amounts in aci_amounts().items()},
        "compensation": {"envelope": euros(envelope), "paid": euros(paid), "remaining": euros(max(0, envelope - paid))},
    }
