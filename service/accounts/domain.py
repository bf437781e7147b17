"""Roles, credentials and tokens: pure functions, no I/O, `now` passed in."""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any

import jwt
import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet
from zxcvbn import zxcvbn

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
# Who orients patients: call handlers, and regulating physicians (who also book for the SAS).
ORIENTING_ROLES = frozenset({Role.handler, Role.regulator, Role.admin})


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


def new_api_key(prefix: str = API_KEY_PREFIX) -> NewApiKey:
    key = prefix + secrets.token_urlsafe(32)
    return NewApiKey(key=key, prefix=key[: len(prefix) + 6], digest=api_key_digest(key))


# The SAS platform's keys look different from software clients': a key is never tried as the other.
SAS_KEY_PREFIX = "snpsas_"


def new_webhook_secret() -> str:
    return WEBHOOK_SECRET_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class TokenClaims:
    user_id: uuid.UUID
    cpts_id: uuid.UUID
    credentials_version: int  # the account's version when the token was issued
    # Issued to a user who must enrol a second factor first: only the enrolment endpoints accept it.
    enrollment_only: bool = False


ENROLLMENT_SCOPE = "mfa-enrollment"


def issue_access_token(
    secret: str,
    user_id: uuid.UUID,
    cpts_id: uuid.UUID,
    credentials_version: int,
    now: datetime,
    ttl_seconds: int,
    *,
    enrollment_only: bool = False,
) -> str:
    payload: dict[str, Any] = {
        "sub": str(user_id),
        "cpts": str(cpts_id),
        "ver": credentials_version,
        **({"scope": ENROLLMENT_SCOPE} if enrollment_only else {}),
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
            enrollment_only=payload.get("scope") == ENROLLMENT_SCOPE,
        )
        return int(payload["exp"]), claims
    except (jwt.PyJWTError, ValueError, KeyError, TypeError):
        return None


# --- passwords -------------------------------------------------------------------------------------

# zxcvbn's scale: 0 too guessable ... 4 very unguessable. Staff read health data: 3 at least.
MIN_PASSWORD_SCORE = 3
ZXCVBN_MAX_LENGTH = 72


def password_problem(password: str, email: str, display_name: str | None = None) -> str | None:
    """Why a password is too weak, in words a person can act on, or None."""
    if not password.strip():
        return "the password is only spaces"
    local_part = email.split("@", 1)[0]
    if password.lower() in (email.lower(), local_part.lower()):
        return "the password may not be the e-mail address"
    hints = [email, local_part, *(display_name.split() if display_name else [])]
    # zxcvbn refuses more than 72 characters (and slows down past them): judge the first 72.
    verdict = zxcvbn(password[:ZXCVBN_MAX_LENGTH], user_inputs=[h[:ZXCVBN_MAX_LENGTH] for h in hints])
    if verdict["score"] < MIN_PASSWORD_SCORE:
        warning = verdict["feedback"].get("warning") or "It is too easy to guess."
        return f"the password is too easy to guess: {warning.rstrip('.')}. Use a longer passphrase of unrelated words."
    return None


# --- login throttling ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ThrottleRule:
    """`max_failures` wrong logins within `window` lock for `lock`."""

    scope: str
    max_failures: int
    window: timedelta
    lock: timedelta


THROTTLE_WINDOW = THROTTLE_LOCK = timedelta(minutes=15)
ACCOUNT_THROTTLE = ThrottleRule("account", 5, THROTTLE_WINDOW, THROTTLE_LOCK)
ADDRESS_THROTTLE = ThrottleRule("address", 50, THROTTLE_WINDOW, THROTTLE_LOCK)


def throttle_rules(per_account: int, per_address: int) -> tuple[ThrottleRule, ThrottleRule]:
    """The rules with a deployment's own limits (settings)."""
    return (
        ThrottleRule(ACCOUNT_THROTTLE.scope, per_account, THROTTLE_WINDOW, THROTTLE_LOCK),
        ThrottleRule(ADDRESS_THROTTLE.scope, per_address, THROTTLE_WINDOW, THROTTLE_LOCK),
    )


@dataclass(frozen=True)
class ThrottleState:
    failures: int
    window_started_at: datetime
    locked_until: datetime | None


def retry_after(state: ThrottleState | None, now: datetime) -> int | None:
    """Seconds until the lock lifts, or None when not locked."""
    if state is None or state.locked_until is None or state.locked_until <= now:
        return None
    return max(1, int((state.locked_until - now).total_seconds() + 0.999))


def after_failure(state: ThrottleState | None, rule: ThrottleRule, now: datetime) -> ThrottleState:
    if state is None or now - state.window_started_at > rule.window:
        state = ThrottleState(0, now, None)
    failures = state.failures + 1
    locked_until = now + rule.lock if failures >= rule.max_failures else state.locked_until
    return ThrottleState(failures, state.window_started_at, locked_until)


# --- second factor (TOTP) ---------------------------------------------------------------------------

TOTP_ISSUER = "SNP CPTS"
RECOVERY_CODES = 10


def secret_cipher(secret_key: str) -> Fernet:
    """Encrypts the TOTP secrets at rest (a key derived from SNP_SECRET_KEY)."""
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"snp-totp:" + secret_key.encode()).digest()))


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, email: str) -> str:
    """The otpauth:// URI an authenticator app reads from a QR code (or typed in)."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=TOTP_ISSUER)


def totp_valid(secret: str, code: str, now: datetime) -> bool:
    """A 6-digit code of the current 30-second step, or of the step before or after (clock drift)."""
    code = code.strip().replace(" ", "")
    return len(code) == 6 and code.isdigit() and pyotp.TOTP(secret).verify(code, for_time=now, valid_window=1)


def new_recovery_codes() -> list[str]:
    """Single-use codes for a lost phone, shown once: `xxxx-xxxx`, lower-case letters and digits."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return [
        "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(2)) for _ in range(RECOVERY_CODES)
    ]


def recovery_digest(code: str) -> str:
    return hashlib.sha256(code.strip().lower().replace(" ", "").encode()).hexdigest()


# A regulating physician of the SAS (INT_R02): what the SAS says of them, and how we hold it.
@dataclass(frozen=True)
class RegulatorFacts:
    identifier_system: str
    identifier_value: str
    rpps: str | None
    family_name: str
    given_name: str
    email: str | None
    active: bool


@dataclass(frozen=True)
class StoredRegulator:
    id: uuid.UUID
    facts: RegulatorFacts
    version: int
    updated_at: datetime
