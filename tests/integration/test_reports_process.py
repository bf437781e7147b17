"""The coordinators' reports answered by `snp serve`'s lower-priority reports process
(service.reports_process): a live server on the suite's database, next to the in-process app."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import openpyxl
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.clock import utc_now
from service.reports_process import REPORTS_NICE
from tests.builders import PASSWORD, Clock, Tenant, open_request
from tests.conftest import snp_environment

BIN = Path(sys.executable).parent
VIA = "1.1 snp-reports"


@dataclass
class LiveServer:
    base: str
    process: subprocess.Popen[bytes]

    def children(self, command_part: bytes) -> set[int]:
        """The child processes of this server whose command line contains `command_part`."""
        found = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                status = (entry / "stat").read_text()
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            parent = int(status.rsplit(")", 1)[1].split()[1])
            if parent == self.process.pid and command_part in command:
                found.add(int(entry.name))
        return found

    def reports_pid(self) -> int | None:
        """The `snp serve-reports` child of this server, if running."""
        return next(iter(self.children(b"serve-reports")), None)

    def wait_for_reports_process(self, seconds: float = 30) -> int:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            pid = self.reports_pid()
            if pid is not None:
                return pid
            time.sleep(0.1)
        raise AssertionError("no reports process started")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def nice_of(pid: int) -> int:
    # /proc/PID/stat: the 19th field, after the command in parentheses.
    return int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[16])


def start_server(database_url: str, *options: str, log: Path | None = None) -> LiveServer:
    """`snp serve` on a free port, in a session of its own (as a terminal or systemd starts it)."""
    port = free_port()
    env = snp_environment(database_url, SNP_LOG_LEVEL="WARNING", SNP_RELAY_ENABLED="false")
    process = subprocess.Popen(  # noqa: S603
        [BIN / "snp", "serve", "--port", str(port), *options],
        env=env,
        start_new_session=True,
        stderr=log.open("wb") if log else None,
    )
    server = LiveServer(f"http://127.0.0.1:{port}", process)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{server.base}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError("snp serve did not start")


def stop(server: LiveServer) -> None:
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture(scope="module")
def live(database_url: str) -> Iterator[LiveServer]:
    server = start_server(database_url)
    yield server
    stop(server)


async def reports_answer(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """Until the reports process answers (it starts a second or two after the server)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answer = await http.get("/v1/reports/monthly", params={"month": "2026-10"}, headers=tenant.coordinator)
        if answer.headers.get("via") == VIA:
            return
        await asyncio.sleep(0.2)
    raise AssertionError("the reports process never answered")


@asynccontextmanager
async def ready(live: LiveServer, tenant: Tenant) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the live server once its reports process answers."""
    async with httpx.AsyncClient(base_url=live.base, timeout=30) as http:
        await reports_answer(http, tenant)
        yield http


def without_cutoff(fmt: str, content: bytes) -> object:
    """A report's contents but the instant it was read at (its cutoff, for a closed month)."""
    if fmt == "json":
        report = json.loads(content)
        report.pop("cutoff")
        return report
    if fmt == "csv":
        return [line for line in content.decode().splitlines() if "Arrêté au" not in line]
    book = openpyxl.load_workbook(io.BytesIO(content))
    return [
        [row for row in sheet.iter_rows(values_only=True) if row[0] != "cutoff" and "Arrêté au" not in str(row)]
        for sheet in book.worksheets
    ]


async def console_cookie(http: httpx.AsyncClient, email: str) -> dict[str, str]:
    """Signed in to the console over plain http: its cookies are Secure, which httpx keeps for
    https only (a browser treats 127.0.0.1 as secure), so they are sent by hand."""
    page = await http.get("/console/login")
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text)
    assert nonce is not None
    signed_in = await http.post(
        "/console/login",
        data={"email": email, "password": PASSWORD, "nonce": nonce.group(1)},
        headers={"Cookie": "; ".join(f"{name}={value}" for name, value in page.cookies.items())},
    )
    assert signed_in.status_code == 303, signed_in.text
    return {"Cookie": "; ".join(f"{name}={value}" for name, value in signed_in.cookies.items())}


async def october_requests(tenant: Tenant, clock: Clock, count: int) -> None:
    """Requests received in October 2026 (a closed month: the same report whenever it is read)."""
    clock.now = datetime(2026, 10, 20, 9, 0, tzinfo=UTC)
    await tenant.relogin()
    for minute in range(count):
        await open_request(tenant, received_at=f"2026-10-20T10:{minute:02d}:00+02:00")
    clock.now = utc_now()
    await tenant.relogin()


async def test_the_monthly_report_comes_from_the_reports_process_running_at_a_lower_priority(
    live: LiveServer, client: httpx.AsyncClient, tenant: Tenant, clock: Clock
) -> None:
    await october_requests(tenant, clock, 3)
    async with ready(live, tenant) as http:
        pid = live.wait_for_reports_process()
        assert nice_of(pid) == nice_of(live.process.pid) + REPORTS_NICE
        for fmt in ("json", "csv", "xlsx"):
            params = {"month": "2026-10", "format": fmt}
            relayed = await http.get("/v1/reports/monthly", params=params, headers=tenant.coordinator)
            assert relayed.status_code == 200, relayed.text
            assert relayed.headers["via"] == VIA
            in_process = await client.get("/v1/reports/monthly", params=params, headers=tenant.coordinator)
            assert "via" not in in_process.headers
            assert relayed.headers["content-type"] == in_process.headers["content-type"]
            assert without_cutoff(fmt, relayed.content) == without_cutoff(fmt, in_process.content)
        assert (await http.get("/v1/reports/monthly", params={"month": "2026-10"}, headers=tenant.coordinator)).json()[
            "requests_total"
        ] == 3


async def test_an_export_comes_through_audited_once_with_the_callers_address(
    live: LiveServer, tenant: Tenant, clock: Clock, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await october_requests(tenant, clock, 5)
    async with ready(live, tenant) as http:
        supplied = "export-through-the-reports-process"
        answer = await http.get(
            "/v1/reports/activity",
            params={"month": "2026-10", "format": "csv", "lang": "en"},
            headers={**tenant.coordinator, "X-Request-ID": supplied},
        )
    assert answer.status_code == 200, answer.text
    assert answer.headers["via"] == VIA
    assert answer.headers.get_list("x-request-id") == [supplied]
    assert len(answer.headers.get_list("date")) == 1
    assert answer.headers["content-disposition"] == 'attachment; filename="snp-activity-2026-10.csv"'
    assert len(answer.text.strip().splitlines()) == 1 + 5  # the header and one line per request
    async with sessionmaker() as session:
        audits = (
            await session.execute(
                text(
                    "SELECT ip, http_request_id FROM audit_event WHERE cpts_id = :cpts AND action = 'export.activity'"
                ),
                {"cpts": tenant.cpts_id},
            )
        ).all()
    assert [tuple(row) for row in audits] == [("127.0.0.1", supplied)]


async def test_refusals_come_back_unchanged_and_other_routes_stay_on_the_worker(
    live: LiveServer, tenant: Tenant
) -> None:
    async with ready(live, tenant) as http:
        forbidden = await http.get("/v1/reports/monthly", params={"month": "2026-10"}, headers=tenant.handler)
        assert (forbidden.status_code, forbidden.headers["via"]) == (403, VIA)
        assert forbidden.headers["content-type"] == "application/problem+json"
        assert forbidden.json()["code"] == "forbidden_role"
        invalid = await http.get("/v1/reports/monthly", params={"month": "2026-13"}, headers=tenant.coordinator)
        assert (invalid.status_code, invalid.headers["via"]) == (422, VIA)
        anonymous = await http.get("/v1/reports/monthly", params={"month": "2026-10"})
        assert anonymous.status_code == 401
        queue = await http.get("/v1/requests", headers=tenant.handler)
        assert queue.status_code == 200
        assert "via" not in queue.headers
        # A POST to a report path is not forwarded (there is none: the worker's 405).
        posted = await http.post("/v1/reports/monthly", headers=tenant.coordinator)
        assert posted.status_code == 405
        assert "via" not in posted.headers


def raw_get(base: str, target: str, headers: str = "") -> tuple[int, str]:
    """A request line sent as written (httpx would resolve dot segments first)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n".encode())
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    return int(head.split()[1]), head.lower()


async def test_what_the_process_is_sent_is_what_the_worker_saw(live: LiveServer, tenant: Tenant) -> None:
    async with ready(live, tenant) as http:
        # A path with dot segments stays on the worker (its URL to the process would name another route).
        for target in ("/v1/reports/../requests", "/console/exports/../../v1/requests", "/v1/reports/%2e%2e/requests"):
            status, head = raw_get(live.base, target, f"Authorization: Bearer {tenant.tokens['handler']}\r\n")
            assert status == 404, (target, head)
            assert "via:" not in head
        # A redirect names the caller's address and scheme, whatever the caller claims of them
        # (from 127.0.0.2: the worker's own server believes such headers from 127.0.0.1, a local proxy).
        stranger = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
        async with httpx.AsyncClient(base_url=live.base, transport=stranger) as remote:
            moved = await remote.get(
                "/v1/reports/monthly/",
                params={"month": "2026-10"},
                headers={**tenant.coordinator, "X-Forwarded-Proto": "wss", "Forwarded": "proto=wss"},
            )
        assert (moved.status_code, moved.headers["via"]) == (307, VIA)
        assert moved.headers["location"].startswith(f"{live.base}/v1/reports/monthly?")
        # A GET with a body: the body is not sent on, the report is answered.
        with_body = await http.request(
            "GET", "/v1/reports/monthly", params={"month": "2026-10"}, headers=tenant.coordinator, content=b"x=1"
        )
        assert (with_body.status_code, with_body.headers["via"]) == (200, VIA)


async def test_the_console_dashboard_and_its_exports_go_through_the_reports_process(
    live: LiveServer, tenant: Tenant
) -> None:
    async with ready(live, tenant) as http:
        cookie = await console_cookie(http, tenant.emails["coordinator"])
        page = await http.get("/console/dashboard", params={"month": "2026-10"}, headers=cookie)
        assert (page.status_code, page.headers["via"]) == (200, VIA)
        assert '<html lang="fr"' in page.text
        assert "octobre 2026" in page.text
        download = await http.get("/console/exports/indicateurs.csv", params={"month": "2026-10"}, headers=cookie)
        assert (download.status_code, download.headers["via"]) == (200, VIA)
        assert download.text.startswith("\ufeff")


async def test_a_worker_answers_itself_while_the_reports_process_is_down_and_it_is_restarted(
    live: LiveServer, tenant: Tenant
) -> None:
    async with ready(live, tenant) as http:
        first = live.wait_for_reports_process()
        os.kill(first, signal.SIGKILL)
        while live.reports_pid() == first:  # noqa: ASYNC110 - another process: nothing to wait on
            await asyncio.sleep(0.05)
        meanwhile = await http.get("/v1/reports/monthly", params={"month": "2026-10"}, headers=tenant.coordinator)
        assert meanwhile.status_code == 200, meanwhile.text
        assert "via" not in meanwhile.headers
        await reports_answer(http, tenant)
        second = live.wait_for_reports_process()
        assert second != first
        assert nice_of(second) == nice_of(live.process.pid) + REPORTS_NICE


def gone(pid: int, seconds: float) -> bool:
    """The process has exited (or is a zombie nobody reaped) within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        except OSError:
            return True
        time.sleep(0.1)
    return False


def test_a_stopped_server_stops_its_reports_process_and_exits_cleanly(database_url: str) -> None:
    server = start_server(database_url)
    pid = server.wait_for_reports_process()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=30) == 0
    assert gone(pid, 5)


def test_a_signal_to_the_servers_process_group_stops_it_without_restarting_its_reports_process(
    database_url: str, tmp_path: Path
) -> None:
    """A Ctrl-C in a terminal, or a signal to the whole group: the reports process is in a session
    of its own, so only the server gets it, and stops the process itself."""
    log = tmp_path / "serve.log"
    server = start_server(database_url, log=log)
    pid = server.wait_for_reports_process()
    assert os.getsid(pid) == pid != os.getsid(server.process.pid)
    os.killpg(server.process.pid, signal.SIGINT)
    assert server.process.wait(timeout=30) == 0
    assert gone(pid, 5)
    assert "reports_process.exited" not in log.read_text()


def test_the_reports_process_ends_with_the_server(database_url: str) -> None:
    server = start_server(database_url)
    pid = server.wait_for_reports_process()
    server.process.kill()  # SIGKILL: no clean shutdown; the child is told by the kernel
    server.process.wait()
    assert gone(pid, 15)


async def test_without_the_reports_process_the_worker_answers_the_reports(database_url: str, tenant: Tenant) -> None:
    server = start_server(database_url, "--no-reports-process")
    try:
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
            answer = await http.get("/v1/reports/monthly", params={"month": "2026-10"}, headers=tenant.coordinator)
        assert answer.status_code == 200, answer.text
        assert "via" not in answer.headers
        assert server.reports_pid() is None
    finally:
        stop(server)
