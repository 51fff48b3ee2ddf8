"""The operations figures: the runtime's own /metrics text read back, rates and quantiles, and
what the Functions page writes for a record whose metrics cannot or need not be read."""

from __future__ import annotations

import math

import pytest
from monitoring_dashboard.ops import Sample, Scrape, compute, ops_text, parse, quantile, scrapable
from monitoring_dashboard.scraper import Scraped
from prometheus_client import CollectorRegistry, generate_latest
from serverless_runtime.ops.probes import TelemetryCollector
from serverless_runtime.ops.telemetry import Telemetry
from serverless_runtime.registry import FunctionRecord


def exposition(telemetry: Telemetry) -> str:
    """What the runtime's /metrics answers for this telemetry (its own collector)."""
    registry = CollectorRegistry()
    registry.register(TelemetryCollector(telemetry))
    return generate_latest(registry).decode()


def test_ops_parse_reads_the_runtimes_own_exposition() -> None:
    telemetry = Telemetry(stale_after=10)
    for _ in range(3):
        telemetry.invoked("success", 0.003, 1.5)
    telemetry.invoked("handler-error", 0.2, None)
    telemetry.reloaded(ok=True)
    telemetry.reloaded(ok=False, kind="syntax-error")
    telemetry.function_loaded = True
    scrape = parse(exposition(telemetry))
    assert scrape.outcomes == {"success": 3, "handler-error": 1}
    assert scrape.calls == 4
    assert scrape.reloads == {"success": 1, "failure": 1}
    assert (scrape.leader, scrape.loaded, scrape.input_age) == (True, True, 1.5)
    assert scrape.buckets[-1] == (math.inf, 4.0)
    assert (0.005, 3.0) in scrape.buckets


def test_ops_parse_ignores_what_is_not_the_runtimes() -> None:
    text = (
        "# HELP x y\nprocess_cpu_seconds_total 5\nserverless_runtime_leader nope\n"
        'serverless_runtime_invocations_total{outcome="success"} 7 1700000000\n'
        'serverless_runtime_invocation_duration_seconds_bucket{le="NaN"} 1\n'
        'serverless_runtime_leader{x="1"} 1\ngarbage line\n'
    )
    scrape = parse(text)
    assert scrape.outcomes == {"success": 7}
    assert scrape.buckets == [] and scrape.leader is None


def test_ops_quantile_interpolates_inside_a_bucket_as_promql() -> None:
    buckets = [(0.1, 0.0), (0.2, 10.0), (0.4, 20.0), (math.inf, 20.0)]
    assert quantile(0.5, buckets) == pytest.approx(0.2)
    assert quantile(0.75, buckets) == pytest.approx(0.3)
    assert quantile(0.5, [(0.1, 0.0), (math.inf, 0.0)]) is None
    # Everything beyond the largest finite bound: that bound.
    assert quantile(0.95, [(0.1, 0.0), (10.0, 0.0), (math.inf, 5.0)]) == 10.0


def scrape(success: float, failed: float, fast: float, slow: float, **gauges) -> Scrape:
    total = success + failed
    buckets = [(0.01, fast), (1.0, fast + slow), (math.inf, total)]
    outcomes = {"success": success, "handler-error": failed}
    return Scrape(outcomes=outcomes, buckets=buckets, **gauges)


def test_ops_compute_over_the_window_between_scrapes() -> None:
    samples = [
        Sample(1000.0, scrape(100, 0, 100, 0)),
        Sample(1600.0, scrape(160, 0, 160, 0)),
        Sample(1900.0, scrape(190, 10, 160, 40, leader=True, input_age=0.25)),
    ]
    # The last 5 min: from the scrape at 1600 s.
    ops = compute(samples, 300, started_at=900.0)
    assert ops is not None
    assert ops.span == 300
    assert ops.rate == pytest.approx(40 / 300)
    assert ops.error_ratio == pytest.approx(10 / 40)
    # 40 calls: none at <= 10 ms, 40 at <= 1 s; the median is the middle of that bucket.
    assert ops.p50 == pytest.approx(0.01 + 0.99 * 0.5)
    assert ops.leader is True and ops.input_age == 0.25
    # The last 15 min reach back to the first scrape.
    wide = compute(samples, 900, started_at=900.0)
    assert wide is not None and wide.span == 900 and wide.rate == pytest.approx(100 / 900)


def test_ops_compute_with_one_scrape_counts_from_the_replicas_start() -> None:
    ops = compute([Sample(1060.0, scrape(6, 0, 6, 0))], 900, started_at=1000.0)
    assert ops is not None
    assert (ops.span, ops.rate, ops.error_ratio) == (60.0, 0.1, 0.0)
    # Without its start, one scrape has no rate, but its gauges and totals are shown.
    alone = compute([Sample(1060.0, scrape(6, 0, 6, 0, leader=False))], 900, started_at=None)
    assert alone is not None and alone.rate is None and alone.leader is False
    assert compute([], 900, None) is None


def test_ops_compute_without_calls_has_no_error_ratio_or_quantiles() -> None:
    samples = [Sample(0.0, scrape(5, 0, 5, 0)), Sample(60.0, scrape(5, 0, 5, 0))]
    ops = compute(samples, 900, None)
    assert ops is not None
    assert (ops.rate, ops.error_ratio, ops.p50, ops.p95) == (0.0, None, None, None)


def test_ops_view_a_url_that_is_not_a_metrics_url_is_never_read() -> None:
    for url in ("file:///etc/passwd", "http://10.0.0.1:8080/admin", "gopher://x/metrics"):
        text = ops_text(FunctionRecord("f", "in", metrics=url), None, 900)
        assert text.rate == "—" and "not read" in text.note


def test_ops_view_before_the_first_scrape_answers() -> None:
    record = FunctionRecord("f", "in", metrics="http://10.0.0.1:8080/metrics")
    assert ops_text(record, None, 900).note == "reading /metrics…"
    assert ops_text(record, Scraped(), 900).note == "reading /metrics…"


def test_only_metrics_urls_are_scrapable() -> None:
    assert scrapable("http://10.0.0.7:8080/metrics") and scrapable("http://[fd00::7]:8080/metrics")
    assert not scrapable("http://10.0.0.7:8080/admin")
    assert not scrapable("gopher://10.0.0.7/metrics")
    assert not scrapable("")
