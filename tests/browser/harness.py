"""Helpers for browser tests of the staff console, with **Playwright's sync API** and Debian's Chromium.

No pytest-playwright, and no `playwright install`: the browser is the system Chromium (`/usr/bin/chromium`, or
`SNP_CHROMIUM`), launched headless with flags that stop its own background traffic to Google hosts. Typical use:

    pytestmark = requires_chromium

    @pytest.fixture(scope="module")
    def base_url() -> Iterator[str]:
        with serve_app(create_app(settings)) as url:  # a fresh app: its lifespan runs in the server's thread
            yield url

    @pytest.fixture(scope="module")
    def browser() -> Iterator[Browser]:
        with open_browser() as browser:
            yield browser

    def test_page(browser: Browser, base_url: str) -> None:
        context = browser.new_context(base_url=base_url, locale="fr-FR")
        outside = guard_network(context, base_url)  # before the first page, so every page is covered
        page = context.new_page()
        errors = collect_js_errors(page)
        page.goto("/console/")
        assert run_axe(page) == []
        assert errors == []
        assert outside == []

The server runs in a background thread with its own event loop; the browser is driven from the test's thread.
Sync Playwright refuses to start inside a running asyncio loop, so browser tests are plain (non-async) tests.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Request,
    Route,
    WebSocketRoute,
    sync_playwright,
)
from playwright.sync_api import Error as PlaywrightError
from starlette.types import ASGIApp

__all__ = [
    "AXE_JS",
    "CHROMIUM_ARGS",
    "SCREENSHOT_DIR",
    "VENDOR_DIR",
    "chromium_path",
    "collect_js_errors",
    "guard_network",
    "launch",
    "open_browser",
    "requires_chromium",
    "run_axe",
    "screenshot",
    "serve_app",
]

ROOT = Path(__file__).resolve().parents[2]
VENDOR_DIR = ROOT / "service" / "console" / "static" / "vendor"
AXE_JS = VENDOR_DIR / "axe.min.js"
SCREENSHOT_DIR = ROOT / "docs" / "screenshots"

DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--no-sandbox",  # the tests run as root
    "--disable-gpu",
    "--disable-background-networking",  # without these, Chromium calls Google hosts on its own
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # Even so, Chromium (and the Debian wrapper's extension flags) still resolves update.googleapis.com,
    # accounts.google.com and content-autofill.googleapis.com: no name resolves, so no DNS query leaves.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
)
BLOCKING_IMPACTS = frozenset({"serious", "critical"})
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_LOCAL_SCHEMES = frozenset({"data", "blob", "about"})  # never reach the network


@functools.cache
def chromium_path() -> str | None:
    """The Chromium to drive: `SNP_CHROMIUM` if set (empty disables browser tests), else /usr/bin/chromium.

    None when that file is missing or `--version` does not succeed. Computed once per process.
    """
    candidate = os.environ.get("SNP_CHROMIUM", DEFAULT_CHROMIUM)
    if not candidate:
        return None
    resolved = shutil.which(candidate)
    if resolved is None:
        return None
    try:
        run = subprocess.run(  # noqa: S603 - a fixed argument list, the path comes from the environment on purpose
            [resolved, "--version"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return resolved if run.returncode == 0 else None


requires_chromium = pytest.mark.skipif(
    chromium_path() is None,
    reason=f"no usable Chromium: {os.environ.get('SNP_CHROMIUM', DEFAULT_CHROMIUM)!r} is missing or does not run "
    "(SNP_CHROMIUM names another binary; empty disables browser tests)",
)


def launch(playwright: Playwright, *, extra_args: tuple[str, ...] = ()) -> Browser:
    """Headless system Chromium, with the flags that keep it off the network."""
    executable = chromium_path()
    if executable is None:
        raise RuntimeError("no usable Chromium (see chromium_path); mark the test with `requires_chromium`")
    return playwright.chromium.launch(
        executable_path=executable,
        headless=True,
        args=[*CHROMIUM_ARGS, *extra_args],
    )


@contextmanager
def open_browser() -> Iterator[Browser]:
    """Playwright (sync) and a launched browser, both closed at exit. Start one per module or session: it costs ~1 s."""
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def serve_app(app: ASGIApp, *, health_path: str = "/healthz", timeout: float = 20.0) -> Iterator[str]:
    """Serve `app` with uvicorn on 127.0.0.1 (a free port) and yield its base URL, e.g. `http://127.0.0.1:41234`.

    The server runs in a daemon thread with its own event loop. The app's lifespan runs there (lifespan="on": a
    failing startup fails this call), so give it a fresh app, not one whose lifespan already runs in another loop
    (an asyncpg pool is bound to the loop that created it). Returns once `health_path` answers 200; at exit, asks
    the server to stop (lifespan shutdown included) and waits for the thread.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # the port is chosen by the kernel and held: no race with another process
    port = sock.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="on",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # noqa: BLE001 - uvicorn exits with SystemExit when the lifespan fails
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        _wait_until_healthy(base_url + health_path, server, thread, failure, timeout)
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout)
        if thread.is_alive():
            server.force_exit = True
            thread.join(5)
        sock.close()


def _wait_until_healthy(
    url: str, server: uvicorn.Server, thread: threading.Thread, failure: list[BaseException], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    # trust_env=False: an HTTP(S)_PROXY in the environment must not capture traffic to 127.0.0.1.
    with httpx.Client(trust_env=False, timeout=2.0) as http:
        while time.monotonic() < deadline:
            if not thread.is_alive():
                raise RuntimeError(f"the test server stopped during startup: {failure[0] if failure else 'no error'}")
            if server.started:
                try:
                    response = http.get(url)
                except httpx.HTTPError as exc:
                    last = repr(exc)
                else:
                    if response.status_code == 200:
                        return
                    last = f"HTTP {response.status_code}"
            time.sleep(0.02)
    raise RuntimeError(f"{url} did not answer 200 within {timeout} s ({last})")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    default = {"http": 80, "ws": 80, "https": 443, "wss": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port if port is not None else default


def guard_network(target: Page | BrowserContext, base_url: str, *, http_errors: bool = False) -> list[str]:
    """Keep `target` on `base_url`'s host:port; return the list of what went wrong (assert it stays empty).

    Every request is routed: one to another host or port is aborted and recorded as `blocked GET https://…`;
    WebSockets likewise (`blocked WS wss://…`). Requests that fail (connection reset, aborted by another route, …)
    are recorded as `failed GET http://…: net::ERR_…`. With `http_errors`, answers >= 400 are recorded too
    (`HTTP 404 GET http://…`). Guard the context before it opens pages so that popups are covered as well.
    Traffic of Chromium itself (not of a page) is not seen here: CHROMIUM_ARGS keep it quiet.
    The list fills as Playwright delivers events, i.e. only during Playwright calls (sync API): after an action,
    wait with Playwright (`page.wait_for_timeout`, a locator wait), not `time.sleep`, before asserting on it.
    """
    _, host, port = _origin(base_url)
    allowed_http = {("http", host, port), ("https", host, port)}
    allowed_ws = {("ws", host, port), ("wss", host, port)}
    problems: list[str] = []
    blocked: set[str] = set()

    def on_route(route: Route, request: Request) -> None:
        url = request.url
        scheme, _, _ = origin = _origin(url)
        if scheme in _LOCAL_SCHEMES or origin in allowed_http:
            route.fallback()  # on to other handlers, then to the network
            return
        blocked.add(url)
        problems.append(f"blocked {request.method} {url}")
        route.abort("blockedbyclient")

    def on_web_socket(ws: WebSocketRoute) -> None:
        if _origin(ws.url) in allowed_ws:
            ws.connect_to_server()
            return
        problems.append(f"blocked WS {ws.url}")
        ws.close(code=1008, reason="blocked by the test harness")

    def on_failed(request: Request) -> None:
        if request.url in blocked:  # already recorded when aborted
            return
        problems.append(f"failed {request.method} {request.url}: {request.failure}")

    target.route("**/*", on_route)
    target.route_web_socket(re.compile(r".*"), on_web_socket)
    target.on("requestfailed", on_failed)
    if http_errors:

        def on_finished(request: Request) -> None:
            response = request.response()
            if response is not None and response.status >= 400:
                problems.append(f"HTTP {response.status} {request.method} {request.url}")

        target.on("requestfinished", on_finished)
    return problems


def collect_js_errors(page: Page) -> list[str]:
    """Uncaught exceptions (`pageerror: …`) and `console.error` messages (`console.error: … (url:line)`) of `page`.

    Chromium also logs a console error for every resource that fails to load ("Failed to load resource: …"),
    including those blocked by guard_network.
    """
    errors: list[str] = []

    def on_page_error(error: PlaywrightError) -> None:
        errors.append(f"pageerror: {error.name}: {error.message}" if error.name else f"pageerror: {error.message}")

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location
            errors.append(f"console.error: {message.text} ({where.get('url', '')}:{where.get('lineNumber', '')})")

    page.on("pageerror", on_page_error)
    page.on("console", on_console)
    return errors


@functools.cache
def _axe_source() -> str:
    return AXE_JS.read_text(encoding="utf-8")


_RUN_AXE = """
async ({ context, options, impacts }) => {
  const results = await window.axe.run(context ?? document, options ?? {});
  return results.violations
    .filter((violation) => impacts.includes(violation.impact))
    .map((violation) => ({
      id: violation.id,
      impact: violation.impact,
      help: violation.help,
      helpUrl: violation.helpUrl,
      targets: violation.nodes.map((node) =>
        node.target.map((part) => (Array.isArray(part) ? part.join(" >>> ") : String(part))).join(" >>> "),
      ),
    }));
}
"""


def run_axe(page: Page, *, context: str | None = None, options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Audit the page with the vendored axe-core; return the "serious" and "critical" violations.

    Each is `{"id", "impact", "help", "helpUrl", "targets"}`, `targets` being the CSS selectors of the failing
    nodes (frames and shadow roots joined by " >>> "). `context` is a CSS selector to audit part of the page;
    `options` goes to `axe.run` as is (e.g. `{"runOnly": ["wcag2a", "wcag2aa"]}`). axe is evaluated from
    service/console/static/vendor/axe.min.js through the DevTools protocol, which a page's
    Content-Security-Policy does not restrict: nothing is fetched, and the page keeps its own policy.
    """
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_axe_source() + "\n;0")
    violations: list[dict[str, Any]] = page.evaluate(
        _RUN_AXE, {"context": context, "options": options, "impacts": sorted(BLOCKING_IMPACTS)}
    )
    return violations


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page PNG as docs/screenshots/<name>.png (the folder is created) and return its path."""
    stem = name.removesuffix(".png")
    if not _SAFE_NAME.fullmatch(stem):
        raise ValueError(f"screenshot name {name!r}: use letters, digits, '.', '_' and '-' only")
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{stem}.png"
    page.screenshot(path=path, full_page=True, animations="disabled")
    return path
