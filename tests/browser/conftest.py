"""A headless Chromium driven by Playwright, and dashboards served by gunicorn for it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.dashboard.server import DashboardProcess, clean_environ

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    # Loopback only, whatever proxy the environment names.
    "--no-proxy-server",
]
VIEWPORT = {"width": 1440, "height": 900}


def find_chromium() -> str | None:
    """CHROMIUM_PATH, else Debian's chromium, else Google Chrome (GitHub's Ubuntu runners)."""
    configured = os.environ.get("CHROMIUM_PATH")
    if configured:
        return configured if Path(configured).exists() else None
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    return shutil.which("google-chrome") or shutil.which("chromium")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session."""
    executable = find_chromium()
    if executable is None:
        configured = os.environ.get("CHROMIUM_PATH")
        where = f"CHROMIUM_PATH={configured} does not exist" if configured else "no Chromium found"
        pytest.skip(
            f"{where}: install Debian's chromium or Google Chrome (make system-deps), "
            "or set CHROMIUM_PATH"
        )
    from playwright.sync_api import expect, sync_playwright

    # Generous: a loaded 2-core CI machine may take seconds to parse plotly.js.
    expect.set_options(timeout=15_000)

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Tab:
    """A browser page plus what it reported: console errors, uncaught errors, dialogs, requests."""

    page: Any
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def tab(browser: Any) -> Iterator[Tab]:
    """A fresh page (own context) that records everything a test may want to assert on."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(15_000)
    watched = Tab(page)

    def on_console(message: Any) -> None:
        if message.type == "error":
            watched.console_errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: watched.page_errors.append(str(error)))

    def on_dialog(dialog: Any) -> None:
        watched.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("request", lambda request: watched.requests.append(request.url))
    yield watched
    context.close()


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[Callable[..., DashboardProcess]]:
    """Start `monitoring-dashboard` on 127.0.0.1 for a Redis URL and output key."""
    started: list[DashboardProcess] = []

    def start(redis_url: str, output_key: str, refresh_seconds: str = "1") -> DashboardProcess:
        env = clean_environ(
            REDIS_URL=redis_url, REDIS_OUTPUT_KEY=output_key, REFRESH_SECONDS=refresh_seconds
        )
        server = DashboardProcess(env, tmp_path / f"dashboard-{len(started)}.log")
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()
        # Shown by pytest only when the test failed.
        print(f"--- dashboard log ({server.url}) ---\n{server.log()}")
