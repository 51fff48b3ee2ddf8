"""Scrapes of the runtimes' /metrics: only /metrics URLs, kept per URL, a failure said once."""

from __future__ import annotations

import threading

from monitoring_dashboard.ops import Scrape
from monitoring_dashboard.scraper import MetricsScraper

URL = "http://10.0.0.7:8080/metrics"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_scraper_keeps_samples_per_url_spaced_and_resets_on_a_restart() -> None:
    clock = Clock()
    calls = iter([1, 2, 3, 50, 2])
    # Kept 20 min: samples at least 10 s apart.
    fetch = lambda url: Scrape({"success": next(calls)})  # noqa: E731
    scraper = MetricsScraper(fetch, clock, wait_seconds=5, keep=1200)
    assert [s.scrape.calls for s in scraper.scrape([URL])[URL].samples] == [1]
    clock.now += 20
    assert [s.scrape.calls for s in scraper.scrape([URL])[URL].samples] == [1, 2]
    clock.now += 3
    assert [s.scrape.calls for s in scraper.scrape([URL])[URL].samples] == [1, 2, 3]
    # The last was within SPACING of the one before it: the newest takes its place.
    clock.now += 20
    assert [s.scrape.calls for s in scraper.scrape([URL])[URL].samples] == [1, 2, 50]
    # Counters went back: the replica restarted, the older samples say nothing of it.
    clock.now += 20
    got = scraper.scrape([URL])[URL]
    assert [s.scrape.calls for s in got.samples] == [2] and got.error is None


def test_scraper_keeps_a_bounded_number_of_samples_over_its_window() -> None:
    clock = Clock()
    scraper = MetricsScraper(lambda url: Scrape({"success": clock.now}), clock, wait_seconds=5)
    # Six hours at one scrape every 5 s: about SAMPLES of them remain, evenly spaced.
    for _ in range(6 * 720 + 100):
        got = scraper.scrape([URL])[URL]
        clock.now += 5
    assert 100 <= len(got.samples) <= 130
    assert got.samples[-1].at - got.samples[0].at <= 6 * 3600
    assert got.samples[-1].at == clock.now - 5


def test_scraper_reports_a_failure_and_does_not_wait_for_it_again() -> None:
    clock = Clock()
    release, hanging = threading.Event(), threading.Event()
    seen: list[str] = []

    def fetch(url: str) -> Scrape:
        seen.append(url)
        if len(seen) == 1:
            raise OSError("connection refused")
        hanging.set()
        release.wait(5)
        return Scrape({"success": 1})

    scraper = MetricsScraper(fetch, clock, wait_seconds=5)
    assert scraper.scrape([URL])[URL].error == "OSError: connection refused"
    clock.now += 5
    # The next scrape hangs; it is not waited for, the page shows the failure meanwhile.
    got = scraper.scrape([URL, "file:///etc/passwd", "http://x/admin"])
    assert list(got) == [URL] and got[URL].error is not None
    assert hanging.wait(5)
    release.set()
    assert seen == [URL, URL]
