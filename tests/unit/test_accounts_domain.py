from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from service.accounts.domain import (
    api_key_digest,
    decode_access_token,
    issue_access_token,
    new_api_key,
    password_hasher,
    password_problem,
    verify_password,
)

SECRET = "s" * 40
NOW = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def test_token_round_trip_carries_user_and_tenant() -> None:
    user, cpts = uuid.uuid4(), uuid.uuid4()
    token = issue_access_token(SECRET, user, cpts, 3, NOW, 600)
    claims = decode_access_token(SECRET, token, NOW + timedelta(seconds=599))
    assert claims is not None
    assert (claims.user_id, claims.cpts_id) == (user, cpts)


def test_token_is_refused_once_expired_or_with_another_secret() -> None:
    token = issue_access_token(SECRET, uuid.uuid4(), uuid.uuid4(), 1, NOW, 600)
    assert decode_access_token(SECRET, token, NOW + timedelta(seconds=600)) is None
    assert decode_access_token("x" * 40, token, NOW) is None
    assert decode_access_token(SECRET, token + "x", NOW) is None
    assert decode_access_token(SECRET, "garbage", NOW) is None


def test_api_keys_are_random_prefixed_and_stored_as_digest() -> None:
    first, second = new_api_key(), new_api_key()
    assert first.key.startswith("snpk_")
    assert first.key != second.key
    assert first.digest == api_key_digest(first.key)
    assert first.key not in first.digest
    assert first.key.startswith(first.prefix)
    assert len(first.key) > 40


def test_password_verification() -> None:
    hasher = password_hasher(1, 64)
    stored = hasher.hash("a long passphrase")
    assert stored.startswith("$argon2id$")
    assert verify_password(hasher, stored, "a long passphrase")
    assert not verify_password(hasher, stored, "another one")
    assert not verify_password(hasher, None, "a long passphrase")
    assert not verify_password(hasher, "not-a-hash", "a long passphrase")


def test_long_passwords_and_long_names_are_judged_not_crashed_on() -> None:
    # zxcvbn refuses more than 72 characters: a long passphrase is judged on its first 72.
    passphrase = "correct horse battery staple " * 6
    assert password_problem(passphrase, "long@cpts.test", "x" * 200) is None
    assert password_problem("a" * 200, "long@cpts.test") is not None  # still too easy, not a 500
