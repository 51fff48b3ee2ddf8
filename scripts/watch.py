"""Print the runtime's output (and errors) each time they change: `make run`'s watch command."""

from __future__ import annotations

import argparse
import contextlib
import json
import time

import redis


def main() -> None:
    parser = argparse.ArgumentParser(description="Follow an output key in Redis.")
    parser.add_argument("--url", default="redis://127.0.0.1:16379/0")
    parser.add_argument("--key", default="resource-monitor")
    args = parser.parse_args()
    client = redis.Redis.from_url(args.url, decode_responses=True)
    last: dict[str, object] = {}
    while True:
        for key in (args.key, f"{args.key}:error"):
            value = client.get(key)
            if value is not None and value != last.get(key):
                print(key, json.dumps(json.loads(value), indent=2), flush=True)
            last[key] = value
        time.sleep(0.5)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
