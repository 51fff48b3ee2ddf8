"""The floor for stream mode: a bare redis-py XREADGROUP / call / write + XACK loop.

Started as its own process, like the runtime: it reads one entry at a time (as the runtime
does), calls the handler, and sends SET output + XADD history + XACK in one pipelined round
trip. Settings come from the environment; SIGTERM ends it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sys
from types import FrameType, SimpleNamespace
from typing import Any

import redis

GROUP = "serverless-runtime"


def main() -> int:
    """Consume the stream until SIGTERM."""
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    client = redis.Redis(port=int(os.environ["REDIS_PORT"]))
    stream = os.environ["REDIS_INPUT_KEY"]
    output_key = os.environ["REDIS_OUTPUT_KEY"]
    consumer = os.environ["STREAM_CONSUMER"]
    handler = _handler(os.environ["FUNCTION_PATH"])
    context = SimpleNamespace(env={})
    try:
        client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
    while not stopping:
        reply: Any = client.xreadgroup(GROUP, consumer, {stream: ">"}, count=1, block=1000)
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                result = handler(json.loads(fields[b"data"]), context)
                output = json.dumps(result)
                pipe = client.pipeline(transaction=False)
                pipe.set(output_key, output)
                pipe.xadd(
                    f"{output_key}:history", {"output": output}, maxlen=1000, approximate=True
                )
                pipe.xack(stream, GROUP, entry_id)
                pipe.execute()
    return 0


def _handler(path: str) -> Any:
    spec = importlib.util.spec_from_file_location("usermodule", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler


if __name__ == "__main__":
    sys.exit(main())
