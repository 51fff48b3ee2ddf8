"""A broken deploy does not look healthy: a real runtime hot-reloads a version that fails to load,
and the dashboard shows a banner on that function (Functions and Live pages) until one loads."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.processes import RUNTIME, Process, runtime_env, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow]

OUTPUT = "cpu-stats"
GOOD = """
def handler(input, context):
    return {"version": VERSION, "i": input["i"]}

VERSION = 1
"""
BROKEN = """
def handler(input, context):
    return {"i": input["i"],,}
"""
MTIME = 1_900_000_000  # 2030-03-17 17:46:40 UTC
BANNER = "version from 2030-03-17 17:46:40 UTC failed to load"


def publish(path: Path, text: str, mtime: float) -> None:
    path.write_text(text)
    os.utime(path, (mtime, mtime))


def output(client) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(client.get(OUTPUT) or "{}")
    return value


def test_banner_while_the_newest_version_failed_to_load_and_gone_after_a_good_one(
    tab, dashboard, valkey, redis_client, tmp_path: Path
) -> None:
    function = tmp_path / "usermodule.py"
    publish(function, GOOD, MTIME - 100)
    env = runtime_env(valkey.port, OUTPUT, FUNCTION_PATH=str(function), INTERVAL="0.2")
    runtime = Process([RUNTIME], env, tmp_path / "runtime.log")
    try:
        redis_client.set("metrics", json.dumps({"i": 1}))
        wait_for(lambda: output(redis_client).get("i") == 1, what="the first output")
        server = dashboard(valkey.url, OUTPUT)
        page = tab.page
        functions_head = page.locator("#function-head")
        page.goto(f"{server.url}/functions?output={OUTPUT}")
        expect(page.locator("#function-title")).to_have_text(OUTPUT)
        expect(functions_head).not_to_contain_text("failed to load")

        publish(function, BROKEN, MTIME)
        # The previous version keeps writing outputs: the page stays fresh, and says it all.
        redis_client.set("metrics", json.dumps({"i": 2}))
        wait_for(lambda: output(redis_client).get("i") == 2, what="the previous version's output")
        assert output(redis_client)["version"] == 1
        expect(functions_head).to_contain_text("The newest version failed to load")
        expect(functions_head).to_contain_text(BANNER)
        expect(functions_head).to_contain_text(f"syntax error in {function} at line 3")
        expect(functions_head).to_contain_text("running the previous version")
        row = page.locator("#functions-table tr", has_text=OUTPUT)
        expect(row).to_contain_text(BANNER)

        page.get_by_role("link", name="Live", exact=True).click()
        live_notices = page.locator("#live-notices")
        expect(live_notices).to_contain_text(BANNER)
        expect(live_notices).to_contain_text("running the previous version")

        publish(function, GOOD.replace("VERSION = 1", "VERSION = 2"), MTIME + 100)
        expect(live_notices).not_to_contain_text("failed to load")
        page.goto(f"{server.url}/functions?output={OUTPUT}")
        expect(page.locator("#function-title")).to_have_text(OUTPUT)
        expect(functions_head).not_to_contain_text("failed to load")
        expect(page.locator("#functions-table")).not_to_contain_text("failed to load")
        assert tab.page_errors == []
    finally:
        runtime.close()
