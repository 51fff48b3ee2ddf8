"""Read a runtime's committed state from Redis as an operator would: snapshot + journal replay."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import redis


def committed_env(
    client: redis.Redis, state_key: str, handler: Callable[[Any, Any], Any]
) -> dict[str, Any]:
    """`context.env` as the commits in Redis define it, rebuilt with `handler`."""
    raw = client.get(state_key)
    snapshot = json.loads(raw) if raw else {"seq": 0, "env": {}}
    context = SimpleNamespace(env=snapshot["env"] or {}, replaying=True, last_execution=None)
    journal: Any = client.xrange(f"{state_key}:journal", min=f"{snapshot['seq']}-1")
    for _id, fields in journal:
        handler(json.loads(fields["input"]), context)
    env: dict[str, Any] = context.env
    return env


def head(client: redis.Redis, state_key: str) -> int:
    """The sequence number of the last commit (0 before the first)."""
    return int(client.get(f"{state_key}:seq") or 0)
