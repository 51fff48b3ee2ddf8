"""The Functions page at 500 registered functions: one page of 25 read, filtered, and scraped."""

from __future__ import annotations

import threading
from typing import Any

import fakeredis
import pytest
import redis
from monitoring_dashboard.app import create_app
from monitoring_dashboard.ops import Scrape
from monitoring_dashboard.pages.functions.view import build_list
from monitoring_dashboard.redis_reads import RedisReader
from monitoring_dashboard.scraper import MetricsScraper
from monitoring_dashboard.settings import Settings
from monitoring_dashboard.snapshots import PAGE_SIZE
from serverless_runtime.registry import DEFAULT_FUNCTIONS_KEY, MAX_RECORD_BYTES, FunctionRecord

from tests.dashboard.pages.functions.test_functions_callbacks import post_refresh
from tests.dashboard.test_app import texts

FUNCTIONS = 500
CONFIGURED = "fn-000"
SETTINGS = Settings(output_key=CONFIGURED, refresh_seconds=1)


def metrics_url(index: int) -> str:
    return f"http://10.0.{index // 250}.{index % 250 + 1}:8080/metrics"


class CountingRedis(fakeredis.FakeRedis):
    """A fake Redis that records every command sent to it, pipelined or not."""

    commands: list[tuple[Any, ...]]

    def registry_reads(self) -> list[tuple[Any, ...]]:
        """The commands that read the registry's records or names."""
        reads = ("HGETALL", "HGET", "HMGET", "HKEYS", "HVALS", "HSCAN")
        return [command for command in self.commands if str(command[0]).upper() in reads]


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> CountingRedis:
    fake = CountingRedis(decode_responses=True)
    for index in range(FUNCTIONS):
        record = FunctionRecord(f"fn-{index:03d}", "metrics", metrics=metrics_url(index))
        fake.hset(DEFAULT_FUNCTIONS_KEY, record.output, record.to_json())
    fake.commands = []
    queue = redis.client.Pipeline.pipeline_execute_command
    send = redis.Redis.execute_command

    def queued(pipe: Any, *args: Any, **options: Any) -> Any:
        fake.commands.append(args)
        return queue(pipe, *args, **options)

    def sent(client: Any, *args: Any, **options: Any) -> Any:
        fake.commands.append(args)
        return send(client, *args, **options)

    monkeypatch.setattr(redis.client.Pipeline, "pipeline_execute_command", queued)
    monkeypatch.setattr(redis.Redis, "execute_command", sent)
    return fake


def reader(client: CountingRedis, configured: str = CONFIGURED) -> RedisReader:
    settings = Settings(output_key=configured)
    return RedisReader(client, settings.keys, 3_600_000, DEFAULT_FUNCTIONS_KEY)


def outputs(listing: Any) -> list[str]:
    return [summary.record.output for summary in listing.functions]


def test_a_page_reads_and_lists_25_of_500_records(client: CountingRedis) -> None:
    listing = reader(client).list_functions()
    assert outputs(listing) == [f"fn-{index:03d}" for index in range(PAGE_SIZE)]
    assert (listing.total, listing.matched, listing.page, listing.pages) == (500, 500, 1, 20)
    # The names, then one page of records: never the whole registry's records.
    assert client.registry_reads() == [
        ("HKEYS", DEFAULT_FUNCTIONS_KEY),
        ("HMGET", DEFAULT_FUNCTIONS_KEY, *outputs(listing)),
    ]
    assert listing.problems == []
    view = build_list(listing, None, "redis")
    assert len(view.rows) == PAGE_SIZE
    assert view.count == "Functions 1-25 of 500"


def test_pages_follow_the_sorted_names_and_stay_within_the_list(client: CountingRedis) -> None:
    third = reader(client).list_functions(page=3)
    assert outputs(third) == [f"fn-{index:03d}" for index in range(50, 75)]
    assert build_list(third, None, "redis").count == "Functions 51-75 of 500"
    last = reader(client).list_functions(page=99)
    assert last.page == 20
    assert outputs(last) == [f"fn-{index:03d}" for index in range(475, 500)]
    assert reader(client).list_functions(page=0).page == 1


def test_the_filter_keeps_output_keys_containing_its_text_in_any_case(
    client: CountingRedis,
) -> None:
    listing = reader(client).list_functions(query="FN-12")
    assert outputs(listing) == [f"fn-{index:03d}" for index in range(120, 130)]
    assert (listing.total, listing.matched, listing.pages) == (500, 10, 1)
    view = build_list(listing, None, "redis")
    assert view.count == "Functions 1-10 of 10 whose output key contains “FN-12” (500 registered)"
    nothing = build_list(reader(client).list_functions(query="cpu"), None, "redis")
    assert nothing.rows == []
    assert nothing.placeholder == "No function's output key contains “cpu”."


def test_the_configured_function_heads_the_first_page_when_not_registered(
    client: CountingRedis,
) -> None:
    first = reader(client, "resource-monitor").list_functions()
    assert outputs(first)[:2] == ["resource-monitor", "fn-000"]
    assert len(first.functions) == PAGE_SIZE + 1 and first.total == 500
    assert "resource-monitor" not in outputs(
        reader(client, "resource-monitor").list_functions(page=2)
    )
    assert outputs(reader(client, "resource-monitor").list_functions(query="fn-499")) == ["fn-499"]


def test_a_record_over_the_size_bound_on_the_page_is_named_and_skipped(
    client: CountingRedis,
) -> None:
    client.hset(DEFAULT_FUNCTIONS_KEY, "fn-003", "x" * (MAX_RECORD_BYTES + 1))
    listing = reader(client).list_functions()
    assert "fn-003" not in outputs(listing) and len(listing.functions) == PAGE_SIZE - 1
    assert listing.problems == [
        f"Field 'fn-003' of {DEFAULT_FUNCTIONS_KEY} does not hold a function record; "
        "it is not listed."
    ]


class RecordingFetcher:
    """Records every /metrics fetch the scraper starts; each one fails at once."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, url: str) -> Scrape:
        with self._lock:
            self.urls.append(url)
        raise OSError("not reached in this test")


def refresh(app: Any, query: str | None, page: int | None) -> dict[str, Any]:
    """The page's refresh callback, with the filter and page given."""
    return post_refresh(app, {"functions-filter": query, "functions-page": page})


def test_a_refresh_scrapes_only_the_shown_functions_metrics(client: CountingRedis) -> None:
    fetcher = RecordingFetcher()
    scraper = MetricsScraper(fetcher, wait_seconds=5.0)
    app = create_app(SETTINGS, reader(client), scraper)
    second = refresh(app, None, 2)
    listed = texts(second["functions-list"]["children"])
    assert "Functions 26-50 of 500" in listed
    assert "fn-025" in listed and "fn-049" in listed and "fn-050" not in listed
    assert sorted(fetcher.urls) == sorted(metrics_url(index) for index in range(25, 50))
    fetcher.urls.clear()
    filtered = refresh(app, " fn-49", 1)
    assert "of 10 whose output key contains “fn-49”" in texts(
        filtered["functions-list"]["children"]
    )
    assert sorted(fetcher.urls) == sorted(metrics_url(index) for index in range(490, 500))
