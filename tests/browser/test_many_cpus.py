"""64 CPUs with an hour of history: legible, and the README's screenshot."""

from __future__ import annotations

import os
import time
from itertools import pairwise
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.dashboard.runtime_writes import realistic_history, write_history

pytestmark = [pytest.mark.browser, pytest.mark.slow]

KEY = "resource-monitor"
README_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "dashboard-live.png"


def boxes(page, selector):
    """Bounding boxes of the elements matching selector, in page order."""
    return page.eval_on_selector_all(
        selector,
        "els => els.map(e => { const r = e.getBoundingClientRect();"
        " return {x: r.x, y: r.y, w: r.width, h: r.height,"
        " size: parseFloat(getComputedStyle(e).fontSize)}; })",
    )


def assert_no_overlap(items, axis):
    start, length = ("y", "h") if axis == "y" else ("x", "w")
    ordered = sorted(items, key=lambda box: box[start])
    for before, after in pairwise(ordered):
        assert before[start] + before[length] <= after[start] + 0.5, (before, after)


def test_live_64_cpus_render_legibly(tab, dashboard, valkey, redis_client, tmp_path):
    server = dashboard(valkey.url, KEY, refresh_seconds="5")
    # Written once the server is up, so that the picture shows fresh data.
    write_history(redis_client, KEY, realistic_history(int(time.time() * 1000), cpus=64))
    page = tab.page
    page.goto(server.url)

    expect(page.locator("#kpi-cpu")).to_contain_text("64 · mean")
    expect(page.locator("#graph-cpu-heatmap .hm")).to_have_count(1)
    rows = page.evaluate(
        "document.querySelector('#graph-cpu-heatmap .js-plotly-plot').data[0].z.length"
    )
    assert rows == 64

    # Each graph draws on its own schedule: wait for the ones measured below.
    page.wait_for_function(
        "document.querySelectorAll('#graph-cpu-heatmap .ytick text').length >= 16"
    )
    expect(page.locator("#graph-latest .xtick text")).to_have_count(66)

    heatmap_labels = boxes(page, "#graph-cpu-heatmap .ytick text")
    assert min(label["size"] for label in heatmap_labels) >= 9
    assert_no_overlap(heatmap_labels, "y")

    bar_labels = boxes(page, "#graph-latest .xtick text")
    assert len(bar_labels) == 66
    assert min(label["size"] for label in bar_labels) >= 9
    assert_no_overlap(bar_labels, "x")

    # Nothing sticks out sideways at a common laptop width.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    page.wait_for_timeout(500)  # let Plotly finish its transitions before the picture
    # UPDATE_SCREENSHOT=1 refreshes the README's picture; otherwise it goes to a scratch folder.
    target = README_SCREENSHOT if os.environ.get("UPDATE_SCREENSHOT") else tmp_path / "live.png"
    page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 0
    assert tab.console_errors == [] and tab.page_errors == []
