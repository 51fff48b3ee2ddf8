"""The floor for notify latency: SUBSCRIBE to the input's keyspace channel, GET, call, SET.

What a loop woken by keyspace notifications needs at the least, started as its own process like
the runtime. It handles the input once at start (it may have been written before the
subscription), then once per notification. Settings come from the environment; SIGTERM ends it.
"""

from __future__ import annotations

import importlib.util
import json
import os
from types import SimpleNamespace

import redis


def main() -> None:
    """Handle the input key at start and on every change of it, forever."""
    client = redis.Redis(port=int(os.environ["REDIS_PORT"]))
    input_key = os.environ["REDIS_INPUT_KEY"]
    output_key = os.environ["REDIS_OUTPUT_KEY"]
    spec = importlib.util.spec_from_file_location("usermodule", os.environ["FUNCTION_PATH"])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    context = SimpleNamespace(env={})
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(f"__keyspace@0__:{input_key}")

    def handle() -> None:
        raw = client.get(input_key)
        if raw is not None:
            result = module.handler(json.loads(raw), context)
            if result:
                client.set(output_key, json.dumps(result))

    handle()
    for message in pubsub.listen():
        if message["type"] == "message" and message["data"] == b"set":
            handle()


if __name__ == "__main__":
    main()
