"""In-process unit tests on fakeredis (with its Lua engine): fast and deterministic."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import fakeredis
import pytest
from serverless_runtime.config import Settings


@pytest.fixture
def client() -> Iterator[fakeredis.FakeRedis]:
    server = fakeredis.FakeServer()
    fake = fakeredis.FakeRedis(server=server)
    yield fake
    fake.close()


@pytest.fixture
def settings() -> Callable[..., Settings]:
    def make(**env: str) -> Settings:
        base: Mapping[str, str] = {"REDIS_OUTPUT_KEY": "out", "INTERVAL": "1"}
        return Settings.from_env({**base, **env})

    return make
