"""Appends every input's `n` to context.env, so that an input applied twice shows; some are slow."""

import time


def handler(input, context):
    if input.get("slow") and not context.replaying:
        time.sleep(input["slow"])  # longer than STREAM_CLAIM_IDLE
    seen = context.env.setdefault("seen", [])
    seen.append(input["n"])
    return {"n": input["n"], "count": len(seen)}
