"""`context.env` as tagged JSON: the Python values course functions keep come back as they were.

Plain JSON (objects with string keys, lists, strings, finite numbers, booleans, null) is written as
it is, so a state that is plain JSON costs what it cost before. Every other supported value is an
object with a tag, `{"$t": <tag>, "v": <value>}`:

    tuple, set, frozenset    {"$t": "tuple", "v": [items]}
    dict with a key that is not a string (or a "$t" key)    {"$t": "dict", "v": [[key, value], ...]}
    deque    {"$t": "deque", "v": [items], "maxlen": n or null}
    datetime, date, time    {"$t": "datetime", "v": ISO 8601 text, "tz": zone name}, ...
    timedelta    {"$t": "timedelta", "v": [days, seconds, microseconds]}
    Decimal    {"$t": "decimal", "v": text};  bytes    {"$t": "bytes", "v": base64}
    NaN, infinity    {"$t": "float", "v": "nan" | "inf" | "-inf"}

Decoding builds only these types: nothing is imported, looked up or called by a name found in
Redis (a time zone name is read from the system's zone database). Values of any other type
(a class of the function's own, a defaultdict, a NamedTuple, …) raise Unsupported.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections import deque
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING, Any, TypeGuard

import orjson

from serverless_runtime.state import codec

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

TAG = "$t"
_TAG_BYTES = b'"$t"'
# Only the builtin types go through orjson untouched: anything else (a subclass of dict or str,
# a datetime, a dataclass) makes it fail, and the tagged encoder decides.
_STRICT = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)
# orjson reads an integer beyond 64 bits as a float: such documents go to the standard library.
_LONG_DIGITS = re.compile(rb"[0-9]{19}")
_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class Unsupported(codec.NotJSON):
    """`context.env` holds a value of a type the state encoding does not know."""


class Malformed(ValueError):
    """Encoded state that this encoding did not write (damaged, or from a newer runtime)."""


def dumps(env: Any, what: str = "context.env") -> bytes:
    """`env` as tagged JSON; Unsupported or codec.NonStandard otherwise."""
    try:
        encoded = None if codec.nests_deeper(env) else orjson.dumps(env, option=_STRICT)
    except (orjson.JSONEncodeError, RecursionError):
        encoded = None
    # orjson writes tuples as arrays and NaN as null: a state it reads back unchanged (one C
    # comparison) has neither, and needs no tag.
    if encoded is not None and _TAG_BYTES not in encoded and orjson.loads(encoded) == env:
        return encoded
    try:
        tree = _encode(env)
    except RecursionError:
        raise codec.NonStandard(f"{what} is nested too deeply to be written") from None
    except Unsupported as exc:
        raise Unsupported(f"{what} holds {exc}, which the state encoding does not know") from None
    return codec.dumps(tree, what)


def loads(raw: bytes | str) -> Any:
    """The value `dumps` wrote; ValueError (Malformed) for anything it could not have written."""
    return decode(parse(raw), tagged=has_tags(raw))


def parse(raw: bytes | str) -> Any:
    """JSON as written, tags not resolved; integers beyond 64 bits stay integers."""
    data = _as_bytes(raw)
    return json.loads(data) if _LONG_DIGITS.search(data) else codec.loads(data)


def has_tags(raw: bytes | str) -> bool:
    """False when the document holds no tag: its parsed JSON is the value itself."""
    return _TAG_BYTES in _as_bytes(raw)


def decode(tree: Any, tagged: bool = True) -> Any:
    """The value of a parsed tagged-JSON document; `tagged` False: it holds no tag (plain)."""
    if not tagged:
        return tree
    try:
        return _decode(tree)
    except RecursionError:
        raise Malformed("nested too deeply") from None
    except (TypeError, ValueError, KeyError, OverflowError, ArithmeticError) as exc:
        raise Malformed(f"not a state this runtime wrote: {type(exc).__name__}: {exc}") from None


def _as_bytes(raw: bytes | str) -> bytes:
    return raw.encode() if isinstance(raw, str) else raw


def _encode(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        if math.isfinite(value):
            return value
        return {TAG: "float", "v": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if kind is list:
        return [_encode(item) for item in value]
    if kind is dict:
        if TAG not in value and all(type(key) is str for key in value):
            return {key: _encode(item) for key, item in value.items()}
        return {TAG: "dict", "v": [[_encode(k), _encode(v)] for k, v in value.items()]}
    if kind is tuple or kind is set or kind is frozenset:
        return {TAG: kind.__name__, "v": [_encode(item) for item in value]}
    if kind is deque:
        return {TAG: "deque", "v": [_encode(item) for item in value], "maxlen": value.maxlen}
    if kind is datetime or kind is time:
        return _zoned(kind.__name__, value)
    if kind is date:
        return {TAG: "date", "v": value.isoformat()}
    if kind is timedelta:
        return {TAG: "timedelta", "v": [value.days, value.seconds, value.microseconds]}
    if kind.__name__ == "Decimal" and kind.__module__ == "decimal":  # imported only if used
        return {TAG: "decimal", "v": str(value)}
    if kind is bytes:
        return {TAG: "bytes", "v": base64.b64encode(value).decode()}
    raise Unsupported(f"a {kind.__module__}.{kind.__qualname__}")


def _zoned(tag: str, value: datetime | time) -> dict[str, Any]:
    """A datetime or time: ISO text (with its UTC offset), and a zone's name when it has one."""
    zone = value.tzinfo
    node: dict[str, Any] = {TAG: tag}
    if zone is None or type(zone) is timezone:
        node["v"] = value.isoformat()
    elif _is_zone_info(zone) and zone.key:
        node["v"], node["tz"] = value.replace(tzinfo=None).isoformat(), zone.key
    else:
        raise Unsupported(f"a {tag} in the time zone {zone!r} (a {type(zone).__qualname__})")
    if value.fold:
        node["fold"] = 1
    return node


def _is_zone_info(zone: tzinfo) -> TypeGuard[ZoneInfo]:
    """A ZoneInfo (a zone from the system's database), told apart without importing zoneinfo."""
    kind = type(zone)
    return kind.__name__ == "ZoneInfo" and kind.__module__ == "zoneinfo"


def _decode(node: Any) -> Any:
    if type(node) is list:
        return [_decode(item) for item in node]
    if type(node) is not dict:
        return node
    if TAG not in node:
        return {key: _decode(item) for key, item in node.items()}
    return _tagged(node[TAG], node)


def _tagged(tag: Any, node: dict[str, Any]) -> Any:
    value = node["v"]
    if tag == "dict":
        return {_decode(k): _decode(v) for k, v in map(_items, _items(value))}
    if tag in ("tuple", "set", "frozenset", "deque"):
        items = [_decode(item) for item in _items(value)]
        if tag == "deque":
            maxlen = node.get("maxlen")
            if maxlen is not None and (type(maxlen) is not int or maxlen < 0):
                raise ValueError(f"deque maxlen {maxlen!r}")
            return deque(items, maxlen)
        return {"tuple": tuple, "set": set, "frozenset": frozenset}[tag](items)
    if tag in ("datetime", "time"):
        return _unzoned(tag, node)
    if tag == "date":
        return date.fromisoformat(_text(value))
    if tag == "timedelta":
        days, seconds, microseconds = _items(value)
        return timedelta(int(days), int(seconds), int(microseconds))
    if tag == "decimal":
        from decimal import Decimal  # imported when a state holds one: not on every start

        return Decimal(_text(value))
    if tag == "bytes":
        return base64.b64decode(_text(value), validate=True)
    if tag == "float":
        return _FLOATS[_text(value)]
    raise ValueError(f"unknown tag {tag!r}")


def _unzoned(tag: str, node: dict[str, Any]) -> datetime | time:
    parse = datetime.fromisoformat if tag == "datetime" else time.fromisoformat
    value = parse(_text(node["v"]))
    zone: tzinfo | None = value.tzinfo
    if "tz" in node:
        from zoneinfo import ZoneInfo  # imported when a state holds a zone: not on every start

        zone = ZoneInfo(_text(node["tz"]))
    fold = node.get("fold", 0)
    if fold not in (0, 1):
        raise ValueError(f"fold {fold!r}")
    return value.replace(tzinfo=zone, fold=fold)


def _items(value: Any) -> list[Any]:
    if type(value) is not list:
        raise TypeError(f"expected a list, found {type(value).__name__}")
    return value


def _text(value: Any) -> str:
    if type(value) is not str:
        raise TypeError(f"expected a string, found {type(value).__name__}")
    return value
