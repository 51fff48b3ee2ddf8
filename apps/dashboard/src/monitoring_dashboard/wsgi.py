"""WSGI entry point for gunicorn: `gunicorn monitoring_dashboard.wsgi:server`."""

from __future__ import annotations

import os
from typing import Any

from monitoring_dashboard import time_range
from monitoring_dashboard.app import create_app
from monitoring_dashboard.connection import connect
from monitoring_dashboard.redis_reads import RedisReader
from monitoring_dashboard.scraper import MetricsScraper
from monitoring_dashboard.settings import Settings

_server: Any = None


def server_for(settings: Settings) -> Any:
    """The WSGI server for settings: one reader, on one Redis client, for every page."""
    client = connect(settings)
    reader = RedisReader(client, settings.keys, settings.history_ms, settings.functions_key)
    # Samples for the longest range the pages offer, and a scrape interval more.
    keep = min(settings.history_minutes, max(m for m, _ in time_range.CHOICES)) * 60 + 60
    return create_app(settings, reader, MetricsScraper(keep=keep)).server


def __getattr__(name: str) -> Any:
    # `server` is built on first access (PEP 562), so importing this module reads no
    # environment and opens no connection; gunicorn's `wsgi:server` still finds it.
    global _server
    if name != "server":
        raise AttributeError(name)
    if _server is None:
        _server = server_for(Settings.from_env(os.environ))
    return _server
