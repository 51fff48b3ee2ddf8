"""The `monitoring-dashboard` command: settings errors, gunicorn as configured, clean stop."""

from __future__ import annotations

import subprocess

import pytest
from monitoring_dashboard.cli import DEFAULT_BIND, gunicorn_options, parse_args

from tests.dashboard.server import DashboardProcess, clean_environ, dashboard_command, http_get


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
        "monitoring-dashboard: REFRESH_SECONDS='soon': expected a number >= 0.2\n"
    )


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
