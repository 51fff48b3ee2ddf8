"""Operations HTTP: /healthz (loop alive), /readyz (Redis and function), /metrics (Prometheus)."""

from __future__ import annotations

import logging
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import accumulate
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import redis

from serverless_runtime.ops.telemetry import DURATION_BUCKETS, Telemetry

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import CollectorRegistry

log = logging.getLogger(__name__)

PREFIX = "serverless_runtime_"
# Outcomes and reload results always exported, so rate() sees a series from the first scrape.
_ALWAYS = {"outcomes": ("success",), "reloads": ("success", "failure")}


def healthz(telemetry: Telemetry) -> tuple[int, str]:
    """Liveness from the loop's heartbeat alone; never touches Redis."""
    age = telemetry.heartbeat_age()
    if age <= telemetry.stale_after:
        return HTTPStatus.OK, "ok"
    stale = f"loop heartbeat is {age:.1f} s old (stale after {telemetry.stale_after:g} s)"
    return HTTPStatus.SERVICE_UNAVAILABLE, stale


def readyz(telemetry: Telemetry, ping: Callable[[], bool]) -> tuple[int, str]:
    """Readiness: Redis answers a PING and the function is loaded; else names what is missing."""
    missing: list[str] = []
    try:
        if not ping():
            missing.append("redis did not answer PING")
    except (redis.RedisError, OSError) as exc:
        missing.append(f"redis unreachable ({type(exc).__name__}: {exc})")
    failure = telemetry.load_failure
    if not telemetry.function_loaded:
        missing.append("function not loaded" + ("" if failure is None else f" ({failure})"))
    if telemetry.recovering:
        missing.append("rebuilding the state (replaying the journal)")
    if telemetry.state_problem is not None:
        missing.append(f"state not rebuilt: {telemetry.state_problem}")
    if missing:
        return HTTPStatus.SERVICE_UNAVAILABLE, "not ready: " + "; ".join(missing)
    # A poison input is skipped, and a version that failed to load leaves the previous one
    # running: neither is a reason to stop a rollout; ready, and said.
    said = ["ok"]
    if failure is not None:
        said.append(failure)
    if telemetry.poison is not None:
        said.append(f"poison: {telemetry.poison}")
    return HTTPStatus.OK, "; ".join(said)


# Everything /metrics exports but the duration histogram: name, help, Telemetry field, and for
# counters the label their counts go by. A gauge left None has no sample.
COUNTERS = (
    ("invocations", "Handler invocations by outcome.", "outcomes", "outcome"),
    ("reloads", "Function reloads by result.", "reloads", "result"),
    ("load_failures", "Failed function loads by kind.", "load_failures", "kind"),
)
GAUGES = (
    (
        "input_age_seconds",
        "Age of the input (from its timestamp) when the latest call ran.",
        "input_age",
    ),
    ("last_success_timestamp_seconds", "Unix time of the latest successful call.", "last_success"),
    ("leader", "1 if this replica holds the lease and invokes.", "leader"),
    ("state_bytes", "Bytes of the last snapshot of context.env.", "state_bytes"),
    ("redis_up", "1 if the loop's last Redis operation worked.", "redis_ok"),
    ("function_loaded", "1 if a handler is loaded and callable.", "function_loaded"),
)


class TelemetryCollector:
    """A Prometheus collector that reads the Telemetry at scrape time."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        t = self.telemetry
        # One consistent snapshot: the loop's thread updates these under the same lock.
        with t.lock:
            counted = [dict(getattr(t, field)) for _, _, field, _ in COUNTERS]
            gauged = [getattr(t, field) for _, _, field in GAUGES]
            counts = list(t.duration_counts)
            duration_sum = t.duration_sum

        for (name, text, field, label), by_label in zip(COUNTERS, counted, strict=True):
            counter = CounterMetricFamily(PREFIX + name, text, labels=[label])
            for value, n in sorted((dict.fromkeys(_ALWAYS.get(field, ()), 0) | by_label).items()):
                counter.add_metric([value], n)
            yield counter
        for (name, text, _), reading in zip(GAUGES, gauged, strict=True):
            gauge = GaugeMetricFamily(PREFIX + name, text)
            if reading is not None:
                gauge.add_metric([], int(reading) if isinstance(reading, bool) else reading)
            yield gauge

        # Telemetry counts per bucket; Prometheus buckets are cumulative, the last one is +Inf.
        bounds = [str(float(b)) for b in DURATION_BUCKETS] + ["+Inf"]
        cumulative = list(zip(bounds, accumulate(counts), strict=True))
        name, text = PREFIX + "invocation_duration_seconds", "Handler call duration."
        yield HistogramMetricFamily(name, text, buckets=cumulative, sum_value=duration_sum)


class ProbeServer(ThreadingHTTPServer):
    """The operations HTTP server, serving from a daemon thread; `close()` stops it."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], telemetry: Telemetry, ping: Callable[[], bool]):
        # An IPv6 literal such as "::" needs an IPv6 socket.
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.telemetry = telemetry
        self.ping = ping
        self._registry: CollectorRegistry | None = None
        self._registry_lock = threading.Lock()
        super().__init__(address, _Handler)
        # serve_forever notices shutdown() only between polls: a short poll keeps SIGTERM prompt.
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.1}, name="probes", daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        """The port actually bound (useful when started with port 0)."""
        return int(self.server_address[1])

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join()

    @property
    def registry(self) -> CollectorRegistry:
        """Made at the first scrape, so that start-up does not pay for the Prometheus client."""
        with self._registry_lock:
            if self._registry is None:
                from prometheus_client import CollectorRegistry

                # An injected registry, never the global default: no process/GC metrics from
                # other code, and several servers (tests) can run in one process.
                registry = CollectorRegistry(auto_describe=True)
                registry.register(TelemetryCollector(self.telemetry))
                self._registry = registry
            return self._registry

    def handle_error(self, request: object, client_address: object) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            # The client went away (a probe or scrape timed out): nothing to fix here.
            log.debug("probe client %s disconnected", client_address)
        else:
            log.exception("probe request from %s failed", client_address)


class _Handler(BaseHTTPRequestHandler):
    server: ProbeServer
    # A stuck client must not hold a thread forever.
    timeout = 10

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/healthz":
            self._text(*healthz(self.server.telemetry))
        elif path == "/readyz":
            self._text(*readyz(self.server.telemetry, self.server.ping))
        elif path == "/metrics":
            self._metrics()
        else:
            self._text(HTTPStatus.NOT_FOUND, "not found: try /healthz, /readyz or /metrics")

    def _text(self, status: int, body: str) -> None:
        self._send(status, "text/plain; charset=utf-8", (body + "\n").encode())

    def _metrics(self) -> None:
        from prometheus_client.exposition import choose_encoder

        # Content negotiation as client_python's own handler: OpenMetrics when asked for.
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        self._send(HTTPStatus.OK, content_type, encoder(self.server.registry))

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep probes and scrapes out of the logs unless debugging."""
        log.debug("%s " + format, self.address_string(), *args)


def start(host: str, port: int, telemetry: Telemetry, ping: Callable[[], bool]) -> ProbeServer:
    probes = ProbeServer((host, port), telemetry, ping)
    shown = f"[{host}]" if ":" in host else host
    log.info("operations endpoints on http://%s:%d/ (healthz, readyz, metrics)", shown, probes.port)
    return probes
