from __future__ import annotations

import uuid
from typing import Annotated

from argon2 import PasswordHasher
from fastapi import Depends, Request, status
from fastapi.security import OAuth2PasswordRequestForm

from service.accounts import repository, service
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
from service.auth import Coordinator
from service.clock import Now
from service.config import SettingsDep
from service.db import SessionDep
from service.idempotency import Idempotent
from service.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from service.routing import api_router


async def _hasher(request: Request) -> PasswordHasher:
    hasher = request.app.state.password_hasher
    assert isinstance(hasher, PasswordHasher)
    return hasher


Hasher = Annotated[PasswordHasher, Depends(_hasher)]

auth_router = api_router(prefix="/v1/auth", tags=["auth"])
router = api_router(prefix="/v1", tags=["accounts"])


@auth_router.post("/token", operation_id="auth-token")
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    settings: SettingsDep,
    hasher: Hasher,
    now: Now,
) -> TokenOut:
    """Exchange a staff e-mail and password for a bearer token (OAuth2 password flow)."""
    return await service.authenticate(
        session,
        hasher,
        settings.secret_key.get_secret_value(),
        form.username,
        form.password,
        now,
        settings.token_ttl_seconds,
    )


@router.post("/users", status_code=status.HTTP_201_CREATED, operation_id="users-create", dependencies=[Idempotent])
async def create_user(data: UserCreate, principal: Coordinator, session: SessionDep, hasher: Hasher) -> UserOut:
    user = await service.create_user(session, hasher, principal.cpts_id, data, principal.role)
    return service.user_out(user)


@router.get("/users", operation_id="users-list")
async def list_users(
    principal: Coordinator, session: SessionDep, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[UserOut]:
    return await service.list_users(session, principal.cpts_id, limit, cursor)


@router.get("/users/{user_id}", operation_id="users-get")
async def get_user(user_id: uuid.UUID, principal: Coordinator, session: SessionDep) -> UserOut:
    return service.user_out(await repository.get_user(session, principal.cpts_id, user_id))


@router.patch("/users/{user_id}", operation_id="users-update")
async def update_user(
    user_id: uuid.UUID, patch: UserPatch, principal: Coordinator, session: SessionDep, hasher: Hasher
) -> UserOut:
    user = await service.update_user(session, hasher, principal.cpts_id, user_id, patch, principal.role)
    return service.user_out(user)


@router.post("/clients", status_code=status.HTTP_201_CREATED, operation_id="clients-create", dependencies=[Idempotent])
async def create_client(data: ClientCreate, principal: Coordinator, session: SessionDep) -> ClientCreated:
    return await service.create_client(session, principal.cpts_id, data)


@router.get("/clients", operation_id="clients-list")
async def list_clients(
    principal: Coordinator, session: SessionDep, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[ClientOut]:
    return await service.list_clients(session, principal.cpts_id, limit, cursor)


@router.get("/clients/{client_id}", operation_id="clients-get")
async def get_client(client_id: uuid.UUID, principal: Coordinator, session: SessionDep) -> ClientOut:
    return await service.get_client(session, principal.cpts_id, client_id)


@router.patch("/clients/{client_id}", operation_id="clients-update")
async def update_client(
    client_id: uuid.UUID, patch: ClientPatch, principal: Coordinator, session: SessionDep
) -> ClientOut:
    return await service.update_client(session, principal.cpts_id, client_id, patch)


@router.post("/clients/{client_id}/rotate-key", operation_id="clients-rotate_key", dependencies=[Idempotent])
async def rotate_key(client_id: uuid.UUID, principal: Coordinator, session: SessionDep, now: Now) -> ClientKeyRotated:
    """Issue a new API key; the previous one stops working at once."""
    return await service.rotate_key(session, principal.cpts_id, client_id, now)


@router.post(
    "/clients/{client_id}/rotate-webhook-secret",
    operation_id="clients-rotate_webhook_secret",
    dependencies=[Idempotent],
)
async def rotate_webhook_secret(
    client_id: uuid.UUID, principal: Coordinator, session: SessionDep
) -> WebhookSecretRotated:
    return await service.rotate_webhook_secret(session, principal.cpts_id, client_id)
