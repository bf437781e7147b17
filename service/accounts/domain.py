"""Roles, credentials and tokens: pure functions, no I/O, `now` passed in."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from service.practitioners.domain import luhn_valid

API_KEY_PREFIX = "snpk_"
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
TOKEN_ALGORITHM = "HS256"  # noqa: S105
TOKEN_AUDIENCE = "snp-api"  # noqa: S105


class Role(StrEnum):
    handler = "handler"
    coordinator = "coordinator"
    admin = "admin"
    # A regulating physician: lifts red flags (a medical decision) and books patients.
    regulator = "regulator"
    software = "software"


STAFF_ROLES = frozenset({Role.handler, Role.coordinator, Role.admin, Role.regulator})


def regulator_problem(role: str, rpps: str | None) -> str | None:
    """A regulator's account carries the physician's RPPS, with a valid check digit: the RPPS is
    what the orientation log records as the author of a medical decision."""
    if role == Role.regulator and (rpps is None or not luhn_valid(rpps)):
        return "a regulator's account needs the physician's RPPS (11 digits, valid check digit)"
    return None


def password_hasher(time_cost: int = 3, memory_kib: int = 65536) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)


def verify_password(hasher: PasswordHasher, password_hash: str | None, password: str) -> bool:
    if password_hash is None:
        return False
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class NewApiKey:
    key: str  # shown once to the coordinator, never stored
    prefix: str  # stored, to recognise a key in listings
    digest: str  # stored; a random 256-bit key needs no slow hash


def api_key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key() -> NewApiKey:
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return NewApiKey(key=key, prefix=key[: len(API_KEY_PREFIX) + 6], digest=api_key_digest(key))


def new_webhook_secret() -> str:
    return WEBHOOK_SECRET_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class TokenClaims:
    user_id: uuid.UUID
    cpts_id: uuid.UUID
    credentials_version: int  # the account's version when the token was issued


def issue_access_token(
    secret: str, user_id: uuid.UUID, cpts_id: uuid.UUID, credentials_version: int, now: datetime, ttl_seconds: int
) -> str:
    payload: dict[str, Any] = {
        "sub": str(user_id),
        "cpts": str(cpts_id),
        "ver": credentials_version,
        "aud": TOKEN_AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_seconds)).timestamp()),
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(payload, secret, algorithm=TOKEN_ALGORITHM)


def decode_access_token(secret: str, token: str, now: datetime) -> TokenClaims | None:
    """The claims of a valid, unexpired token signed with `secret`; None otherwise."""
    verified = _verified_claims(secret, token)
    if verified is None or verified[0] <= now.timestamp():
        return None
    return verified[1]


def token_signature_valid(secret: str, token: str) -> bool:
    """Whether a staff token was signed by this service (expired or not): enough to let a large
    body be read, before the route checks the token fully."""
    return _verified_claims(secret, token) is not None


@lru_cache(maxsize=4096)
def _verified_claims(secret: str, token: str) -> tuple[int, TokenClaims] | None:
    """(expiry, claims) of a token whose signature and claims check out. A token's signature is
    checked once per process, not on each of the many requests a handler's shift sends with it;
    its expiry is checked against the injected clock on every request."""
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[TOKEN_ALGORITHM],
            audience=TOKEN_AUDIENCE,
            # Times are checked against the injected clock, not the wall clock.
            options={
                "require": ["exp", "sub", "cpts", "ver"],
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
        claims = TokenClaims(
            user_id=uuid.UUID(payload["sub"]),
            cpts_id=uuid.UUID(payload["cpts"]),
            credentials_version=int(payload["ver"]),
        )
        return int(payload["exp"]), claims
    except (jwt.PyJWTError, ValueError, KeyError, TypeError):
        return None
