"""The coordinators' reports, computed in a process of their own at a lower CPU priority.

A month's report or export costs hundreds of milliseconds of CPU, most of it reading and building
the month's facts; on the request workers, a call handler's request that arrives meanwhile waits
behind it (the benchmark's mix: handlers' p95 of several hundred milliseconds with the
coordinators, tens without them). So `snp serve` starts one more server process, `snp
serve-reports`, on a Unix socket only its user can reach, niced (`REPORTS_NICE`): the kernel gives
the handlers' workers the CPU first. The workers forward the heavy reads (`HEAVY_PREFIXES`, GET
only) to it and relay its answer as it streams (an export's first byte still comes at once).

The reports process runs the same application (authentication, roles, audit, problems), without
the background loops (relays, pulls) that the workers already run. If it cannot be reached, a
worker answers the request itself, as it would without the process; the supervisor thread in `snp
serve` starts it again when it stops.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import structlog
from starlette.responses import StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

# The coordinators' GETs that read a whole month (or year): the reports API and the console's
# dashboard and exports.
HEAVY_PREFIXES = ("/v1/reports/", "/console/dashboard", "/console/exports/")
# CFS weights: nice 10 gets about a tenth of the CPU a nice-0 worker gets while both want it.
REPORTS_NICE = 10
# The reports process serves a few coordinators at a time: a small pool of its own.
REPORTS_POOL = {"SNP_DB_POOL_SIZE": "4", "SNP_DB_MAX_OVERFLOW": "4"}
# What the worker adds to the answers it relayed (RFC 9110 section 7.6.3).
VIA = b"1.1 snp-reports"
# Connection-level headers, never forwarded either way (RFC 9110 section 7.6.1); the worker's own
# request id replaces the process's.
_HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade"}
)
# Not forwarded either: what the process would believe about the caller (it trusts its socket, so
# the worker says the address and scheme itself), and a body (none is sent: a GET's is ignored).
_NOT_FORWARDED = _HOP_BY_HOP | {
    b"x-forwarded-for",
    b"x-forwarded-proto",
    b"forwarded",
    b"x-request-id",
    b"content-length",
    b"expect",
}
_NOT_RELAYED = _HOP_BY_HOP | {b"x-request-id", b"date", b"server"}  # the worker sends its own
# No read timeout: a year's export takes as long as it takes; the connection fails fast.
_TIMEOUT = {"connect": 1.0, "read": None, "write": 10.0, "pool": 5.0}
RESTART_DELAY_SECONDS = 1.0
MAX_RESTART_DELAY_SECONDS = 30.0
# A process that lived less than this before stopping makes the next start wait twice as long.
SHORT_LIFE_SECONDS = 10.0
PARENT_PID = "SNP_REPORTS_PARENT_PID"
_PR_SET_PDEATHSIG = 1
_log = structlog.get_logger("service.reports_process")


def is_heavy(scope: Scope) -> bool:
    """A coordinator's read of a month. A path with dot segments is never sent: the URL to the
    process would lose them and name another route than the one this worker saw."""
    path: str = scope["path"]
    return (
        scope["method"] == "GET"
        and path.startswith(HEAVY_PREFIXES)
        and not any(segment in (".", "..") for segment in path.split("/"))
    )


def transport_for(socket_path: str) -> httpx.AsyncHTTPTransport:
    """The bare transport, not a client: no cookie jar shared between callers, no default headers."""
    return httpx.AsyncHTTPTransport(uds=socket_path)


class ReportForwardingMiddleware:
    """Heavy reads go to the reports process when the app has a transport to it (`app.state.reports`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        reports: httpx.AsyncHTTPTransport | None = getattr(scope["app"].state, "reports", None)
        if scope["type"] != "http" or reports is None or not is_heavy(scope):
            await self.app(scope, receive, send)
            return
        path = scope.get("raw_path") or scope["path"].encode()
        target = httpx.URL(scheme="http", host="reports", path=path.decode("ascii"), query=scope["query_string"])
        request = httpx.Request(
            scope["method"], target, headers=_forwarded_headers(scope), extensions={"timeout": _TIMEOUT}
        )
        try:
            answer = await reports.handle_async_request(request)
        except httpx.TransportError as error:
            # Not started yet, restarting, or gone with a kept connection: nothing was answered
            # yet and a GET can be asked again, so this worker answers, as without the process.
            _log.warning("reports_process.unreachable", path=scope["path"], error_type=type(error).__name__)
            await self.app(scope, receive, send)
            return
        scope["route"] = SimpleNamespace(path="(reports process)")  # the log line's route
        try:
            await _relay(answer, scope, receive, send)
        finally:
            await answer.aclose()


def _forwarded_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    """The caller's headers (its Host included: links and redirects name the public address), and
    what the worker knows of the caller, which the process trusts from its socket only."""
    headers = [(name, value) for name, value in scope["headers"] if name not in _NOT_FORWARDED]
    headers.append((b"x-forwarded-proto", scope.get("scheme", "http").encode()))
    client = scope.get("client")
    if client:  # the audit's address
        headers.append((b"x-forwarded-for", client[0].encode()))
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if request_id:  # one id for the worker's log line and the process's
        headers.append((b"x-request-id", request_id.encode()))
    return headers


async def _relay(answer: httpx.Response, scope: Scope, receive: Receive, send: Send) -> None:
    """The process's answer, chunk by chunk as it comes (Starlette's streaming response: a client
    gone stops the read), with its own headers, repeated ones (Set-Cookie) included."""
    relayed = StreamingResponse(answer.aiter_raw(), status_code=answer.status_code)
    relayed.raw_headers = [
        *((name, value) for name, value in answer.headers.raw if name.lower() not in _NOT_RELAYED),
        (b"via", VIA),
    ]
    await relayed(scope, receive, send)


def lower_priority_and_follow_parent() -> None:
    """Called by the reports process as it starts (not between fork and exec: `snp serve` has
    threads by then)."""
    os.nice(REPORTS_NICE)
    # Linux: the process ends with `snp serve`, even when that one is killed outright...
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    # ...including when it died before the line above.
    parent = os.environ.get(PARENT_PID)
    if parent is not None and os.getppid() != int(parent):
        raise SystemExit(0)


class Supervisor:
    """Keeps one `snp serve-reports` running on `socket_path` until `stop()`."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self.process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # a start and `stop()` do not cross
        self._thread = threading.Thread(target=self._keep_running, name="reports-process", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _spawn(self) -> subprocess.Popen[bytes]:
        environment = {**os.environ, **REPORTS_POOL, "SNP_RELAY_ENABLED": "false", PARENT_PID: str(os.getpid())}
        environment.pop("SNP_REPORTS_SOCKET", None)  # it answers the reports itself
        command = [sys.executable, "-m", "service.cli", "serve-reports", "--uds", str(self.socket_path)]
        # A session of its own: a Ctrl-C or a signal to the server's process group reaches only the
        # server, which then stops this process itself (instead of seeing it stop and restarting it).
        return subprocess.Popen(command, env=environment, start_new_session=True)  # noqa: S603 - our own command

    def _keep_running(self) -> None:
        delay = RESTART_DELAY_SECONDS
        while True:
            with self._lock:
                if self._stopping.is_set():
                    return
                started = time.monotonic()
                try:
                    self.process = self._spawn()
                except OSError as error:
                    _log.error("reports_process.not_started", error_type=type(error).__name__)
                    self.process = None
            code = self.process.wait() if self.process is not None else None
            if self._stopping.is_set():
                return
            _log.warning("reports_process.exited", code=code)
            short = time.monotonic() - started < SHORT_LIFE_SECONDS
            delay = min(delay * 2, MAX_RESTART_DELAY_SECONDS) if short else RESTART_DELAY_SECONDS
            self._stopping.wait(delay)

    def stop(self) -> None:
        with self._lock:
            self._stopping.set()
            process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        self._thread.join(timeout=15)


@contextlib.contextmanager
def supervised_reports_process() -> Iterator[Path]:
    """A supervised reports process for the duration; yields its socket's path (in a directory
    only this user can open)."""
    with tempfile.TemporaryDirectory(prefix="snp-reports-") as folder:
        supervisor = Supervisor(Path(folder) / "reports.sock")
        supervisor.start()
        try:
            yield supervisor.socket_path
        finally:
            supervisor.stop()
