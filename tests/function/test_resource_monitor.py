"""The resource-monitor function: outputs on the real recording, and inputs that must not break."""

from __future__ import annotations

import ast
import copy
import json
import math
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.function.conftest import FUNCTION_FILE, CourseContext
from tests.function.reference import Reference, assert_same_output

RECORDING = Path(__file__).resolve().parents[1] / "fixtures" / "metrics-5s.jsonl"
CPU_KEYS = {"avg-util-cpu0-60sec", "avg-util-cpu1-60sec"}
# One second before snapshot()'s default timestamp, in the state's microseconds since 1970.
STILL_IN_WINDOW = (datetime(2026, 11, 27, 23, 22, 0, 123456) - datetime(1970, 1, 1)) // timedelta(
    microseconds=1
)


def recording() -> list[dict[str, Any]]:
    return [json.loads(line) for line in RECORDING.read_text().splitlines() if line.strip()]


def snapshot(
    timestamp: str | None = "2026-11-27 23:22:01.123456", /, **fields: Any
) -> dict[str, Any]:
    """A minimal input; keyword names use _ for - (cpu_percent_0 -> cpu_percent-0)."""
    data: dict[str, Any] = {} if timestamp is None else {"timestamp": timestamp}
    data.update({key.replace("_percent_", "_percent-"): value for key, value in fields.items()})
    return data


def test_handler_recording_matches_reference_on_every_call(usermodule, context):
    reference = Reference()
    for data in recording():
        output = usermodule.handler(data, context)
        assert_same_output(output, reference.output(data))
        assert set(output) == {
            "percent-network-egress",
            "percent-memory-caching",
            "timestamp",
            *CPU_KEYS,
        }
        assert output["timestamp"] == data["timestamp"]


def test_handler_recording_through_json_state_matches_reference(usermodule, context):
    reference = Reference()
    for data in recording():
        output = usermodule.handler(data, context)
        assert_same_output(output, reference.output(data))
        # As our runtime persists it: the state must survive strict JSON.
        context.env = json.loads(json.dumps(context.env, allow_nan=False))


def test_handler_recording_values_are_what_the_formulas_say(usermodule, context):
    first = recording()[0]
    output = usermodule.handler(first, context)
    sent, recv = first["net_io_counters_eth0-bytes_sent"], first["net_io_counters_eth0-bytes_recv"]
    assert output["percent-network-egress"] == pytest.approx(sent / (sent + recv) * 100)
    cached, buffers = first["virtual_memory-cached"], first["virtual_memory-buffers"]
    total = first["virtual_memory-total"]
    assert output["percent-memory-caching"] == pytest.approx((cached + buffers) / total * 100)
    assert output["avg-util-cpu0-60sec"] == pytest.approx(first["cpu_percent-0"])


def test_handler_recording_window_keeps_the_last_60_seconds(usermodule, context):
    rows = recording()
    for data in rows:
        output = usermodule.handler(data, context)
    # 5 s apart: the window (t - 60 s, t] holds the last 12 samples.
    expected = sum(row["cpu_percent-1"] for row in rows[-12:]) / 12
    assert output["avg-util-cpu1-60sec"] == pytest.approx(expected, rel=1e-12)


def test_handler_window_is_left_open(usermodule, context):
    usermodule.handler(snapshot("2026-11-27 23:00:00", cpu_percent_0=10.0), context)
    output = usermodule.handler(snapshot("2026-11-27 23:01:00", cpu_percent_0=20.0), context)
    assert output["avg-util-cpu0-60sec"] == 20.0
    output = usermodule.handler(snapshot("2026-11-27 23:01:59.999999", cpu_percent_0=30.0), context)
    assert output["avg-util-cpu0-60sec"] == 25.0


def test_handler_repeated_snapshot_is_not_counted_twice(usermodule, context):
    usermodule.handler(snapshot("2026-11-27 23:00:00", cpu_percent_0=10.0), context)
    usermodule.handler(snapshot("2026-11-27 23:00:05", cpu_percent_0=20.0), context)
    again = usermodule.handler(snapshot("2026-11-27 23:00:05", cpu_percent_0=20.0), context)
    changed = usermodule.handler(snapshot("2026-11-27 23:00:05", cpu_percent_0=90.0), context)
    assert again["avg-util-cpu0-60sec"] == 15.0
    assert changed["avg-util-cpu0-60sec"] == 15.0


def test_handler_backwards_time_starts_a_fresh_window(usermodule, context):
    usermodule.handler(snapshot("2026-11-27 23:00:00", cpu_percent_0=10.0), context)
    usermodule.handler(snapshot("2026-11-27 23:00:05", cpu_percent_0=20.0), context)
    output = usermodule.handler(snapshot("2026-11-27 22:59:00", cpu_percent_0=70.0), context)
    assert output["avg-util-cpu0-60sec"] == 70.0
    output = usermodule.handler(snapshot("2026-11-27 22:59:05", cpu_percent_0=80.0), context)
    assert output["avg-util-cpu0-60sec"] == 75.0


def test_handler_disappeared_cpu_is_no_longer_reported(usermodule, context):
    usermodule.handler(
        snapshot("2026-11-27 23:00:00", cpu_percent_0=10.0, cpu_percent_1=50.0), context
    )
    output = usermodule.handler(snapshot("2026-11-27 23:00:05", cpu_percent_0=20.0), context)
    assert "avg-util-cpu1-60sec" not in output
    # Back within the window: its earlier sample still counts.
    output = usermodule.handler(
        snapshot("2026-11-27 23:00:10", cpu_percent_0=30.0, cpu_percent_1=70.0), context
    )
    assert output["avg-util-cpu1-60sec"] == 60.0


def test_handler_disappeared_cpu_leaves_the_state(usermodule, context):
    usermodule.handler(
        snapshot("2026-11-27 23:00:00", cpu_percent_0=1.0, cpu_percent_7=2.0), context
    )
    for second in range(1, 400):
        at = f"2026-11-27 23:{second // 60:02d}:{second % 60:02d}"
        usermodule.handler(snapshot(at, cpu_percent_0=1.0), context)
    window = context.env[usermodule.STATE_KEY]
    assert all(set(samples) == {"0"} for _, samples in window["rows"])


def test_handler_state_stays_bounded_over_a_long_run(usermodule, context):
    for second in range(3000):
        at = f"2026-11-27 {second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}"
        usermodule.handler(snapshot(at, cpu_percent_0=float(second % 100)), context)
    # At 1 s the window (t - 60 s, t] holds 60 snapshots, and the state no more.
    assert len(context.env[usermodule.STATE_KEY]["rows"]) == 60


def test_handler_state_of_sparse_cpus_holds_no_null(usermodule, context):
    # The runtime's snapshot encoder walks the whole state in Python when it meets a null.
    for second in range(90):
        cpus = {f"cpu_percent_{cpu}": 50.0 for cpu in range(4) if (second + cpu) % 3}
        usermodule.handler(
            snapshot(f"2026-11-27 23:{second // 60:02d}:{second % 60:02d}", **cpus), context
        )
        assert "null" not in json.dumps(context.env, allow_nan=False)


def test_handler_zero_totals_give_zero(usermodule, context):
    data = snapshot(
        **{
            "net_io_counters_eth0-bytes_sent": 0,
            "net_io_counters_eth0-bytes_recv": 0,
            "virtual_memory-total": 0,
            "virtual_memory-cached": 0,
            "virtual_memory-buffers": 0,
        }
    )
    output = usermodule.handler(data, context)
    assert output["percent-network-egress"] == 0.0
    assert output["percent-memory-caching"] == 0.0


def test_handler_without_eth0_sums_every_interface_but_lo(usermodule, context):
    data = snapshot(
        **{
            "net_io_counters_lo-bytes_sent": 10**9,
            "net_io_counters_lo-bytes_recv": 0,
            "net_io_counters_ens3-bytes_sent": 100,
            "net_io_counters_ens3-bytes_recv": 300,
            "net_io_counters_br-1a2b3c-bytes_sent": 200,
            "net_io_counters_br-1a2b3c-bytes_recv": 400,
            "net_io_counters_br-1a2b3c-packets_sent": 7,
        }
    )
    output = usermodule.handler(data, context)
    assert output["percent-network-egress"] == pytest.approx(300 / 1000 * 100)


def test_handler_eth0_wins_over_other_interfaces(usermodule, context):
    data = snapshot(
        **{
            "net_io_counters_eth0-bytes_sent": 1,
            "net_io_counters_eth0-bytes_recv": 3,
            "net_io_counters_ens3-bytes_sent": 1000,
            "net_io_counters_ens3-bytes_recv": 0,
        }
    )
    assert usermodule.handler(data, context)["percent-network-egress"] == 25.0


def test_handler_incomplete_eth0_omits_egress(usermodule, context):
    data = snapshot(
        **{
            "net_io_counters_eth0-bytes_sent": 1,
            "net_io_counters_eth0-packets_recv": 3,
            "net_io_counters_ens3-bytes_sent": 1,
            "net_io_counters_ens3-bytes_recv": 1,
        }
    )
    assert "percent-network-egress" not in usermodule.handler(data, context)


@pytest.mark.parametrize(
    "bad",
    ["52.7", None, True, float("nan"), float("inf"), -float("inf"), [1], {"v": 1}, 10**400, -1],
    ids=[
        "numeric-string",
        "null",
        "bool",
        "nan",
        "inf",
        "-inf",
        "list",
        "object",
        "huge-int",
        "negative",
    ],
)
def test_handler_non_numbers_omit_their_keys(usermodule, context, bad):
    data = snapshot(
        cpu_percent_0=bad,
        cpu_percent_1=40.0,
        **{
            "virtual_memory-total": 100,
            "virtual_memory-cached": bad,
            "virtual_memory-buffers": 5,
            "net_io_counters_eth0-bytes_sent": bad,
            "net_io_counters_eth0-bytes_recv": 5,
        },
    )
    output = usermodule.handler(data, context)
    assert output == {
        "avg-util-cpu1-60sec": 40.0,
        "timestamp": "2026-11-27 23:22:01.123456",
    }
    json.dumps(context.env, allow_nan=False)


@pytest.mark.parametrize("value", [-0.5, 100.5, 1e308])
def test_handler_cpu_outside_0_to_100_is_skipped(usermodule, context, value):
    output = usermodule.handler(snapshot(cpu_percent_0=value, cpu_percent_1=0), context)
    assert output == {"avg-util-cpu1-60sec": 0.0, "timestamp": "2026-11-27 23:22:01.123456"}


def test_handler_integers_are_numbers(usermodule, context):
    output = usermodule.handler(
        snapshot(
            cpu_percent_0=100,
            **{"virtual_memory-total": 4, "virtual_memory-cached": 1, "virtual_memory-buffers": 1},
        ),
        context,
    )
    assert output["avg-util-cpu0-60sec"] == 100.0
    assert output["percent-memory-caching"] == 50.0


@pytest.mark.parametrize("timestamp", [None, "", "yesterday", "2026-13-40 25:61:00", 1764285721.5])
def test_handler_without_a_usable_timestamp_reports_no_cpu_and_keeps_the_window(
    usermodule, context, timestamp
):
    usermodule.handler(snapshot("2026-11-27 23:00:00", cpu_percent_0=10.0), context)
    before = copy.deepcopy(context.env)
    data = snapshot(
        None,
        cpu_percent_0=90.0,
        **{"virtual_memory-total": 2, "virtual_memory-cached": 1, "virtual_memory-buffers": 0},
    )
    if timestamp is not None:
        data["timestamp"] = timestamp
    output = usermodule.handler(data, context)
    expected: dict[str, Any] = {"percent-memory-caching": 50.0}
    if isinstance(timestamp, str):
        expected["timestamp"] = timestamp
    assert output == expected
    assert context.env == before
    after = usermodule.handler(snapshot("2026-11-27 23:00:05", cpu_percent_0=20.0), context)
    assert after["avg-util-cpu0-60sec"] == 15.0


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("2026-11-27 23:00:00", "2026-11-27 23:00:30.5"),
        ("2026-11-27T23:00:00", "2026-11-27T23:00:30.500000"),
        ("2026-11-27 23:00:00+00:00", "2026-11-27 22:00:30.5-01:00"),
    ],
    ids=["no-fraction", "iso-T", "utc-offsets"],
)
def test_handler_accepts_timestamp_forms(usermodule, context, first, second):
    usermodule.handler(snapshot(first, cpu_percent_0=10.0), context)
    output = usermodule.handler(snapshot(second, cpu_percent_0=30.0), context)
    assert output["avg-util-cpu0-60sec"] == 20.0
    assert output["timestamp"] == second


def test_handler_empty_input_gives_empty_output(usermodule, context):
    assert usermodule.handler({}, context) == {}


@pytest.mark.parametrize("data", [None, [], "metrics", 42])
def test_handler_input_that_is_not_an_object_gives_empty_output(usermodule, context, data):
    assert usermodule.handler(data, context) == {}


def test_handler_odd_cpu_keys_are_ignored(usermodule, context):
    data: dict[Any, Any] = snapshot(
        **{"cpu_percent-": 1.0, "cpu_percent-x": 2.0, "cpu_percent-1.5": 3.0, "cpu_percent-3": 4.0}
    )
    data[7] = 8.0
    assert usermodule.handler(data, context) == {
        "avg-util-cpu3-60sec": 4.0,
        "timestamp": "2026-11-27 23:22:01.123456",
    }


@pytest.mark.parametrize(
    "state",
    [
        "garbage",
        {"version": 2},
        {"version": 3},
        {"version": 3, "rows": [[STILL_IN_WINDOW, {"0": "x"}]]},
        {"version": 3, "rows": [[STILL_IN_WINDOW, [50.0]]]},
        {"version": 3, "rows": [None]},
        {"version": 3, "rows": "rows"},
        {"version": 3, "rows": [[STILL_IN_WINDOW, {"0": 50.0}, "extra"]]},
        {"version": 2, "rows": [[STILL_IN_WINDOW, [50.0]]], "sums": {}, "new_rows": 0},
        {
            # The layout of version 1 (parallel lists).
            "version": 1,
            "columns": ["cpu_percent-0"],
            "names": ["avg-util-cpu0-60sec"],
            "sums": [10.0],
            "absent": [0],
            "times": [1],
            "rows": [[10.0]],
            "head": 0,
        },
        {"version": 99},
    ],
    ids=[
        "string",
        "partial",
        "partial-version-3",
        "bad-values",
        "bad-row",
        "null-row",
        "rows-not-a-list",
        "row-too-long",
        "version-2-bad-row",
        "version-1",
        "other",
    ],
)
def test_handler_damaged_state_starts_a_fresh_window(usermodule, context, state):
    context.env[usermodule.STATE_KEY] = state
    output = usermodule.handler(snapshot(cpu_percent_0=30.0), context)
    assert output["avg-util-cpu0-60sec"] == 30.0


def test_handler_window_of_the_previous_version_carries_over(usermodule, context):
    # Version 2 kept the same rows beside running sums: an upgrade keeps the last minute.
    context.env[usermodule.STATE_KEY] = {
        "version": 2,
        "rows": [[STILL_IN_WINDOW, {"0": 50.0}]],
        "sums": {"0": [50.0, 1]},
        "new_rows": 0,
    }
    output = usermodule.handler(snapshot(cpu_percent_0=30.0), context)
    assert output["avg-util-cpu0-60sec"] == 40.0
    assert context.env[usermodule.STATE_KEY]["version"] == usermodule.STATE_VERSION


def test_handler_context_without_env_gets_one(usermodule):
    class Bare:
        pass

    context = Bare()
    usermodule.handler(snapshot("2026-11-27 23:00:00", cpu_percent_0=10.0), context)
    output = usermodule.handler(snapshot("2026-11-27 23:00:05", cpu_percent_0=20.0), context)
    assert output["avg-util-cpu0-60sec"] == 15.0


def test_handler_keeps_other_env_entries(usermodule, context):
    context.env["mine"] = ["kept"]
    usermodule.handler(snapshot(cpu_percent_0=1.0), context)
    assert context.env["mine"] == ["kept"]


def test_usermodule_imports_only_the_standard_library():
    tree = ast.parse(FUNCTION_FILE.read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported - {"__future__"} <= sys.stdlib_module_names


def test_usermodule_can_be_loaded_twice_without_sharing_state(usermodule):
    from tests.function.conftest import load_function

    other = load_function()
    first, second = CourseContext(), CourseContext()
    usermodule.handler(snapshot("2026-11-27 23:00:00", cpu_percent_0=10.0), first)
    output = other.handler(snapshot("2026-11-27 23:00:05", cpu_percent_0=20.0), second)
    assert output["avg-util-cpu0-60sec"] == 20.0
    assert math.isclose(
        usermodule.handler(snapshot("2026-11-27 23:00:05", cpu_percent_0=20.0), first)[
            "avg-util-cpu0-60sec"
        ],
        15.0,
    )
