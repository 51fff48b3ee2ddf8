"""resource-monitor's own test: one collector snapshot in, the contract's keys out.

The thorough suites are in tests/function/ (the real recording against a reference, property
tests of the window, malformed inputs); this one runs with the folder wherever it is copied.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest


def load() -> ModuleType:
    """usermodule.py beside this file, imported from its path as the runtime does."""
    spec = importlib.util.spec_from_file_location(
        "usermodule", Path(__file__).with_name("usermodule.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def snapshot(timestamp: str, cpu0: float) -> dict[str, object]:
    return {
        "timestamp": timestamp,
        "cpu_percent-0": cpu0,
        "net_io_counters_eth0-bytes_sent": 25,
        "net_io_counters_eth0-bytes_recv": 75,
        "virtual_memory-cached": 30,
        "virtual_memory-buffers": 10,
        "virtual_memory-total": 200,
    }


def test_outputs_ratios_and_the_cpu_moving_average() -> None:
    handler = load().handler
    context = SimpleNamespace(env={})
    handler(snapshot("2026-12-01 10:00:00.000000", 10.0), context)
    output = handler(snapshot("2026-12-01 10:00:05.000000", 30.0), context)
    assert output["percent-network-egress"] == pytest.approx(25.0)
    assert output["percent-memory-caching"] == pytest.approx(20.0)
    assert output["avg-util-cpu0-60sec"] == pytest.approx(20.0)
    assert output["timestamp"] == "2026-12-01 10:00:05.000000"
