"""Compensation settings of a CPTS: effective-dated, so that a month's statement never changes
once the month is closed."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from service.compensation import repository
from service.compensation.domain import DEFAULT_RATES, Rates, envelope_cents, rates_on
from service.compensation.schemas import CompensationIn, CompensationOut
from service.errors import Invalid, field_error
from service.money import cents_of, euros

# Rates are planned with a contract, not decades ahead.
MAX_YEARS_AHEAD = 2


def compensation_out(size: int, history: list[Rates], today: date) -> CompensationOut:
    """The settings in force on `today`, as the API shows them."""
    rates = rates_on(history, today)
    return CompensationOut(
        effective_from=None if rates is DEFAULT_RATES else rates.effective_from,
        hourly_rate_unfilled=euros(rates.unfilled_cents_per_hour),
        hourly_rate_filled=euros(rates.filled_cents_per_hour),
        min_notice_hours=rates.min_notice_hours,
        annual_envelope=euros(envelope_cents(size, rates)),
        annual_envelope_is_default=rates.annual_envelope_cents is None,
        annual_cap_per_professional=None if rates.annual_cap_cents is None else euros(rates.annual_cap_cents),
    )


async def set_compensation(
    session: AsyncSession, cpts_id: uuid.UUID, timezone: str, data: CompensationIn, now: datetime
) -> None:
    """Record compensation settings from a date on. Months before the current one are closed:
    their statements must not change, so a new rate cannot take effect before this month."""
    this_month = now.astimezone(ZoneInfo(timezone)).date().replace(day=1)
    effective_from = data.effective_from or this_month
    if effective_from < this_month:
        problem = f"settings take effect from {this_month.isoformat()} at the earliest: earlier months are closed"
        raise Invalid(
            "retroactive_rate", problem, errors=[field_error(["body", "compensation", "effective_from"], problem)]
        )
    if effective_from > this_month.replace(year=this_month.year + MAX_YEARS_AHEAD):
        problem = f"settings are planned at most {MAX_YEARS_AHEAD} years ahead"
        raise Invalid(
            "validation_error", problem, errors=[field_error(["body", "compensation", "effective_from"], problem)]
        )
    given = data.model_dump(exclude_unset=True)
    base = rates_on(await repository.rate_history(session, cpts_id), effective_from)

    def amount(field: str, current: int | None) -> int | None:
        if field not in given:
            return current
        return None if given[field] is None else cents_of(given[field])

    unfilled = amount("hourly_rate_unfilled", base.unfilled_cents_per_hour)
    filled = amount("hourly_rate_filled", base.filled_cents_per_hour)
    await repository.put(
        session,
        cpts_id,
        effective_from,
        {
            "hourly_rate_unfilled_cents": base.unfilled_cents_per_hour if unfilled is None else unfilled,
            "hourly_rate_filled_cents": base.filled_cents_per_hour if filled is None else filled,
            "min_notice_hours": base.min_notice_hours if data.min_notice_hours is None else data.min_notice_hours,
            "annual_envelope_cents": amount("annual_envelope", base.annual_envelope_cents),
            "annual_cap_per_professional_cents": amount("annual_cap_per_professional", base.annual_cap_cents),
        },
    )
