"""Counts its calls in context.env and fails on demand, to observe the runtime's choices."""


def handler(input, context):
    context.env["calls"] = context.env.get("calls", 0) + 1
    if input.get("fail") == "raise":
        raise RuntimeError("asked to fail")
    if input.get("fail") == "unserializable":
        return {"value": {1, 2, 3}}
    if input.get("fail") == "nan":
        return {"value": [1.0, float("nan")]}
    if input.get("fail") == "env-list":
        context.env = [context.env]
        return {"value": "env replaced"}
    if input.get("fail") == "empty":
        return {}
    return {"calls": context.env["calls"], "value": input.get("value")}
