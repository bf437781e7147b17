from __future__ import annotations

import base64
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from service.errors import Invalid
from service.idempotency import request_digest, response_cipher
from service.pagination import BY_FEED_SEQUENCE, BY_FULL_NAME, BY_START, MAX_BIGINT, Keyset

WHEN = datetime(2026, 12, 1, 14, 0, tzinfo=ZoneInfo("Europe/Paris"))
ID = uuid.UUID("0b5c0b5c-0000-4000-8000-000000000001")


def test_cursor_round_trip_keeps_the_types() -> None:
    cursor = BY_FULL_NAME.encode(["Martin", "Léa", ID])
    assert BY_FULL_NAME.decode(cursor) == ("Martin", "Léa", ID)
    assert BY_START.decode(BY_START.encode([WHEN, ID])) == (WHEN, ID)
    assert BY_START.decode(None) is None


@pytest.mark.parametrize(
    "forged",
    [
        "%%%",  # not base64
        base64.urlsafe_b64encode(b"not json").decode(),
        Keyset(str).encode(["a"]),  # too short
        Keyset(str, str).encode(["a", "b"]),  # not a datetime and an id
        Keyset(int, int).encode([1, 2]),
        Keyset(int, str).encode([10**30, str(ID)]),  # a huge integer
        Keyset(str, str).encode(["2026-12-01T14:00:00", str(ID)]),  # a datetime without offset
        base64.urlsafe_b64encode(b"[" * 5000 + b"]" * 5000).decode(),  # nested until recursion fails
    ],
)
def test_a_forged_cursor_is_refused_as_invalid(forged: str) -> None:
    with pytest.raises(Invalid) as refused:
        BY_START.decode(forged)
    assert refused.value.code == "invalid_cursor"


def test_integers_stay_within_the_database_range_and_lists_do_not_share_cursors() -> None:
    assert BY_FEED_SEQUENCE.decode(BY_FEED_SEQUENCE.encode([MAX_BIGINT])) == (MAX_BIGINT,)
    for refused in (BY_FEED_SEQUENCE.encode([MAX_BIGINT + 1]), BY_FEED_SEQUENCE.encode([-1]), Keyset(int).encode([7])):
        with pytest.raises(Invalid):
            BY_FEED_SEQUENCE.decode(refused)


def test_page_cuts_the_extra_row_into_a_cursor() -> None:
    codec = Keyset(int)
    rows, cursor = codec.page([1, 2, 3], 2, lambda r: [r])
    assert rows == [1, 2]
    assert cursor is not None
    assert codec.decode(cursor) == (2,)
    assert codec.page([1, 2], 2, lambda r: [r]) == ([1, 2], None)


def test_request_digest_compares_json_by_meaning() -> None:
    a = request_digest("POST", "/v1/x", b'{"a": 1, "b": [1, 2]}')
    assert a == request_digest("POST", "/v1/x", b'{"b":[1,2],"a":1}')
    assert a != request_digest("POST", "/v1/x", b'{"a": 2, "b": [1, 2]}')
    assert a != request_digest("POST", "/v1/y", b'{"a": 1, "b": [1, 2]}')
    assert request_digest("POST", "/v1/x", b"not json") != request_digest("POST", "/v1/x", b"not json!")


def test_stored_answers_are_encrypted() -> None:
    cipher = response_cipher("k" * 40)
    token = cipher.encrypt(b'{"api_key": "snpk_secret"}')
    assert b"snpk_secret" not in token
    assert cipher.decrypt(token) == b'{"api_key": "snpk_secret"}'
