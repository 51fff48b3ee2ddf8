"""cpu-stats on the collector's real recording, against a plain-Python reference, and bad inputs."""

from __future__ import annotations

import importlib.util
import json
import math
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
RECORDING = HERE.parents[2] / "tests" / "fixtures" / "metrics-5s.jsonl"
WINDOW = timedelta(seconds=60)


@pytest.fixture(scope="module")
def cpu_stats() -> ModuleType:
    """usermodule.py of this folder, loaded by path under a name of its own, as the runtime does."""
    spec = importlib.util.spec_from_file_location("cpu_stats_usermodule", HERE / "usermodule.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def recording() -> list[dict[str, Any]]:
    return [json.loads(line) for line in RECORDING.read_text().splitlines() if line.strip()]


def p95(values: list[float]) -> float:
    """The 95th percentile by linear interpolation between the closest ranks."""
    ordered = sorted(values)
    position = 0.95 * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def expected(history: list[dict[str, Any]]) -> dict[str, Any]:
    """What cpu-stats should answer after HISTORY, computed naively from every snapshot."""
    newest = history[-1]
    at = datetime.fromisoformat(newest["timestamp"])
    window = [s for s in history if at - WINDOW < datetime.fromisoformat(s["timestamp"]) <= at]
    result: dict[str, Any] = {"timestamp": newest["timestamp"], "samples-60sec": len(window)}
    for key in newest:
        if key.startswith("cpu_percent-"):
            cpu = key.removeprefix("cpu_percent-")
            values = [s[key] for s in window if key in s]
            result[f"mean-util-cpu{cpu}-60sec"] = sum(values) / len(values)
            result[f"p95-util-cpu{cpu}-60sec"] = p95(values)
            result[f"max-util-cpu{cpu}-60sec"] = max(values)
    return result


def assert_close(output: dict[str, Any], wanted: dict[str, Any]) -> None:
    assert set(output) == set(wanted)
    for key, value in wanted.items():
        if isinstance(value, float):
            assert type(output[key]) is float, key  # plain floats: JSON, not numpy scalars
            assert math.isclose(output[key], value, rel_tol=1e-12, abs_tol=1e-12), key
        else:
            assert output[key] == value, key


def test_recording_gives_the_reference_statistics_on_every_call(cpu_stats: ModuleType) -> None:
    snapshots = recording()
    context = SimpleNamespace(env={})
    for count in range(1, len(snapshots) + 1):
        output = cpu_stats.handler(snapshots[count - 1], context)
        assert_close(output, expected(snapshots[:count]))
    # 36 snapshots 5 s apart: the window has filled (12 snapshots in 60 s) and kept sliding.
    assert output["samples-60sec"] == 12
    assert output["p95-util-cpu0-60sec"] <= output["max-util-cpu0-60sec"]


def test_state_survives_json_like_the_runtimes_durable_state(cpu_stats: ModuleType) -> None:
    snapshots = recording()
    kept = SimpleNamespace(env={})
    restored = SimpleNamespace(env={})
    for data in snapshots:
        # Every call starts from state that went through JSON, as after a restart.
        restored.env = json.loads(json.dumps(restored.env, allow_nan=False))
        assert cpu_stats.handler(data, restored) == cpu_stats.handler(data, kept)
    assert json.loads(json.dumps(kept.env)) == kept.env


def test_a_repeated_snapshot_is_not_counted_twice(cpu_stats: ModuleType) -> None:
    first, second = recording()[:2]
    context = SimpleNamespace(env={})
    cpu_stats.handler(first, context)
    once = cpu_stats.handler(second, context)
    again = cpu_stats.handler(second, context)
    assert once == again
    assert again["samples-60sec"] == 2


def test_time_going_backwards_starts_a_fresh_window(cpu_stats: ModuleType) -> None:
    snapshots = recording()
    context = SimpleNamespace(env={})
    for data in snapshots[5:10]:
        cpu_stats.handler(data, context)
    output = cpu_stats.handler(snapshots[0], context)
    assert_close(output, expected(snapshots[:1]))


@pytest.mark.parametrize(
    "bad",
    ["a string", None, True, -1, 100.5, math.nan, math.inf, [50.0], {"v": 50.0}],
)
def test_a_sample_that_is_not_a_percentage_is_skipped(cpu_stats: ModuleType, bad: Any) -> None:
    data = {"timestamp": "2026-11-27 23:22:01.123456", "cpu_percent-0": bad, "cpu_percent-1": 7}
    output = cpu_stats.handler(data, SimpleNamespace(env={}))
    assert output == {
        "timestamp": "2026-11-27 23:22:01.123456",
        "samples-60sec": 1,
        "mean-util-cpu1-60sec": 7.0,
        "p95-util-cpu1-60sec": 7.0,
        "max-util-cpu1-60sec": 7.0,
    }


@pytest.mark.parametrize("data", [None, [], "metrics", 3, {}, {"cpu_percent-0": 5.0}])
def test_input_without_a_usable_timestamp_updates_nothing(cpu_stats: ModuleType, data: Any) -> None:
    context = SimpleNamespace(env={})
    assert cpu_stats.handler(data, context) == {}
    assert context.env == {}


def test_a_state_it_did_not_write_starts_afresh(cpu_stats: ModuleType) -> None:
    first = recording()[0]
    for damaged in ({"version": 1, "rows": [["x", {}]]}, {"version": 99, "rows": []}, "junk"):
        context = SimpleNamespace(env={cpu_stats.STATE_KEY: damaged})
        assert_close(cpu_stats.handler(first, context), expected([first]))


def test_a_context_without_env_gets_one(cpu_stats: ModuleType) -> None:
    context = SimpleNamespace()
    output = cpu_stats.handler(recording()[0], context)
    assert output["samples-60sec"] == 1
    assert isinstance(context.env, dict)
