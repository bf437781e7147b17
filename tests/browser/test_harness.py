"""Self-test of the browser harness, against a tiny app built here (not the service's)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from html import escape
from typing import Annotated

import httpx
import pytest
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from playwright.sync_api import Browser, BrowserContext, Page

from tests.browser.harness import (
    SCREENSHOT_DIR,
    VENDOR_DIR,
    chromium_path,
    collect_js_errors,
    guard_network,
    open_browser,
    requires_chromium,
    run_axe,
    screenshot,
    serve_app,
)

pytestmark = requires_chromium

ACCESSIBLE = """<!doctype html>
<html lang="fr">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <link rel="icon" href="data:,">
  <title>Banc d'essai — console SNP</title>
  <script src="/static/vendor/htmx.min.js"></script>
  <style>
    body { font-family: "DejaVu Sans", sans-serif; margin: 2rem auto; max-width: 36rem; color: #1e1e1e; }
    label { display: block; font-weight: bold; margin-bottom: .25rem; }
    input { font: inherit; padding: .4rem; width: 100%; box-sizing: border-box; }
    button { font: inherit; margin-top: .75rem; padding: .4rem 1rem; background: #000091; color: #fff; border: 0; }
    #resultat { margin-top: 1.5rem; padding: .75rem; border-left: 4px solid #000091; background: #f5f5fe; }
  </style>
</head>
<body>
  <main>
    <h1>Demande de soins non programmés</h1>
    <form>
      <label for="nom">Nom du patient</label>
      <input id="nom" name="nom" type="text" autocomplete="name" required>
      <button type="submit" hx-post="/salutation" hx-target="#resultat" hx-swap="innerHTML">Envoyer la demande</button>
    </form>
    <div id="resultat" aria-live="polite"><p>Aucune demande envoyée.</p></div>
  </main>
</body>
</html>
"""

INACCESSIBLE = """<!doctype html>
<html lang="fr">
<head><meta charset="utf-8"><link rel="icon" href="data:,"><title>Page non accessible</title></head>
<body>
  <main>
    <h1>Page non accessible</h1>
    <img src="/pixel.gif">
    <input type="text" name="recherche">
  </main>
</body>
</html>
"""

HOSTILE = """<!doctype html>
<html lang="fr">
<head>
  <meta charset="utf-8"><link rel="icon" href="data:,"><title>Page hostile</title>
  <script src="https://example.org/x.js"></script>
</head>
<body>
  <main>
    <h1>Page hostile</h1>
    <script>new WebSocket("wss://example.org/flux");</script>
    <script>throw new Error("erreur volontaire du banc d'essai");</script>
  </main>
</body>
</html>
"""

PIXEL_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def build_app(events: list[str], *, fail_startup: bool = False) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        events.append("startup")
        if fail_startup:
            raise RuntimeError("démarrage impossible")
        app.state.ready = True
        yield
        events.append("shutdown")

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static/vendor", StaticFiles(directory=VENDOR_DIR), name="vendor")

    @app.get("/healthz")
    async def healthz(request: Request) -> JSONResponse:
        if not getattr(request.app.state, "ready", False):  # only true once the lifespan has run
            return JSONResponse({"status": "starting"}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/accessible")
    async def accessible() -> HTMLResponse:
        return HTMLResponse(ACCESSIBLE)

    @app.post("/salutation")
    async def salutation(request: Request, nom: Annotated[str, Form()]) -> HTMLResponse:
        if request.headers.get("HX-Request") != "true":
            return HTMLResponse("<p>Requête htmx attendue.</p>", status_code=400)
        return HTMLResponse(f'<p id="confirmation">Demande enregistrée pour {escape(nom)}.</p>')

    @app.get("/inaccessible")
    async def inaccessible() -> HTMLResponse:
        return HTMLResponse(INACCESSIBLE)

    @app.get("/pixel.gif")
    async def pixel() -> Response:
        return Response(PIXEL_GIF, media_type="image/gif")

    @app.get("/hostile")
    async def hostile() -> HTMLResponse:
        return HTMLResponse(HOSTILE)

    return app


def eventually(page: Page, condition: Callable[[], bool], timeout_ms: int = 3000) -> None:
    """Wait for `condition`, letting Playwright deliver its events (they only arrive during Playwright calls)."""
    for _ in range(timeout_ms // 50):
        if condition():
            return
        page.wait_for_timeout(50)
    assert condition()


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serve_app(build_app([])) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with open_browser() as launched:
        yield launched


@pytest.fixture
def context(browser: Browser, base_url: str) -> Iterator[BrowserContext]:
    ctx = browser.new_context(base_url=base_url, locale="fr-FR", viewport={"width": 900, "height": 600})
    yield ctx
    ctx.close()


def test_chromium_path_is_an_executable() -> None:
    path = chromium_path()
    assert path is not None
    assert path.startswith("/")


def test_serve_app_runs_the_lifespan_on_loopback_and_stops() -> None:
    events: list[str] = []
    with serve_app(build_app(events)) as url:
        assert url.startswith("http://127.0.0.1:")
        assert events == ["startup"]
        with httpx.Client(trust_env=False) as http:
            assert http.get(f"{url}/healthz").json() == {"status": "ok"}
        port = int(url.rsplit(":", 1)[1])
    assert events == ["startup", "shutdown"]
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # nothing listens any more


def test_serve_app_fails_when_the_lifespan_fails() -> None:
    events: list[str] = []
    with pytest.raises(RuntimeError, match="stopped during startup"), serve_app(build_app(events, fail_startup=True)):
        pass
    assert events == ["startup"]


def test_htmx_swap_on_a_clean_french_page(context: BrowserContext, base_url: str) -> None:
    outside = guard_network(context, base_url, http_errors=True)  # on the context, before the page
    page = context.new_page()
    errors = collect_js_errors(page)

    page.goto("/accessible")
    assert page.evaluate("() => document.documentElement.lang") == "fr"
    assert page.evaluate("() => typeof window.htmx === 'object' && htmx.version") == "2.0.11"
    page.get_by_label("Nom du patient").fill("Zoé Müller-Lefèvre")
    page.get_by_role("button", name="Envoyer la demande").click()
    confirmation = page.locator("#resultat #confirmation")
    confirmation.wait_for(timeout=5000)
    assert confirmation.inner_text() == "Demande enregistrée pour Zoé Müller-Lefèvre."

    assert run_axe(page) == []
    path = screenshot(page, "harness-selftest")
    assert path == SCREENSHOT_DIR / "harness-selftest.png"
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert path.stat().st_size > 5000
    assert errors == []
    assert outside == []


def test_axe_reports_missing_alt_and_label(context: BrowserContext, base_url: str) -> None:
    page = context.new_page()
    outside = guard_network(page, base_url)
    page.goto("/inaccessible")

    violations = run_axe(page)

    by_id = {violation["id"]: violation for violation in violations}
    assert {"image-alt", "label"} <= by_id.keys()
    assert all(violation["impact"] in {"serious", "critical"} for violation in violations)
    assert by_id["image-alt"]["targets"] == ["img"]
    assert by_id["label"]["targets"] == ["input"]
    assert by_id["label"]["help"]
    assert run_axe(page, context="h1") == []  # a part of the page, axe already injected
    assert outside == []


def test_outside_requests_are_blocked_and_js_errors_collected(context: BrowserContext, base_url: str) -> None:
    page = context.new_page()
    outside = guard_network(page, base_url)
    errors = collect_js_errors(page)

    page.goto("/hostile")
    eventually(page, lambda: len(outside) >= 2 and any("pageerror" in error for error in errors))

    assert outside == ["blocked GET https://example.org/x.js", "blocked WS wss://example.org/flux"]
    assert "pageerror: Error: erreur volontaire du banc d'essai" in errors
    assert any(error.startswith("console.error: Failed to load resource") for error in errors)


def test_failed_and_http_error_requests_are_recorded(context: BrowserContext, base_url: str) -> None:
    outside = guard_network(context, base_url, http_errors=True)
    page = context.new_page()
    page.route("**/perdu.js", lambda route: route.abort("connectionreset"))  # runs before the guard's route
    page.goto("/accessible")
    assert outside == []

    page.evaluate("() => Promise.allSettled([fetch('/perdu.js'), fetch('/absent')])")
    eventually(page, lambda: len(outside) >= 2)

    assert sorted(outside) == [
        f"HTTP 404 GET {base_url}/absent",
        f"failed GET {base_url}/perdu.js: net::ERR_CONNECTION_RESET",
    ]
