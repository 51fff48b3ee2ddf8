"""The operations view in a real browser: a real runtime's /metrics per function, the time range,
the mode bar on hover only, and times in UTC."""

from __future__ import annotations

import json
import re
import time
from functools import partial
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.dashboard.runtime_writes import resource_output, write_error, write_history
from tests.support.http import get
from tests.support.processes import RUNTIME, Process, runtime_env, wait_for
from tests.support.valkey import free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]

COUNTER = Path(__file__).parent.parent / "process" / "functions" / "counter.py"
KEY = "resource-monitor-ops"


def test_operations_of_a_running_function_in_the_list_and_its_view(
    tab, dashboard, valkey, redis_client, tmp_path
):
    port = free_port()
    env = runtime_env(
        valkey.port, "orders-out", FUNCTION_PATH=str(COUNTER), REDIS_INPUT_KEY="orders",
        HTTP_PORT=str(port), TRIGGER="notify", INTERVAL="0.5",
    )  # fmt: skip
    runtime = Process([RUNTIME], env, tmp_path / "runtime.log")
    try:
        wait_for(lambda: get(port, "/readyz")[0] == 200, timeout=30, what="runtime ready")
        # Two calls that succeed and one that raises: a third of the calls failed.
        for value in ({"value": 1}, {"value": 2}, {"fail": "raise"}):
            redis_client.set("orders", json.dumps(value))
            wait_for(partial(_seen, redis_client, value), what=f"call on {value}")
        server = dashboard(valkey.url, KEY)
        page = tab.page
        page.goto(f"{server.url}/functions")
        row = page.locator("#functions-table tr", has_text="orders-out")
        expect(row.locator(".ops-errors")).to_have_text("33.33 %")
        expect(row.locator(".ops-leader")).to_have_text("leader")
        expect(row.locator(".ops-rate")).to_have_text(rate_text())
        expect(row.locator(".ops-p95")).to_contain_text("s")
        expect(row).to_contain_text("handler-error")
        # The dashboard's own function has no runtime here: its figures say why there are none.
        other = page.locator("#functions-table tr", has_text=KEY)
        expect(other.locator(".ops-rate")).to_have_text("—")

        page.get_by_role("link", name="orders-out", exact=True).click()
        panel = page.locator("#function-ops")
        expect(panel.locator(".ops-errors")).to_have_text("33.33 %")
        expect(panel.locator(".ops-leader")).to_have_text("leader")
        expect(panel).to_contain_text("over the last")
        expect(page.locator("#function-head")).to_contain_text(f"http://127.0.0.1:{port}/metrics")

        # The runtime stops: the page says its /metrics do not answer, and keeps the figures.
        runtime.kill()
        expect(panel).to_contain_text("/metrics unreachable", timeout=30_000)
        expect(panel.locator(".ops-errors")).to_have_text("33.33 %")
        assert tab.page_errors == [] and tab.console_errors == [] and tab.dialogs == []
    finally:
        runtime.close()


def rate_text() -> re.Pattern[str]:
    """A rate as the page writes it: a number per second or per minute, never a dash."""
    return re.compile(r"^\d[\d.]*/(s|min)$")


def _seen(client, value) -> bool:
    if "fail" in value:
        return client.get("orders-out:error") is not None
    return bool(json.loads(client.get("orders-out") or "{}").get("value") == value["value"])


def _plot_span_ms(page, selector: str) -> float:
    """The time the first trace of a graph covers, from the data Plotly holds."""
    return float(
        page.evaluate(
            """(selector) => {
            const trace = document.querySelector(selector + ' .js-plotly-plot').data[0];
            if (trace.x) { return trace.x[trace.x.length - 1] - trace.x[0]; }
            return trace.dx * (trace.y.length - 1);
        }""",
            selector,
        )
    )


def test_time_range_changes_the_span_of_the_live_and_function_charts(
    tab, dashboard, valkey, redis_client
):
    now_ms = int(time.time() * 1000)
    history = [
        (now_ms - 3_540_000 + step * 60_000, resource_output([10.0 + step % 7], egress=step / 3))
        for step in range(60)
    ]
    write_history(redis_client, KEY, history)
    server = dashboard(valkey.url, KEY)
    page = tab.page
    page.goto(server.url)
    expect(page.locator("#time-range")).to_contain_text("15 min")
    page.wait_for_function(
        "() => document.querySelector('#graph-egress .js-plotly-plot')?.data?.length > 0"
    )
    assert _plot_span_ms(page, "#graph-egress") >= 55 * 60_000
    page.locator("#time-range").get_by_text("15 min", exact=True).click()
    page.wait_for_function(
        """() => {
            const trace = document.querySelector('#graph-egress .js-plotly-plot').data[0];
            return trace.x[trace.x.length - 1] - trace.x[0] <= 15 * 60000;
        }"""
    )
    assert _plot_span_ms(page, "#graph-egress") >= 13 * 60_000

    # The Functions page has the same choice; it keeps the one made in this tab.
    page.goto(f"{server.url}/functions?output={KEY}")
    expect(page.locator("#function-charts")).to_contain_text("percent-network-egress")
    page.wait_for_function("() => document.querySelector('#function-charts .js-plotly-plot')")
    assert _plot_span_ms(page, "#function-charts") <= 15 * 60_000
    page.locator("#time-range").get_by_text("1 h", exact=True).click()
    page.wait_for_function(
        """() => {
            const trace = document.querySelector('#function-charts .js-plotly-plot').data[0];
            return trace.x[trace.x.length - 1] - trace.x[0] >= 55 * 60000;
        }"""
    )
    assert tab.page_errors == [] and tab.console_errors == []


def test_mode_bar_appears_only_on_hover_and_times_are_utc(tab, dashboard, valkey, redis_client):
    now_ms = int(time.time() * 1000)
    write_history(
        redis_client,
        KEY,
        [(now_ms - 10_000, resource_output([5.0])), (now_ms - 5000, resource_output([6.0]))],
    )
    write_error(redis_client, KEY, message="boom")
    server = dashboard(valkey.url, KEY)
    page = tab.page
    page.goto(server.url)
    graph = page.locator("#graph-egress")
    modebar = graph.locator(".modebar-container .modebar")
    expect(modebar).to_have_count(1)
    page.mouse.move(0, 0)
    opacity = "(el) => getComputedStyle(el.querySelector('.modebar-group')).opacity"
    page.wait_for_function(
        "(el) => getComputedStyle(el.querySelector('.modebar-group')).opacity === '0'",
        arg=modebar.element_handle(),
    )
    graph.locator(".nsewdrag").hover()
    page.wait_for_function(
        "(el) => getComputedStyle(el.querySelector('.modebar-group')).opacity === '1'",
        arg=modebar.element_handle(),
    )
    assert modebar.evaluate(opacity) == "1"
    # Every time shown is labelled UTC: the newest output's, the error's and the navbar says so.
    expect(page.locator("#kpi-written")).to_contain_text(" UTC")
    expect(page.locator("#live-notices")).to_contain_text(" UTC")
    expect(page.locator("nav")).to_contain_text("times in UTC")
    expect(page).to_have_title("Live · Serverless functions")
    assert tab.page_errors == [] and tab.console_errors == []
