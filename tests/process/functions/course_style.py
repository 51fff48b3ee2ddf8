"""A function written for the course runtime: datetime objects in env, hasattr checks, print."""

import datetime


def handler(input, context):
    if not hasattr(context, "env"):
        context.env = {}
    env = context.env
    now = datetime.datetime.now()
    env.setdefault("seen", []).append((input.get("timestamp"), now))
    print("course-style handler called", len(env["seen"]), "times")
    last = context.last_execution.isoformat() if context.last_execution else None
    return {
        "calls": len(env["seen"]),
        "input_key": context.input_key,
        "output_key": context.output_key,
        "host": context.host,
        "port": context.port,
        "function_getmtime": context.function_getmtime,
        "last_execution": last,
        "timestamp": input.get("timestamp"),
    }
