"""Keeps every input's `n` in context.env, to see whose state a call was applied to."""

import time
from pathlib import Path


def handler(input, context):
    # The first call on an input with `sleep_once` (a marker file's path) hangs for a minute.
    marker = Path(input.get("sleep_once") or "")
    if input.get("sleep_once") and not context.replaying and not marker.exists():
        marker.touch()
        time.sleep(60)
    seen = context.env.setdefault("seen", [])
    seen.append(input["n"])
    return {"n": input["n"], "seen": list(seen)}
