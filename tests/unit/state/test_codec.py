"""Outputs and state are strict JSON (RFC 8259); inputs are read as the course runtime did."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from serverless_runtime.state import codec


def test_dumps_writes_compact_json_that_reads_back_equal() -> None:
    value = {"a": [1, 2.5, None, True], "b": {"c": "ü"}, 3: "int keys become strings"}
    encoded = codec.dumps(value)
    assert b" " not in encoded.replace(b"int keys become strings", b"")
    assert json.loads(encoded) == json.loads(json.dumps(value))  # the same values as json.dumps


@pytest.mark.parametrize(
    ("value", "place"),
    [
        ({"avg": float("nan")}, "the result['avg']"),
        ({"a": [1.0, {"b": float("inf")}]}, "the result['a'][1]['b']"),
        ([float("-inf")], "the result[0]"),
    ],
)
def test_dumps_names_where_a_nan_or_infinity_is(value: object, place: str) -> None:
    with pytest.raises(codec.NotJSON, match=r"is not a JSON number") as caught:
        codec.dumps(value, "the result")
    assert str(caught.value).startswith(place + " ")


def test_dumps_refuses_datetimes_as_the_standard_library_does() -> None:
    # A course function keeping datetimes in context.env must get them back as datetimes, so
    # they are never turned into strings on the way to Redis.
    with pytest.raises(codec.NotJSON, match=r"context\.env is not JSON-serializable"):
        codec.dumps({"seen": [("x", datetime(2026, 1, 1))]}, "context.env")


def test_dumps_takes_what_only_the_standard_library_takes() -> None:
    huge = 2**80
    assert json.loads(codec.dumps({"n": huge})) == {"n": huge}


def test_dumps_reports_a_structure_nested_too_deeply() -> None:
    deep: list[object] = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(codec.NotJSON, match="nested too deeply"):
        codec.dumps(deep, "the result")


@pytest.mark.parametrize("levels", [300, 20000])
def test_dumps_of_nested_tuples_is_the_standard_librarys_or_too_deep(levels: int) -> None:
    # orjson limits lists and objects to 254 levels but not tuples: it crashed on a long chain.
    chain: tuple[object, ...] = ()
    for _ in range(levels):
        chain = (chain,)
    if levels < 1000:
        assert codec.dumps({"t": chain}) == json.dumps({"t": chain}, separators=(",", ":")).encode()
    else:
        with pytest.raises(codec.NotJSON, match="nested too deeply"):
            codec.dumps({"t": chain}, "the result")


def test_nests_deeper_counts_objects_lists_and_tuples() -> None:
    value = {"a": [({"b": 1},)], "c": 2}
    assert codec.nests_deeper(value, 3)
    assert not codec.nests_deeper(value, 4)
    assert not codec.nests_deeper("text", 0)


def test_dumps_refuses_a_cyclic_value_at_once() -> None:
    cyclic: list[object] = []
    cyclic += [cyclic, cyclic]  # twice: every level doubles the paths through it
    with pytest.raises(codec.NotJSON):
        codec.dumps({"c": cyclic}, "the result")


def test_loads_reads_what_the_course_runtime_reads() -> None:
    assert codec.loads(b'{"a": 1}') == {"a": 1}
    value = codec.loads('{"x": NaN}')  # the standard library's extension, as in the course
    assert value["x"] != value["x"]
    with pytest.raises(ValueError):
        codec.loads(b"{not json")
