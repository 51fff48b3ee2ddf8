"""The trivial handler: the least work a function can do, so the runtime's own cost shows."""

from typing import Any


def handler(input: dict[str, Any], context: Any) -> dict[str, Any]:
    """Echo the input's sequence number and timestamp."""
    return {"n": input.get("n"), "timestamp": input.get("timestamp")}
