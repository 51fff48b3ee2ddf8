"""Any JSON value as rows of dotted key paths, and its numbers by path (pure); every walk stops
after a fixed number of values and depth, so a huge or deep output costs bounded work."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

from monitoring_dashboard.display import number_text

MAX_DEPTH = 8
MAX_ROWS = 500
MAX_NUMBERS = 1000
MAX_TEXT = 200
ROOT = "(value)"

# Keys shown bare in a path; any other key is quoted, so that `a.b` and {"a": {"b": …}} differ.
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_\-:@$%#+/ ]+")


@dataclass(frozen=True)
class Row:
    """One leaf of the output: its path, its value as text, and whether it is a number."""

    path: str
    text: str
    numeric: bool


@dataclass(frozen=True)
class Flat:
    """The rows of an output; `truncated` when more leaves exist than were taken."""

    rows: list[Row]
    truncated: bool


def flatten(value: Any) -> Flat:
    """At most MAX_ROWS leaves of value, in document order."""
    leaves = list(islice(_walk(value), MAX_ROWS + 1))
    rows = [Row(path, _text(leaf), number(leaf) is not None) for path, leaf in leaves[:MAX_ROWS]]
    return Flat(rows, len(leaves) > MAX_ROWS)


def numbers(value: Any) -> dict[str, float]:
    """The finite numbers among the first MAX_NUMBERS leaves of value, by path."""
    found: dict[str, float] = {}
    for path, leaf in islice(_walk(value), MAX_NUMBERS):
        parsed = number(leaf)
        if parsed is not None:
            found[path] = parsed
    return found


def number(value: Any) -> float | None:
    """A finite float for a JSON number; None for booleans, text, huge integers, NaN."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        parsed = float(value)
    except OverflowError:
        return None
    return parsed if math.isfinite(parsed) else None


def safe_text(text: str, limit: int = MAX_TEXT) -> str:
    """Text the page can send (no lone surrogates), cut to limit characters."""
    try:
        text.encode()
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _walk(value: Any) -> Iterator[tuple[str, Any]]:
    """(path, leaf) pairs in document order; containers past MAX_DEPTH are leaves themselves."""
    if not _expandable(value, 0):
        yield ROOT, value
        return
    # A stack of lazy iterators: no recursion limit to hit, no copy of a large container, and
    # the walk stops as soon as the caller does. A child's depth is the stack's length.
    stack = [_children("", value)]
    while stack:
        step = next(stack[-1], None)
        if step is None:
            stack.pop()
            continue
        path, child = step
        if _expandable(child, len(stack)):
            stack.append(_children(path, child))
        else:
            yield path, child


def _expandable(value: Any, depth: int) -> bool:
    return isinstance(value, dict | list) and bool(value) and depth < MAX_DEPTH


def _children(path: str, item: dict[Any, Any] | list[Any]) -> Iterator[tuple[str, Any]]:
    if isinstance(item, dict):
        return ((_join(path, str(key)), child) for key, child in item.items())
    return ((f"{path}[{index}]", child) for index, child in enumerate(item))


def _join(path: str, key: str) -> str:
    if _PLAIN_KEY.fullmatch(key) and key.strip() == key:
        return f"{path}.{key}" if path else key
    escaped = key.replace("\\", "\\\\").replace('"', '\\"')
    return f'{path}["{safe_text(escaped, 80)}"]'


def _text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, int):
        # About 200 digits; str() of a longer one is costly, and refused beyond 4300.
        return str(value) if value.bit_length() <= 664 else "(an integer of about 200+ digits)"
    if isinstance(value, float):
        # Rounded for reading (89.33999999999999 → 89.34); the charts keep six digits.
        return number_text(value)
    if isinstance(value, dict):
        return "{}" if not value else f"{{…}} ({len(value)} keys, nested too deep to show)"
    if isinstance(value, list):
        return "[]" if not value else f"[…] ({len(value)} items, nested too deep to show)"
    return safe_text(repr(value))
