"""The e2e helpers that do not need a cluster: settings, waiting, parsing, the page check."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import dash
import pytest
from dash import html

from tests.e2e.cluster import (
    E2ESettings,
    error_conditions,
    fetch,
    has_resource_monitor_keys,
    is_dash_page,
    parse_redis_value,
    pod_ready,
    sync_and_health,
    wait_until,
)


class FakeClock:
    """Time that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_cluster_settings_from_env_override_defaults() -> None:
    settings = E2ESettings.from_env(
        {"E2E_NAMESPACE": "ns", "E2E_OUTPUT_KEY": "out", "E2E_REQUIRED": "1", "E2E_APPLICATION": ""}
    )
    assert (settings.namespace, settings.output_key, settings.required) == ("ns", "out", True)
    assert settings.application == "serverless-dev"
    assert E2ESettings.from_env({}).required is False


def test_cluster_wait_until_returns_the_first_accepted_observation() -> None:
    clock = FakeClock()
    values: Iterator[object] = iter([None, [], {"ready": True}])
    found = wait_until(lambda: next(values), 60, "x", interval=5, clock=clock, sleep=clock.sleep)
    assert found == {"ready": True}
    assert clock.sleeps == [5, 5]


def test_cluster_wait_until_gives_up_naming_what_and_the_last_observation() -> None:
    clock = FakeClock()
    with pytest.raises(
        AssertionError, match=r"waiting for x Healthy; last: \('Synced', 'Progressing'\)"
    ):
        wait_until(
            lambda: ("Synced", "Progressing"),
            10,
            "x Healthy",
            accept=lambda state: state == ("Synced", "Healthy"),
            interval=3,
            clock=clock,
            sleep=clock.sleep,
        )
    assert clock.now >= 10


def pod(phase: str, ready: str, deleting: bool = False) -> SimpleNamespace:
    return SimpleNamespace(
        metadata=SimpleNamespace(deletion_timestamp="now" if deleting else None),
        status=SimpleNamespace(
            phase=phase, conditions=[SimpleNamespace(type="Ready", status=ready)]
        ),
    )


def test_cluster_pod_ready_needs_running_ready_and_not_deleting() -> None:
    assert pod_ready(pod("Running", "True"))
    assert not pod_ready(pod("Running", "False"))
    assert not pod_ready(pod("Pending", "True"))
    assert not pod_ready(pod("Running", "True", deleting=True))


def test_cluster_parse_redis_value() -> None:
    assert parse_redis_value('{"timestamp": "2026-11-27 23:21:03.811389"}\n') == {
        "timestamp": "2026-11-27 23:21:03.811389"
    }
    assert parse_redis_value("\n") is None
    with pytest.raises(ValueError):
        parse_redis_value("[1, 2]")


def test_cluster_resource_monitor_keys() -> None:
    output = {
        "percent-network-egress": 1.0,
        "percent-memory-caching": 2.0,
        "avg-util-cpu0-60sec": 3.0,
        "timestamp": "t",
    }
    assert has_resource_monitor_keys(output)
    assert not has_resource_monitor_keys({k: v for k, v in output.items() if k != "timestamp"})
    assert not has_resource_monitor_keys({k: v for k, v in output.items() if "cpu" not in k})


def test_cluster_application_status_and_errors() -> None:
    app = {
        "status": {
            "sync": {"status": "Synced"},
            "health": {"status": "Healthy"},
            "conditions": [
                {"type": "InvalidSpecError", "message": "namespace argocd is not permitted"},
                {"type": "SyncWarning", "message": "harmless"},
            ],
        }
    }
    assert sync_and_health(app) == ("Synced", "Healthy")
    assert sync_and_health(None) == ("", "")
    assert error_conditions(app) == ["InvalidSpecError: namespace argocd is not permitted"]


@pytest.fixture
def dash_server() -> Iterator[str]:
    """A real Dash app on 127.0.0.1, served by a plain WSGI server in a thread."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    app = dash.Dash(__name__)
    app.layout = html.Div("hello", id="root")
    server = make_server("127.0.0.1", 0, app.server, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_cluster_fetch_recognises_a_dash_page(dash_server: str) -> None:
    status, body = fetch(dash_server + "/")
    assert status == 200
    assert is_dash_page(body)


@pytest.fixture
def plain_server() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code = 200 if self.path == "/" else 503
            body = b"<html><body>not a dashboard</body></html>"
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_cluster_fetch_reports_status_and_other_pages(plain_server: str) -> None:
    status, body = fetch(plain_server + "/")
    assert status == 200 and not is_dash_page(body)
    assert fetch(plain_server + "/healthz")[0] == 503


def test_cluster_fetch_reports_a_closed_port() -> None:
    from tests.support.valkey import free_port

    status, reason = fetch(f"http://127.0.0.1:{free_port()}/", timeout=2)
    assert status == 0 and reason
