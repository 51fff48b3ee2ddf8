"""Counts its replayed calls in a Redis list; fails on demand; keeps a large state so that the
journal, not the snapshot, holds the inputs."""

import redis

_client = None


def handler(input, context):
    global _client
    if context.replaying:
        if _client is None:
            _client = redis.Redis(host=context.host, port=context.port)
        _client.rpush("replays", input["n"])
    context.env.setdefault("pad", "x" * 100_000)
    seen = context.env.setdefault("seen", [])
    seen.append(input["n"])
    if input.get("fail"):
        raise RuntimeError("asked to fail")
    return {"n": input["n"], "seen": seen}
