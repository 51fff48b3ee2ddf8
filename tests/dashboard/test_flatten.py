"""Any JSON as key paths and numbers: odd shapes, odd keys, and bounds on huge or deep values."""

from __future__ import annotations

import json
from typing import Any

from monitoring_dashboard.flatten import MAX_TEXT, ROOT, flatten, number, numbers, safe_text


def rows(value):
    return [(row.path, row.text, row.numeric) for row in flatten(value).rows]


def test_flatten_nested_objects_give_dotted_paths_and_lists_indexes() -> None:
    output = {"cpu": {"mean": 12.5, "per": [10, 15]}, "host": "a", "ok": True, "none": None}
    assert rows(output) == [
        ("cpu.mean", "12.5", True),
        ("cpu.per[0]", "10", True),
        ("cpu.per[1]", "15", True),
        ("host", "a", False),
        ("ok", "true", False),
        ("none", "null", False),
    ]


def test_flatten_values_that_are_not_objects() -> None:
    assert rows(42) == [(ROOT, "42", True)]
    assert rows("just text") == [(ROOT, "just text", False)]
    assert rows(None) == [(ROOT, "null", False)]
    assert rows([]) == [(ROOT, "[]", False)]
    assert rows({}) == [(ROOT, "{}", False)]
    assert rows([1, "x", {"a": 2}]) == [
        ("[0]", "1", True),
        ("[1]", "x", False),
        ("[2].a", "2", True),
    ]
    assert rows({"empty": {}, "nothing": []}) == [("empty", "{}", False), ("nothing", "[]", False)]


def test_flatten_odd_keys_are_quoted_so_paths_stay_unambiguous() -> None:
    output = {"a.b": 1, "a": {"b": 2}, "": 3, "<b>x</b>": 4, 'say "hi"': 5, " pad": 6}
    assert [path for path, _, _ in rows(output)] == [
        '["a.b"]',
        "a.b",
        '[""]',
        '["<b>x</b>"]',
        '["say \\"hi\\""]',
        '[" pad"]',
    ]


def test_flatten_text_is_cut_and_made_sendable() -> None:
    (row,) = flatten({"long": "x" * 10_000}).rows
    assert len(row.text) == MAX_TEXT and row.text.endswith("…")
    # A lone surrogate (from a "\ud800" escape) cannot be sent to the page: replaced.
    value = json.loads('{"k\\ud800": "v\\udfff"}')
    (odd,) = flatten(value).rows
    odd.text.encode()
    odd.path.encode()
    assert safe_text("plain") == "plain"


def test_flatten_huge_outputs_are_bounded() -> None:
    wide = {f"k{index}": index for index in range(100_000)}
    flat = flatten(wide)
    assert len(flat.rows) == 500 and flat.truncated
    assert flat.rows[-1].path == "k499"
    assert not flatten({"a": 1}).truncated
    assert len(numbers(wide)) == 1000


def test_flatten_deep_values_stop_at_the_depth_limit() -> None:
    deep: dict[str, Any] = {}
    cursor = deep
    for _ in range(50_000):  # far deeper than any recursion limit
        cursor["d"] = {}
        cursor = cursor["d"]
    cursor["d"] = 1
    (row,) = flatten(deep).rows
    assert row.path == "d.d.d.d.d.d.d.d"
    assert row.text.startswith("{…} (1 keys")
    assert numbers(deep) == {}


def test_numbers_keep_finite_numbers_only() -> None:
    output = {"n": 1, "f": 2.5, "b": True, "s": "3", "big": 10**400, "nested": {"x": [0.5]}}
    assert numbers(output) == {"n": 1.0, "f": 2.5, "nested.x[0]": 0.5}
    assert numbers(7) == {ROOT: 7.0}
    assert number(float("nan")) is None and number(False) is None
    (big,) = [row for row in flatten({"big": 10**400}).rows]
    assert big.text.startswith("(an integer of about 200+ digits") and not big.numeric


def test_flatten_floats_are_rounded_for_reading() -> None:
    assert rows({"load": 89.33999999999999, "tiny": 0.000123456, "whole": 92.0}) == [
        ("load", "89.34", True),
        ("tiny", "0.000123", True),
        ("whole", "92", True),
    ]
