"""Ends its own process on demand (as C code, the OOM killer or `os._exit` would); counts calls."""

import ctypes
import os


def handler(input, context):
    if input.get("die") == "exit":
        os._exit(1)
    if input.get("die") == "segfault":
        ctypes.string_at(0)  # reads address 0: SIGSEGV
    context.env["calls"] = context.env.get("calls", 0) + 1
    return {"calls": context.env["calls"], "value": input.get("value")}
