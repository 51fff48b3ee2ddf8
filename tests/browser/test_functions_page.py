"""The Functions page in a real browser: two registered functions of different shapes."""

from __future__ import annotations

import json
import time

import pytest
from playwright.sync_api import expect
from serverless_runtime.config import Settings as RuntimeSettings
from serverless_runtime.registry import DEFAULT_FUNCTIONS_KEY, FunctionRecord, Registration

from tests.dashboard.runtime_writes import resource_output, write_output

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CONFIGURED = "resource-monitor-functions"
XSS = "<img src=x onerror=alert(1)>"


def register_function(client, output: str, **env: str) -> None:
    settings = RuntimeSettings.from_env({"REDIS_OUTPUT_KEY": output, **env})
    record = FunctionRecord.from_settings(settings)
    assert Registration(client, DEFAULT_FUNCTIONS_KEY, record).register()


def write(client, key: str, output, at_ms: int) -> None:
    text = json.dumps(output)
    client.set(key, text)
    client.xadd(f"{key}:history", {"output": text}, id=f"{at_ms}-*")


def test_functions_lists_both_and_shows_one_as_table_and_charts(
    tab, dashboard, valkey, redis_client
):
    write_output(redis_client, CONFIGURED, resource_output([10.0]))
    register_function(redis_client, "cpu-stats", TRIGGER="notify")
    register_function(redis_client, "word-count", REDIS_INPUT_KEY="texts", TRIGGER="stream")
    start = int(time.time() * 1000) - 20_000
    for step, mean in enumerate([11.5, 12.5, 13.5]):
        output = {"cpu": {"mean": mean, "max": 90 + step}, "host": "node-1", XSS: step}
        write(redis_client, "cpu-stats", output, start + step * 5000)
    write(redis_client, "word-count", ["a", "b", {"words": 7}], start)

    server = dashboard(valkey.url, CONFIGURED)
    page = tab.page
    page.goto(server.url)
    page.get_by_role("link", name="Functions", exact=True).click()
    table = page.locator("#functions-table")
    expect(table).to_contain_text("cpu-stats")
    expect(table).to_contain_text("word-count")
    expect(table).to_contain_text("stream texts")
    expect(table).to_contain_text(CONFIGURED)
    expect(page.locator("#function-body")).to_contain_text("Select a function")

    page.get_by_role("link", name="cpu-stats", exact=True).click()
    expect(page).to_have_url(f"{server.url}/functions?output=cpu-stats")
    expect(page.locator("#function-title")).to_have_text("cpu-stats")
    values = page.locator("#function-output-table")
    expect(values.locator("tr", has_text="cpu.mean")).to_contain_text("13.5")
    expect(values.locator("tr", has_text="cpu.max")).to_contain_text("92")
    expect(values.locator("tr", has_text="host")).to_contain_text("node-1")
    # A key holding HTML is shown as its text, and nothing runs.
    expect(values).to_contain_text(f'["{XSS}"]')
    charts = page.locator("#function-charts")
    expect(charts).to_contain_text("cpu.mean")
    page.wait_for_function(
        """() => {
            const plot = document.querySelector('#function-charts .js-plotly-plot');
            return plot !== null && plot.data.length > 0 && plot.data[0].y.length === 3;
        }"""
    )
    first = page.evaluate(
        "() => document.querySelector('#function-charts .js-plotly-plot').data[0].y"
    )
    assert first == [11.5, 12.5, 13.5]

    # A new output appears without reloading the page.
    page.evaluate("window.sameDocument = true")
    write(redis_client, "cpu-stats", {"cpu": {"mean": 20.25, "max": 95}}, int(time.time() * 1000))
    expect(values.locator("tr", has_text="cpu.mean")).to_contain_text("20.25")
    assert page.evaluate("window.sameDocument") is True

    # The other shape: a list at the top, a string and a nested number.
    page.get_by_role("link", name="word-count", exact=True).click()
    expect(page.locator("#function-title")).to_have_text("word-count")
    other = page.locator("#function-output-table")
    expect(other.locator("tr", has_text="[0]")).to_contain_text("a")
    expect(other.locator("tr", has_text="[2].words")).to_contain_text("7")
    expect(page.locator("#function-charts")).to_contain_text("[2].words")

    assert tab.page_errors == [] and tab.console_errors == [] and tab.dialogs == []


def test_functions_never_written_and_unknown_function_show_placeholders(
    tab, dashboard, valkey, redis_client
):
    register_function(redis_client, "idle")
    server = dashboard(valkey.url, CONFIGURED)
    page = tab.page
    page.goto(f"{server.url}/functions?output=idle")
    body = page.locator("#function-body")
    expect(body).to_contain_text("Key idle holds no output yet.")
    expect(body).to_contain_text("No history yet")
    expect(page.locator("#functions-table").locator("tr", has_text="idle")).to_contain_text(
        "never written"
    )
    page.goto(f"{server.url}/functions?output=nobody")
    expect(page.locator("#function-head")).to_contain_text("Unknown function")
    assert tab.page_errors == [] and tab.console_errors == [] and tab.dialogs == []


def test_functions_page_at_500_functions_shows_a_page_of_25_and_filters(
    tab, dashboard, valkey, redis_client
):
    pipe = redis_client.pipeline(transaction=False)
    for index in range(500):
        record = FunctionRecord(f"fn-{index:03d}", "metrics", history=f"fn-{index:03d}:history")
        pipe.hset(DEFAULT_FUNCTIONS_KEY, record.output, record.to_json())
    pipe.execute()

    server = dashboard(valkey.url, "fn-000")
    page = tab.page
    page.goto(f"{server.url}/functions")
    rows = page.locator("#functions-table tbody tr")
    count = page.locator("#functions-count")
    expect(count).to_have_text("Functions 1-25 of 500")
    expect(rows).to_have_count(25)
    expect(rows.first).to_contain_text("fn-000")
    expect(rows.last).to_contain_text("fn-024")

    page.locator(".pagination").get_by_text("2", exact=True).click()
    expect(count).to_have_text("Functions 26-50 of 500")
    expect(rows).to_have_count(25)
    expect(rows.first).to_contain_text("fn-025")
    # Selecting a function keeps the list on its page.
    page.get_by_role("link", name="fn-030", exact=True).click()
    expect(page.locator("#function-title")).to_have_text("fn-030")
    expect(count).to_have_text("Functions 26-50 of 500")
    expect(rows.first).to_contain_text("fn-025")
    expect(page.locator("#functions-table tr.table-active")).to_contain_text("fn-030")
    page.wait_for_timeout(2500)
    expect(count).to_have_text("Functions 26-50 of 500")

    page.get_by_placeholder("Filter by output key").fill("FN-12")
    expect(count).to_contain_text("Functions 1-10 of 10 whose output key contains")
    expect(rows).to_have_count(10)
    expect(rows.first).to_contain_text("fn-120")
    expect(page.locator(".pagination")).to_have_count(0)
    # So does the filter.
    page.get_by_role("link", name="fn-123", exact=True).click()
    expect(page.locator("#function-title")).to_have_text("fn-123")
    expect(page.get_by_placeholder("Filter by output key")).to_have_value("FN-12")
    expect(rows).to_have_count(10)

    page.get_by_placeholder("Filter by output key").fill("")
    expect(count).to_have_text("Functions 1-25 of 500")
    expect(rows.first).to_contain_text("fn-000")
    assert tab.page_errors == [] and tab.console_errors == [] and tab.dialogs == []
