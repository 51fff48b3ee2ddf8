"""Remembers every input it saw in context.env: shows an input lost or processed twice."""

import os
from typing import Any


def handler(input: dict[str, Any], context: Any) -> dict[str, Any]:
    """Append the input's number to `seen`; the output says who processed it and what it saw."""
    seen = context.env.setdefault("seen", [])
    seen.append(input.get("n"))
    return {"n": input.get("n"), "pid": os.getpid(), "seen": seen}
