"""Per-request id, one structured log line per request, and Prometheus metrics (pure ASGI)."""

from __future__ import annotations

import functools
import logging
import re
import secrets
import time
from typing import Any

import structlog
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter("snp_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "snp_http_request_duration_seconds",
    "HTTP request duration",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
# Counted in the driver's events (service.db.count_round_trips): what each request costs PostgreSQL
# in exchanges, which the benchmark divides by the requests it sent.
DB_ROUND_TRIPS = Counter(
    "snp_db_round_trips_total", "Round trips to PostgreSQL: statements, and BEGIN / COMMIT / ROLLBACK", ["kind"]
)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_log = structlog.get_logger("service.http")
_stdlib_log = logging.getLogger("service.http")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        supplied = next((value for name, value in scope["headers"] if name == b"x-request-id"), b"").decode("latin-1")
        request_id = supplied if _REQUEST_ID.match(supplied) else secrets.token_hex(16)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            counted, timed = _series(scope["method"], route, status)
            counted.inc()
            timed.observe(elapsed)
            if _stdlib_log.isEnabledFor(logging.INFO):  # at WARNING, the line costs nothing
                # The route template, never the raw path or query string.
                ms = round(elapsed * 1000, 1)
                _log.info("http.request", method=scope["method"], route=route, status=status, ms=ms)


@functools.cache
def _series(method: str, route: str, status: int) -> tuple[Any, Any]:
    """The request's counter and latency series: found once per route, method and status (the
    labels' lookup, under a lock, was a tenth of the middleware's CPU)."""
    return REQUESTS.labels(method, route, str(status)), LATENCY.labels(method, route)
