"""The `monitoring-dashboard` command: settings errors, gunicorn as configured, clean stop."""

from __future__ import annotations

import subprocess

import pytest
from monitoring_dashboard.cli import DEFAULT_BIND, gunicorn_options, parse_args

from tests.dashboard.runtime_writes import resource_output, write_output
from tests.dashboard.server import (
    DashboardProcess,
    HttpClient,
    clean_environ,
    dashboard_command,
    http_get,
)
from tests.dashboard.test_app import refresh, texts


def test_cli_bad_setting_exits_2_with_one_line():
    result = subprocess.run(
        [*dashboard_command(), "--bind", "127.0.0.1:1"],
        env=clean_environ(REDIS_OUTPUT_KEY="out", REFRESH_SECONDS="soon"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "monitoring-dashboard: REFRESH_SECONDS='soon': expected a number >= 0.2 and <= 3600\n"
    )


@pytest.mark.parametrize(
    "url",
    [
        "redis://app:s3cret@127.0.0.1:99999/0",
        "redis://:s3cret@127.0.0.1:6379/abc",
        "redis://127.0.0.1:6379/99999",
    ],
)
def test_cli_bad_redis_url_exits_2_before_gunicorn_starts(url):
    result = subprocess.run(
        [*dashboard_command(), "--bind", "127.0.0.1:1"],
        env=clean_environ(REDIS_OUTPUT_KEY="out", REDIS_URL=url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("monitoring-dashboard: REDIS_URL='redis://")
    assert "a port from 1 to 65535 and a db from 0 to 65535" in lines[0]
    assert "s3cret" not in result.stderr + result.stdout
    assert "Worker failed to boot" not in result.stderr


def test_cli_bind_port_out_of_range_exits_2_without_a_traceback():
    result = subprocess.run(
        [*dashboard_command(), "--bind", "127.0.0.1:99999"],
        env=clean_environ(REDIS_OUTPUT_KEY="out"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "monitoring-dashboard: error: argument --bind: "
        "expected HOST:PORT with a port from 0 to 65535, not 127.0.0.1:99999"
    )
    assert "Traceback" not in result.stderr


def test_cli_defaults_to_the_container_port():
    assert parse_args([]).bind == DEFAULT_BIND == "0.0.0.0:8050"


def test_cli_runs_one_worker_with_threads():
    options = gunicorn_options("127.0.0.1:8050", 4, "info")
    assert options["workers"] == 1
    assert options["worker_class"] == "gthread"
    assert options["threads"] == 4
    assert options["bind"] == ["127.0.0.1:8050"]


@pytest.mark.slow
def test_cli_serves_the_app_and_stops_cleanly_on_sigterm(valkey, tmp_path):
    env = clean_environ(REDIS_URL=valkey.url, REDIS_OUTPUT_KEY="resource-monitor")
    server = DashboardProcess(env, tmp_path / "dashboard.log")
    server.start()
    try:
        assert http_get(f"{server.url}/healthz") == (200, "OK")
        status, page = http_get(f"{server.url}/")
        assert status == 200
        assert "/assets/bootstrap.min.css" in page
    finally:
        code = server.stop()
    assert code == 0
    assert "gthread" in server.log()


@pytest.mark.slow
def test_cli_page_renders_past_history_entries_that_are_not_utf8(valkey, redis_client, tmp_path):
    key = "resource-monitor"
    write_output(redis_client, key, resource_output([10.0], egress=1.0))
    redis_client.xadd(f"{key}:history", {"output": b'{"percent-network-egress": \xff}'})
    redis_client.xadd(f"{key}:history", {"output": b"\xfe\xff"})
    write_output(redis_client, key, resource_output([30.0], egress=3.0))
    env = clean_environ(REDIS_URL=valkey.url, REDIS_OUTPUT_KEY=key)
    server = DashboardProcess(env, tmp_path / "dashboard.log")
    server.start()
    try:
        first = refresh(HttpClient(server.url))
        again = refresh(HttpClient(server.url))
    finally:
        server.stop()
    for response in (first, again):
        assert texts(response["live-notices"]["children"]) == ""
        assert response["kpi-egress"]["children"] == "3.00 %"
        egress = response["graph-egress"]["figure"]["data"][0]
        assert egress["y"] == [1.0, 3.0]
    assert server.log().count("skipped 2 entries") == 1
