"""FHIR sources: a coordinator's settings of a software client's pull, and the status of its pulls."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service import destinations
from service.accounts import repository as accounts_repository
from service.audit import service as audit
from service.auth import Principal
from service.connectors.domain import next_pull, source_cipher
from service.connectors.fhir_slots import Flow
from service.connectors.models import FhirSource
from service.connectors.schemas import FhirSourceIn, FhirSourceOut, PullError, PullResult
from service.destinations import WebhookPolicy
from service.errors import Invalid, NotFound, field_error
from service.tenancy import locked, scoped

SECRETS = ("bearer_token", "client_cert", "client_key")


async def put_source(
    session: AsyncSession,
    principal: Principal,
    client_id: uuid.UUID,
    data: FhirSourceIn,
    policy: WebhookPolicy,
    secret_key: str,
    now: datetime,
    http: Request | None = None,
) -> FhirSourceOut:
    """Create or replace the source's settings. A secret left out is kept (they are never shown);
    sent as null, it is removed. The first pull is due at once."""
    await accounts_repository.get_client(session, principal.cpts_id, client_id)
    try:
        await destinations.check(data.base_url, policy)
    except destinations.RefusedDestination as exc:
        raise Invalid(
            "fhir_source_url_refused", str(exc), errors=[field_error(["body", "base_url"], str(exc))]
        ) from exc
    source = await _find(session, principal.cpts_id, client_id, for_update=True)
    if source is None:
        source = FhirSource(client_id=client_id, cpts_id=principal.cpts_id, failures=0)
        session.add(source)
    source.base_url = data.base_url.rstrip("/")
    source.flow = data.flow.value
    source.window_hours, source.interval_seconds = data.window_hours, data.interval_seconds
    source.slot_types = sorted(set(data.slot_types))
    source.enabled = data.enabled
    source.updated_at = now
    cipher = source_cipher(secret_key)
    for name in SECRETS:
        if name in data.model_fields_set:
            value = getattr(data, name)
            setattr(source, name, cipher.encrypt(value.encode()) if value is not None else None)
    if data.bearer_token is not None:
        source.client_cert = source.client_key = None
    elif data.client_cert is not None:
        source.bearer_token = None
    source.next_pull_at = now if data.enabled else None
    await session.flush()
    await audit.record(session, principal, "fhir_source.put", "client", [client_id], now, http)
    return out(source)


async def get_source(session: AsyncSession, principal: Principal, client_id: uuid.UUID) -> FhirSourceOut:
    return out(await _source(session, principal.cpts_id, client_id))


async def find_source(session: AsyncSession, cpts_id: uuid.UUID, client_id: uuid.UUID) -> FhirSourceOut | None:
    """The client's source, or None when it has none."""
    source = await _find(session, cpts_id, client_id)
    return out(source) if source is not None else None


async def sources_of(session: AsyncSession, cpts_id: uuid.UUID) -> dict[uuid.UUID, FhirSourceOut]:
    """The CPTS's sources by client (the console's list of software shows their state)."""
    return {source.client_id: out(source) for source in await session.scalars(scoped(FhirSource, cpts_id))}


async def delete_source(
    session: AsyncSession, principal: Principal, client_id: uuid.UUID, now: datetime, http: Request | None = None
) -> None:
    """Stop pulling. The slots already pulled stay as they are (withdraw them by a sync if need be)."""
    await session.delete(await _source(session, principal.cpts_id, client_id))
    await session.flush()
    await audit.record(session, principal, "fhir_source.delete", "client", [client_id], now, http)


async def _source(session: AsyncSession, cpts_id: uuid.UUID, client_id: uuid.UUID) -> FhirSource:
    source = await _find(session, cpts_id, client_id)
    if source is None:
        raise NotFound("fhir_source")
    return source


async def _find(
    session: AsyncSession, cpts_id: uuid.UUID, client_id: uuid.UUID, *, for_update: bool = False
) -> FhirSource | None:
    query = scoped(FhirSource, cpts_id).where(FhirSource.client_id == client_id)
    found: FhirSource | None = await session.scalar(locked(query) if for_update else query)
    return found


def out(source: FhirSource) -> FhirSourceOut:
    credentials = "bearer_token" if source.bearer_token else "client_certificate" if source.client_cert else "none"
    return FhirSourceOut(
        client_id=source.client_id,
        base_url=source.base_url,
        flow=Flow(source.flow),
        window_hours=source.window_hours,
        interval_seconds=source.interval_seconds,
        slot_types=list(source.slot_types),
        credentials=credentials,
        enabled=source.enabled,
        next_pull_at=source.next_pull_at,
        last_attempt_at=source.last_attempt_at,
        last_success_at=source.last_success_at,
        failures=source.failures,
        last_error=PullError.model_validate(source.last_error) if source.last_error else None,
        last_result=PullResult.model_validate(source.last_result) if source.last_result else None,
    )


async def due(session: AsyncSession, now: datetime, only: uuid.UUID | None = None) -> list[uuid.UUID]:
    """The enabled sources whose pull is due (or the one asked for), soonest first."""
    query = select(FhirSource.client_id).where(FhirSource.enabled)
    if only is not None:
        query = query.where(FhirSource.client_id == only)
    else:
        query = query.where(FhirSource.next_pull_at <= now)
    return list(await session.scalars(query.order_by(FhirSource.next_pull_at)))


def record_success(source: FhirSource, result: PullResult, now: datetime) -> None:
    source.last_attempt_at = source.last_success_at = now
    source.failures = 0
    source.last_result = result.model_dump(mode="json")
    source.next_pull_at = next_pull(now, source.interval_seconds, 0)


def record_failure(source: FhirSource, error: PullError, now: datetime) -> None:
    source.last_attempt_at = now
    source.failures += 1
    source.last_error = error.model_dump(mode="json")
    source.next_pull_at = next_pull(now, source.interval_seconds, source.failures)


def secrets_of(source: FhirSource, secret_key: str) -> dict[str, Any]:
    cipher = source_cipher(secret_key)
    return {
        name: cipher.decrypt(value).decode() if value else None for name in SECRETS for value in [getattr(source, name)]
    }
