from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.accounts.domain import ACCOUNT_THROTTLE, ThrottleRule, ThrottleState, after_failure
from service.accounts.models import ClientPractitioner, LoginThrottle, SoftwareClient, StaffUser
from service.tenancy import get_or_raise, locked, scoped


@dataclass(frozen=True)
class UserPrincipalRow:
    id: uuid.UUID
    cpts_id: uuid.UUID
    role: str
    timezone: str
    credentials_version: int
    rpps: str | None


@dataclass(frozen=True)
class ClientPrincipalRow:
    id: uuid.UUID
    cpts_id: uuid.UUID
    timezone: str
    practitioner_ids: list[uuid.UUID]


# Every authenticated request runs one of these two: compiled once, not rebuilt per request. The
# database is asked each time so that deactivating a user or revoking a key takes effect at once.
_USER_PRINCIPAL = text(
    """
    SELECT u.id, u.cpts_id, u.role, c.timezone, u.credentials_version, u.rpps
    FROM staff_user AS u JOIN cpts AS c ON c.id = u.cpts_id
    WHERE u.id = :user_id AND u.active
    """
)
_CLIENT_PRINCIPAL = text(
    """
    SELECT k.id, k.cpts_id, c.timezone,
           ARRAY(SELECT cp.practitioner_id FROM client_practitioner AS cp WHERE cp.client_id = k.id)
    FROM software_client AS k JOIN cpts AS c ON c.id = k.cpts_id
    WHERE k.key_digest = :key_digest AND k.active
    """
)


async def principal_for_user(session: AsyncSession, user_id: uuid.UUID) -> UserPrincipalRow | None:
    row = (await session.execute(_USER_PRINCIPAL, {"user_id": user_id})).first()
    return UserPrincipalRow(*row) if row else None


async def principal_for_api_key(session: AsyncSession, key_digest: str) -> ClientPrincipalRow | None:
    row = (await session.execute(_CLIENT_PRINCIPAL, {"key_digest": key_digest})).first()
    if row is None:
        return None
    return ClientPrincipalRow(id=row[0], cpts_id=row[1], timezone=row[2], practitioner_ids=list(row[3]))


async def get_user(
    session: AsyncSession, cpts_id: uuid.UUID, user_id: uuid.UUID, *, for_update: bool = False
) -> StaffUser:
    return await get_or_raise(session, StaffUser, cpts_id, user_id, "user", for_update=for_update)


async def list_users(
    session: AsyncSession, cpts_id: uuid.UUID, after: tuple[Any, ...] | None, limit: int
) -> list[StaffUser]:
    query = scoped(StaffUser, cpts_id)
    if after is not None:
        query = query.where(tuple_(StaffUser.email, StaffUser.id) > after)
    return list(await session.scalars(query.order_by(StaffUser.email, StaffUser.id).limit(limit + 1)))


async def get_client(
    session: AsyncSession, cpts_id: uuid.UUID, client_id: uuid.UUID, *, for_update: bool = False
) -> SoftwareClient:
    return await get_or_raise(session, SoftwareClient, cpts_id, client_id, "client", for_update=for_update)


async def list_clients(
    session: AsyncSession, cpts_id: uuid.UUID, after: tuple[Any, ...] | None, limit: int
) -> list[SoftwareClient]:
    query = scoped(SoftwareClient, cpts_id)
    if after is not None:
        query = query.where(tuple_(SoftwareClient.name, SoftwareClient.id) > after)
    return list(await session.scalars(query.order_by(SoftwareClient.name, SoftwareClient.id).limit(limit + 1)))


async def client_practitioners(
    session: AsyncSession, cpts_id: uuid.UUID, client_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    rows = await session.execute(
        select(ClientPractitioner.client_id, ClientPractitioner.practitioner_id)
        .where(ClientPractitioner.cpts_id == cpts_id, ClientPractitioner.client_id.in_(client_ids))
        .order_by(ClientPractitioner.practitioner_id)
    )
    result: dict[uuid.UUID, list[uuid.UUID]] = {client_id: [] for client_id in client_ids}
    for client_id, practitioner_id in rows:
        result[client_id].append(practitioner_id)
    return result


async def set_client_practitioners(
    session: AsyncSession, cpts_id: uuid.UUID, client_id: uuid.UUID, practitioner_ids: list[uuid.UUID]
) -> None:
    await session.execute(
        delete(ClientPractitioner).where(
            ClientPractitioner.cpts_id == cpts_id, ClientPractitioner.client_id == client_id
        )
    )
    if practitioner_ids:
        await session.execute(
            insert(ClientPractitioner),
            [{"cpts_id": cpts_id, "client_id": client_id, "practitioner_id": p} for p in practitioner_ids],
        )


async def users_by_email(session: AsyncSession, email: str) -> list[StaffUser]:
    """Every account with this login name (e-mails are unique per CPTS only)."""
    return list(await session.scalars(select(StaffUser).where(StaffUser.email == email.lower()).order_by(StaffUser.id)))


async def throttle_states(session: AsyncSession, keys: list[tuple[str, str]]) -> dict[tuple[str, str], ThrottleState]:
    if not keys:
        return {}
    rows = await session.scalars(select(LoginThrottle).where(tuple_(LoginThrottle.scope, LoginThrottle.key).in_(keys)))
    return {(r.scope, r.key): ThrottleState(r.failures, r.window_started_at, r.locked_until) for r in rows}


async def record_failure(session: AsyncSession, rule: ThrottleRule, key: str, now: datetime) -> ThrottleState:
    """One more failed login for (scope, key), under the row's lock (concurrent failures all count)."""
    await session.execute(
        insert(LoginThrottle)
        .values(scope=rule.scope, key=key, failures=0, window_started_at=now)
        .on_conflict_do_nothing()
    )
    row = await session.scalar(
        locked(select(LoginThrottle).where(LoginThrottle.scope == rule.scope, LoginThrottle.key == key))
    )
    assert row is not None  # inserted above
    state = after_failure(ThrottleState(row.failures, row.window_started_at, row.locked_until), rule, now)
    row.failures, row.window_started_at, row.locked_until = state.failures, state.window_started_at, state.locked_until
    await session.flush()
    return state


async def clear_throttle(session: AsyncSession, scope: str, key: str) -> None:
    await session.execute(delete(LoginThrottle).where(LoginThrottle.scope == scope, LoginThrottle.key == key))


async def locks_of(session: AsyncSession, emails: list[str], now: datetime) -> dict[str, datetime]:
    """Accounts (by e-mail) locked after failed logins, and until when."""
    if not emails:
        return {}
    rows = await session.execute(
        select(LoginThrottle.key, LoginThrottle.locked_until).where(
            LoginThrottle.scope == ACCOUNT_THROTTLE.scope,
            LoginThrottle.key.in_(emails),
            LoginThrottle.locked_until > now,
        )
    )
    return {row[0]: row[1] for row in rows if row[1] is not None}


async def user_in_cpts_by_email(session: AsyncSession, cpts_id: uuid.UUID, email: str) -> StaffUser | None:
    found: StaffUser | None = await session.scalar(scoped(StaffUser, cpts_id).where(StaffUser.email == email.lower()))
    return found
