"""Browser tests need a Chromium: without one they are skipped, and the run says so plainly
(in CI, with SNP_REQUIRE_BROWSER=1, a missing Chromium fails the run instead)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser

from service import migrate
from service.main import create_app
from tests import dbserver
from tests.browser.console_app import Console, Session, _seed, open_session, run_apart
from tests.browser.harness import DEFAULT_CHROMIUM, chromium_path, open_browser, serve_app
from tests.conftest import make_settings


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if chromium_path() is None and os.environ.get("SNP_REQUIRE_BROWSER") == "1":
        raise pytest.UsageError(
            "SNP_REQUIRE_BROWSER=1 but no usable Chromium: install it with `apt-get install -y chromium` "
            "(or name one with SNP_CHROMIUM)"
        )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if chromium_path() is not None:
        return
    browser = os.environ.get("SNP_CHROMIUM", DEFAULT_CHROMIUM)
    terminalreporter.write_sep("!", "BROWSER TESTS SKIPPED", yellow=True, bold=True)
    terminalreporter.write_line(
        f"No usable Chromium at {browser!r}: the console's browser tests (tests/browser) did not run. "
        "Install it with `sudo apt-get install -y chromium` (Debian/Ubuntu), or set SNP_CHROMIUM to another binary."
    )


@pytest.fixture(scope="module")
def console(server_url: str) -> Iterator[Console]:
    """The service with the demo CPTS, served on 127.0.0.1 from a database of its own."""
    url = run_apart(dbserver.create_database(server_url, prefix="snp_browser"))
    migrate.upgrade(url)
    users = run_apart(_seed(url))
    # An SMS gateway is configured so that the console offers SMS; the sender does not run here
    # (SNP_RELAY_ENABLED is off in tests): nothing is sent, the message stays pending.
    settings = make_settings(url, SNP_SMS_GATEWAY_URL="http://127.0.0.1:9/sms")
    with serve_app(create_app(settings)) as base, httpx.Client(base_url=base, trust_env=False) as api:
        yield Console(base, users, api, url)
    run_apart(dbserver.drop_database(server_url, url))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with open_browser() as opened:
        yield opened


@pytest.fixture
def handler(browser: Browser, console: Console) -> Iterator[Session]:
    session = open_session(browser, console)
    yield session
    session.context.close()
