"""Reports: monthly indicators, the activity export, compensation statements, the contract year.
Each is built as its typed model (reporting.schemas); the routes and the CLI only render it."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, true
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.compensation import repository as compensation_repository
from service.compensation.domain import (
    DEFAULT_RATES,
    SlotFact,
    Statement,
    envelope_cents,
    rates_on,
    year_statements,
)
from service.cpts import repository as cpts_repository
from service.cpts.domain import size_class, targets_on
from service.cpts.models import Cpts
from service.db import begin_on_server
from service.errors import Invalid, field_error
from service.practitioners.domain import place
from service.practitioners.models import Practitioner, Site
from service.reference.codes import aci_amounts, professions
from service.reporting import indicators, repository
from service.reporting.export import ActivityLine, activity_line
from service.reporting.periods import (
    MAX_YEAR,
    MIN_YEAR,
    Month,
    anniversary,
    contract_year_months,
    contract_year_of_month,
)
from service.reporting.schemas import (
    CompensationStatement,
    CompensationYear,
    ContractYearMonth,
    ContractYearReport,
    ContractYearTotal,
    Dashboard,
    DayLine,
    Envelope,
    EnvelopeMonth,
    EnvelopeProgress,
    MonthlyReport,
    ReportHeader,
    StatementLine,
    StatementSlot,
    YearPoint,
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

    @property
    def size(self) -> int:
        return size_class(self.cpts.population, self.cpts.size_override)


def parse_month(text: str) -> Month:
    try:
        return Month.parse(text)
    except ValueError as exc:
        raise Invalid("validation_error", str(exc), errors=[field_error(["query", "month"], str(exc))]) from exc


async def period(session: AsyncSession, cpts_id: uuid.UUID, month: Month, now: datetime) -> Period:
    cpts = await cpts_repository.get(session, cpts_id)
    start, end = month.bounds(ZoneInfo(cpts.timezone))
    return Period(cpts, month, start, end, now)


def header(p: Period) -> ReportHeader:
    return ReportHeader(
        month=str(p.month),
        cpts_id=str(p.cpts.id),
        cpts_name=p.cpts.name,
        timezone=p.cpts.timezone,
        period_start=p.start.astimezone(p.tz),
        period_end=p.end.astimezone(p.tz),
        cutoff=p.cutoff.astimezone(p.tz),
        provisional=p.provisional,
    )


async def dashboard(session: AsyncSession, p: Period) -> Dashboard:
    """The month at a glance: its report, the heatmaps of demand and unmet demand by weekday and
    hour, supply and demand day by day, the rate within 24 h over the contract year so far, and
    the compensation envelope's progress."""
    facts = [fact async for fact in repository.stream_request_facts(session, p.cpts.id, p.start, p.end)]
    report = await _monthly_of(session, p, facts)
    left = indicators.unmet(facts, p.cutoff)
    supply = await repository.supply_by_day(session, p.cpts.id, p.start, p.end, p.cpts.timezone)
    requests_by_day = Counter(f.received_at.astimezone(p.tz).date() for f in facts)
    unmet_by_day = Counter(f.received_at.astimezone(p.tz).date() for f in left)
    days = []
    day = p.month.first_day
    while day < p.month.next().first_day:
        offered, booked = supply.get(day, (0, 0))
        days.append(DayLine(day=day.isoformat(), requests=requests_by_day[day], unmet=unmet_by_day[day],
                            slots_offered=offered, slots_booked=booked))  # fmt: skip
        day += timedelta(days=1)
    year_start = contract_year_of_month(p.cpts.contract_start_date, p.month)
    months = [m for m in contract_year_months(year_start) if m <= p.month] or [p.month]
    targets = await cpts_repository.target_history(session, p.cpts.id)
    points = []
    for month in months:
        earlier = (
            report if month == p.month else await monthly(session, Period(p.cpts, month, *month.bounds(p.tz), p.now))
        )
        target = targets_on(targets, month.first_day).get("rate_within_24h")
        points.append(
            YearPoint(
                month=str(month),
                provisional=earlier.provisional,
                rate_within_24h=earlier.rate_within_24h,
                target=target,
            )
        )
    year_months = contract_year_months(year_start)
    statements, envelopes = await _year_statements(session, p.cpts, year_months)
    end = anniversary(p.cpts.contract_start_date, year_start.year + 1)
    this_month = Month.of(p.now.astimezone(p.tz).date())
    progress = envelope_progress(
        envelopes.get(p.month, envelopes[year_months[-1]]),
        # only closed months have paid: the current one's slots are not all lost activity yet
        [(str(m), s.total_paid_cents if m < this_month else 0) for m, s in statements.items()],
        year_start,
        end,
        p.now.astimezone(p.tz).date(),
    )
    return Dashboard(
        report=report,
        weekdays=list(indicators.WEEKDAYS),
        demand_by_weekday_hour=indicators.weekday_hour_matrix((f.received_at for f in facts), p.tz),
        unmet_by_weekday_hour=indicators.weekday_hour_matrix((f.received_at for f in left), p.tz),
        days=days,
        contract_year=points,
        envelope=progress,
    )


async def monthly(session: AsyncSession, p: Period) -> MonthlyReport:
    # Read in batches: the worker answers other requests between them instead of stalling for the
    # whole month. (The computation stays on the event loop: in a thread, contention for the GIL
    # slowed every other request more than it helped.)
    facts = [fact async for fact in repository.stream_request_facts(session, p.cpts.id, p.start, p.end)]
    return await _monthly_of(session, p, facts)


async def _monthly_of(session: AsyncSession, p: Period, facts: list[indicators.RequestFact]) -> MonthlyReport:
    supply = await repository.supply(session, p.cpts.id, p.start, p.end)
    names = await repository.user_names(session, p.cpts.id)
    report = indicators.monthly(header(p), facts, supply, names, p.tz)
    targets = targets_on(await cpts_repository.target_history(session, p.cpts.id), p.month.first_day)
    report.targets = indicators.against_targets(targets, indicators.target_values(report))
    return report


async def activity_lines(sessionmaker: async_sessionmaker[AsyncSession], p: Period) -> AsyncIterator[ActivityLine]:
    """The pseudonymised lines of the month, streamed from a read-only snapshot of their own."""
    async with sessionmaker() as session, session.begin():
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        await begin_on_server(session)  # the batches, read by the driver, are then one snapshot
        async for fact in repository.stream_request_facts(session, p.cpts.id, p.start, p.end):
            yield activity_line(fact, p.cutoff, p.tz, p.cpts.pseudonym_key)


async def _year_statements(
    session: AsyncSession, cpts: Cpts, months: list[Month]
) -> tuple[dict[Month, Statement], dict[Month, int]]:
    """Statements of the given months of one contract year, in order, from one query."""
    tz = ZoneInfo(cpts.timezone)
    history = await compensation_repository.rate_history(session, cpts.id)
    size = size_class(cpts.population, cpts.size_override)
    start, _ = months[0].bounds(tz)
    _, end = months[-1].bounds(tz)
    by_month: dict[Month, list[SlotFact]] = {}
    for fact in await repository.slot_facts(session, cpts.id, start, end, cpts.timezone):
        by_month.setdefault(Month.of(fact.local_date), []).append(fact)
    envelopes = {m: envelope_cents(size, rates_on(history, m.first_day)) for m in months}
    statements = year_statements(
        months,
        by_month,
        history,
        DEFAULT_RATES,
        envelopes.__getitem__,
        lambda m: rates_on(history, m.first_day).annual_cap_cents,
    )
    return statements, envelopes


@dataclass(frozen=True)
class Payee:
    """What a treasurer needs of a professional to pay them."""

    id_type: str
    national_id: str
    family_name: str
    given_name: str
    profession: str
    site: str


async def _payees(session: AsyncSession, cpts_id: uuid.UUID, ids: list[uuid.UUID]) -> dict[uuid.UUID, Payee]:
    if not ids:
        return {}
    first_site = (
        select(Site.name, Site.address, Site.postal_code, Site.commune_insee)
        .where(Site.practitioner_id == Practitioner.id)
        .order_by(Site.created_at, Site.id)
        .limit(1)
        .lateral()
    )
    rows = await session.execute(
        select(Practitioner, first_site.c.name, first_site.c.postal_code, first_site.c.commune_insee)
        .outerjoin(first_site, true())
        .where(Practitioner.cpts_id == cpts_id, Practitioner.id.in_(ids))
    )
    payees = {}
    for practitioner, site_name, postal_code, commune_insee in rows:
        town = place(None, postal_code, commune_insee).full_address if commune_insee else ""
        payees[practitioner.id] = Payee(
            id_type=practitioner.id_type,
            national_id=practitioner.national_id,
            family_name=practitioner.family_name,
            given_name=practitioner.given_name,
            profession=practitioner.profession,
            site=", ".join(part for part in (site_name, town) if part),
        )
    return payees


async def compensation(session: AsyncSession, p: Period) -> CompensationStatement:
    """The month's statement per professional and per slot, paid from the contract year's envelope."""
    year_start = contract_year_of_month(p.cpts.contract_start_date, p.month)
    months = [m for m in contract_year_months(year_start) if m <= p.month]
    if not months:  # a month before the first whole month of a contract year (start mid-month)
        months = [p.month]
    statements, envelopes = await _year_statements(session, p.cpts, months)
    statement = statements[p.month]
    payees = await _payees(session, p.cpts.id, [line.practitioner_id for line in statement.lines])
    unknown = Payee("", "", "", "", "", "")
    rates = rates_on(await compensation_repository.rate_history(session, p.cpts.id), p.month.first_day)
    scale = float(statement.scale)
    return CompensationStatement(
        **dict(header(p)),
        contract_year_start=year_start.isoformat(),
        envelope=Envelope(
            annual=envelopes[p.month],
            remaining_before=statement.remaining_before_cents,
            paid_this_month=statement.total_paid_cents,
        ),
        scale=scale,
        lines=[
            StatementLine(
                practitioner_id=str(line.practitioner_id),
                id_type=(payee := payees.get(line.practitioner_id, unknown)).id_type,
                national_id=payee.national_id,
                family_name=payee.family_name,
                given_name=payee.given_name,
                profession=payee.profession,
                profession_label=professions().get(payee.profession, payee.profession),
                site=payee.site,
                slots_counted=len(line.slots),
                rate_unfilled=rates.unfilled_cents_per_hour,
                rate_filled=rates.filled_cents_per_hour,
                hours_unfilled=round(line.seconds_unfilled / 3600, 2),
                hours_filled=round(line.seconds_filled / 3600, 2),
                gross=line.gross_cents,
                capped=line.capped_cents,
                scale=scale,
                paid=line.paid_cents,
                slots=[
                    StatementSlot(
                        slot_id=str(s.slot_id),
                        start=s.start.astimezone(p.tz),
                        end=s.end.astimezone(p.tz),
                        hours=round(s.seconds / 3600, 2),
                        booked=s.booked,
                        rate=s.rate_cents,
                        gross=s.gross_cents,
                        paid=s.paid_cents,
                    )
                    for s in line.slots
                ],
            )
            for line in statement.lines
        ],
        total_gross=statement.total_gross_cents,
        total_paid=statement.total_paid_cents,
    )


async def contract_year(session: AsyncSession, cpts_id: uuid.UUID, start: date, now: datetime) -> ContractYearReport:
    """The contract year for the CPAM/ARS: month by month and in total, with the envelopes."""
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
    rows: list[ContractYearMonth] = []
    for month in months:
        p = Period(cpts, month, *month.bounds(tz), now)
        report = await monthly(session, p)
        rows.append(
            ContractYearMonth(
                month=str(month),
                provisional=p.provisional,
                requests_total=report.requests_total,
                booked=report.booked,
                needing_consultation=report.needing_consultation,
                booked_within_24h=report.booked_within_24h,
                rate_within_24h=report.rate_within_24h,
                booked_within_48h=report.booked_within_48h,
                unresolved_past_deadline=report.unresolved_past_deadline,
                no_solution=report.no_solution,
                transfer_15=report.transfer_15,
                slots_published=report.slots_published.count,
                slots_offered=report.slots_published.count - report.slots_withdrawn,
                slots_booked=report.slots_booked,
                fill_rate=report.fill_rate,
                participating_professionals=report.participating_professionals.total,
                compensation_paid=statements[month].total_paid_cents,
            )
        )
    paid = sum(s.total_paid_cents for s in statements.values())
    booked_within_24h = sum(r.booked_within_24h for r in rows)
    needing_consultation = sum(r.needing_consultation for r in rows)
    size = size_class(cpts.population, cpts.size_override)
    envelope = envelopes[months[-1]]
    end = anniversary(cpts.contract_start_date, start.year + 1)
    offered, slots_booked = sum(r.slots_offered for r in rows), sum(r.slots_booked for r in rows)
    total = ContractYearTotal(
        requests_total=sum(r.requests_total for r in rows),
        booked=sum(r.booked for r in rows),
        needing_consultation=needing_consultation,
        booked_within_24h=booked_within_24h,
        booked_within_48h=sum(r.booked_within_48h for r in rows),
        unresolved_past_deadline=sum(r.unresolved_past_deadline for r in rows),
        no_solution=sum(r.no_solution for r in rows),
        transfer_15=sum(r.transfer_15 for r in rows),
        slots_published=sum(r.slots_published for r in rows),
        slots_offered=offered,
        slots_booked=slots_booked,
        rate_within_24h=ratio(booked_within_24h, needing_consultation),
        fill_rate=ratio(slots_booked, offered),
        participating_professionals=max((r.participating_professionals for r in rows), default=0),
        compensation_paid=paid,
    )
    targets = targets_on(await cpts_repository.target_history(session, cpts.id), months[-1].first_day)
    current = Month.of(now.astimezone(tz).date())  # only closed months have paid from the envelope
    year_values: dict[str, float | None] = {
        "rate_within_24h": total.rate_within_24h,
        "rate_within_48h": ratio(total.booked_within_48h, needing_consultation),
        "fill_rate": total.fill_rate,
        "participating_professionals": total.participating_professionals,
        "requests_total": total.requests_total,
        "unresolved_past_deadline": total.unresolved_past_deadline,
        "delay_to_appointment_median_hours": None,  # a median of the year is not a sum of months
    }
    return ContractYearReport(
        cpts_id=str(cpts.id),
        cpts_name=cpts.name,
        finess=cpts.finess,
        timezone=cpts.timezone,
        start=start.isoformat(),
        end=end.isoformat(),
        size=size,
        months=rows,
        total=total,
        envelopes={f"{line}.{part}": amounts[size] for (line, part), amounts in aci_amounts().items()},
        compensation=CompensationYear(envelope=envelope, paid=paid, remaining=max(0, envelope - paid)),
        envelope_progress=envelope_progress(
            envelope,
            [(str(m), statements[m].total_paid_cents if m < current else 0) for m in months],
            start,
            end,
            now.astimezone(tz).date(),
        ),
        targets=indicators.against_targets(targets, year_values),
    )


def envelope_progress(
    envelope: int, paid_by_month: list[tuple[str, int]], start: date, end: date, today: date
) -> EnvelopeProgress:
    """The envelope month by month, and the year's total at the pace of the days elapsed so far."""
    lines, to_date = [], 0
    for month, paid in paid_by_month:
        to_date += paid
        lines.append(EnvelopeMonth(month=month, paid=paid, paid_to_date=to_date, remaining=max(0, envelope - to_date)))
    elapsed = min(max((today - start).days, 0), (end - start).days) / (end - start).days
    projected = round(to_date / elapsed) if elapsed > 0 else 0
    return EnvelopeProgress(
        envelope=envelope,
        months=lines,
        paid_to_date=to_date,
        remaining=max(0, envelope - to_date),
        elapsed_share=round(elapsed, 4),
        projected_year_total=projected,
        projected_remaining=max(0, envelope - projected),
    )
