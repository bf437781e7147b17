"""What the workers send the reports process (service.reports_process), without a process."""

from __future__ import annotations

import pytest
import structlog

from service.reports_process import _forwarded_headers, is_heavy


@pytest.mark.parametrize(
    ("method", "path", "heavy"),
    [
        ("GET", "/v1/reports/monthly", True),
        ("GET", "/v1/reports/activity/file", True),
        ("GET", "/console/dashboard", True),
        ("GET", "/console/exports/activite.csv", True),
        ("HEAD", "/v1/reports/monthly", False),  # no route answers HEAD
        ("GET", "/v1/reports/../requests", False),
        ("GET", "/console/exports/./activite.csv", False),
        ("POST", "/v1/reports/monthly", False),
        ("GET", "/v1/requests", False),
        ("GET", "/console/queue", False),
        ("GET", "/v1/reportsx", False),
    ],
)
def test_only_the_coordinators_month_reads_are_sent_to_the_reports_process(method: str, path: str, heavy: bool) -> None:
    assert is_heavy({"type": "http", "method": method, "path": path}) is heavy


def test_the_callers_address_scheme_and_request_id_replace_what_the_caller_claimed() -> None:
    scope = {
        "scheme": "https",
        "client": ("203.0.113.7", 51234),
        "headers": [
            (b"host", b"snp.example"),
            (b"authorization", b"Bearer abc"),
            (b"x-forwarded-for", b"10.0.0.1"),  # the caller's claims: not believed
            (b"x-forwarded-proto", b"wss"),
            (b"forwarded", b"for=10.0.0.2;proto=http"),
            (b"x-request-id", b"from-the-caller"),
            (b"connection", b"keep-alive"),
            (b"content-length", b"3"),  # a GET's body is not sent on
            (b"cookie", b"snp_console=s"),
        ],
    }
    structlog.contextvars.bind_contextvars(request_id="the-workers-id")
    try:
        headers = _forwarded_headers(scope)
    finally:
        structlog.contextvars.clear_contextvars()
    assert headers == [
        (b"host", b"snp.example"),
        (b"authorization", b"Bearer abc"),
        (b"cookie", b"snp_console=s"),
        (b"x-forwarded-proto", b"https"),
        (b"x-forwarded-for", b"203.0.113.7"),
        (b"x-request-id", b"the-workers-id"),
    ]
