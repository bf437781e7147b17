from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.cpts import repository
from service.cpts.domain import size_class
from service.cpts.models import CompensationRate, Cpts
from service.cpts.schemas import CompensationIn, CompensationOut, CptsCreate, CptsOut, CptsPatch
from service.errors import Invalid, field_error
from service.reference.codes import snp_compensation_envelope_cents
from service.reporting import repository as reporting_repository
from service.reporting.compensation import Rates, rates_on
from service.reporting.money import cents_of, euros
from service.slots.domain import PublicationRules

# Until a CPTS sets its own: 45 EUR per unfilled hour, nothing for filled ones, 24 h notice, the
# ACI envelope of its size, no cap per professional.
DEFAULT_RATES = Rates(effective_from=date.min, unfilled_cents_per_hour=4500)


def rates_in_force(history: list[Rates], day: date) -> Rates:
    return rates_on(history, day, DEFAULT_RATES)


def envelope_cents(cpts: Cpts, rates: Rates) -> int:
    if rates.annual_envelope_cents is not None:
        return rates.annual_envelope_cents
    return snp_compensation_envelope_cents(size_class(cpts.population, cpts.size_override))


def compensation_out(cpts: Cpts, history: list[Rates], today: date) -> CompensationOut:
    rates = rates_in_force(history, today)
    return CompensationOut(
        effective_from=None if rates is DEFAULT_RATES else rates.effective_from,
        hourly_rate_unfilled=euros(rates.unfilled_cents_per_hour),
        hourly_rate_filled=euros(rates.filled_cents_per_hour),
        min_notice_hours=rates.min_notice_hours,
        annual_envelope=euros(envelope_cents(cpts, rates)),
        annual_envelope_is_default=rates.annual_envelope_cents is None,
        annual_cap_per_professional=None if rates.annual_cap_cents is None else euros(rates.annual_cap_cents),
    )


async def to_out(session: AsyncSession, cpts: Cpts, now: datetime) -> CptsOut:
    history = await reporting_repository.rate_history(session, cpts.id)
    today = now.astimezone(ZoneInfo(cpts.timezone)).date()
    return CptsOut(
        id=cpts.id,
        name=cpts.name,
        finess=cpts.finess,
        size=size_class(cpts.population, cpts.size_override),
        size_override=cpts.size_override,
        population=cpts.population,
        timezone=cpts.timezone,
        contract_start_date=cpts.contract_start_date,
        response_window_hours=cpts.response_window_hours,
        hold_ttl_seconds=cpts.hold_ttl_seconds,
        min_slot_minutes=cpts.min_slot_minutes,
        max_slot_minutes=cpts.max_slot_minutes,
        publication_horizon_days=cpts.publication_horizon_days,
        territory=list(cpts.territory),
        motif_overrides=dict(cpts.motif_overrides or {}),
        compensation=compensation_out(cpts, history, today),
        created_at=cpts.created_at,
    )


async def create(session: AsyncSession, data: CptsCreate, now: datetime) -> Cpts:
    cpts = Cpts(
        id=uuid.uuid4(),
        name=data.name,
        population=data.population,
        timezone=data.timezone,
        # Without a signed contract date, contract years start on the day the CPTS is created.
        contract_start_date=data.contract_start_date or now.astimezone(ZoneInfo(data.timezone)).date(),
        finess=data.finess,
        territory=sorted(set(data.territory)),
        created_at=now,
    )
    session.add(cpts)
    await session.flush()
    return cpts


async def update(session: AsyncSession, cpts_id: uuid.UUID, patch: CptsPatch, now: datetime) -> Cpts:
    cpts = await repository.get(session, cpts_id, for_update=True)
    changes = patch.model_dump(exclude_unset=True)
    if patch.compensation is not None:
        await set_compensation(session, cpts, patch.compensation, now)
    changes.pop("compensation", None)
    if "size" in changes:
        cpts.size_override = changes.pop("size")
    if "territory" in changes:
        changes["territory"] = sorted(set(changes["territory"] or []))
    for field, value in changes.items():
        if value is None and field not in ("finess",):
            continue  # null means "unchanged" for required settings
        setattr(cpts, field, value)
    if cpts.min_slot_minutes > cpts.max_slot_minutes:
        raise Invalid(
            "validation_error",
            "min_slot_minutes may not exceed max_slot_minutes.",
            errors=[field_error(["body", "min_slot_minutes"], "greater than max_slot_minutes")],
        )
    await session.flush()
    return cpts


def publication_rules(cpts: Cpts) -> PublicationRules:
    return PublicationRules(
        min_duration=timedelta(minutes=cpts.min_slot_minutes),
        max_duration=timedelta(minutes=cpts.max_slot_minutes),
        horizon=timedelta(days=cpts.publication_horizon_days),
    )


async def set_compensation(session: AsyncSession, cpts: Cpts, data: CompensationIn, now: datetime) -> None:
    """Record compensation settings from a date on. Months before the current one are closed:
    their statements must not change, so a new rate cannot take effect before this month."""
    this_month = now.astimezone(ZoneInfo(cpts.timezone)).date().replace(day=1)
    effective_from = data.effective_from or this_month
    if effective_from < this_month:
        problem = f"settings take effect from {this_month.isoformat()} at the earliest: earlier months are closed"
        raise Invalid(
            "retroactive_rate", problem, errors=[field_error(["body", "compensation", "effective_from"], problem)]
        )
    given = data.model_dump(exclude_unset=True)
    base = rates_in_force(await reporting_repository.rate_history(session, cpts.id), effective_from)

    def amount(field: str, current: int | None) -> int | None:
        if field not in given:
            return current
        return None if given[field] is None else cents_of(given[field])

    unfilled = amount("hourly_rate_unfilled", base.unfilled_cents_per_hour)
    filled = amount("hourly_rate_filled", base.filled_cents_per_hour)
    values = {
        "hourly_rate_unfilled_cents": base.unfilled_cents_per_hour if unfilled is None else unfilled,
        "hourly_rate_filled_cents": base.filled_cents_per_hour if filled is None else filled,
        "min_notice_hours": base.min_notice_hours if data.min_notice_hours is None else data.min_notice_hours,
        "annual_envelope_cents": amount("annual_envelope", base.annual_envelope_cents),
        "annual_cap_per_professional_cents": amount("annual_cap_per_professional", base.annual_cap_cents),
    }
    await session.execute(
        insert(CompensationRate)
        .values(cpts_id=cpts.id, effective_from=effective_from, **values)
        .on_conflict_do_update(index_elements=["cpts_id", "effective_from"], set_=values)
    )
