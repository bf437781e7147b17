from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from argon2 import PasswordHasher
from fastapi import Depends, Form, Request, status

from service.accounts import repository, service
from service.accounts.schemas import (
    ClientCreate,
    ClientCreated,
    ClientKeyRotated,
    ClientOut,
    ClientPatch,
    MfaActivated,
    MfaCode,
    MfaEnrollment,
    TokenOut,
    UserCreate,
    UserOut,
    UserPatch,
    WebhookSecretRotated,
)
from service.auth import Coordinator, StaffEnrolling
from service.clock import Now
from service.config import SettingsDep
from service.db import SessionDep
from service.destinations import WebhookPolicy
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


class LoginForm:
    """The OAuth2 password form (so the /docs "Authorize" button works), with the second factor:
    `otp` takes the authenticator's 6-digit code or a recovery code; `scope=cpts:<id>` chooses the
    CPTS when one e-mail signs in to several."""

    def __init__(
        self,
        username: Annotated[str, Form(max_length=254)],
        password: Annotated[str, Form(max_length=200)],
        otp: Annotated[str | None, Form(max_length=20, description="TOTP code or recovery code")] = None,
        scope: Annotated[str, Form(max_length=200)] = "",
        grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
    ) -> None:
        self.username, self.password, self.otp, self.scope = username, password, otp, scope

    def cpts_id(self) -> uuid.UUID | None:
        for item in self.scope.split():
            if item.startswith("cpts:"):
                try:
                    return uuid.UUID(item.removeprefix("cpts:"))
                except ValueError:
                    return None
        return None


@auth_router.post("/token", operation_id="auth-token", responses={429: {"description": "Too many failed logins"}})
async def token(
    form: Annotated[LoginForm, Depends()],
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    hasher: Hasher,
    now: Now,
) -> TokenOut:
    """Exchange a staff e-mail and password (and the second factor) for a bearer token (OAuth2
    password flow). Failed logins are throttled per account and per address: 429 + Retry-After."""
    attempt = service.LoginAttempt(
        email=form.username,
        password=form.password,
        otp=form.otp,
        cpts_id=form.cpts_id(),
        address=request.client.host if request.client else None,
    )
    return await service.login(session, request.app.state.sessionmaker, hasher, settings, attempt, now)


@auth_router.post("/mfa/enroll", operation_id="auth-mfa_enroll")
async def enroll_mfa(principal: StaffEnrolling, session: SessionDep, settings: SettingsDep) -> MfaEnrollment:
    """Start (or restart) a second factor: a TOTP secret for an authenticator app, active once a
    first code confirms it."""
    return await service.enroll_second_factor(session, principal.cpts_id, principal.id, settings)


@auth_router.post("/mfa/activate", operation_id="auth-mfa_activate")
async def activate_mfa(
    code: MfaCode, principal: StaffEnrolling, session: SessionDep, settings: SettingsDep, now: Now
) -> MfaActivated:
    """Confirm the second factor with a first code; answers the recovery codes, once. Sign in again."""
    return await service.activate_second_factor(session, principal.cpts_id, principal.id, settings, code.code, now)


@router.post("/users", status_code=status.HTTP_201_CREATED, operation_id="users-create", dependencies=[Idempotent])
async def create_user(
    data: UserCreate, principal: Coordinator, session: SessionDep, hasher: Hasher, now: Now
) -> UserOut:
    user = await service.create_user(session, hasher, principal.cpts_id, data, principal.role)
    return await service.user_answer(session, user, now)


@router.get("/users", operation_id="users-list")
async def list_users(
    principal: Coordinator, session: SessionDep, now: Now, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[UserOut]:
    return await service.list_users(session, principal.cpts_id, limit, cursor, now)


@router.get("/users/{user_id}", operation_id="users-get")
async def get_user(user_id: uuid.UUID, principal: Coordinator, session: SessionDep, now: Now) -> UserOut:
    return await service.user_answer(session, await repository.get_user(session, principal.cpts_id, user_id), now)


@router.patch("/users/{user_id}", operation_id="users-update")
async def update_user(
    user_id: uuid.UUID, patch: UserPatch, principal: Coordinator, session: SessionDep, hasher: Hasher, now: Now
) -> UserOut:
    """Change a staff account. A new password, a deactivation or a role change revokes the tokens
    issued before, at once."""
    user = await service.update_user(session, hasher, principal.cpts_id, user_id, patch, principal.role)
    return await service.user_answer(session, user, now)


@router.post("/users/{user_id}/unlock", operation_id="users-unlock", dependencies=[Idempotent])
async def unlock_user(user_id: uuid.UUID, principal: Coordinator, session: SessionDep, now: Now) -> UserOut:
    """Lift the lock that failed logins put on the account."""
    return await service.user_answer(session, await service.unlock(session, principal.cpts_id, user_id), now)


@router.post("/users/{user_id}/reset-mfa", operation_id="users-reset_mfa", dependencies=[Idempotent])
async def reset_mfa(user_id: uuid.UUID, principal: Coordinator, session: SessionDep, now: Now) -> UserOut:
    """Clear the user's second factor (a lost phone): they enrol again at their next login."""
    user = await service.reset_second_factor(session, principal.cpts_id, user_id)
    return await service.user_answer(session, user, now)


async def _webhook_policy(request: Request) -> WebhookPolicy:
    policy = request.app.state.webhook_policy
    assert isinstance(policy, WebhookPolicy)
    return policy


Policy = Annotated[WebhookPolicy, Depends(_webhook_policy)]


@router.post("/clients", status_code=status.HTTP_201_CREATED, operation_id="clients-create", dependencies=[Idempotent])
async def create_client(
    data: ClientCreate, principal: Coordinator, session: SessionDep, policy: Policy
) -> ClientCreated:
    return await service.create_client(session, principal.cpts_id, data, policy)


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
    client_id: uuid.UUID, patch: ClientPatch, principal: Coordinator, session: SessionDep, policy: Policy
) -> ClientOut:
    return await service.update_client(session, principal.cpts_id, client_id, patch, policy)


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
    client_id: uuid.UUID, principal: Coordinator, session: SessionDep, settings: SettingsDep, now: Now
) -> WebhookSecretRotated:
    """A new signing secret. The previous one keeps signing too (a second `v1=`) until
    `previous_secret_valid_until`, so that the receiver can switch without losing a delivery."""
    grace = timedelta(hours=settings.webhook_secret_grace_hours)
    return await service.rotate_webhook_secret(session, principal.cpts_id, client_id, now, grace)
