"""`monitoring_dashboard.wsgi:server` for a plain gunicorn command line."""

from __future__ import annotations

import importlib
import sys

import pytest

from tests.dashboard.server import DashboardProcess, clean_environ, http_get


def test_wsgi_import_builds_nothing():
    module = importlib.import_module("monitoring_dashboard.wsgi")
    assert module._server is None


def test_wsgi_server_for_settings_from_a_mapping(valkey):
    from monitoring_dashboard.settings import Settings
    from monitoring_dashboard.wsgi import server_for

    environ = {"REDIS_URL": valkey.url, "REDIS_OUTPUT_KEY": "resource-monitor"}
    server = server_for(Settings.from_env(environ))
    assert server.test_client().get("/healthz").status_code == 200


@pytest.mark.slow
def test_wsgi_server_runs_under_gunicorn(valkey, tmp_path):
    def gunicorn(bind: str) -> list[str]:
        wsgi = "monitoring_dashboard.wsgi:server"
        return [sys.executable, "-m", "gunicorn", wsgi, "--bind", bind, "--no-control-socket"]

    env = clean_environ(REDIS_URL=valkey.url, REDIS_OUTPUT_KEY="resource-monitor")
    server = DashboardProcess(env, tmp_path / "gunicorn.log", gunicorn)
    server.start()
    try:
        assert http_get(f"{server.url}/healthz") == (200, "OK")
        assert http_get(f"{server.url}/about")[0] == 200
    finally:
        assert server.stop() == 0
