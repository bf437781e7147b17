from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.accounts.models import ClientPractitioner, SoftwareClient, StaffUser
from service.tenancy import get_or_raise, scoped


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


async def user_by_email(session: AsyncSession, email: str) -> StaffUser | None:
    return await session.scalar(select(StaffUser).where(StaffUser.email == email.lower()))


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


async def get_client(session: AsyncSession, cpts_id: uuid.UUID, client_id: uuid.UUID) -> SoftwareClient:
    return await get_or_raise(session, SoftwareClient, cpts_id, client_id, "client")


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
