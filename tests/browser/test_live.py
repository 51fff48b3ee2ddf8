"""The Live page in a real browser against a real Valkey, served by gunicorn as in production."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from tests.dashboard.runtime_writes import resource_output, write_error, write_output

pytestmark = [pytest.mark.browser, pytest.mark.slow]

KEY = "resource-monitor-browser"
XSS = "<img src=x onerror=alert(1)>"


def open_live(tab, server):
    """Open the Live page and wait for its first refresh."""
    tab.page.goto(server.url)
    expect(tab.page.locator("#live-freshness")).not_to_have_text("")
    return tab.page


def wait_for_points(page, graph_id, count):
    """Wait until the graph's first trace holds count points (read from Plotly's own data)."""
    page.wait_for_function(
        """([id, count]) => {
            const plot = document.querySelector(`#${id} .js-plotly-plot`);
            return plot !== null && plot.data.length > 0 && plot.data[0].y.length === count;
        }""",
        arg=[graph_id, count],
    )


def assert_clean(tab):
    assert tab.page_errors == []
    assert tab.console_errors == []
    assert tab.dialogs == []


def test_live_kpis_equal_the_values_in_redis(tab, dashboard, valkey, redis_client):
    entry_id = write_output(
        redis_client, KEY, resource_output([12.345, 40.0, 71.5], egress=3.14159)
    )
    page = open_live(tab, dashboard(valkey.url, KEY))
    output = json.loads(redis_client.get(KEY))
    expect(page.locator("#kpi-egress")).to_have_text(f"{output['percent-network-egress']:.2f} %")
    expect(page.locator("#kpi-caching")).to_have_text(f"{output['percent-memory-caching']:.2f} %")
    expect(page.locator("#kpi-cpu")).to_have_text("3 · mean 41.28 %")
    # When it was written, in UTC; the collector's own stamp (no zone) beneath it.
    written = datetime.fromtimestamp(int(entry_id.partition("-")[0]) / 1000, UTC)
    expect(page.locator("#kpi-written")).to_have_text(written.strftime("%Y-%m-%d %H:%M:%S UTC"))
    expect(page.locator("#kpi-input-stamp")).to_contain_text(output["timestamp"])
    expect(page.locator("#live-freshness")).to_contain_text("updated")
    assert_clean(tab)


def test_live_new_output_appears_without_reloading(tab, dashboard, valkey, redis_client):
    write_output(redis_client, KEY, resource_output([10.0], egress=1.0))
    page = open_live(tab, dashboard(valkey.url, KEY))
    expect(page.locator("#kpi-egress")).to_have_text("1.00 %")
    page.evaluate("window.sameDocument = true")

    write_output(redis_client, KEY, resource_output([20.0], egress=2.5))
    expect(page.locator("#kpi-egress")).to_have_text("2.50 %")
    expect(page.locator("#kpi-cpu")).to_have_text("1 · mean 20.00 %")
    # Both outputs are now in the history graph.
    wait_for_points(page, "graph-egress", 2)
    assert page.evaluate("window.sameDocument") is True
    assert_clean(tab)


def test_live_says_stale_after_three_refresh_periods(tab, dashboard, valkey, redis_client):
    # 2 s periods: a busy machine may delay a refresh by a second or two, and the fresh state
    # must still be seen before the 6 s limit.
    page = open_live(tab, dashboard(valkey.url, KEY, refresh_seconds="2"))
    write_output(redis_client, KEY, resource_output([10.0]))
    freshness = page.locator("#live-freshness")
    expect(freshness).to_contain_text("updated")
    expect(freshness).not_to_contain_text("stale")
    # No new output: after more than 3 periods of 2 s the page must say so.
    expect(freshness).to_contain_text("stale", timeout=20_000)
    expect(page.locator("#live-notices")).to_contain_text("Data is stale")

    write_output(redis_client, KEY, resource_output([11.0]))
    expect(freshness).not_to_contain_text("stale")
    expect(page.locator("#live-notices")).not_to_contain_text("Data is stale")
    assert_clean(tab)


def test_live_redis_down_shows_a_message_and_recovers_by_itself(tab, dashboard, own_valkey):
    write_output(own_valkey.client(), KEY, resource_output([10.0, 30.0], egress=1.25))
    page = open_live(tab, dashboard(own_valkey.url, KEY))
    expect(page.locator("#kpi-egress")).to_have_text("1.25 %")
    heatmap = page.locator("#graph-cpu-heatmap .hm")
    expect(heatmap).to_have_count(1)

    own_valkey.stop()
    notices = page.locator("#live-notices")
    expect(notices).to_contain_text("Redis is unreachable")
    # The page keeps its last state: values and graphs stay, no error page.
    expect(page.locator("#kpi-egress")).to_have_text("1.25 %")
    expect(heatmap).to_have_count(1)
    expect(page.locator("#graph-egress .scatterlayer .trace")).to_have_count(1)

    own_valkey.start()
    write_output(own_valkey.client(), KEY, resource_output([50.0, 70.0], egress=2.75))
    expect(page.locator("#kpi-egress")).to_have_text("2.75 %")
    expect(notices).not_to_contain_text("Redis is unreachable")
    assert_clean(tab)


def test_live_metric_named_like_html_shows_as_text_and_runs_nothing(
    tab, dashboard, valkey, redis_client
):
    output = resource_output([10.0], timestamp="<b>23:22</b><img src=x onerror=alert(3)>")
    output[XSS] = 42.0
    write_output(redis_client, KEY, output)
    at = datetime.now(UTC) + timedelta(seconds=5)
    write_error(redis_client, KEY, message="<script>alert(2)</script> failed", at=at)
    page = open_live(tab, dashboard(valkey.url, KEY))

    labels = page.locator("#graph-latest .xtick text")
    expect(labels.filter(has_text=XSS)).to_have_count(1)
    expect(page.locator("#kpi-input-stamp")).to_contain_text(
        "<b>23:22</b><img src=x onerror=alert(3)>"
    )
    expect(page.locator("#live-notices")).to_contain_text("<script>alert(2)</script> failed")
    page.wait_for_timeout(1500)  # a few more refreshes: nothing may fire later either
    assert page.locator("img[src='x']").count() == 0
    assert page.locator("#live-notices script, #kpi-input b").count() == 0
    assert_clean(tab)


def test_live_function_error_shown_until_a_newer_output(tab, dashboard, valkey, redis_client):
    write_output(redis_client, KEY, resource_output([10.0]))
    page = open_live(tab, dashboard(valkey.url, KEY))
    notices = page.locator("#live-notices")
    expect(page.locator("#kpi-cpu")).to_contain_text("mean 10.00 %")
    expect(notices).not_to_contain_text("failed")

    at = datetime.now(UTC) + timedelta(seconds=1)
    write_error(redis_client, KEY, message="division by zero", kind="handler", at=at)
    expect(notices).to_contain_text("The function's last call failed (handler)")
    expect(notices).to_contain_text("division by zero")
    page.locator("#live-notices summary").click()
    expect(page.locator("#live-notices pre")).to_contain_text("ValueError: boom")

    page.wait_for_timeout(1500)  # the next output must be newer than the error's time
    write_output(redis_client, KEY, resource_output([20.0]))
    expect(notices).not_to_contain_text("failed")
    assert_clean(tab)


def test_live_missing_key_says_so_then_data_appears(tab, dashboard, valkey, redis_client):
    page = open_live(tab, dashboard(valkey.url, KEY))
    notices = page.locator("#live-notices")
    expect(notices).to_contain_text("No output yet")
    expect(notices).to_contain_text(KEY)
    expect(page.locator("#graph-egress")).to_contain_text("Waiting for data")

    write_output(redis_client, KEY, resource_output([33.0], egress=4.5))
    expect(page.locator("#kpi-egress")).to_have_text("4.50 %")
    expect(notices).not_to_contain_text("No output yet")
    assert_clean(tab)


def test_live_without_history_accumulates_outputs_in_the_browser(
    tab, dashboard, valkey, redis_client
):
    # A runtime with HISTORY_KEY disabled writes only the output key.
    redis_client.set(KEY, json.dumps(resource_output([10.0], egress=1.0)))
    page = open_live(tab, dashboard(valkey.url, KEY))
    expect(page.locator("#kpi-egress")).to_have_text("1.00 %")
    expect(page.locator("#live-freshness")).to_contain_text("updated")
    wait_for_points(page, "graph-egress", 1)

    for egress in (2.0, 3.0):
        redis_client.set(KEY, json.dumps(resource_output([10.0], egress=egress)))
        expect(page.locator("#kpi-egress")).to_have_text(f"{egress:.2f} %")
    wait_for_points(page, "graph-egress", 3)
    assert_clean(tab)


def test_live_integer_beyond_float_range_still_renders(tab, dashboard, valkey, redis_client):
    # One value above 1.8e308 in the output and its history entry: no chart can take it.
    write_output(redis_client, KEY, resource_output([10.0]))
    huge = {**resource_output([10.0, 30.0]), "avg-util-cpu1-60sec": 10**400}
    write_output(redis_client, KEY, huge)
    page = open_live(tab, dashboard(valkey.url, KEY))
    expect(page.locator("#kpi-cpu")).to_have_text("1 · mean 10.00 %")
    expect(page.locator("#live-notices")).not_to_contain_text("could not render")
    wait_for_points(page, "graph-egress", 2)
    assert_clean(tab)
