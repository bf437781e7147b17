from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import anyio
from argon2 import PasswordHasher
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service.accounts import repository
from service.accounts.domain import (
    Role,
    issue_access_token,
    new_api_key,
    new_webhook_secret,
    regulator_problem,
    verify_password,
)
from service.accounts.models import SoftwareClient, StaffUser
from service.accounts.schemas import (
    ClientCreate,
    ClientCreated,
    ClientKeyRotated,
    ClientOut,
    ClientPatch,
    TokenOut,
    UserCreate,
    UserOut,
    UserPatch,
    WebhookSecretRotated,
)
from service.errors import Conflict, Forbidden, Invalid, Unauthenticated, field_error
from service.pagination import BY_NAME, Page
from service.practitioners import repository as practitioners_repository

# Verified when the e-mail is unknown, so that a wrong e-mail costs as long as a wrong password.
_DUMMY_HASH_INPUT = "not-a-real-password"


async def authenticate(
    session: AsyncSession,
    hasher: PasswordHasher,
    secret: str,
    email: str,
    password: str,
    now: datetime,
    ttl_seconds: int,
) -> TokenOut:
    user = await repository.user_by_email(session, email.strip())
    password_hash = user.password_hash if user is not None else None
    if password_hash is None:
        await anyio.to_thread.run_sync(lambda: hasher.hash(_DUMMY_HASH_INPUT))
        raise Unauthenticated("invalid_credentials", "Wrong e-mail or password.")
    ok = await anyio.to_thread.run_sync(lambda: verify_password(hasher, password_hash, password))
    if not ok or user is None or not user.active:
        raise Unauthenticated("invalid_credentials", "Wrong e-mail or password.")
    user.last_login_at = now
    await session.flush()
    return TokenOut(
        access_token=issue_access_token(secret, user.id, user.cpts_id, user.credentials_version, now, ttl_seconds),
        expires_in=ttl_seconds,
    )


def user_out(user: StaffUser) -> UserOut:
    return UserOut.model_validate(user, from_attributes=True)


def _check_may_grant(actor_role: Role, role: str) -> None:
    if role == Role.admin and actor_role is not Role.admin:
        raise Forbidden("forbidden_role", "Only an admin may create or promote an admin.")


async def create_user(
    session: AsyncSession, hasher: PasswordHasher, cpts_id: uuid.UUID, data: UserCreate, actor_role: Role = Role.admin
) -> StaffUser:
    _check_may_grant(actor_role, data.role)
    if await repository.user_by_email(session, data.email) is not None:
        raise Conflict("user_exists", "A user with this e-mail already exists.")
    password_hash = await anyio.to_thread.run_sync(hasher.hash, data.password)
    user = StaffUser(
        id=uuid.uuid4(),
        cpts_id=cpts_id,
        email=data.email,
        display_name=data.display_name,
        role=data.role,
        rpps=data.rpps,
        password_hash=password_hash,
        active=True,
    )
    session.add(user)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:  # a concurrent creation with the same e-mail
        raise Conflict("user_exists", "A user with this e-mail already exists.") from exc
    await session.refresh(user)
    return user


async def update_user(
    session: AsyncSession,
    hasher: PasswordHasher,
    cpts_id: uuid.UUID,
    user_id: uuid.UUID,
    patch: UserPatch,
    actor_role: Role,
) -> StaffUser:
    user = await repository.get_user(session, cpts_id, user_id, for_update=True)
    if user.role == Role.admin or patch.role is not None:
        _check_may_grant(actor_role, Role.admin if user.role == Role.admin else (patch.role or user.role))
    revoke = False  # tokens issued before lose their power at once (credentials version)
    if patch.display_name is not None:
        user.display_name = patch.display_name
    if patch.role is not None and patch.role != user.role:
        user.role, revoke = patch.role, True
    if "rpps" in patch.model_fields_set:
        user.rpps = patch.rpps
    problem = regulator_problem(user.role, user.rpps)
    if problem:
        raise Invalid("validation_error", problem, errors=[field_error(["body", "rpps"], problem)])
    if patch.active is not None and patch.active != user.active:
        user.active, revoke = patch.active, True
    if patch.password is not None:
        user.password_hash, revoke = await anyio.to_thread.run_sync(hasher.hash, patch.password), True
    if revoke:
        user.credentials_version += 1
    await session.flush()
    return user


async def _checked_practitioners(
    session: AsyncSession, cpts_id: uuid.UUID, practitioner_ids: list[uuid.UUID]
) -> list[uuid.UUID]:
    wanted = list(dict.fromkeys(practitioner_ids))
    known = await practitioners_repository.existing_ids(session, cpts_id, wanted)
    unknown = [str(p) for p in wanted if p not in known]
    if unknown:
        raise Invalid(
            "unknown_practitioner",
            f"{len(unknown)} practitioner id(s) are not members of this CPTS.",
            errors=[field_error(["body", "practitioner_ids"], f"unknown practitioner {p}") for p in unknown[:20]],
        )
    return wanted


def client_out(client: SoftwareClient, practitioner_ids: list[uuid.UUID]) -> dict[str, Any]:
    return {
        "id": client.id,
        "name": client.name,
        "api_key_prefix": client.key_prefix,
        "practitioner_ids": practitioner_ids,
        "webhook_url": client.webhook_url,
        "active": client.active,
        "created_at": client.created_at,
        "key_rotated_at": client.key_rotated_at,
    }


async def create_client(session: AsyncSession, cpts_id: uuid.UUID, data: ClientCreate) -> ClientCreated:
    practitioner_ids = await _checked_practitioners(session, cpts_id, data.practitioner_ids)
    key = new_api_key()
    client = SoftwareClient(
        id=uuid.uuid4(),
        cpts_id=cpts_id,
        name=data.name,
        key_prefix=key.prefix,
        key_digest=key.digest,
        webhook_url=str(data.webhook_url) if data.webhook_url else None,
        webhook_secret=new_webhook_secret(),
        active=True,
    )
    session.add(client)
    await session.flush()
    await repository.set_client_practitioners(session, cpts_id, client.id, practitioner_ids)
    await session.refresh(client)
    return ClientCreated(**client_out(client, practitioner_ids), api_key=key.key, webhook_secret=client.webhook_secret)


async def list_users(session: AsyncSession, cpts_id: uuid.UUID, limit: int, cursor: str | None) -> Page[UserOut]:
    rows = await repository.list_users(session, cpts_id, BY_NAME.decode(cursor), limit)
    users, next_cursor = BY_NAME.page(rows, limit, lambda u: (u.email, u.id))
    return Page(items=[user_out(u) for u in users], next_cursor=next_cursor)


async def list_clients(session: AsyncSession, cpts_id: uuid.UUID, limit: int, cursor: str | None) -> Page[ClientOut]:
    rows = await repository.list_clients(session, cpts_id, BY_NAME.decode(cursor), limit)
    clients, next_cursor = BY_NAME.page(rows, limit, lambda c: (c.name, c.id))
    practitioners = await repository.client_practitioners(session, cpts_id, [c.id for c in clients])
    return Page(items=[ClientOut(**client_out(c, practitioners[c.id])) for c in clients], next_cursor=next_cursor)


async def get_client(session: AsyncSession, cpts_id: uuid.UUID, client_id: uuid.UUID) -> ClientOut:
    client = await repository.get_client(session, cpts_id, client_id)
    practitioners = await repository.client_practitioners(session, cpts_id, [client.id])
    return ClientOut(**client_out(client, practitioners[client.id]))


async def update_client(
    session: AsyncSession, cpts_id: uuid.UUID, client_id: uuid.UUID, patch: ClientPatch
) -> ClientOut:
    client = await repository.get_client(session, cpts_id, client_id)
    changes = patch.model_dump(exclude_unset=True)
    if patch.name is not None:
        client.name = patch.name
    if "webhook_url" in changes:
        client.webhook_url = str(patch.webhook_url) if patch.webhook_url else None
    if patch.active is not None:
        client.active = patch.active
    if patch.practitioner_ids is not None:
        ids = await _checked_practitioners(session, cpts_id, patch.practitioner_ids)
        await repository.set_client_practitioners(session, cpts_id, client.id, ids)
    await session.flush()
    return await get_client(session, cpts_id, client_id)


async def rotate_key(
    session: AsyncSession, cpts_id: uuid.UUID, client_id: uuid.UUID, now: datetime
) -> ClientKeyRotated:
    client = await repository.get_client(session, cpts_id, client_id)
    key = new_api_key()
    client.key_prefix, client.key_digest, client.key_rotated_at = key.prefix, key.digest, now
    await session.flush()
    return ClientKeyRotated(id=client.id, api_key=key.key, api_key_prefix=key.prefix, key_rotated_at=now)


async def rotate_webhook_secret(
    session: AsyncSession, cpts_id: uuid.UUID, client_id: uuid.UUID
) -> WebhookSecretRotated:
    client = await repository.get_client(session, cpts_id, client_id)
    client.webhook_secret = new_webhook_secret()
    await session.flush()
    return WebhookSecretRotated(id=client.id, webhook_secret=client.webhook_secret)
