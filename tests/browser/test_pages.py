"""Navigation between pages, the About page, and a page that needs nothing but its own server."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.dashboard.runtime_writes import resource_output, write_output

pytestmark = [pytest.mark.browser, pytest.mark.slow]

KEY = "resource-monitor-pages"


def test_about_explains_the_formulas_and_everything_is_served_locally(
    tab, dashboard, valkey, redis_client
):
    write_output(redis_client, KEY, resource_output([10.0, 20.0]))
    server = dashboard(valkey.url, KEY)
    page = tab.page
    page.goto(server.url)
    expect(page.locator("#kpi-cpu")).to_have_text("2 · mean 15.00 %")

    page.get_by_role("link", name="About").click()
    expect(page).to_have_url(f"{server.url}/about")
    body = page.locator("body")
    expect(body).to_contain_text("bytes_sent / (bytes_sent + bytes_recv) * 100")
    expect(body).to_contain_text("(cached + buffers) / total * 100")
    expect(body).to_contain_text("(t - 60 s, t]")
    expect(body).to_contain_text("Every time on these pages is UTC")
    expect(page).to_have_title("About · Serverless functions")

    page.get_by_role("link", name="Live").click()
    expect(page.locator("#kpi-cpu")).to_have_text("2 · mean 15.00 %")

    # Bootstrap's CSS is applied (the navbar is dark) although no CDN was ever asked.
    navbar = page.locator("nav.navbar")
    background = navbar.evaluate("el => getComputedStyle(el).backgroundColor")
    assert background == "rgb(33, 37, 41)"
    assert tab.requests, "the browser made no requests at all"
    foreign = [url for url in tab.requests if not url.startswith(server.url + "/")]
    assert foreign == []
    assert tab.console_errors == [] and tab.page_errors == []
