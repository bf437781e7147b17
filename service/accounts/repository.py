from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, tuple_
from sqlalchemy.dialects.postgresql import array_agg, insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.accounts.models import ClientPractitioner, SoftwareClient, StaffUser
from service.cpts.models import Cpts
from service.errors import NotFound


@dataclass(frozen=True)
class UserPrincipalRow:
    id: uuid.UUID
    cpts_id: uuid.UUID
    role: str
    timezone: str


@dataclass(frozen=True)
class ClientPrincipalRow:
    id: uuid.UUID
    cpts_id: uuid.UUID
    timezone: str
    practitioner_ids: list[uuid.UUID]


async def principal_for_user(session: AsyncSession, user_id: uuid.UUID) -> UserPrincipalRow | None:
    row = (
        await session.execute(
            select(StaffUser.id, StaffUser.cpts_id, StaffUser.role, Cpts.timezone)
            .join(Cpts, Cpts.id == StaffUser.cpts_id)
            .where(StaffUser.id == user_id, StaffUser.active)
        )
    ).first()
    return UserPrincipalRow(*row) if row else None


async def principal_for_api_key(session: AsyncSession, key_digest: str) -> ClientPrincipalRow | None:
    practitioners = select(array_agg(ClientPractitioner.practitioner_id))  # type: ignore[no-untyped-call]
    row = (
        await session.execute(
            select(
                SoftwareClient.id,
                SoftwareClient.cpts_id,
                Cpts.timezone,
                practitioners.where(ClientPractitioner.client_id == SoftwareClient.id).scalar_subquery(),
            )
            .join(Cpts, Cpts.id == SoftwareClient.cpts_id)
            .where(SoftwareClient.key_digest == key_digest, SoftwareClient.active)
        )
    ).first()
    if row is None:
        return None
    return ClientPrincipalRow(id=row[0], cpts_id=row[1], timezone=row[2], practitioner_ids=list(row[3] or []))


async def user_by_email(session: AsyncSession, email: str) -> StaffUser | None:
    return await session.scalar(select(StaffUser).where(StaffUser.email == email.lower()))


async def get_user(session: AsyncSession, cpts_id: uuid.UUID, user_id: uuid.UUID) -> StaffUser:
    user = await session.scalar(select(StaffUser).where(StaffUser.cpts_id == cpts_id, StaffUser.id == user_id))
    if user is None:
        raise NotFound("user")
    return user


async def list_users(session: AsyncSession, cpts_id: uuid.UUID, after: list[Any] | None, limit: int) -> list[StaffUser]:
    query = select(StaffUser).where(StaffUser.cpts_id == cpts_id)
    if after is not None:
        query = query.where(tuple_(StaffUser.email, StaffUser.id) > (after[0], uuid.UUID(after[1])))
    return list(await session.scalars(query.order_by(StaffUser.email, StaffUser.id).limit(limit + 1)))


async def get_client(session: AsyncSession, cpts_id: uuid.UUID, client_id: uuid.UUID) -> SoftwareClient:
    client = await session.scalar(
        select(SoftwareClient).where(SoftwareClient.cpts_id == cpts_id, SoftwareClient.id == client_id)
    )
    if client is None:
        raise NotFound("client")
    return client


async def list_clients(
    session: AsyncSession, cpts_id: uuid.UUID, after: list[Any] | None, limit: int
) -> list[SoftwareClient]:
    query = select(SoftwareClient).where(SoftwareClient.cpts_id == cpts_id)
    if after is not None:
        query = query.where(tuple_(SoftwareClient.name, SoftwareClient.id) > (after[0], uuid.UUID(after[1])))
    return list(await session.scalars(query.order_by(SoftwareClient.name, SoftwareClient.id).limit(limit + 1)))


async def client_practitioners(session: AsyncSession, client_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
    rows = await session.execute(
        select(ClientPractitioner.client_id, ClientPractitioner.practitioner_id)
        .where(ClientPractitioner.client_id.in_(client_ids))
        .order_by(ClientPractitioner.practitioner_id)
    )
    result: dict[uuid.UUID, list[uuid.UUID]] = {client_id: [] for client_id in client_ids}
    for client_id, practitioner_id in rows:
        result[client_id].append(practitioner_id)
    return result


async def set_client_practitioners(
    session: AsyncSession, cpts_id: uuid.UUID, client_id: uuid.UUID, practitioner_ids: list[uuid.UUID]
) -> None:
    await session.execute(delete(ClientPractitioner).where(ClientPractitioner.client_id == client_id))
    if practitioner_ids:
        await session.execute(
            insert(ClientPractitioner),
            [{"cpts_id": cpts_id, "client_id": client_id, "practitioner_id": p} for p in practitioner_ids],
        )
