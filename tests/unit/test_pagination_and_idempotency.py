from __future__ import annotations

import pytest

from service.errors import Invalid
from service.idempotency import request_digest, response_cipher
from service.pagination import decode_cursor, encode_cursor, page_of


def test_cursor_round_trip_and_tampering() -> None:
    cursor = encode_cursor(["Martin", "Léa", "0b5c"])
    assert decode_cursor(cursor, 3) == ["Martin", "Léa", "0b5c"]
    assert decode_cursor(None, 3) is None
    for bad in ("%%%", encode_cursor(["a"]), encode_cursor([{"x": 1}, 2, 3])):
        with pytest.raises(Invalid):
            decode_cursor(bad, 3)


def test_page_of_cuts_the_extra_row_into_a_cursor() -> None:
    rows, cursor = page_of([1, 2, 3], 2, lambda r: [r])
    assert rows == [1, 2]
    assert cursor is not None
    assert decode_cursor(cursor, 1) == [2]
    assert page_of([1, 2], 2, lambda r: [r]) == ([1, 2], None)


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
