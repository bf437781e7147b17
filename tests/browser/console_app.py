"""The console served with the demo CPTS for browser tests: the app on 127.0.0.1 with a database
of its own, and signed-in browser sessions that check each screen (axe-core, JavaScript errors,
no request elsewhere, screenshots)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from playwright.sync_api import Browser, BrowserContext, Page

from service.db import create_engine, create_sessionmaker, session_scope
from service.demo import seed
from tests.browser.harness import collect_js_errors, guard_network, run_axe, screenshot
from tests.conftest import make_settings

T = TypeVar("T")


@dataclass
class Console:
    url: str
    users: dict[str, tuple[str, str]]  # role -> (e-mail, password)
    api: httpx.Client
    database_url: str

    def token(self, role: str) -> dict[str, str]:
        email, password = self.users[role]
        answer = self.api.post("/v1/auth/token", data={"username": email, "password": password})
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    def new_request(self, **body: Any) -> dict[str, Any]:
        payload = {"caller": {"relation": "self"}, "motif": "M19.05.00", **body}
        answer = self.api.post("/v1/requests", json=payload, headers=self.token("handler"))
        assert answer.status_code == 201, answer.text
        created: dict[str, Any] = answer.json()
        return created

    def detail(self, request_id: str) -> dict[str, Any]:
        answer = self.api.get(f"/v1/requests/{request_id}", headers=self.token("handler"))
        found: dict[str, Any] = answer.json()
        return found


async def _seed(url: str) -> dict[str, tuple[str, str]]:
    engine = create_engine(url, 2, 0)
    try:
        async with session_scope(create_sessionmaker(engine)) as session:
            result = await seed(session, make_settings(url))
    finally:
        await engine.dispose()
    return result.users


def run_apart(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end in a thread of its own (the test's thread may have a loop running)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work).result()


@dataclass
class Session:
    context: BrowserContext
    page: Page
    errors: list[str]
    outside: list[str]

    def check(self, name: str | None = None, refused: int | None = None) -> None:
        """This screen: no serious accessibility violation, no JavaScript error, nothing from elsewhere.
        `refused`: the status of a refusal the screen shows on purpose (Chromium logs its loading)."""
        assert self.page.locator("html").get_attribute("lang") == "fr"
        assert run_axe(self.page) == [], name
        expected = f"the server responded with a status of {refused}"
        assert [e for e in self.errors if refused is None or expected not in e] == [], name
        assert self.outside == [], name
        if name:
            screenshot(self.page, name)


def open_session(browser: Browser, console: Console, role: str = "handler", **options: Any) -> Session:
    context = browser.new_context(base_url=console.url, locale="fr-FR", **options)
    outside = guard_network(context, console.url)
    page = context.new_page()
    errors = collect_js_errors(page)
    session = Session(context, page, errors, outside)
    page.goto("/console/")
    email, password = console.users[role]
    page.get_by_label("E-mail professionnel").fill(email)
    page.get_by_label("Mot de passe").fill(password)
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/queue")
    return session
