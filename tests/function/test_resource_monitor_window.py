"""Property tests: the moving-average window against the independent reference."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.function.conftest import CourseContext, load_function
from tests.function.reference import Reference, assert_same_output

START = datetime(2026, 11, 27, 23, 0, 0)
CPUS = ["0", "1", "2", "3", "11"]

# Steps in microseconds: repeats, the exact window edge and its neighbours, gaps longer than the
# window, backwards jumps, and irregular spacing.
steps = st.one_of(
    st.sampled_from(
        [
            0,
            0,
            1,
            1_000_000,
            5_000_000,
            30_000_000,
            59_999_999,
            60_000_000,
            60_000_001,
            61_000_000,
            600_000_000,
            -1,
            -5_000_000,
            -120_000_000,
        ]
    ),
    st.integers(min_value=1, max_value=20_000_000),
)
cpu_values = st.one_of(
    st.floats(min_value=0.0, max_value=100.0),
    st.integers(min_value=0, max_value=100),
    st.sampled_from([float("nan"), float("inf"), "42.0", None, True, -1.0, 100.5]),
)
timestamp_forms = st.sampled_from(["str", "str", "str", "iso", "missing", "garbage"])


@st.composite
def snapshots(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A sequence of inputs whose CPUs come and go and whose clock misbehaves."""
    at = START
    sequence = []
    for _ in range(draw(st.integers(min_value=1, max_value=80))):
        at += timedelta(microseconds=draw(steps))
        form = draw(timestamp_forms)
        data: dict[str, Any] = {}
        if form == "str":
            data["timestamp"] = str(at)  # drops the fraction when it is zero, as the collector
        elif form == "iso":
            data["timestamp"] = at.isoformat()
        elif form == "garbage":
            data["timestamp"] = "not a time"
        present = draw(st.lists(st.sampled_from(CPUS), unique=True, max_size=len(CPUS)))
        for cpu in present:
            data[f"cpu_percent-{cpu}"] = draw(cpu_values)
        sequence.append(data)
    return sequence


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequence=snapshots(), persist=st.booleans())
def test_window_matches_naive_reference(sequence, persist):
    usermodule = load_function()
    context = CourseContext()
    reference = Reference()
    for data in sequence:
        output = usermodule.handler(data, context)
        assert_same_output(output, reference.output(data))
        if persist:
            # Our runtime stores env as strict JSON between calls; the course runtime keeps it.
            context.env = json.loads(json.dumps(context.env, allow_nan=False))


@pytest.mark.slow
def test_window_long_run_with_flapping_cpus_matches_reference():
    # Long enough for the window to turn over many times, with CPUs that come and go.
    rng = random.Random(20261127)
    usermodule = load_function()
    context = CourseContext()
    reference = Reference()
    at = START
    for call in range(6000):
        at += timedelta(microseconds=rng.choice([250_000, 1_000_000, 1_000_000, 5_000_000]))
        data: dict[str, Any] = {"timestamp": str(at)}
        for cpu in range(8):
            # CPU 7 is gone for long stretches; CPU 6 flaps every call.
            if (cpu == 7 and (call // 500) % 2) or (cpu == 6 and rng.random() < 0.5):
                continue
            data[f"cpu_percent-{cpu}"] = rng.choice([rng.uniform(0, 100), 0.1, 99.9, 1e-9])
        output = usermodule.handler(data, context)
        assert_same_output(output, reference.output(data))
        if call % 97 == 0:
            context.env = json.loads(json.dumps(context.env, allow_nan=False))
