"""What the dashboard reads from Redis, as plain immutable values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


class ReadError(Exception):
    """Redis could not be read; the message is fit for the page."""


@dataclass(frozen=True)
class Point:
    """One output of the function and when it was written (ms since the epoch)."""

    at_ms: int
    values: Mapping[str, float]


@dataclass(frozen=True)
class FunctionError:
    """The runtime's record of the function's latest failure (`<out>:error`)."""

    at: str
    at_ms: int | None
    kind: str
    message: str
    traceback: str
    input_timestamp: str | None


@dataclass(frozen=True)
class Snapshot:
    """What Redis holds for one output key at one moment (now_ms is Redis's clock)."""

    now_ms: int
    output: Mapping[str, Any] | None = None
    output_raw: str | None = None
    history: list[Point] = field(default_factory=list)
    last_write_ms: int | None = None
    has_history: bool = False
    error: FunctionError | None = None
    problems: list[str] = field(default_factory=list)


class Reader(Protocol):
    """Anything that can take a snapshot: the Redis reader, or a stub in tests."""

    def read(self) -> Snapshot:
        """Return the current snapshot or raise ReadError."""
        ...
