"""What the Functions page writes for a record whose metrics cannot or need not be read."""

from __future__ import annotations

from monitoring_dashboard.ops_view import ops_text
from monitoring_dashboard.scraper import Scraped
from serverless_runtime.registry import FunctionRecord


def test_ops_view_a_url_that_is_not_a_metrics_url_is_never_read() -> None:
    for url in ("file:///etc/passwd", "http://10.0.0.1:8080/admin", "gopher://x/metrics"):
        text = ops_text(FunctionRecord("f", "in", metrics=url), None, 900)
        assert text.rate == "—" and "not read" in text.note


def test_ops_view_before_the_first_scrape_answers() -> None:
    record = FunctionRecord("f", "in", metrics="http://10.0.0.1:8080/metrics")
    assert ops_text(record, None, 900).note == "reading /metrics…"
    assert ops_text(record, Scraped(), 900).note == "reading /metrics…"
