"""The runtime's operations endpoints over real HTTP: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families
from redis.backoff import NoBackoff
from redis.retry import Retry
from serverless_runtime.ops import probes
from serverless_runtime.ops.probes import ProbeServer
from serverless_runtime.ops.telemetry import Telemetry

from tests.support.valkey import ValkeyProcess

REPO_ROOT = Path(__file__).resolve().parents[3]

Start = Callable[..., ProbeServer]


class Response:
    """What an HTTP client saw: status, content type and body text."""

    def __init__(self, status: int, content_type: str, body: str) -> None:
        self.status = status
        self.content_type = content_type
        self.body = body


def get(server: ProbeServer, path: str, accept: str | None = None) -> Response:
    """GET http://127.0.0.1:<port><path>, returning error statuses instead of raising."""
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}{path}")
    if accept is not None:
        request.add_header("Accept", accept)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return Response(resp.status, resp.headers["Content-Type"], resp.read().decode())
    except urllib.error.HTTPError as exc:
        with exc:
            return Response(exc.code, exc.headers["Content-Type"], exc.read().decode())


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a text exposition, keyed by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def always_up() -> bool:
    return True


@pytest.fixture
def start() -> Iterator[Start]:
    """Start probe servers on 127.0.0.1 with an ephemeral port; all are closed afterwards."""
    started: list[ProbeServer] = []

    def _start(telemetry: Telemetry, ping: Callable[[], bool] = always_up) -> ProbeServer:
        server = probes.start("127.0.0.1", 0, telemetry, ping)
        started.append(server)
        return server

    yield _start
    for server in started:
        server.close()


@pytest.fixture
def telemetry() -> Telemetry:
    """A loop that has just beaten, with its function loaded and Redis reachable."""
    return Telemetry(stale_after=30.0, function_loaded=True, redis_ok=True)


# /metrics


def test_metrics_counts_invocations_by_outcome(start: Start, telemetry: Telemetry) -> None:
    for _ in range(3):
        telemetry.invoked("success", 0.003, 1.5)
    telemetry.invoked("handler-error", 0.2, 2.0)
    server = start(telemetry)

    resp = get(server, "/metrics")

    assert resp.status == 200
    assert resp.content_type.startswith("text/plain")
    values = samples(resp.body)
    assert values[("serverless_runtime_invocations_total", (("outcome", "success"),))] == 3
    assert values[("serverless_runtime_invocations_total", (("outcome", "handler-error"),))] == 1


def test_metrics_duration_histogram_is_cumulative(start: Start, telemetry: Telemetry) -> None:
    for _ in range(3):
        telemetry.invoked("success", 0.003, None)
    telemetry.invoked("handler-error", 0.2, None)
    server = start(telemetry)

    values = samples(get(server, "/metrics").body)

    def bucket(le: str) -> float:
        key = ("serverless_runtime_invocation_duration_seconds_bucket", (("le", le),))
        return values[key]

    assert values[("serverless_runtime_invocation_duration_seconds_count", ())] == 4
    assert values[("serverless_runtime_invocation_duration_seconds_sum", ())] == pytest.approx(
        3 * 0.003 + 0.2
    )
    assert bucket("0.0025") == 0
    assert bucket("0.005") == 3
    assert bucket("0.1") == 3
    assert bucket("0.25") == 4
    assert bucket("10.0") == 4
    assert bucket("+Inf") == 4


def test_metrics_call_slower_than_last_bucket_counts_only_in_inf(
    start: Start, telemetry: Telemetry
) -> None:
    telemetry.invoked("timeout", 30.0, None)
    server = start(telemetry)

    values = samples(get(server, "/metrics").body)

    bucket = "serverless_runtime_invocation_duration_seconds_bucket"
    assert values[(bucket, (("le", "10.0"),))] == 0
    assert values[(bucket, (("le", "+Inf"),))] == 1


def test_metrics_gauges_follow_telemetry(start: Start, telemetry: Telemetry) -> None:
    before = time.time()
    telemetry.invoked("success", 0.01, 2.5)
    after = time.time()
    telemetry.reloaded(True)
    telemetry.reloaded(False, "syntax-error")
    telemetry.reloaded(False, "dependency-missing")
    telemetry.leader = False
    telemetry.state_bytes = 321
    telemetry.redis_ok = False
    server = start(telemetry)

    values = samples(get(server, "/metrics").body)

    assert values[("serverless_runtime_input_age_seconds", ())] == 2.5
    assert before <= values[("serverless_runtime_last_success_timestamp_seconds", ())] <= after
    assert values[("serverless_runtime_leader", ())] == 0
    assert values[("serverless_runtime_reloads_total", (("result", "success"),))] == 1
    assert values[("serverless_runtime_reloads_total", (("result", "failure"),))] == 2
    # Which fault made each load fail, one series per kind.
    for kind in ("syntax-error", "dependency-missing"):
        assert values[("serverless_runtime_load_failures_total", (("kind", kind),))] == 1
    assert values[("serverless_runtime_state_bytes", ())] == 321
    assert values[("serverless_runtime_redis_up", ())] == 0
    assert values[("serverless_runtime_function_loaded", ())] == 1


def test_metrics_read_at_scrape_time(start: Start, telemetry: Telemetry) -> None:
    server = start(telemetry)
    key = ("serverless_runtime_invocations_total", (("outcome", "success"),))
    assert samples(get(server, "/metrics").body)[key] == 0

    telemetry.invoked("success", 0.001, None)
    telemetry.leader = False

    values = samples(get(server, "/metrics").body)
    assert values[key] == 1
    assert values[("serverless_runtime_leader", ())] == 0


def test_metrics_before_first_call_has_zero_series_and_no_ages(
    start: Start, telemetry: Telemetry
) -> None:
    server = start(telemetry)

    values = samples(get(server, "/metrics").body)

    # Series exist from the first scrape, so rate() and alerts see them start at zero.
    assert values[("serverless_runtime_invocations_total", (("outcome", "success"),))] == 0
    assert values[("serverless_runtime_reloads_total", (("result", "failure"),))] == 0
    assert values[("serverless_runtime_invocation_duration_seconds_count", ())] == 0
    # No call yet: no made-up input age or success time.
    names = {name for name, _ in values}
    assert "serverless_runtime_input_age_seconds" not in names
    assert "serverless_runtime_last_success_timestamp_seconds" not in names


def test_metrics_hold_only_the_runtime_series(start: Start, telemetry: Telemetry) -> None:
    server = start(telemetry)

    families = {f.name for f in text_string_to_metric_families(get(server, "/metrics").body)}

    # A registry of its own: no process_/python_gc_ series from the global default registry.
    assert families == {
        "serverless_runtime_invocations",
        "serverless_runtime_invocation_duration_seconds",
        "serverless_runtime_input_age_seconds",
        "serverless_runtime_last_success_timestamp_seconds",
        "serverless_runtime_leader",
        "serverless_runtime_reloads",
        "serverless_runtime_load_failures",
        "serverless_runtime_state_bytes",
        "serverless_runtime_redis_up",
        "serverless_runtime_function_loaded",
    }


def test_metrics_speaks_openmetrics_when_asked(start: Start, telemetry: Telemetry) -> None:
    telemetry.invoked("success", 0.003, None)
    server = start(telemetry)

    resp = get(server, "/metrics", accept="application/openmetrics-text; version=1.0.0")

    assert resp.status == 200
    assert resp.content_type.startswith("application/openmetrics-text")
    families = {f.name: f for f in openmetrics_families(resp.body)}
    invocations = families["serverless_runtime_invocations"]
    assert [(s.labels, s.value) for s in invocations.samples if s.name.endswith("_total")] == [
        ({"outcome": "success"}, 1)
    ]


def test_metrics_two_servers_keep_their_own_figures(start: Start) -> None:
    first, second = Telemetry(stale_after=30.0), Telemetry(stale_after=30.0)
    first.invoked("success", 0.001, None)
    server_a, server_b = start(first), start(second)

    key = ("serverless_runtime_invocations_total", (("outcome", "success"),))
    assert samples(get(server_a, "/metrics").body)[key] == 1
    assert samples(get(server_b, "/metrics").body)[key] == 0


# /healthz


def test_healthz_fresh_heartbeat_is_ok(start: Start, telemetry: Telemetry) -> None:
    resp = get(start(telemetry), "/healthz")

    assert (resp.status, resp.body) == (200, "ok\n")


def test_healthz_stale_heartbeat_is_503_with_its_age(start: Start, telemetry: Telemetry) -> None:
    server = start(telemetry)
    telemetry.heartbeat_at = time.monotonic() - 100

    resp = get(server, "/healthz")

    assert resp.status == 503
    assert resp.body.startswith("loop heartbeat is 10")
    assert "s old" in resp.body
    assert resp.body.count("\n") == 1


def test_healthz_recovers_when_loop_beats_again(start: Start, telemetry: Telemetry) -> None:
    server = start(telemetry)
    telemetry.heartbeat_at = time.monotonic() - 100
    assert get(server, "/healthz").status == 503

    telemetry.beat()

    assert get(server, "/healthz").status == 200


def test_healthz_never_touches_redis(start: Start, telemetry: Telemetry) -> None:
    pings: list[None] = []

    def redis_down() -> bool:
        pings.append(None)
        raise redis.ConnectionError("connection refused")

    telemetry.redis_ok = False
    server = start(telemetry, redis_down)

    resp = get(server, "/healthz")

    assert resp.status == 200
    assert pings == []


# /readyz


@pytest.fixture
def valkey_ping(own_valkey: ValkeyProcess) -> Iterator[Callable[[], bool]]:
    """PING the test's own Valkey with short timeouts and no retries, as the runtime would."""
    client = redis.Redis(
        port=own_valkey.port,
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        retry=Retry(NoBackoff(), 0),
    )
    yield lambda: bool(client.ping())
    client.close()


def test_readyz_follows_redis_through_an_outage(
    start: Start,
    telemetry: Telemetry,
    own_valkey: ValkeyProcess,
    valkey_ping: Callable[[], bool],
) -> None:
    server = start(telemetry, valkey_ping)
    assert (get(server, "/readyz").status, get(server, "/readyz").body) == (200, "ok\n")

    own_valkey.stop()
    down = get(server, "/readyz")
    assert down.status == 503
    assert "redis unreachable" in down.body
    # Liveness is not affected by the outage.
    assert get(server, "/healthz").status == 200

    own_valkey.start()
    assert get(server, "/readyz").status == 200


def test_readyz_function_not_loaded_is_503(
    start: Start, telemetry: Telemetry, valkey_ping: Callable[[], bool]
) -> None:
    telemetry.function_loaded = False
    server = start(telemetry, valkey_ping)

    resp = get(server, "/readyz")

    assert resp.status == 503
    assert "function not loaded" in resp.body
    assert "redis" not in resp.body


def test_readyz_names_everything_missing(start: Start) -> None:
    def refused() -> bool:
        raise redis.ConnectionError("Connection refused")

    server = start(Telemetry(stale_after=30.0, function_loaded=False), refused)

    resp = get(server, "/readyz")

    assert resp.status == 503
    assert "redis unreachable (ConnectionError: Connection refused)" in resp.body
    assert "function not loaded" in resp.body


def test_readyz_says_the_newest_version_failed_while_the_previous_one_runs(
    start: Start, telemetry: Telemetry
) -> None:
    telemetry.load_failure = (
        "version from 2030-03-17 17:46:40 UTC failed to load: syntax error in /f.py at line 3; "
        "running the previous version"
    )
    resp = get(start(telemetry, lambda: True), "/readyz")

    # Still ready (a version runs), but a broken deploy does not look healthy.
    assert resp.status == 200
    assert resp.body == f"ok; {telemetry.load_failure}\n"

    telemetry.function_loaded = False
    telemetry.load_failure = "version from 2030-03-17 17:46:40 UTC failed to load: no handler"
    resp = get(start(telemetry, lambda: True), "/readyz")
    assert resp.status == 503
    assert "function not loaded (version from 2030-03-17 17:46:40 UTC failed" in resp.body


def test_readyz_ping_false_is_503(start: Start, telemetry: Telemetry) -> None:
    resp = get(start(telemetry, lambda: False), "/readyz")

    assert resp.status == 503
    assert "redis did not answer PING" in resp.body


# Serving


def test_unknown_path_is_404(start: Start, telemetry: Telemetry) -> None:
    server = start(telemetry)

    assert get(server, "/").status == 404
    assert get(server, "/healthz/extra").status == 404


def test_requests_write_no_log_lines(
    start: Start,
    telemetry: Telemetry,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    server = start(telemetry)
    caplog.clear()
    capfd.readouterr()

    with caplog.at_level(logging.INFO):
        for path in ("/healthz", "/readyz", "/metrics", "/missing"):
            get(server, path)

    assert caplog.records == []
    assert capfd.readouterr().err == ""


def test_close_frees_the_port(telemetry: Telemetry) -> None:
    server = probes.start("127.0.0.1", 0, telemetry, always_up)
    port = server.port
    assert get(server, "/healthz").status == 200

    server.close()

    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)


def test_import_does_not_load_prometheus_client() -> None:
    code = "import serverless_runtime.ops.probes, sys; print('prometheus_client' in sys.modules)"

    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )

    assert result.stdout.strip() == "False"
