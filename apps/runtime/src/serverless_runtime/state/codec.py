"""Strict, fast JSON for outputs and state (RFC 8259: no NaN or infinity), lenient for inputs."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

# datetime and dataclass values are refused, as the standard library refuses them: a course
# function that keeps datetimes in context.env must see them stay datetimes, not become strings.
_OPTIONS = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)
_NOT_A_NUMBER = "is not a JSON number (NaN and infinity are not allowed)"
# orjson refuses objects and lists nested over 254 levels, but not tuples: a chain of a few
# thousand makes it write past its buffer, and the process dies. Deeper values skip orjson.
ORJSON_DEPTH = 254
NESTING = (dict, list, tuple)


class NotJSON(ValueError):
    """A value cannot be written as strict JSON; the message names where and why."""


class NonStandard(NotJSON):
    """A NaN or infinity, or nesting deeper than a JSON reader takes: a bug, not a type."""


def dumps(value: Any, what: str = "value") -> bytes:
    """`value` as compact UTF-8 JSON, or NotJSON naming the first offending place."""
    if nests_deeper(value):
        return _dumps_stdlib(value, what)
    try:
        encoded = orjson.dumps(value, option=_OPTIONS)
    except (orjson.JSONEncodeError, RecursionError):
        # orjson refuses what the standard library takes (integers over 64 bits, nesting over
        # 254 levels): give the standard library a chance before calling the value invalid.
        return _dumps_stdlib(value, what)
    # orjson writes NaN and infinity as null; only a document with a null can hide one.
    if b"null" in encoded:
        place = _non_finite(value, what)
        if place is not None:
            raise NonStandard(f"{place} {_NOT_A_NUMBER}")
    return encoded


def _dumps_stdlib(value: Any, what: str) -> bytes:
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":")).encode()
    except RecursionError:
        raise NonStandard(f"{what} is nested too deeply to be written as JSON") from None
    except (TypeError, ValueError) as exc:
        place = _non_finite(value, what) if "Out of range" in str(exc) else None
        if place is not None:
            raise NonStandard(f"{place} {_NOT_A_NUMBER}") from None
        raise NotJSON(f"{what} is not JSON-serializable: {exc}") from None


def _non_finite(value: Any, path: str) -> str | None:
    """The path of the first NaN or infinity in `value`, or None; paths are built only for it."""
    if not _has_non_finite(value):
        return None
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return where
        elif isinstance(item, dict):
            stack.extend((v, f"{where}[{k!r}]") for k, v in reversed(item.items()))
        elif isinstance(item, list | tuple):
            stack.extend((v, f"{where}[{i}]") for i, v in reversed(list(enumerate(item))))
    return None


def _has_non_finite(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def nests_deeper(value: Any, limit: int = ORJSON_DEPTH) -> bool:
    """Whether objects, lists and tuples nest more than `limit` levels in `value`.

    Depth first, as orjson writes: a value shared or cyclic past the limit is caught on its first
    deep path, not after all its paths.
    """
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if not isinstance(item, NESTING):
            continue
        if level > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack += [(child, level + 1) for child in children if isinstance(child, NESTING)]
    return False


def loads(raw: bytes | str) -> Any:
    """Parse JSON as the course runtime does: the standard library also accepts NaN.

    Raises ValueError (RecursionError for nesting deeper than Python's stack allows).
    """
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)
