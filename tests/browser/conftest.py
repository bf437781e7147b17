"""Browser tests need a Chromium: without one they are skipped, and the run says so plainly
(in CI, with SNP_REQUIRE_BROWSER=1, a missing Chromium fails the run instead)."""

from __future__ import annotations

import os

import pytest

from tests.browser.harness import DEFAULT_CHROMIUM, chromium_path


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
