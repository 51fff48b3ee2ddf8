"""state/tagged.py: context.env comes back with the same values and types, or is refused."""

from __future__ import annotations

import json
import math
from collections import OrderedDict, defaultdict, deque
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from serverless_runtime.state import codec, tagged
from serverless_runtime.state.codec import NonStandard

ZONES = st.sampled_from(
    [None, UTC, timezone(timedelta(hours=-3, minutes=-30)), ZoneInfo("Europe/Paris")]
)

# Hashable values, usable as keys and in sets: the pitfalls are 1, 1.0 and True in one place.
KEYS = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.decimals(allow_nan=False)
    | st.dates()
    | st.timedeltas()
    | st.datetimes(timezones=ZONES),
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3),
    max_leaves=5,
)
SCALARS = (
    KEYS
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.times(timezones=st.sampled_from([None, UTC, timezone(timedelta(hours=5))]))
    | st.binary(max_size=20)
    | st.sampled_from([math.inf, -math.inf])
)
VALUES: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(KEYS, inner, max_size=4)
        | st.dictionaries(st.text(), inner, max_size=4)
        | st.tuples(inner, inner)
        | st.sets(KEYS, max_size=4)
        | st.builds(deque, st.lists(inner, max_size=4), st.none() | st.integers(4, 6))
    ),
    max_leaves=20,
)


def same(a: Any, b: Any) -> bool:
    """Equal, with the same types all the way down (1 is not 1.0 is not True), NaN equal to NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, dict):
        # Keys by position: a dict keeps its order, and {1: x} == {True: x} must not pass.
        pairs = zip(a.items(), b.items(), strict=False)
        return len(a) == len(b) and all(same(k, j) and same(v, w) for (k, v), (j, w) in pairs)
    if isinstance(a, list | tuple | deque):
        if isinstance(a, deque) and a.maxlen != b.maxlen:
            return False
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, set | frozenset):
        return len(a) == len(b) and all(any(same(x, y) for y in b) for x in a)
    if isinstance(a, datetime | time):
        zone: bool = a.tzinfo == b.tzinfo and a.fold == b.fold
        return zone and a == b and a.isoformat() == b.isoformat()
    if isinstance(a, Decimal):
        return str(a) == str(b)
    equal: bool = a == b
    return equal


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=6))
def test_tagged_round_trip_keeps_values_and_types(env: dict[Any, Any]) -> None:
    assert same(tagged.loads(tagged.dumps(env)), env)


PLAIN_KEYS = st.text().filter(lambda key: key != "$t")  # a "$t" key is tagged (below)


@settings(max_examples=100, deadline=None)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(2**63), 2**63 - 1)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(PLAIN_KEYS, inner, max_size=4),
    )
)
def test_tagged_plain_json_is_written_as_today(value: Any) -> None:
    env = {"value": value}
    assert tagged.dumps(env) == codec.dumps(env)
    assert tagged.loads(codec.dumps(env)) == json.loads(codec.dumps(env))


def test_tagged_int_float_bool_keys_stay_apart() -> None:
    # {1: …, True: …} is one key in Python: each kind of key is checked in its own place.
    env = {True: "bool", 2: "int", 3.0: "float", None: "none", "4": "str", (1, "a"): "tuple"}
    back = tagged.loads(tagged.dumps(env))
    assert [type(key) for key in back] == [bool, int, float, type(None), str, tuple]
    assert same(back, env)
    assert type(next(iter(tagged.loads(tagged.dumps({1: "x"}))))) is int


def test_tagged_course_pattern_of_int_keys_and_tuples() -> None:
    env = {"buckets": {i: [] for i in range(3)}, "last": (3, "x"), "seen": {(1, 2)}}
    back = tagged.loads(tagged.dumps(env))
    back["buckets"][0].append(1)  # was KeyError: 0 after a restart
    assert back["last"] == (3, "x") and back["seen"] == {(1, 2)}


def test_tagged_nan_and_infinity_come_back() -> None:
    back = tagged.loads(tagged.dumps({"low": math.inf, "x": [math.nan, -math.inf]}))
    assert back["low"] == math.inf and math.isnan(back["x"][0]) and back["x"][1] == -math.inf


def test_tagged_a_user_key_named_like_the_tag_is_not_a_tag() -> None:
    env = {"$t": "tuple", "v": [1, 2], "inner": [{"$t": "set", "v": []}]}
    assert same(tagged.loads(tagged.dumps(env)), env)


class Point(NamedTuple):
    x: int


@pytest.mark.parametrize(
    "value",
    [
        Point(1),
        defaultdict(list),
        OrderedDict(a=1),
        object(),
        UTC,
    ],
    ids=["namedtuple", "defaultdict", "ordereddict", "object", "tzinfo"],
)
def test_tagged_other_types_are_refused_by_name(value: Any) -> None:
    with pytest.raises(tagged.Unsupported, match=r"context\.env holds a"):
        tagged.dumps({"k": value})


@pytest.mark.parametrize("container", [list, tuple])
def test_tagged_too_deep_is_non_standard(container: Any) -> None:
    deep: Any = container([1])
    for _ in range(20000):  # a tuple chain this long crashed orjson
        deep = container([deep])
    with pytest.raises(NonStandard):
        tagged.dumps({"deep": deep})


def test_tagged_tuples_nested_past_orjsons_limit_come_back() -> None:
    chain: Any = ()
    for _ in range(300):
        chain = (chain,)
    assert tagged.loads(tagged.dumps({"chain": chain})) == {"chain": chain}


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": {"$t": "pickle", "v": "gASV"}}',
        b'{"a": {"$t": "tuple"}}',
        b'{"a": {"$t": "dict", "v": [[[1], 2]]}}',
        b'{"a": {"$t": "datetime", "v": "now"}}',
        b'{"a": {"$t": "datetime", "v": "2026-01-01T00:00:00", "tz": "../../etc/passwd"}}',
        b'{"a": {"$t": "deque", "v": [], "maxlen": -1}}',
    ],
    ids=["unknown-tag", "no-value", "unhashable-key", "bad-date", "zone-path", "bad-maxlen"],
)
def test_tagged_refuses_what_it_did_not_write(raw: bytes) -> None:
    with pytest.raises(tagged.Malformed):
        tagged.loads(raw)


def test_tagged_dates_keep_their_zone() -> None:
    paris = datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Paris"))
    env = {"at": paris, "day": date(2026, 1, 2), "t": time(1, 2, 3, 4), "d": Decimal("1.10")}
    assert same(tagged.loads(tagged.dumps(env)), env)
