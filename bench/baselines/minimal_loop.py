"""The floor for cold start and memory: `import redis`, GET, call, SET, sleep, repeat.

What a course-style runtime needs at the least, started the same way as the runtime (its own
Python process). Settings come from the environment; SIGTERM ends it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from types import SimpleNamespace

import redis


def main() -> None:
    """Poll the input key and write the handler's result, forever."""
    client = redis.Redis(
        host=os.environ.get("REDIS_HOST", "localhost"),
        port=int(os.environ.get("REDIS_PORT", "6379")),
    )
    input_key = os.environ.get("REDIS_INPUT_KEY", "metrics")
    output_key = os.environ["REDIS_OUTPUT_KEY"]
    interval = float(os.environ.get("INTERVAL", "5"))
    spec = importlib.util.spec_from_file_location("usermodule", os.environ["FUNCTION_PATH"])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    context = SimpleNamespace(env={})
    while True:
        raw = client.get(input_key)
        if raw is not None:
            result = module.handler(json.loads(raw), context)
            if result:
                client.set(output_key, json.dumps(result))
        time.sleep(interval)


if __name__ == "__main__":
    main()
