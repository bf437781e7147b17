from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import anyio
from argon2 import PasswordHasher
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service import destinations
from service.accounts import repository
from service.accounts.domain import (
    ACCOUNT_THROTTLE,
    SAS_KEY_PREFIX,
    RegulatorFacts,
    Role,
    StoredRegulator,
    ThrottleState,
    issue_access_token,
    new_api_key,
    new_recovery_codes,
    new_totp_secret,
    new_webhook_secret,
    password_problem,
    recovery_digest,
    regulator_problem,
    retry_after,
    secret_cipher,
    throttle_rules,
    totp_uri,
    totp_valid,
    verify_password,
)
from service.accounts.models import SasClient, SasRegulator, SoftwareClient, StaffUser
from service.accounts.schemas import (
    ClientCreate,
    ClientCreated,
    ClientKeyRotated,
    ClientOut,
    ClientPatch,
    MfaActivated,
    MfaEnrollment,
    TokenOut,
    UserCreate,
    UserOut,
    UserPatch,
    WebhookSecretRotated,
)
from service.config import Settings
from service.cpts import repository as cpts_repository
from service.db import session_scope
from service.destinations import WebhookPolicy
from service.errors import Conflict, Forbidden, Invalid, NotFound, TooManyRequests, Unauthenticated, field_error
from service.pagination import BY_NAME, Page
from service.practitioners import repository as practitioners_repository

# Verified when the e-mail is unknown, so that a wrong e-mail costs as long as a wrong password.
_DUMMY_HASH_INPUT = "not-a-real-password"
WRONG = "Wrong e-mail or password."


@dataclass(frozen=True)
class LoginAttempt:
    email: str
    password: str
    otp: str | None  # a TOTP code, or a recovery code
    cpts_id: uuid.UUID | None  # to choose among accounts of the same e-mail in several CPTS
    address: str | None  # the client's address, for the per-address throttle


def _refuse_if_locked(states: dict[tuple[str, str], ThrottleState], keys: list[tuple[str, str]], now: datetime) -> None:
    waits = [w for key in keys if (w := retry_after(states.get(key), now)) is not None]
    if waits:
        raise TooManyRequests(
            "login_locked",
            "Too many failed logins: try again later, or ask a coordinator to unlock the account.",
            retry_after=max(waits),
        )


def _second_factor_ok(user: StaffUser, otp: str, cipher: Fernet, now: datetime) -> bool:
    """A TOTP code of the user's secret, or one of their unused recovery codes (used up now)."""
    assert user.totp_secret is not None
    secret = cipher.decrypt(user.totp_secret).decode()
    if totp_valid(secret, otp, now):
        return True
    digest = recovery_digest(otp)
    if digest in user.recovery_code_digests:
        user.recovery_code_digests = [d for d in user.recovery_code_digests if d != digest]
        return True
    return False


async def _password_matches(hasher: PasswordHasher, user: StaffUser, password: str) -> bool:
    digest = user.password_hash
    return await anyio.to_thread.run_sync(lambda: verify_password(hasher, digest, password))


async def login(
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    hasher: PasswordHasher,
    settings: Settings,
    attempt: LoginAttempt,
    now: datetime,
) -> TokenOut:
    """A token for a staff member's e-mail and password (and second factor when they have one).
    Failures are counted per account and per client address, in a transaction of their own (the
    request's own is rolled back with its 401): past the limit, a 429 with Retry-After."""
    email = attempt.email.strip().lower()
    per_account, per_address = throttle_rules(
        settings.login_max_failures_per_account, settings.login_max_failures_per_address
    )
    keys = [(per_account.scope, email)] + ([(per_address.scope, attempt.address)] if attempt.address else [])
    _refuse_if_locked(await repository.throttle_states(session, keys), keys, now)

    async def failed(code: str, detail: str) -> Unauthenticated:
        async with session_scope(sessionmaker) as own:
            await repository.record_failure(own, per_account, email, now)
            if attempt.address:
                await repository.record_failure(own, per_address, attempt.address, now)
        return Unauthenticated(code, detail)

    candidates = [
        u
        for u in await repository.users_by_email(session, email)
        if u.active and u.password_hash and (attempt.cpts_id is None or u.cpts_id == attempt.cpts_id)
    ]
    if not candidates:
        await anyio.to_thread.run_sync(lambda: hasher.hash(_DUMMY_HASH_INPUT))
        raise await failed("invalid_credentials", WRONG)
    matches = [u for u in candidates if await _password_matches(hasher, u, attempt.password)]
    if not matches:
        raise await failed("invalid_credentials", WRONG)
    if len(matches) > 1:
        # The caller knows these accounts' password: naming their CPTS tells them nothing new.
        raise Unauthenticated(
            "cpts_required",
            "This e-mail signs in to several CPTS: choose one with scope=cpts:<id>.",
            cpts=[str(u.cpts_id) for u in matches],
        )
    user = matches[0]
    if user.totp_enabled_at is not None:
        if not attempt.otp:
            raise Unauthenticated("otp_required", "Enter the 6-digit code of your authenticator app.")
        if not _second_factor_ok(user, attempt.otp, secret_cipher(settings.secret_key.get_secret_value()), now):
            raise await failed("invalid_otp", "This code is not valid; use the current code, or a recovery code.")
    cpts = await cpts_repository.get(session, user.cpts_id)
    await repository.clear_throttle(session, per_account.scope, email)
    user.last_login_at = now
    await session.flush()
    enrollment_only = cpts.mfa_required and user.totp_enabled_at is None
    token = issue_access_token(
        settings.secret_key.get_secret_value(),
        user.id,
        user.cpts_id,
        user.credentials_version,
        now,
        settings.token_ttl_seconds,
        enrollment_only=enrollment_only,
    )
    return TokenOut(access_token=token, expires_in=settings.token_ttl_seconds, mfa_enrollment_required=enrollment_only)


async def enroll_second_factor(
    session: AsyncSession, cpts_id: uuid.UUID, user_id: uuid.UUID, settings: Settings
) -> MfaEnrollment:
    """A new TOTP secret for the caller, waiting for a first code to activate it (an active one
    stays in force until then)."""
    user = await repository.get_user(session, cpts_id, user_id, for_update=True)
    secret = new_totp_secret()
    user.pending_totp_secret = secret_cipher(settings.secret_key.get_secret_value()).encrypt(secret.encode())
    await session.flush()
    return MfaEnrollment(secret=secret, otpauth_uri=totp_uri(secret, user.email))


async def activate_second_factor(
    session: AsyncSession, cpts_id: uuid.UUID, user_id: uuid.UUID, settings: Settings, code: str, now: datetime
) -> MfaActivated:
    """The first code proves the app holds the secret: the second factor is on, and the recovery
    codes are shown once. Tokens issued before (an enrolment-only one) stop working."""
    user = await repository.get_user(session, cpts_id, user_id, for_update=True)
    if user.pending_totp_secret is None:
        raise Conflict("no_enrollment", "Start the enrolment first (POST /v1/auth/mfa/enroll).")
    cipher = secret_cipher(settings.secret_key.get_secret_value())
    if not totp_valid(cipher.decrypt(user.pending_totp_secret).decode(), code, now):
        raise Invalid("invalid_otp", "This code is not valid: check the app's clock and enter the current code.")
    codes = new_recovery_codes()
    user.totp_secret, user.pending_totp_secret, user.totp_enabled_at = user.pending_totp_secret, None, now
    user.recovery_code_digests = [recovery_digest(c) for c in codes]
    user.credentials_version += 1
    await session.flush()
    return MfaActivated(recovery_codes=codes)


async def reset_second_factor(session: AsyncSession, cpts_id: uuid.UUID, user_id: uuid.UUID) -> StaffUser:
    """A coordinator clears a user's second factor (a lost phone): they enrol again at next login."""
    user = await repository.get_user(session, cpts_id, user_id, for_update=True)
    user.totp_secret = user.pending_totp_secret = user.totp_enabled_at = None
    user.recovery_code_digests = []
    user.credentials_version += 1
    await session.flush()
    return user


async def unlock(session: AsyncSession, cpts_id: uuid.UUID, user_id: uuid.UUID) -> StaffUser:
    """A coordinator lifts the lock that failed logins put on an account."""
    user = await repository.get_user(session, cpts_id, user_id)
    await repository.clear_throttle(session, ACCOUNT_THROTTLE.scope, user.email)
    return user


def user_out(user: StaffUser, locked_until: datetime | None = None) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        display_name=user.display_name,
        role=user.role,
        rpps=user.rpps,
        active=user.active,
        mfa_enabled=user.totp_enabled_at is not None,
        locked_until=locked_until,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
    )


async def described(session: AsyncSession, users: list[StaffUser], now: datetime) -> list[UserOut]:
    """Users as the API shows them, with the lock failed logins put on them."""
    locks = await repository.locks_of(session, [u.email for u in users], now)
    return [user_out(u, locks.get(u.email)) for u in users]


async def user_answer(session: AsyncSession, user: StaffUser, now: datetime) -> UserOut:
    [out] = await described(session, [user], now)
    return out


def _check_may_grant(actor_role: Role, role: str) -> None:
    if role == Role.admin and actor_role is not Role.admin:
        raise Forbidden("forbidden_role", "Only an admin may create or promote an admin.")


async def create_user(
    session: AsyncSession, hasher: PasswordHasher, cpts_id: uuid.UUID, data: UserCreate, actor_role: Role = Role.admin
) -> StaffUser:
    _check_may_grant(actor_role, data.role)
    weak = password_problem(data.password, data.email, data.display_name)
    if weak:
        raise Invalid("weak_password", weak, errors=[field_error(["body", "password"], weak)])
    if await repository.user_in_cpts_by_email(session, cpts_id, data.email) is not None:
        raise Conflict("user_exists", "A user with this e-mail already exists in this CPTS.")
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
        raise Conflict("user_exists", "A user with this e-mail already exists in this CPTS.") from exc
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
        weak = password_problem(patch.password, user.email, user.display_name)
        if weak:
            raise Invalid("weak_password", weak, errors=[field_error(["body", "password"], weak)])
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


async def _checked_webhook(url: object | None, policy: WebhookPolicy) -> str | None:
    """The webhook URL as stored, once it is one the service may send to (service.destinations)."""
    if url is None:
        return None
    try:
        await destinations.check(str(url), policy)
    except destinations.RefusedDestination as exc:
        raise Invalid("webhook_url_refused", str(exc), errors=[field_error(["body", "webhook_url"], str(exc))]) from exc
    return str(url)


async def create_client(
    session: AsyncSession, cpts_id: uuid.UUID, data: ClientCreate, policy: WebhookPolicy
) -> ClientCreated:
    practitioner_ids = await _checked_practitioners(session, cpts_id, data.practitioner_ids)
    webhook_url = await _checked_webhook(data.webhook_url, policy)
    key = new_api_key()
    client = SoftwareClient(
        id=uuid.uuid4(),
        cpts_id=cpts_id,
        name=data.name,
        key_prefix=key.prefix,
        key_digest=key.digest,
        webhook_url=webhook_url,
        webhook_secret=new_webhook_secret(),
        active=True,
    )
    session.add(client)
    await session.flush()
    await repository.set_client_practitioners(session, cpts_id, client.id, practitioner_ids)
    await session.refresh(client)
    return ClientCreated(**client_out(client, practitioner_ids), api_key=key.key, webhook_secret=client.webhook_secret)


async def list_users(
    session: AsyncSession, cpts_id: uuid.UUID, limit: int, cursor: str | None, now: datetime
) -> Page[UserOut]:
    rows = await repository.list_users(session, cpts_id, BY_NAME.decode(cursor), limit)
    users, next_cursor = BY_NAME.page(rows, limit, lambda u: (u.email, u.id))
    return Page(items=await described(session, users, now), next_cursor=next_cursor)


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
    session: AsyncSession, cpts_id: uuid.UUID, client_id: uuid.UUID, patch: ClientPatch, policy: WebhookPolicy
) -> ClientOut:
    client = await repository.get_client(session, cpts_id, client_id)
    changes = patch.model_dump(exclude_unset=True)
    if patch.name is not None:
        client.name = patch.name
    if "webhook_url" in changes:
        client.webhook_url = await _checked_webhook(patch.webhook_url, policy)
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
    session: AsyncSession, cpts_id: uuid.UUID, client_id: uuid.UUID, now: datetime, grace: timedelta
) -> WebhookSecretRotated:
    """A new signing secret; the previous one keeps signing too for the grace period
    (SNP_WEBHOOK_SECRET_GRACE_HOURS), so that the receiver can switch without losing a delivery."""
    client = await repository.get_client(session, cpts_id, client_id, for_update=True)
    client.previous_webhook_secret = client.webhook_secret
    client.webhook_secret, client.webhook_secret_rotated_at = new_webhook_secret(), now
    await session.flush()
    return WebhookSecretRotated(
        id=client.id, webhook_secret=client.webhook_secret, previous_secret_valid_until=now + grace
    )


async def create_sas_client(session: AsyncSession, name: str, now: datetime) -> tuple[SasClient, str]:
    """The SAS platform's principal (deployment-wide) and its API key, shown once."""
    key = new_api_key(SAS_KEY_PREFIX)
    client = SasClient(name=name, key_prefix=key.prefix, key_digest=key.digest, created_at=now)
    session.add(client)
    await session.flush()
    return client, key.key


async def rotate_sas_key(session: AsyncSession, client_id: uuid.UUID | None, now: datetime) -> tuple[SasClient, str]:
    """A new key for the SAS client (the only one when no id is given); the previous one stops now."""
    clients = list(await session.scalars(select(SasClient).where(SasClient.active).order_by(SasClient.created_at)))
    chosen = [c for c in clients if client_id is None or c.id == client_id]
    if not chosen:
        raise NotFound("sas_client")
    if client_id is None and len(chosen) > 1:
        raise Conflict("sas_client_ambiguous", "Several SAS clients exist: name one with --id.")
    client = chosen[0]
    key = new_api_key(SAS_KEY_PREFIX)
    client.key_prefix, client.key_digest, client.key_rotated_at = key.prefix, key.digest, now
    await session.flush()
    return client, key.key


class RegulatorWrite(StrEnum):
    created = "created"
    updated = "updated"
    unchanged = "unchanged"
    exists = "exists"  # a create for an identifier already held with other facts: update it instead


def _stored(row: SasRegulator) -> StoredRegulator:
    return StoredRegulator(
        row.id,
        RegulatorFacts(
            identifier_system=row.identifier_system,
            identifier_value=row.identifier_value,
            rpps=row.rpps,
            family_name=row.family_name,
            given_name=row.given_name,
            email=row.email,
            active=row.active,
        ),
        row.version,
        row.updated_at,
    )


async def _regulator_by_identifier(session: AsyncSession, system: str, value: str) -> SasRegulator | None:
    return await session.scalar(
        select(SasRegulator)
        .where(SasRegulator.identifier_system == system, SasRegulator.identifier_value == value)
        .with_for_update()
    )


async def write_sas_regulator(
    session: AsyncSession,
    facts: RegulatorFacts,
    now: datetime,
    *,
    create_only: bool,
    known_as: tuple[str, str] | None = None,
) -> tuple[StoredRegulator, RegulatorWrite]:
    """Record a regulator the SAS pushed. A create of one already held with the same facts (the
    SAS retrying) answers it unchanged; `create_only=False` (a conditional update) updates it.
    `known_as`: the identifier a conditional update named them by, when it is not the one kept
    (a regulator first known by the SAS's internal id, now with their IDNPS): that record is
    updated and keeps the new identifier, rather than a second one being made. Withdrawing or
    restoring the account moves its credentials version, as for staff."""
    kept = (facts.identifier_system, facts.identifier_value)
    if not create_only and known_as is not None and known_as != kept:
        earlier = await _regulator_by_identifier(session, *known_as)
        if earlier is not None:
            if await _regulator_by_identifier(session, *kept) is not None:
                return _stored(earlier), RegulatorWrite.exists  # two records would be one person
            earlier.identifier_system, earlier.identifier_value = kept
            return _stored(await _update_regulator(session, earlier, facts, now)), RegulatorWrite.updated
    inserted = await session.scalar(
        pg_insert(SasRegulator)
        .values(
            id=uuid.uuid4(),
            identifier_system=facts.identifier_system,
            identifier_value=facts.identifier_value,
            rpps=facts.rpps,
            family_name=facts.family_name,
            given_name=facts.given_name,
            email=facts.email,
            active=facts.active,
            created_at=now,
            updated_at=now,
        )
        # Two pushes of a new regulator at once: one inserts, the other finds it below.
        .on_conflict_do_nothing(index_elements=["identifier_system", "identifier_value"])
        .returning(SasRegulator.id)
    )
    row = await _regulator_by_identifier(session, facts.identifier_system, facts.identifier_value)
    assert row is not None  # inserted now, or held before: the unique key guarantees one
    if inserted is not None:
        return _stored(row), RegulatorWrite.created
    if _stored(row).facts == facts:
        return _stored(row), RegulatorWrite.unchanged
    if create_only:
        return _stored(row), RegulatorWrite.exists
    return _stored(await _update_regulator(session, row, facts, now)), RegulatorWrite.updated


async def _update_regulator(
    session: AsyncSession, row: SasRegulator, facts: RegulatorFacts, now: datetime
) -> SasRegulator:
    if row.active != facts.active:
        row.credentials_version += 1
    row.rpps, row.family_name, row.given_name = facts.rpps, facts.family_name, facts.given_name
    row.email, row.active = facts.email, facts.active
    row.version += 1
    row.updated_at = now
    await session.flush()
    return row


async def sas_regulator(session: AsyncSession, regulator_id: uuid.UUID) -> StoredRegulator | None:
    row = await session.get(SasRegulator, regulator_id)
    return _stored(row) if row is not None else None


async def sas_regulator_by_rpps(session: AsyncSession, rpps: str) -> StoredRegulator | None:
    """The SAS regulator a request names by RPPS, when the SAS told us of them."""
    row = await session.scalar(select(SasRegulator).where(SasRegulator.rpps == rpps).order_by(SasRegulator.created_at))
    return _stored(row) if row is not None else None
