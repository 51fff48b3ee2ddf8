"""What the dashboard reads from Redis, as plain immutable values."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from serverless_runtime.registry import FunctionRecord

T = TypeVar("T")


class ReadError(Exception):
    """Redis could not be read; the message is fit for the page."""


def attempt(read: Callable[[], T]) -> T | ReadError:
    """The read's result, or its ReadError: expected while Redis restarts, the page says so."""
    try:
        return read()
    except ReadError as exc:
        return exc


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
    """What Redis holds for one function at one moment (now_ms is Redis's clock)."""

    now_ms: int
    # The registry's record (for the Live page, only its load failure is read), else the
    # configured function's; `registered` says which.
    record: FunctionRecord
    registered: bool = False
    # The parsed output when `has_output` (for the Live page, a JSON object or None); its text
    # (for a version) in `output_raw`.
    output: Any = None
    has_output: bool = False
    output_raw: str | None = None
    # Oldest first: the Live page's whole window, the Functions page's newest entries (bounded).
    history: list[Point] = field(default_factory=list)
    has_history: bool = False
    last_write_ms: int | None = None
    last_entry_id: str | None = None
    error: FunctionError | None = None
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FunctionSummary:
    """One function of the Functions page's list: its record and what its keys show now."""

    record: FunctionRecord
    # False for the function the dashboard is configured for when the registry lacks it.
    registered: bool
    output_exists: bool = False
    last_write_ms: int | None = None
    error: FunctionError | None = None


# The Functions page lists one page of this many functions (the registry sorted by output key):
# each refresh reads the registry's field names and only this many records.
PAGE_SIZE = 25


@dataclass(frozen=True)
class FunctionList:
    now_ms: int
    functions: list[FunctionSummary] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # A page of the registry: how many functions it holds, how many contain `query` in their
    # output key, and which of the `pages` pages of them is listed (0 total: not paged).
    total: int = 0
    matched: int = 0
    page: int = 1
    pages: int = 1
    query: str = ""


class Reader(Protocol):
    """The Redis reader, or a stub in tests: the Live page's snapshot, a page of the registry's
    functions and one function (None: not listed); each raises ReadError."""

    def read(self) -> Snapshot: ...

    def list_functions(self, query: str = "", page: int = 1) -> FunctionList: ...

    def read_function(self, output_key: str) -> Snapshot | None: ...
