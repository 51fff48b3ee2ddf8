"""Fixtures every suite may use: a real Valkey per session and a clean database per test."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.valkey import ValkeyProcess

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "tests" / "fixtures"
FUNCTION_FILE = REPO_ROOT / "apps" / "functions" / "resource-monitor" / "usermodule.py"


@pytest.fixture(autouse=True)
def _restore_import_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading a function adds its folder to sys.path: no test leaves one behind for the next."""
    monkeypatch.setattr(sys, "path", list(sys.path))


@pytest.fixture(scope="session")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyProcess]:
    """One real Valkey server for the whole session."""
    server = ValkeyProcess(tmp_path_factory.mktemp("valkey"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_client(valkey: ValkeyProcess) -> Iterator[redis.Redis]:
    """A client on a freshly flushed database."""
    client = valkey.client()
    client.flushall()
    client.config_set("notify-keyspace-events", "")
    yield client
    client.close()


@pytest.fixture
def own_valkey(tmp_path: Path) -> Iterator[ValkeyProcess]:
    """A Valkey server of the test's own, which the test may stop and restart."""
    server = ValkeyProcess(tmp_path / "valkey")
    server.start()
    yield server
    server.stop()
