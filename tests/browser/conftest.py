"""Debian's chromium driven headless by Playwright (never a browser download), against real servers."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.helpers import RunningServer, free_port

CHROMIUM = os.environ.get("STYLETRANSFER_CHROMIUM", "/usr/bin/chromium")  # Debian's; `make system-deps`
# No network, no background services: the page must work offline against 127.0.0.1 alone.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


# Module scope: Playwright's sync API keeps an event loop running in the main thread while it is open, and tests
# after these (asyncio.run in the gateway's tests) must not find it there.
@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail("Debian's chromium is not installed (`make system-deps` installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


class ConsoleLog:
    """Console errors and uncaught exceptions of one page."""

    def __init__(self, page) -> None:
        self.errors: list[str] = []
        page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        page.on("pageerror", lambda error: self.errors.append(str(error)))


@pytest.fixture
def page(browser) -> Iterator[object]:
    """A page whose tests may poll with JavaScript expressions (Playwright evaluates those strings, which the
    page's Content-Security-Policy forbids); ``strict_page`` keeps the policy."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, bypass_csp=True)
    yield context.new_page()
    context.close()


@pytest.fixture
def strict_page(browser) -> Iterator[object]:
    """A phone-sized page under the server's own Content-Security-Policy."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    yield context.new_page()
    context.close()


@pytest.fixture
def console(page) -> ConsoleLog:
    return ConsoleLog(page)


@pytest.fixture
def strict_console(strict_page) -> ConsoleLog:
    """The console of ``strict_page``: under the server's CSP any inline script or style is an error here."""
    return ConsoleLog(strict_page)


@pytest.fixture
def offline_server(start_server, magenta_model, presets_model) -> RunningServer:
    """What `make run` serves on a fresh offline machine: Magenta (the default) and the presets model."""
    return start_server(models=[magenta_model, presets_model], http_port=free_port())


@pytest.fixture
def trained_server(start_server, random_model, magenta_model) -> RunningServer:
    """Random-weight AdaIN (the default) and trained Magenta, as `make run` serves them without AdaIN's files."""
    return start_server(models=[random_model, magenta_model], http_port=free_port())
