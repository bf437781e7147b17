from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from service.compensation import repository as compensation_repository
from service.compensation import service as compensation
from service.compensation.domain import Rates
from service.cpts import repository
from service.cpts.domain import Targets, contract_start_problem, sas_problem, size_class, targets_on
from service.cpts.models import Cpts
from service.cpts.schemas import CptsCreate, CptsOut, CptsPatch, TargetsIn
from service.db import DriverStatement, StatementConnection, fetchrow
from service.errors import Invalid, NotFound, field_error


async def to_out(session: AsyncSession, cpts: Cpts, now: datetime) -> CptsOut:
    history = await compensation_repository.rate_history(session, cpts.id)
    fields = {column.key: getattr(cpts, column.key) for column in Cpts.__table__.columns}
    return _out(fields, await repository.target_history(session, cpts.id), history, now)


def _out(cpts: Mapping[str, Any], targets: list[Targets], history: list[Rates], now: datetime) -> CptsOut:
    """The settings as the API shows them, from the CPTS's columns (an entity's or a row's)."""
    today = now.astimezone(ZoneInfo(cpts["timezone"])).date()
    size = size_class(cpts["population"], cpts["size_override"])
    return CptsOut(
        id=cpts["id"],
        name=cpts["name"],
        finess=cpts["finess"],
        size=size,
        size_override=cpts["size_override"],
        population=cpts["population"],
        timezone=cpts["timezone"],
        contract_start_date=cpts["contract_start_date"],
        response_window_hours=cpts["response_window_hours"],
        hold_ttl_seconds=cpts["hold_ttl_seconds"],
        min_slot_minutes=cpts["min_slot_minutes"],
        max_slot_minutes=cpts["max_slot_minutes"],
        publication_horizon_days=cpts["publication_horizon_days"],
        min_lead_minutes=cpts["min_lead_minutes"],
        duplicate_window_hours=cpts["duplicate_window_hours"],
        territory=list(cpts["territory"]),
        mfa_required=cpts["mfa_required"],
        sas_enabled=cpts["sas_enabled"],
        phone=cpts["phone"],
        targets=dict(targets_on(targets, today)),
        motif_overrides=dict(cpts["motif_overrides"] or {}),
        compensation=compensation.compensation_out(size, history, today),
        created_at=cpts["created_at"],
    )


_RATES = "rate_history"


@functools.cache
def _current_statement() -> DriverStatement:
    rates = compensation_repository.rate_history_json(Cpts.id).label(_RATES)
    return DriverStatement(repository.with_columns(rates))


async def current(conn: StatementConnection, cpts_id: uuid.UUID, now: datetime) -> CptsOut:
    """The CPTS with its targets and compensation settings, read in one query run by the driver
    (the handlers' and the software's most frequent read of settings)."""
    row = await fetchrow(conn, _current_statement(), cpts_id=cpts_id)
    if row is None:
        raise NotFound("cpts")
    targets = repository.targets_of(row[repository.TARGETS])
    return _out(row, targets, compensation_repository.rates_of(row[_RATES]), now)


async def set_targets(session: AsyncSession, cpts: Cpts, data: TargetsIn, now: datetime) -> None:
    """Record a set of targets from a date on. Like the rates, not before the current month: the
    closed months were judged against the targets they had."""
    this_month = now.astimezone(ZoneInfo(cpts.timezone)).date().replace(day=1)
    effective_from = data.effective_from or this_month
    if effective_from < this_month:
        problem = f"targets take effect from {this_month.isoformat()} at the earliest: earlier months are closed"
        raise Invalid(
            "retroactive_target", problem, errors=[field_error(["body", "targets", "effective_from"], problem)]
        )
    await repository.put_targets(session, cpts.id, effective_from, dict(data.values), now)


def _check_contract_start(start: date | None, timezone: str, now: datetime) -> None:
    problem = None if start is None else contract_start_problem(start, now.astimezone(ZoneInfo(timezone)).date())
    if problem:
        raise Invalid("validation_error", problem, errors=[field_error(["body", "contract_start_date"], problem)])


async def create(session: AsyncSession, data: CptsCreate, now: datetime) -> Cpts:
    _check_contract_start(data.contract_start_date, data.timezone, now)
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


async def update(session: AsyncSession, cpts_id: uuid.UUID, patch: CptsPatch, now: datetime) -> CptsOut:
    cpts = await repository.get(session, cpts_id, for_update=True)
    _check_contract_start(patch.contract_start_date, patch.timezone or cpts.timezone, now)
    changes = patch.model_dump(exclude_unset=True)
    if patch.compensation is not None:
        await compensation.set_compensation(session, cpts.id, cpts.timezone, patch.compensation, now)
    changes.pop("compensation", None)
    if patch.targets is not None:
        await set_targets(session, cpts, patch.targets, now)
    changes.pop("targets", None)
    if "size" in changes:
        cpts.size_override = changes.pop("size")
    if "territory" in changes:
        changes["territory"] = sorted(set(changes["territory"] or []))
    for field, value in changes.items():
        if value is None and field not in ("finess", "phone"):
            continue  # null means "unchanged" for required settings
        setattr(cpts, field, value)
    problem = sas_problem(cpts.sas_enabled, cpts.finess)
    if problem:
        raise Invalid("finess_required", problem, errors=[field_error(["body", "sas_enabled"], problem)])
    if cpts.min_slot_minutes > cpts.max_slot_minutes:
        raise Invalid(
            "validation_error",
            "min_slot_minutes may not exceed max_slot_minutes.",
            errors=[field_error(["body", "min_slot_minutes"], "greater than max_slot_minutes")],
        )
    await session.flush()
    return await to_out(session, cpts, now)
