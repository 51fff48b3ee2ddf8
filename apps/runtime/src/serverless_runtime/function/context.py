"""The context object handed to handler(input, context), as the course runtime shapes it."""

from __future__ import annotations

from datetime import datetime
from typing import Any


class Context:
    """What a function may know about its invocation; `env` persists between calls."""

    def __init__(
        self,
        host: str,
        port: int,
        input_key: str,
        output_key: str,
        function_getmtime: str,
        env: dict[str, Any] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.input_key = input_key
        self.output_key = output_key
        self.function_getmtime = function_getmtime
        self.last_execution: datetime | None = None
        self.env: dict[str, Any] = {} if env is None else env
        # True while the runtime rebuilds the state by calling the handler on committed inputs
        # again (after a restart or takeover): a function may skip side effects then.
        self.replaying = False

    def __repr__(self) -> str:
        return (
            f"Context(input_key={self.input_key!r}, output_key={self.output_key!r}, "
            f"function_getmtime={self.function_getmtime!r}, last_execution={self.last_execution!r})"
        )
