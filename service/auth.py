"""Who is calling: staff with a bearer token from `/v1/auth/token`, or practice software with its
API key. Every principal belongs to exactly one CPTS; every query is scoped to it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.encoders import jsonable_encoder
from fastapi.security import HTTPBearer, OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from service.accounts import repository as accounts_repository
from service.accounts.domain import (
    API_KEY_PREFIX,
    ORIENTING_ROLES,
    STAFF_ROLES,
    Role,
    api_key_digest,
    decode_access_token,
)
from service.accounts.principals import PrincipalCache
from service.clock import Now
from service.db import get_session
from service.errors import Forbidden, Unauthenticated
from service.fields import response_timezone

_staff_scheme = OAuth2PasswordBearer(
    tokenUrl="/v1/auth/token", auto_error=False, scheme_name="StaffToken", description="Staff access token"
)
_api_key_scheme = HTTPBearer(auto_error=False, scheme_name="ApiKey", description="Practice-software API key (snpk_...)")


@dataclass(frozen=True)
class Principal:
    kind: str  # "user" or "client"
    id: uuid.UUID
    cpts_id: uuid.UUID
    role: Role
    timezone: str
    # For software clients: the practitioners it may publish for and read the bookings of.
    practitioner_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)
    # For regulators: the physician's RPPS, recorded with the medical decisions they take.
    rpps: str | None = None
    # A staff token that only enrols a second factor (the CPTS requires one).
    enrollment_only: bool = False

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def is_software(self) -> bool:
        return self.role is Role.software

    @property
    def visible_practitioners(self) -> frozenset[uuid.UUID] | None:
        """The practitioners this principal may see; None: the whole CPTS's."""
        return self.practitioner_ids if self.is_software else None

    def may_act_for(self, practitioner_id: uuid.UUID) -> bool:
        return not self.is_software or practitioner_id in self.practitioner_ids


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer ...` header (a staff token or an API key alike)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


async def _caller(request: Request, now: datetime, *, full: bool) -> Principal:
    """The principal of the request's bearer token; `full`: a token valid for the whole API (not one
    that only enrols a second factor)."""
    principal: Principal | None = getattr(request.state, "principal", None)  # another dependency's
    if principal is None:
        token = bearer_token(request)
        if not token:
            raise Unauthenticated("unauthenticated", "Missing bearer token.")
        principal = await principal_for_token(request, None, now, token)
    if full and principal.enrollment_only:
        raise Forbidden(
            "mfa_enrollment_required",
            "This CPTS requires a second factor: enrol one (POST /v1/auth/mfa/enroll), then sign in again.",
        )
    return principal


async def principal_for_token(request: Request, session: AsyncSession | None, now: datetime, token: str) -> Principal:
    """Who a bearer token (or the console's session cookie, which holds the same token) names. The
    database is asked (through `session`, or the request's own) only when the worker's cache does
    not know the token: a read then needs no session at all."""
    cache: PrincipalCache = request.app.state.principals
    if token.startswith(API_KEY_PREFIX):
        digest = api_key_digest(token)
        client = cache.client(digest)
        if client is None:
            generation = cache.generation
            client = await accounts_repository.principal_for_api_key(session or await get_session(request), digest)
            if client is not None:
                cache.keep_client(digest, client, generation)
        if client is None:
            raise Unauthenticated("invalid_credentials", "Unknown or revoked API key.")
        principal = Principal(
            kind="client",
            id=client.id,
            cpts_id=client.cpts_id,
            role=Role.software,
            timezone=client.timezone,
            practitioner_ids=frozenset(client.practitioner_ids),
        )
    else:
        claims = decode_access_token(request.app.state.settings.secret_key.get_secret_value(), token, now)
        user = cache.user(claims.user_id) if claims else None
        if claims is not None and user is None:
            generation = cache.generation
            user = await accounts_repository.principal_for_user(session or await get_session(request), claims.user_id)
            if user is not None:
                cache.keep_user(user, generation)
        if (
            claims is None
            or user is None
            or user.cpts_id != claims.cpts_id
            or user.credentials_version != claims.credentials_version
        ):
            raise Unauthenticated("invalid_credentials", "Invalid or expired access token.")
        principal = Principal(
            kind="user",
            id=user.id,
            cpts_id=user.cpts_id,
            role=Role(user.role),
            timezone=user.timezone,
            rpps=user.rpps,
            enrollment_only=claims.enrollment_only,
        )
    request.state.principal = principal
    response_timezone.set(principal.tz)
    return principal


# Each role's dependency is one function reading the header itself: FastAPI solves every node of a
# dependency tree on every request (solving them was a fifth of a one-query GET's CPU, with a chain
# of five nodes per principal). The routes that use them declare the two schemes to OpenAPI
# (`routing.TransactionalRoute`, `openapi.install_openapi`).
SECURED = "_snp_secured"
SECURITY_SCHEMES = (_staff_scheme, _api_key_scheme)
# An operation accepts either scheme: a staff token or a practice software's API key.
SECURITY_REQUIREMENT: list[dict[str, list[str]]] = [{scheme.scheme_name: []} for scheme in SECURITY_SCHEMES]


def security_scheme_definitions() -> dict[str, Any]:
    """`components.securitySchemes` of the OpenAPI document, as FastAPI would write them."""
    return {
        scheme.scheme_name: jsonable_encoder(scheme.model, by_alias=True, exclude_none=True)
        for scheme in SECURITY_SCHEMES
    }


def is_secured(dependant: Dependant) -> bool:
    """Whether a route's dependencies, at any depth, include one of the principal dependencies."""
    return any(getattr(sub.call, SECURED, False) or is_secured(sub) for sub in dependant.dependencies)


PrincipalDependency = Callable[..., Coroutine[Any, Any, Principal]]


def _secured(dependency: PrincipalDependency) -> PrincipalDependency:
    setattr(dependency, SECURED, True)
    return dependency


@_secured
async def current_principal(request: Request, now: Now) -> Principal:
    """The caller, with a token valid for the whole API."""
    return await _caller(request, now, full=True)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: Role) -> PrincipalDependency:
    allowed = frozenset(roles)

    @_secured
    async def check(request: Request, now: Now) -> Principal:
        principal = await _caller(request, now, full=True)
        if principal.role not in allowed:
            raise Forbidden("forbidden_role", f"This operation is not open to the role '{principal.role.value}'.")
        return principal

    return check


Staff = Annotated[Principal, Depends(require_roles(*STAFF_ROLES))]
Coordinator = Annotated[Principal, Depends(require_roles(Role.coordinator, Role.admin))]
Handler = Annotated[Principal, Depends(require_roles(*ORIENTING_ROLES))]
Software = Annotated[Principal, Depends(require_roles(Role.software))]
Publisher = Annotated[Principal, Depends(require_roles(Role.software, Role.coordinator, Role.admin))]


@_secured
async def _staff_enrolling(request: Request, now: Now) -> Principal:
    principal = await _caller(request, now, full=False)
    if principal.role not in STAFF_ROLES:
        raise Forbidden("forbidden_role", "Only staff enrol a second factor.")
    return principal


# Staff, with a full token or one that only enrols a second factor.
StaffEnrolling = Annotated[Principal, Depends(_staff_enrolling)]
