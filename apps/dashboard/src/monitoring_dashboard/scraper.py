"""Scrapes of the runtimes' /metrics in the background, kept per URL: a runtime that does not
answer costs the page a little staleness, never a slow refresh."""

from __future__ import annotations

import logging
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from monitoring_dashboard.ops import Sample, Scrape, parse, scrapable

log = logging.getLogger(__name__)

TIMEOUT = 1.0
# A refresh waits at most this long for the scrapes it started (a healthy one takes a few ms).
WAIT = 0.2
# Not scraped more often than this, however many pages refresh.
MIN_INTERVAL = 2.0
# Samples kept per URL over `keep`: a 15 min window's start is then off by at most keep/120
# (30 s of an hour), about what a scrape interval costs Prometheus's rate() too.
SAMPLES = 120
MIN_SPACING = 10.0
KEEP = 6 * 3600.0
MAX_BYTES = 1 << 20
MAX_URLS = 500

# Pod addresses are reached directly, whatever HTTP(S)_PROXY the environment names.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(url: str, timeout: float = TIMEOUT) -> Scrape:
    """GET one /metrics and read the runtime's figures; raise OSError or ValueError."""
    with _OPENER.open(url, timeout=timeout) as response:
        body = response.read(MAX_BYTES + 1)
    if len(body) > MAX_BYTES:
        raise ValueError(f"more than {MAX_BYTES} bytes")
    return parse(body.decode("utf-8", "replace"))


@dataclass
class Scraped:
    """What is known of one URL: its samples (oldest first) and the last failure, if any."""

    samples: list[Sample] = field(default_factory=list)
    error: str | None = None
    running: Future[Scrape] | None = None
    started: float = 0.0
    asked: float = 0.0


class MetricsScraper:
    """Scrapes /metrics URLs on demand, in the background, and keeps their recent samples."""

    def __init__(
        self,
        fetcher: Callable[[str], Scrape] = fetch,
        clock: Callable[[], float] = time.time,
        wait_seconds: float = WAIT,
        keep: float = KEEP,
    ) -> None:
        self._fetch = fetcher
        self._keep = keep
        self._spacing = max(MIN_SPACING, keep / SAMPLES)
        self._clock = clock
        self._wait = wait_seconds
        self._known: dict[str, Scraped] = {}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def scrape(self, urls: Iterable[str]) -> dict[str, Scraped]:
        """Start due scrapes of urls, wait briefly for them, and return what each URL has."""
        wanted = [url for url in dict.fromkeys(urls) if url and scrapable(url)][:MAX_URLS]
        now = self._clock()
        waiting: list[Future[Scrape]] = []
        with self._lock:
            for url in wanted:
                known = self._known.setdefault(url, Scraped())
                known.asked = now
                if known.running is None and now - known.started >= MIN_INTERVAL:
                    known.started = now
                    known.running = self._executor().submit(self._fetch, url)
                    if known.error is None:
                        # One that failed last time is not waited for: it may time out again.
                        waiting.append(known.running)
            self._forget(now)
        if waiting:
            wait(waiting, timeout=self._wait)
        with self._lock:
            for url in wanted:
                self._harvest(url, self._known[url])
            return {
                url: Scraped(list(self._known[url].samples), self._known[url].error)
                for url in wanted
            }

    def _executor(self) -> ThreadPoolExecutor:
        # Made at the first scrape: building the app starts no thread.
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="metrics-scrape")
        return self._pool

    def _harvest(self, url: str, known: Scraped) -> None:
        running = known.running
        if running is None or not running.done():
            return
        known.running = None
        try:
            scrape = running.result()
        except (OSError, ValueError) as exc:
            if known.error is None:
                log.info("cannot scrape %s: %s", url, exc)
            known.error = f"{type(exc).__name__}: {exc}"
            return
        known.error = None
        sample = Sample(known.started, scrape)
        samples = known.samples
        if samples and scrape.calls < samples[-1].scrape.calls:
            samples.clear()  # counters went back: the replica restarted
        if len(samples) >= 2 and samples[-1].at - samples[-2].at < self._spacing:
            samples[-1] = sample  # the newest is always kept; older ones `spacing` apart
        else:
            samples.append(sample)
        while samples and samples[0].at < sample.at - self._keep:
            samples.pop(0)

    def _forget(self, now: float) -> None:
        for url in [url for url, known in self._known.items() if now - known.asked > self._keep]:
            del self._known[url]
